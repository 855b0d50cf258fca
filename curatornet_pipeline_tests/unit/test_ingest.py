"""Reading UGallery and generic sources into the normalized artworks / transactions frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from curatornet_pipeline.core.errors import InputDataError
from curatornet_pipeline.core.split import last_basket_split
from curatornet_pipeline.core.ingest import (
    detect_source_format,
    find_image_files,
    read_generic,
    read_source,
    read_ugallery,
)

INVENTORY = """artwork_id_hash,artist_id_hash,upload_timestamp
c3,art1,1400000000
a1,art2,1400000100
b2,art1,1400000200
"""
PURCHASES = """user_id_hash,purchase_timestamp,purchased_artwork_ids_hash
u1,1410000000,"['a1', 'c3']"
u2,1410000500,"['b2']"
u1,1420000000,"['b2']"
"""


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def ugallery(tmp_path: Path, inventory: str = INVENTORY, purchases: str = PURCHASES) -> Path:
    write(tmp_path, "inventory.csv", inventory)
    write(tmp_path, "purchases.csv", purchases)
    return tmp_path


def generic(tmp_path: Path, items: str, interactions: str) -> Path:
    write(tmp_path, "items.csv", items)
    write(tmp_path, "interactions.csv", interactions)
    return tmp_path


def test_ugallery_round_trip(tmp_path):
    artworks, tx = read_ugallery(ugallery(tmp_path))
    assert artworks["artwork_id"].tolist() == ["a1", "b2", "c3"]
    assert artworks["artwork_idx"].tolist() == [0, 1, 2]
    assert artworks["artist_id"].tolist() == ["art2", "art1", "art1"]
    assert artworks["source_row"].tolist() == [2, 3, 1]
    assert artworks["upload_timestamp"].dtype == "datetime64[ns]"
    assert artworks.loc[2, "upload_timestamp"] == pd.Timestamp(1400000000, unit="s")

    assert tx.columns.tolist() == ["user_id", "basket_id", "purchase_timestamp", "artwork_id", "artwork_idx", "source_row"]
    assert tx["purchase_timestamp"].dtype == "datetime64[ns]"
    assert tx["basket_id"].dtype == np.int64 and tx["artwork_idx"].dtype == np.int64
    # Baskets are numbered in (user, timestamp) order, as for the generic format.
    assert tx["user_id"].tolist() == ["u1", "u1", "u1", "u2"]
    assert tx["basket_id"].tolist() == [0, 0, 1, 2]
    assert tx["artwork_id"].tolist() == ["a1", "c3", "b2", "b2"]
    assert tx["artwork_idx"].tolist() == [0, 2, 1, 1]
    assert tx["source_row"].tolist() == [1, 1, 3, 2]
    assert tx.loc[2, "purchase_timestamp"] == pd.Timestamp(1420000000, unit="s")


def test_ugallery_rows_of_one_user_at_one_time_are_one_basket_held_out_together(tmp_path):
    """u1's last session is two purchases rows with the same timestamp: one basket, both items held out."""
    purchases = """user_id_hash,purchase_timestamp,purchased_artwork_ids_hash
u1,1410000000,"['a1']"
u1,1420000000,"['b2']"
u2,1420000000,"['a1']"
u1,1420000000,"['c3']"
"""
    _, tx = read_ugallery(ugallery(tmp_path, purchases=purchases))
    u1 = tx[tx["user_id"] == "u1"]
    assert u1.groupby("purchase_timestamp")["basket_id"].nunique().eq(1).all()
    assert u1["basket_id"].nunique() == 2
    assert tx.loc[tx["user_id"] == "u2", "basket_id"].nunique() == 1  # same time, other user: its own basket
    assert tx.groupby("basket_id")["user_id"].nunique().eq(1).all()
    split = last_basket_split(tx).set_index(["user_id", "artwork_id"])["split"]
    assert split[("u1", "b2")] == "test" and split[("u1", "c3")] == "test"
    assert split[("u1", "a1")] == "train" and split[("u2", "a1")] == "train"
    # The generic reader groups the same purchases the same way.
    generic_tx = read_generic(
        generic(
            tmp_path / "generic",
            "item_id,artist_id\na1,art2\nb2,art1\nc3,art1\n",
            "user_id,item_id,timestamp\nu1,a1,1410000000\nu1,b2,1420000000\nu2,a1,1420000000\nu1,c3,1420000000\n",
        )
    )[1]
    assert generic_tx["basket_id"].tolist() == tx["basket_id"].tolist()


