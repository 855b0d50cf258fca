"""Input files a real gallery may hold: 16-bit grayscale PNGs, non-UTF-8 bytes, overlong CSV fields, ids that
are not file names. Each is a real file read through the real reader."""

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from curatornet_pipeline.core.embeddings import embed_images, load_rgb_image
from curatornet_pipeline.core.errors import InputDataError
from curatornet_pipeline.core.ingest import read_generic, read_ugallery


def _gradient16(path: Path) -> np.ndarray:
    """A real 16-bit grayscale PNG: a horizontal ramp over the full 0..65535 range."""
    ramp = np.linspace(0, 65535, 64).round().astype(np.uint16)
    pixels = np.tile(ramp, (32, 1))
    Image.fromarray(pixels).save(path)
    return pixels


def test_16bit_grayscale_png_is_rescaled_not_saturated(tmp_path):
    pixels = _gradient16(tmp_path / "gray16.png")
    with Image.open(tmp_path / "gray16.png") as raw:
        assert raw.mode == "I;16"  # what Pillow makes of a 16-bit grayscale PNG
        saturated = np.asarray(raw.convert("RGB"))
    assert (saturated == 255).mean() > 0.9  # the bug this guards against: convert("RGB") clips to white

    decoded = np.asarray(load_rgb_image(tmp_path / "gray16.png"))
    assert decoded.shape == (32, 64, 3) and decoded.dtype == np.uint8
    expected = np.rint(pixels * (255 / 65535)).astype(np.uint8)
    np.testing.assert_array_equal(decoded[..., 0], expected)
    assert decoded[:, 0].max() == 0 and decoded[:, -1].min() == 255
    assert abs(float(decoded.mean()) - 127.5) < 1.0  # a ramp averages mid-grey, not white


def test_16bit_png_embeds_like_its_8bit_equivalent(tmp_path):
    pixels = _gradient16(tmp_path / "gray16.png")
    Image.fromarray(np.rint(pixels * (255 / 65535)).astype(np.uint8)).save(tmp_path / "gray8.png")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 2048))
    features = embed_images([tmp_path / "gray16.png", tmp_path / "gray8.png"], model, image_size=32, batch_size=2)
    np.testing.assert_allclose(features[0], features[1], rtol=1e-5, atol=1e-5)


def test_float_image_is_refused_naming_the_file(tmp_path):
    Image.fromarray(np.ones((8, 8), dtype=np.float32)).save(tmp_path / "float.tif")
    with pytest.raises(InputDataError, match=r"float\.tif.*mode F"):
        load_rgb_image(tmp_path / "float.tif")


def _ugallery(folder: Path, purchases: bytes) -> Path:
    folder.mkdir()
    with open(folder / "inventory.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["artwork_id_hash", "artist_id_hash", "upload_timestamp"])
        for i in range(4):
            writer.writerow([f"a{i}", "artist", 1_400_000_000 + i])
    (folder / "purchases.csv").write_bytes(purchases)
    return folder


HEADER = b"user_id_hash,purchase_timestamp,purchased_artwork_ids_hash\n"


def test_non_utf8_byte_names_file_row_and_line(tmp_path):
    body = HEADER + b"u1,1500000000,\"['a0']\"\n" + b"Jos\xe9,1500000001,\"['a1']\"\n"
    folder = _ugallery(tmp_path / "src", body)
    with pytest.raises(InputDataError) as error:
        read_ugallery(folder)
    message = str(error.value)
    assert "purchases.csv" in message and "row 2 (line 3)" in message and "\\xe9" in message and "UTF-8" in message


def test_field_over_the_parser_limit_points_at_the_unclosed_quote(tmp_path):
    # An unclosed quote on data row 2 swallows every later line into one field, past csv's 131,072-char limit.
    rows = b"".join(b"u%d,1500000000,a0\n" % i for i in range(3, 20_000))
    body = HEADER + b"u1,1500000000,\"['a0']\"\n" + b"u2,1500000000,\"['a1']\n" + rows
    folder = _ugallery(tmp_path / "src", body)
    with pytest.raises(InputDataError) as error:
        read_ugallery(folder)
    message = str(error.value)
    assert "purchases.csv" in message and "row 2 (line 3)" in message
    assert "field limit" in message and "unclosed quote" in message


@pytest.mark.parametrize(
    ("artwork_id", "problem"),
    [("../../etc/passwd", "path separator"), ("..", "relative directory"), ("a\tb", "control character")],
)
def test_artwork_id_that_is_not_a_file_name_is_refused_with_its_row(tmp_path, artwork_id, problem):
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "items.csv").write_text(f"item_id,artist_id\nok,x\n\"{artwork_id}\",x\n")
    (folder / "interactions.csv").write_text("user_id,item_id,timestamp\nu,ok,1500000000\n")
    with pytest.raises(InputDataError) as error:
        read_generic(folder)
    message = str(error.value)
    assert "items.csv" in message and "row 2 (line 3)" in message and problem in message


