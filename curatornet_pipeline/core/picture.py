"""Contact sheets of artwork thumbnails: a user's history, held-out basket and recommendations."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from curatornet_pipeline.core.embeddings import load_rgb_image

HIT_COLOUR = (30, 160, 60)
MISS_COLOUR = (200, 200, 200)
BACKGROUND = (255, 255, 255)
TEXT = (20, 20, 20)


@dataclass
class PictureRow:
    """One labelled row of thumbnails; ``hits`` (when given) marks each image green (hit) or grey (miss)."""

    label: str
    images: Sequence[Path]
    hits: Sequence[bool] | None = None


def _thumbnail(path: Path, size: int) -> Image.Image:
    image = load_rgb_image(path)  # the same decoding as the embeddings (16-bit grayscale is rescaled)
    image.thumbnail((size, size))
    tile = Image.new("RGB", (size, size), BACKGROUND)
    tile.paste(image, ((size - image.width) // 2, (size - image.height) // 2))
    return tile


def contact_sheet(title: str, rows: Sequence[PictureRow], thumb: int = 72, per_row: int = 10) -> Image.Image:
    """Rows of at most ``per_row`` thumbnails each (longer rows wrap), with a label above every row."""
    font = ImageFont.load_default()
    pad, border, label_height = 6, 3, 16
    cell = thumb + 2 * border + pad
    lines = []  # (label or None, images, hits)
    for row in rows:
        images = list(row.images)
        hits = list(row.hits) if row.hits is not None else [None] * len(images)
        chunks = range(0, max(len(images), 1), per_row)
        for n, start in enumerate(chunks):
            label = f"{row.label} ({len(images)})" if n == 0 else None
            lines.append((label, images[start : start + per_row], hits[start : start + per_row]))
    width = pad + per_row * cell
    height = pad + 20 + sum((label_height if label else 0) + cell for label, _, _ in lines)
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    draw.text((pad, pad), title, fill=TEXT, font=font)
    y = pad + 20
    for label, images, hits in lines:
        if label:
            draw.text((pad, y), label, fill=TEXT, font=font)
            y += label_height
        if not images:
            draw.text((pad, y + thumb // 2), "(none)", fill=TEXT, font=font)
        for i, (path, hit) in enumerate(zip(images, hits)):
            x = pad + i * cell
            if hit is not None:
                draw.rectangle(
                    [x, y, x + thumb + 2 * border - 1, y + thumb + 2 * border - 1],
                    fill=HIT_COLOUR if hit else MISS_COLOUR,
                )
            sheet.paste(_thumbnail(Path(path), thumb), (x + border, y + border))
        y += cell
    return sheet