def test_generic_round_trip_groups_baskets_by_user_and_timestamp(tmp_path):
    folder = generic(
        tmp_path,
        "item_id,artist_id,upload_timestamp\ni1,A,2015-01-01\ni2,B,\ni3,A,2015-02-01T10:00:00Z\n",
        "user_id,item_id,timestamp\n"
        "zed,i1,2016-05-01T12:00:00Z\n"
        "amy,i2,2016-06-01\n"
        "zed,i3,2016-05-01T12:00:00Z\n"  # same user and instant as row 1: same basket
        "amy,i1,2016-04-01\n"
        "zed,i2,2016-07-01\n",
    )
    artworks, tx = read_generic(folder)
    assert artworks["artwork_id"].tolist() == ["i1", "i2", "i3"]
    assert pd.isna(artworks.loc[1, "upload_timestamp"])
    assert artworks.loc[2, "upload_timestamp"] == pd.Timestamp("2015-02-01 10:00:00")
    # Dense basket ids in (user_id, timestamp) order: amy/04-01, amy/06-01, zed/05-01, zed/07-01.
    assert tx["basket_id"].tolist() == [0, 1, 2, 2, 3]
    assert tx["source_row"].tolist() == [4, 2, 1, 3, 5]
    assert tx["artwork_idx"].tolist() == [0, 1, 0, 2, 1]
    assert tx.groupby("basket_id")["user_id"].nunique().eq(1).all()


def test_generic_items_without_upload_column_get_nat(tmp_path):
    folder = generic(tmp_path, "item_id,artist_id\ni1,A\n", "user_id,item_id,timestamp,artist_id\nu,i1,5,A\n")
    artworks, tx = read_source(folder)
    assert artworks["upload_timestamp"].isna().all()
    assert artworks["upload_timestamp"].dtype == "datetime64[ns]"
    assert tx.loc[0, "purchase_timestamp"] == pd.Timestamp(5, unit="s")


def test_iso_and_epoch_timestamps_agree(tmp_path):
    epoch = ugallery(tmp_path / "epoch")
    iso = ugallery(
        tmp_path / "iso",
        INVENTORY.replace("1400000000", "2014-05-13T16:53:20Z")
        .replace("1400000100", "2014-05-13 16:55:00")
        .replace("1400000200", "2014-05-13T18:56:40+02:00"),
    )
    a_epoch, _ = read_ugallery(epoch)
    a_iso, _ = read_ugallery(iso)
    pd.testing.assert_series_equal(a_epoch["upload_timestamp"], a_iso["upload_timestamp"])


def test_fractional_epoch_seconds(tmp_path):
    folder = ugallery(tmp_path, purchases=PURCHASES.replace("1410000500", "1410000500.5"))
    _, tx = read_ugallery(folder)
    assert tx.loc[tx["user_id"] == "u2", "purchase_timestamp"].item() == pd.Timestamp("2014-09-06 10:48:20.500")


def test_detect_source_format(tmp_path):
    assert detect_source_format(ugallery(tmp_path / "u")) == "ugallery"
    assert detect_source_format(generic(tmp_path / "g", "item_id,artist_id\ni,a\n", "user_id,item_id,timestamp\nu,i,1\n")) == "generic"
    (tmp_path / "none").mkdir()
    write(tmp_path / "none", "purchases.csv", PURCHASES)
    with pytest.raises(InputDataError) as err:
        detect_source_format(tmp_path / "none")
    message = str(err.value)
    assert "none" in message and "inventory.csv" in message and "interactions.csv" in message and "items.csv" in message


def error_of(func, folder: Path) -> InputDataError:
    with pytest.raises(InputDataError) as err:
        func(folder)
    return err.value


def test_missing_column_is_named_with_columns_found(tmp_path):
    folder = ugallery(tmp_path, inventory="artwork_id_hash,artist,upload_timestamp\na1,x,1\n")
    err = error_of(read_ugallery, folder)
    assert err.file.endswith("inventory.csv")
    assert err.column == "artist_id_hash"
    assert "artist_id_hash" in str(err) and "'artist'" in str(err)


def test_header_only_purchases_is_an_error(tmp_path):
    folder = ugallery(tmp_path, purchases="user_id_hash,purchase_timestamp,purchased_artwork_ids_hash\n")
    err = error_of(read_ugallery, folder)
    assert err.file.endswith("purchases.csv") and "no data rows" in str(err)


def test_zero_byte_interactions_is_an_error(tmp_path):
    folder = generic(tmp_path, "item_id,artist_id\ni1,A\n", "")
    err = error_of(read_generic, folder)
    assert err.file.endswith("interactions.csv") and "empty" in str(err)


@pytest.mark.parametrize(
    "basket",
    [
        "['a1', 'b2'",  # unbalanced
        "a1",  # bare name, not a literal
        "[]",  # empty list
        "'a1'",  # a string, not a list
        "[1, 2]",  # not strings
        "['a1', '']",  # empty id
        "__import__('os').getcwd()",  # must never be evaluated
    ],
)
def test_malformed_basket_reports_row_and_text(tmp_path, basket):
    purchases = PURCHASES.replace("\"['b2']\"\nu1", f'"{basket}"\nu1')
    err = error_of(read_ugallery, ugallery(tmp_path, purchases=purchases))
    assert err.file.endswith("purchases.csv")
    assert err.row == 2 and err.column == "purchased_artwork_ids_hash"
    assert "row 2 (line 3)" in str(err)
    assert repr(basket) in str(err)


