"""Artwork images as the app serves them: only files inside the gallery's images folder, only decodable images.

The catalogue names each artwork's image file; the request only names the artwork. A file that is a link
resolving outside ``<gallery>/images`` is refused (whatever it points at is not the gallery's to show), and
the bytes are sent only after Pillow decoded them, with the content type of the format it found, so a text
file named ``.png`` is never served as an image. A missing or undecodable file is "no image" (404).
"""

from __future__ import annotations

import io
import logging
from functools import lru_cache
from pathlib import Path

from PIL import Image

log = logging.getLogger("curatornet.webapp")
THUMBNAIL_PIXELS = 320
_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}


class ImageRefused(LookupError):
    """The artwork's image cannot be served; the message says why, naming the file (never the full path)."""


def resolve_image(image_file: str, images_folder: Path) -> Path:
    """The real file of ``image_file``, which must lie inside ``images_folder`` once links are followed."""
    path = Path(image_file)
    name = path.name
    try:
        real = path.resolve(strict=True)
        root = Path(images_folder).resolve(strict=True)
    except (OSError, RuntimeError):  # missing, or a link loop
        raise ImageRefused(f"the image file images/{name} is missing") from None
    if not real.is_relative_to(root):
        log.warning("refused images/%s: it links outside the gallery's images folder", name)
        raise ImageRefused(f"the image file images/{name} links outside the gallery's images folder; refused")
    if not real.is_file():
        raise ImageRefused(f"the image file images/{name} is not a file")
    return real


@lru_cache(maxsize=4096)
def _decoded(path: str, mtime_ns: int, size: int, thumbnail: bool) -> tuple[bytes, str]:
    """(bytes, content type) of a decoded image; a large one is shrunk to a thumbnail when asked. Keyed by file."""
    data = Path(path).read_bytes()
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()  # structure and checksums
        with Image.open(io.BytesIO(data)) as image:
            image.load()  # every pixel decodes (a truncated file fails here)
            media_type = _TYPES.get(image.format or "")
            if media_type is None:
                raise ValueError(f"{image.format} is not an image format the gallery serves")
            if not thumbnail or max(image.size) <= THUMBNAIL_PIXELS:
                return data, media_type
            image.thumbnail((THUMBNAIL_PIXELS, THUMBNAIL_PIXELS))
            buffer = io.BytesIO()
            image.convert("RGB").save(buffer, format="JPEG", quality=85)
            return buffer.getvalue(), "image/jpeg"
    except Exception as error:  # Pillow raises many types for bad files (and a bomb error): all mean "not an image"
        raise ImageRefused(f"the image file images/{Path(path).name} is not a readable image ({type(error).__name__})") from None


def image_bytes(image_file: str, images_folder: Path, thumbnail: bool) -> tuple[bytes, str]:
    """The bytes and content type to send for an artwork's image file; raises ImageRefused."""
    real = resolve_image(image_file, images_folder)
    try:
        stat = real.stat()
    except OSError:
        raise ImageRefused(f"the image file images/{Path(image_file).name} is missing") from None
    return _decoded(str(real), stat.st_mtime_ns, stat.st_size, thumbnail)
