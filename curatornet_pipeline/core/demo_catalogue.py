"""The demo gallery's shop details: seeded, plausible titles, artist names, media, sizes and prices.

Written as ``artwork_details.csv`` beside the UGallery files (see ``core/catalogue.py``). The draws come
from their own seed stream (the gallery's seed mixed with a fixed tag), so adding or changing them never
moves a single byte of the files the pipeline reads: the same seed still gives the same inventory,
purchases and images. Photographs are sold as editioned prints, cheaper than the one-of-a-kind paintings.
"""

from __future__ import annotations

import csv
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from curatornet_pipeline.core.catalogue import DETAIL_COLUMNS, DETAILS_FILE

_STREAM_TAG = 0x5709E  # mixed with the gallery seed: a stream no other draw of the generator uses
_FIRST = (
    "Ada", "Bruno", "Carmen", "Dmitri", "Elena", "Farah", "Gustavo", "Hana", "Ivan", "Julia", "Kenji", "Lucia",
    "Mateo", "Nadia", "Oskar", "Paula", "Quentin", "Rosa", "Samir", "Tomas", "Ursula", "Valentina", "Wen", "Yara",
)
_LAST = (
    "Alvarez", "Berg", "Castro", "Dubois", "Eriksen", "Fontaine", "Garcia", "Hoffmann", "Ibarra", "Jensen",
    "Kowalski", "Lindqvist", "Moreau", "Novak", "Okafor", "Petrov", "Quiroga", "Rossi", "Sato", "Tanaka",
    "Urrutia", "Vargas", "Weber", "Zamora",
)
_ADJECTIVES = (
    "Quiet", "Blue", "Golden", "Distant", "Broken", "Late", "Small", "Bright", "Silent", "Northern", "Hidden",
    "Red", "Slow", "Open", "Pale", "Wild", "Falling", "Green", "Low", "Still",
)
_NOUNS = (
    "Harbour", "Garden", "Horizon", "Study", "Rhythm", "Field", "Window", "Tide", "Orchard", "Signal", "River",
    "Morning", "Echo", "Meadow", "Shore", "Room", "Season", "Passage", "Light", "Interior",
)
_PAINTING_MEDIA = (
    "Oil on canvas", "Acrylic on canvas", "Watercolour on paper", "Gouache on paper", "Mixed media on panel",
    "Oil on linen",
)
_PRINT_MEDIA = ("Archival pigment print", "C-type photographic print", "Giclée print on cotton rag")


def demo_details(
    seed: int, artwork_ids: list[str], artist_of: np.ndarray, is_photo: np.ndarray, upload_epoch: np.ndarray
) -> list[dict]:
    """One row of ``DETAIL_COLUMNS`` (plus ``item_id``) per artwork, deterministic in ``seed``."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, _STREAM_TAG]))
    n_artists = int(artist_of.max()) + 1 if len(artist_of) else 0
    names = [f"{_FIRST[rng.integers(len(_FIRST))]} {_LAST[rng.integers(len(_LAST))]}" for _ in range(n_artists)]
    rows = []
    for i, artwork_id in enumerate(artwork_ids):
        photo = bool(is_photo[i])
        uploaded = datetime.fromtimestamp(int(upload_epoch[i]), tz=timezone.utc).year
        if photo:
            width, height = (int(v) for v in rng.choice([30, 40, 50, 60], 2))
            price = float(np.round(rng.lognormal(np.log(220), 0.35), -1))
            medium = _PRINT_MEDIA[rng.integers(len(_PRINT_MEDIA))] + ", edition of 25"
        else:
            width, height = (int(v) for v in np.round(rng.uniform(30, 120, 2), -1))
            price = float(np.round(rng.lognormal(np.log(1400), 0.5), -1))
            medium = _PAINTING_MEDIA[rng.integers(len(_PAINTING_MEDIA))]
        rows.append(
            {
                "item_id": artwork_id,
                "title": f"{_ADJECTIVES[rng.integers(len(_ADJECTIVES))]} {_NOUNS[rng.integers(len(_NOUNS))]}",
                "artist_name": names[int(artist_of[i])],
                "year": uploaded - int(rng.integers(0, 3)),
                "medium": medium,
                "size": f"{width} x {height} cm",
                "price": f"{price:.0f}",
                "currency": "USD",
                "shop_url": "",
            }
        )
    return rows


def write_details(folder: Path, rows: list[dict]) -> None:
    with (Path(folder) / DETAILS_FILE).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["item_id", *DETAIL_COLUMNS], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
