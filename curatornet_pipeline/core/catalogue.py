"""What a customer reads about an artwork: optional title, artist name, year, medium, size, price and shop URL.

The method needs none of this; the storefront shows it. A generic ``items.csv`` may carry any of the
``DETAIL_COLUMNS`` as optional columns. The UGallery files have none; a folder in that layout may hold an
optional ``artwork_details.csv`` (``item_id`` plus the same columns), which the demo gallery writes. An
artwork without details is shown as "Untitled" with a short id.

Cells are checked strictly, like the source files: a year that is not a whole number, a negative price, a
currency that is not a three-letter code or a shop URL that is not http(s) stops the read with the file, row
and column. Rows of ids outside the catalogue are an error too (nothing is dropped silently).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from curatornet_pipeline.core.errors import InputDataError
from curatornet_pipeline.core.ingest import _read_csv_table, detect_source_format

DETAILS_FILE = "artwork_details.csv"
DISPLAY_FOLDER = "display"  # optional larger images for the artwork page: display/<artwork_id>.jpg
TEXT_COLUMNS = ("title", "artist_name", "medium", "size", "currency", "shop_url")
DETAIL_COLUMNS = ("title", "artist_name", "year", "medium", "size", "price", "currency", "shop_url")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_YEAR = re.compile(r"^\d{1,4}$")
_SHORT_ID = 8


def empty_details(artwork_ids: list[str]) -> pd.DataFrame:
    """No details for any artwork: empty text, null year and price."""
    n = len(artwork_ids)
    frame = pd.DataFrame({"artwork_id": pd.Series(artwork_ids, dtype=object)})
    for column in TEXT_COLUMNS:
        frame[column] = pd.Series([None] * n, dtype=object)
    frame["year"] = pd.array([None] * n, dtype="Int64")
    frame["price"] = np.full(n, np.nan)
    return frame[["artwork_id", *DETAIL_COLUMNS]]


def read_item_details(folder: Path, artwork_ids: list[str]) -> pd.DataFrame:
    """``artwork_id`` and every detail column for ``artwork_ids`` (in that order); missing details are null."""
    folder = Path(folder)
    path = folder / ("items.csv" if detect_source_format(folder) == "generic" else DETAILS_FILE)
    details = empty_details(artwork_ids)
    if not path.is_file():
        return details
    table = _read_csv_table(path, ["item_id"], DETAIL_COLUMNS)
    frame = table.frame
    if not set(DETAIL_COLUMNS) & set(frame.columns):
        return details
    position = {a: i for i, a in enumerate(artwork_ids)}
    rows = np.array([position.get(a, -1) for a in frame["item_id"]], dtype=np.int64)
    unknown = np.flatnonzero(rows < 0)
    if len(unknown):
        i = int(unknown[0])
        raise InputDataError(
            path, f"{table.where(i)}: item_id {frame['item_id'].iloc[i]!r} is not in the catalogue",
            row=table.row(i), column="item_id",
        )

    def fail(i: int, column: str, reason: str) -> None:
        raise InputDataError(path, f"{table.where(i)}: {column} {frame[column].iloc[i]!r} {reason}",
                             row=table.row(i), column=column)

    for column in TEXT_COLUMNS:
        if column not in frame.columns:
            continue
        values = frame[column].to_numpy(dtype=object)
        for i, value in enumerate(values):
            if column == "currency" and value and not _CURRENCY.match(value):
                fail(i, column, "is not a three-letter currency code such as USD or EUR")
            if column == "shop_url" and value and not value.startswith(("https://", "http://")):
                fail(i, column, "is not an http(s) URL")
        details.loc[rows, column] = [v or None for v in values]
    if "year" in frame.columns:
        years = frame["year"].to_numpy(dtype=object)
        for i, value in enumerate(years):
            if value and not _YEAR.match(value):
                fail(i, "year", "is not a year (a whole number such as 2015)")
        details.loc[rows, "year"] = pd.array([int(v) if v else None for v in years], dtype="Int64")
    if "price" in frame.columns:
        prices = np.full(len(frame), np.nan)
        for i, value in enumerate(frame["price"].to_numpy(dtype=object)):
            if not value:
                continue
            try:
                prices[i] = float(value)
            except ValueError:
                fail(i, "price", "is not a number")
            if not np.isfinite(prices[i]) or prices[i] < 0:
                fail(i, "price", "must be a finite number of at least 0")
        details.loc[rows, "price"] = prices
    if "currency" in frame.columns:
        priced = ~np.isnan(details["price"].to_numpy(float))
        missing = np.flatnonzero(priced[rows] & (frame["currency"].to_numpy(dtype=object) == ""))
        if len(missing):
            fail(int(missing[0]), "currency", "is empty but the row has a price: say which currency")
    return details


def display_title(title: object, artwork_id: str) -> str:
    """The title a customer reads: the stated one, else "Untitled" and a short id to tell works apart."""
    if isinstance(title, str) and title.strip():
        return title
    return f"Untitled ({artwork_id[:_SHORT_ID]})"


def display_files(folder: Path, artwork_ids: list[str]) -> dict[str, str]:
    """Artwork id -> ``display/<id>.jpg`` of ``folder`` where that larger page image exists (ids without one left out).

    A file there that is a link leading out of the folder is left out too: the app serves only the gallery's files.
    """
    display = Path(folder) / DISPLAY_FOLDER
    if not display.is_dir():
        return {}
    root = display.resolve()
    found = {}
    for artwork_id in artwork_ids:
        path = display / f"{artwork_id}.jpg"
        if path.is_file() and path.resolve().is_relative_to(root):
            found[artwork_id] = str(path)
    return found
