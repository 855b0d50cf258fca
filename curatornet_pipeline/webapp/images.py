"""Artwork images as the app serves them: only files inside the gallery's images folder, only decodable images.

The catalogue names each artwork's image file; the request only names the artwork. A file that is a link
resolving outside ``<gallery>/images`` is refused (whatever it points at is not the gallery's to show), and
the bytes are sent only after Pillow decoded them, with the content type of the format it found, so a text
file named ``.png`` is never served as an image. A missing or undecodable file is "no image" (404).
"""

from __future__ import annotations

import io
import logging
import os
import threading
from collections import OrderedDict
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
    name = f"{Path(images_folder).name}/{path.name}"  # images/<id>.png or display/<id>.jpg: never the full path
    try:
        real = path.resolve(strict=True)
        root = Path(images_folder).resolve(strict=True)
    except (OSError, RuntimeError):  # missing, or a link loop
        raise ImageRefused(f"the image file {name} is missing") from None
    folder = Path(images_folder).name
    if not real.is_relative_to(root):
        log.warning("refused %s: it links outside the gallery's %s folder", name, folder)
        raise ImageRefused(f"the image file {name} links outside the gallery's {folder} folder; refused")
    if not real.is_file():
        raise ImageRefused(f"the image file {name} is not a file")
    return real


def _decode(data: bytes, name: str, thumbnail: bool) -> tuple[bytes | None, str]:
    """(thumbnail bytes or None to send ``data`` itself, content type) of an image that decodes in full."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()  # structure and checksums
        with Image.open(io.BytesIO(data)) as image:
            image.load()  # every pixel decodes (a truncated file fails here)
            media_type = _TYPES.get(image.format or "")
            if media_type is None:
                raise ValueError(f"{image.format} is not an image format the gallery serves")
            if not thumbnail or max(image.size) <= THUMBNAIL_PIXELS:
                return None, media_type
            image.thumbnail((THUMBNAIL_PIXELS, THUMBNAIL_PIXELS))
            buffer = io.BytesIO()
            image.convert("RGB").save(buffer, format="JPEG", quality=85)
            return buffer.getvalue(), "image/jpeg"
    except Exception as error:  # Pillow raises many types for bad files (and a bomb error): all mean "not an image"
        raise ImageRefused(f"the image file {name} is not a readable image ({type(error).__name__})") from None


class _Verdicts:
    """Decoded files by (path, mtime, size, thumbnail): a full image keeps only its content type, a thumbnail its
    bytes, so memory stays small and each file is decoded once until it changes."""

    def __init__(self, size: int = 4096):
        self._size = size
        self._entries: OrderedDict[tuple, tuple[bytes | None, str]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple, data: bytes, name: str) -> tuple[bytes, str]:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
        if found is None:
            found = _decode(data, name, thumbnail=key[-1])
            with self._lock:
                self._entries[key] = found
                if len(self._entries) > self._size:
                    self._entries.popitem(last=False)
        body, media_type = found
        return (data if body is None else body), media_type


_verdicts = _Verdicts()


def image_bytes(image_file: str, images_folder: Path, thumbnail: bool) -> tuple[bytes, str]:
    """The bytes and content type to send for an artwork's image file; raises ImageRefused."""
    real = resolve_image(image_file, images_folder)
    name = f"{Path(images_folder).name}/{Path(image_file).name}"
    try:
        # No link followed at the last step (one swapped in after the check); the bytes sent are the bytes read.
        with os.fdopen(os.open(real, os.O_RDONLY | os.O_NOFOLLOW), "rb") as handle:
            stat = os.fstat(handle.fileno())
            data = handle.read()
    except OSError:
        raise ImageRefused(f"the image file {name} is missing") from None
    return _verdicts.get((str(real), stat.st_mtime_ns, stat.st_size, thumbnail), data, name)