# --- big purchase files: checked while streaming --------------------------------------------------------


def _write_big_ugallery(folder: Path, n_rows: int, bad_row: int | None) -> None:
    """A UGallery folder whose purchases.csv holds ``n_rows`` well-formed rows (a few MB)."""
    folder.mkdir()
    ids = [f"art{i:04d}" for i in range(200)]
    with open(folder / "inventory.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["artwork_id_hash", "artist_id_hash", "upload_timestamp"])
        writer.writerows([artwork, f"artist{i % 17}", 1_400_000_000 + i] for i, artwork in enumerate(ids))
    with open(folder / "purchases.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["user_id_hash", "purchase_timestamp", "purchased_artwork_ids_hash"])
        for row in range(1, n_rows + 1):
            artwork = "not_in_catalogue" if row == bad_row else ids[row % len(ids)]
            writer.writerow([f"user{row % 5000}", 1_500_000_000 + row, f"['{artwork}']"])
        # A broken row at the very end: a reader that takes in the whole file first reports this one.
        handle.write("a,row,with,too,many,fields\n")


# Chunks of 20,000 rows (instead of 100,000) keep the files a few MB while spanning several chunks.
SMALL_CHUNKS = 20_000


def test_a_big_purchases_file_fails_at_its_first_bad_row_without_reading_the_rest(tmp_path, monkeypatch):
    monkeypatch.setattr("curatornet_pipeline.core.ingest.CHUNK_ROWS", SMALL_CHUNKS)
    CHUNK_ROWS = SMALL_CHUNKS
    n_rows = 2 * CHUNK_ROWS + 10  # three chunks, the broken last row in the third; about 2 MB
    bad_row = CHUNK_ROWS + 1_234  # in the second chunk, so row numbers must count the rows before it
    _write_big_ugallery(tmp_path / "big", n_rows, bad_row)
    with pytest.raises(InputDataError) as raised:
        read_ugallery(tmp_path / "big")
    error = raised.value
    assert str(error) == (
        f"{tmp_path / 'big' / 'purchases.csv'}, row {bad_row}, column 'purchased_artwork_ids_hash': "
        f"row {bad_row} (line {bad_row + 1}): artwork id 'not_in_catalogue' is not in inventory.csv"
    )
    assert (error.row, error.column) == (bad_row, "purchased_artwork_ids_hash")


def test_a_big_purchases_file_reads_whole_across_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr("curatornet_pipeline.core.ingest.CHUNK_ROWS", SMALL_CHUNKS)
    n_rows = SMALL_CHUNKS + 5
    folder = tmp_path / "big"
    _write_big_ugallery(folder, n_rows, None)
    lines = (folder / "purchases.csv").read_text().splitlines()
    (folder / "purchases.csv").write_text("\n".join(lines[:-1]) + "\n")  # without the broken last row
    _, transactions = read_ugallery(folder)
    assert len(transactions) == n_rows
    assert sorted(transactions["source_row"].tolist()) == list(range(1, n_rows + 1))
    last = transactions.loc[transactions["source_row"] == n_rows].iloc[0]
    assert last["user_id"] == f"user{n_rows % 5000}" and last["artwork_id"] == f"art{n_rows % 200:04d}"
