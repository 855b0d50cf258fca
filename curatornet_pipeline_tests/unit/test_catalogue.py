"""Shop details of artworks: optional items.csv columns, the UGallery sidecar, the demo's seeded details."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from curatornet_pipeline.core.catalogue import DETAILS_FILE, DISPLAY_FOLDER, display_title, read_item_details
from curatornet_pipeline.core.demo_gallery import (
    DISPLAY_PIXELS,
    DemoGalleryConfig,
    add_storefront_files,
    generate_demo_gallery,
)
from curatornet_pipeline.core.errors import InputDataError
from curatornet_pipeline.core.ingest import read_source

# SHA-256 over (relative name, bytes) of every file the tiny demo gallery (seed 7) wrote before it had shop
# details: the pipeline's inputs must not move when the storefront's files are added.
PIPELINE_FILES_SHA256 = "cfaf1a261b9d571b85565cc13e51a3d6b08e39fb6d4095debf5a003ff8187ed7"


def _generic(folder: Path, items: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "items.csv").write_text(items)
    (folder / "interactions.csv").write_text("user_id,item_id,timestamp\nu1,a1,1\nu2,a2,2\n")
    return folder


def test_generic_items_csv_carries_optional_details(tmp_path):
    folder = _generic(
        tmp_path / "g",
        "item_id,artist_id,title,artist_name,year,medium,size,price,currency,shop_url\n"
        "a1,x,Harbour,Ana Berg,2015,Oil on canvas,40 x 50 cm,1200,EUR,https://shop.example/a1\n"
        "a2,y,,,,,,,,\n",
    )
    artworks, _ = read_source(folder)
    details = read_item_details(folder, artworks["artwork_id"].tolist()).set_index("artwork_id")
    assert details.at["a1", "title"] == "Harbour" and details.at["a1", "artist_name"] == "Ana Berg"
    assert details.at["a1", "year"] == 2015 and details.at["a1", "price"] == 1200.0
    assert details.at["a1", "currency"] == "EUR" and details.at["a1", "shop_url"] == "https://shop.example/a1"
    assert details.at["a2", "title"] is None and np.isnan(details.at["a2", "price"])
    assert display_title(details.at["a2", "title"], "a2") == "Untitled (a2)"


def test_items_csv_without_details_gives_untitled_artworks(tmp_path):
    folder = _generic(tmp_path / "g", "item_id,artist_id\na1,x\na2,y\n")
    details = read_item_details(folder, ["a1", "a2"])
    assert details["title"].isna().all() and details["price"].isna().all()
    assert display_title(None, "0123456789abcdef") == "Untitled (01234567)"


@pytest.mark.parametrize(
    ("row", "column", "reason"),
    [
        ("a1,x,nineteen,", "year", "is not a year"),
        ("a1,x,2015,-5", "price", "at least 0"),
        ("a1,x,2015,abc", "price", "is not a number"),
    ],
)
def test_bad_detail_cells_name_file_row_and_column(tmp_path, row, column, reason):
    folder = _generic(tmp_path / "g", f"item_id,artist_id,year,price\n{row}\na2,y,,\n")
    with pytest.raises(InputDataError, match=reason) as caught:
        read_item_details(folder, ["a1", "a2"])
    assert caught.value.row == 1 and caught.value.column == column and "items.csv" in str(caught.value)


def test_currency_and_url_are_checked(tmp_path):
    folder = _generic(tmp_path / "g", "item_id,artist_id,price,currency,shop_url\na1,x,10,,\na2,y,,,\n")
    with pytest.raises(InputDataError, match="has a price"):
        read_item_details(folder, ["a1", "a2"])
    folder = _generic(tmp_path / "h", "item_id,artist_id,shop_url\na1,x,javascript:alert(1)\na2,y,\n")
    with pytest.raises(InputDataError, match="not an http"):
        read_item_details(folder, ["a1", "a2"])


def test_demo_gallery_adds_details_and_display_images_without_moving_pipeline_files(tmp_path):
    folder = tmp_path / "demo"
    generate_demo_gallery(folder, DemoGalleryConfig.tiny())
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        name = str(path.relative_to(folder))
        if path.is_file() and name != DETAILS_FILE and not name.startswith(DISPLAY_FOLDER):
            digest.update(name.encode())
            digest.update(path.read_bytes())
    assert digest.hexdigest() == PIPELINE_FILES_SHA256

    artworks, transactions = read_source(folder)
    details = read_item_details(folder, artworks["artwork_id"].tolist())
    assert details["title"].notna().all() and details["artist_name"].notna().all()
    assert (details["currency"] == "USD").all() and (details["price"] > 0).all()
    # One artist, one name; one-of-a-kind paintings are dearer than editioned prints.
    names = pd.DataFrame({"artist": artworks["artist_id"], "name": details["artist_name"]}).drop_duplicates()
    assert names["artist"].is_unique
    prints = details["medium"].str.contains("edition")
    assert details.loc[~prints, "price"].median() > 2 * details.loc[prints, "price"].median()
    for artwork_id in artworks["artwork_id"].head(3):
        with Image.open(folder / DISPLAY_FOLDER / f"{artwork_id}.jpg") as image:
            assert image.size == (DISPLAY_PIXELS, DISPLAY_PIXELS) and image.format == "JPEG"


def test_ugallery_files_without_a_details_file_give_untitled_works(tmp_path):
    folder = tmp_path / "demo"
    generate_demo_gallery(folder, DemoGalleryConfig.tiny())
    (folder / DETAILS_FILE).unlink()  # the paper's UGallery files have no shop details
    artworks, _ = read_source(folder)
    details = read_item_details(folder, artworks["artwork_id"].tolist())
    assert details["title"].isna().all() and details["artist_name"].isna().all() and details["price"].isna().all()
    first = artworks["artwork_id"].iloc[0]
    assert display_title(details["title"].iloc[0], first) == f"Untitled ({first[:8]})"


def test_storefront_files_added_to_an_older_demo_gallery_match_a_fresh_one(tmp_path):
    fresh = tmp_path / "fresh"
    generate_demo_gallery(fresh, DemoGalleryConfig.tiny())
    older = tmp_path / "older"
    generate_demo_gallery(older, DemoGalleryConfig.tiny())
    shutil.rmtree(older / DISPLAY_FOLDER)  # as a gallery generated before the storefront existed
    (older / DETAILS_FILE).unlink()
    add_storefront_files(older, DemoGalleryConfig.tiny())
    assert _files(older) == _files(fresh)


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