def test_unknown_artwork_in_purchase(tmp_path):
    err = error_of(read_ugallery, ugallery(tmp_path, purchases=PURCHASES.replace("'c3'", "'zz9'")))
    assert err.row == 1 and "'zz9'" in str(err) and "inventory.csv" in str(err)


def test_unknown_item_in_generic_interactions(tmp_path):
    folder = generic(tmp_path, "item_id,artist_id\ni1,A\n", "user_id,item_id,timestamp\nu,i1,1\nu,i9,2\n")
    err = error_of(read_generic, folder)
    assert err.file.endswith("interactions.csv") and err.row == 2 and err.column == "item_id" and "'i9'" in str(err)


def test_duplicate_artwork_ids_name_both_rows(tmp_path):
    inventory = INVENTORY + "a1,art3,1400000300\n"
    err = error_of(read_ugallery, ugallery(tmp_path, inventory=inventory))
    assert err.file.endswith("inventory.csv")
    assert "'a1'" in str(err) and "row 2 (line 3)" in str(err) and "row 4 (line 5)" in str(err)


def test_empty_id_is_an_error(tmp_path):
    err = error_of(read_ugallery, ugallery(tmp_path, inventory=INVENTORY.replace("b2,art1", "b2,")))
    assert err.row == 3 and err.column == "artist_id_hash" and "empty" in str(err)
    err = error_of(read_ugallery, ugallery(tmp_path, purchases=PURCHASES.replace("u2,", ",")))
    assert err.row == 2 and err.column == "user_id_hash"


def test_unparsable_timestamp(tmp_path):
    err = error_of(read_ugallery, ugallery(tmp_path, purchases=PURCHASES.replace("1410000500", "yesterday")))
    assert err.row == 2 and err.column == "purchase_timestamp" and "'yesterday'" in str(err)


def test_mixed_timestamp_forms_in_one_column(tmp_path):
    err = error_of(read_ugallery, ugallery(tmp_path, inventory=INVENTORY.replace("1400000200", "2014-05-13")))
    assert err.row == 3 and err.column == "upload_timestamp" and "mixes" in str(err)


def test_missing_upload_timestamp_value_in_ugallery_is_an_error(tmp_path):
    err = error_of(read_ugallery, ugallery(tmp_path, inventory=INVENTORY.replace("1400000100", "")))
    assert err.row == 2 and err.column == "upload_timestamp"


def test_row_with_wrong_field_count(tmp_path):
    err = error_of(read_ugallery, ugallery(tmp_path, inventory=INVENTORY + "d4,art1,1400000300,extra\n"))
    assert err.row == 4 and "expected 3 fields" in str(err) and "found 4" in str(err)


def test_conflicting_artist_in_generic_interactions(tmp_path):
    folder = generic(tmp_path, "item_id,artist_id\ni1,A\n", "user_id,item_id,timestamp,artist_id\nu,i1,1,B\n")
    err = error_of(read_generic, folder)
    assert err.row == 1 and err.column == "artist_id" and "'B'" in str(err)


def test_every_input_item_becomes_a_row(tmp_path):
    _, tx = read_ugallery(ugallery(tmp_path))
    assert len(tx) == 4  # 2 + 1 + 1 items in three baskets


def images_folder(tmp_path: Path, names: list[str]) -> Path:
    (tmp_path / "images").mkdir(parents=True)
    for name in names:
        (tmp_path / "images" / name).write_bytes(b"x")
    return tmp_path


def test_find_image_files(tmp_path):
    folder = images_folder(tmp_path, ["a1.png", "b2.JPG", "c3.webp", "zz.png", "notes.txt"])
    found = find_image_files(folder, ["a1", "b2", "c3"])
    assert {k: v.name for k, v in found.items()} == {"a1": "a1.png", "b2": "b2.JPG", "c3": "c3.webp"}


def test_missing_images_are_listed_with_count(tmp_path):
    folder = images_folder(tmp_path, ["a1.png"])
    with pytest.raises(InputDataError) as err:
        find_image_files(folder, ["a1", "b2", "c3"])
    assert "2 of 3" in str(err.value) and "'b2'" in str(err.value) and "'c3'" in str(err.value)


def test_two_images_for_one_artwork_is_an_error(tmp_path):
    folder = images_folder(tmp_path, ["a1.png", "a1.jpg"])
    with pytest.raises(InputDataError) as err:
        find_image_files(folder, ["a1"])
    assert "a1.jpg" in str(err.value) and "a1.png" in str(err.value)
