"""ResNet50 feature extraction and the UGallery embeddings file."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from curatornet_pipeline.core.embeddings import (
    EMBEDDING_DIM,
    WeightsUnavailableError,
    build_resnet50_backbone,
    embed_images,
    image_transform,
    NPY_FORM,
    PICKLE_FORM,
    load_embeddings_npy,
    read_embeddings_file,
    validate_embedding_matrix,
)
from curatornet_pipeline.core.errors import InputDataError
from curatornet_pipeline_tests.support.npy import save_embeddings_npy


@pytest.fixture(scope="module")
def random_backbone() -> torch.nn.Module:
    return build_resnet50_backbone("random", seed=3)


@pytest.fixture
def images(tmp_path) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for i, (w, h) in enumerate([(40, 40), (64, 48), (30, 70)]):
        path = tmp_path / f"img{i}.png"
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    gray = tmp_path / "gray.jpg"
    Image.fromarray(rng.integers(0, 256, (50, 50), dtype=np.uint8), "L").save(gray)
    return paths + [gray]


def test_random_init_embeddings_are_deterministic(images, random_backbone):
    first = embed_images(images, random_backbone, image_size=64, batch_size=3)
    again = embed_images(images, build_resnet50_backbone("random", seed=3), image_size=64, batch_size=3)
    other_seed = embed_images(images, build_resnet50_backbone("random", seed=4), image_size=64, batch_size=3)
    assert first.shape == (len(images), EMBEDDING_DIM) and first.dtype == np.float32
    assert np.isfinite(first).all()
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other_seed)
    # Different images give different features (the backbone is not constant).
    assert not np.allclose(first[0], first[1])


def test_bf16_embeddings_match_fp32_and_the_plain_contiguous_forward(images, random_backbone):
    """Parity of the fast path: fp32 equals a plain forward pass; bf16 within cosine 0.99 of fp32, row by row."""
    fp32 = embed_images(images, random_backbone, image_size=64, batch_size=3, precision="fp32")
    bf16 = embed_images(images, random_backbone, image_size=64, batch_size=3, precision="bf16")
    transform = image_transform(64)
    plain = []
    for path in images:
        with Image.open(path) as image:
            batch = transform(image.convert("RGB")).unsqueeze(0).contiguous()
        with torch.inference_mode():
            plain.append(random_backbone.to(memory_format=torch.contiguous_format)(batch)[0].numpy())
    np.testing.assert_allclose(fp32, np.stack(plain), rtol=1e-4, atol=1e-4)
    cosine = (fp32 * bf16).sum(1) / np.linalg.norm(fp32, axis=1) / np.linalg.norm(bf16, axis=1)
    assert bf16.dtype == np.float32 and cosine.min() >= 0.99, cosine
    assert not np.array_equal(fp32, bf16)  # the switch really changes the arithmetic


def test_random_init_leaves_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_resnet50_backbone("random", seed=9)
    np.testing.assert_array_equal(torch.rand(3).numpy(), expected.numpy())


def test_progress_is_reported(images, random_backbone):
    calls = []
    embed_images(images, random_backbone, image_size=64, batch_size=3, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(3, 4), (4, 4)]


def test_image_transform_output_shape():
    tensor = image_transform(64)(Image.new("RGB", (100, 50), "red"))
    assert tuple(tensor.shape) == (3, 64, 64)


def test_undecodable_image_names_the_file(tmp_path, images, random_backbone):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    with pytest.raises(InputDataError) as err:
        embed_images([images[0], broken], random_backbone, image_size=64)
    assert err.value.file == str(broken)


def test_truncated_image_names_the_file(tmp_path, images, random_backbone):
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(images[1].read_bytes()[:200])
    with pytest.raises(InputDataError) as err:
        embed_images([truncated], random_backbone, image_size=64)
    assert "truncated.png" in str(err.value)


def test_imagenet_unavailable_explains_local_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))
    # No network in the test environment; where there is one, a blocked proxy makes sure of it.
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    with pytest.raises(WeightsUnavailableError) as err:
        build_resnet50_backbone("imagenet")
    message = str(err.value)
    assert "local" in message and ".pth" in message and "weights" in message


def test_local_weights_file(tmp_path, images, random_backbone):
    from torchvision.models import resnet50

    torch.manual_seed(5)
    reference = resnet50(weights=None)
    path = tmp_path / "resnet50.pth"
    torch.save(reference.state_dict(), path)
    loaded = build_resnet50_backbone(str(path))
    reference.fc = torch.nn.Identity()
    reference.eval()
    expected = embed_images(images[:2], reference, image_size=64)
    np.testing.assert_array_equal(embed_images(images[:2], loaded, image_size=64), expected)


def test_bad_local_weights_file_is_named(tmp_path):
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(InputDataError) as err:
        build_resnet50_backbone(str(garbage))
    assert err.value.file == str(garbage)
    wrong = tmp_path / "wrong.pth"
    torch.save({"layer.weight": torch.zeros(2)}, wrong)
    with pytest.raises(InputDataError) as err:
        build_resnet50_backbone(str(wrong))
    assert "missing keys" in str(err.value)


def test_unknown_weights_setting_is_not_silently_replaced(tmp_path):
    with pytest.raises(WeightsUnavailableError) as err:
        build_resnet50_backbone(str(tmp_path / "nowhere.pth"))
    assert "'random'" in str(err.value) and "'imagenet'" in str(err.value)


# ---------------------------------------------------------------- resnet_embeddings.npy


def vectors(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, EMBEDDING_DIM)).astype(np.float32)


def object_file(path: Path, rows: list[tuple[object, object]]) -> Path:
    array = np.empty((len(rows), 2), dtype=object)
    for i, (artwork_id, vec) in enumerate(rows):
        array[i, 0], array[i, 1] = artwork_id, vec
    np.save(path, array, allow_pickle=True)
    return path


def test_npy_round_trip_aligns_rows_with_catalogue_order(tmp_path):
    emb = vectors(3)
    path = tmp_path / "resnet_embeddings.npy"
    save_embeddings_npy(path, ["b", "a", "c"], emb)
    loaded = load_embeddings_npy(path, ["a", "b", "c"])
    assert loaded.dtype == np.float32
    np.testing.assert_array_equal(loaded, emb[[1, 0, 2]])


def test_npy_accepts_float64_lists(tmp_path):
    vec = vectors(1)[0]
    path = object_file(tmp_path / "e.npy", [("a", vec.astype(np.float64).tolist())])
    np.testing.assert_allclose(load_embeddings_npy(path, ["a"])[0], vec)


def load_error(path: Path, ids: list[str]) -> InputDataError:
    with pytest.raises(InputDataError) as err:
        load_embeddings_npy(path, ids)
    assert err.value.file == str(path)
    return err.value


def test_npy_nan_vector(tmp_path):
    bad = vectors(2)
    bad[1, 7] = np.nan
    err = load_error(object_file(tmp_path / "e.npy", [("a", bad[0]), ("b", bad[1])]), ["a", "b"])
    assert err.row == 1 and "NaN" in str(err)


def test_npy_wrong_vector_length(tmp_path):
    err = load_error(object_file(tmp_path / "e.npy", [("a", np.zeros(2047, np.float32))]), ["a"])
    assert err.row == 0 and "2047" in str(err)


def test_npy_missing_catalogue_id(tmp_path):
    err = load_error(object_file(tmp_path / "e.npy", [("a", vectors(1)[0])]), ["a", "b", "c"])
    assert "2 catalogue artworks" in str(err) and "'b'" in str(err)


def test_npy_duplicate_id(tmp_path):
    emb = vectors(2)
    err = load_error(object_file(tmp_path / "e.npy", [("a", emb[0]), ("a", emb[1])]), ["a"])
    assert err.row == 1 and "index 0" in str(err)


def test_rows_outside_the_catalogue_are_dropped_counted_and_named(tmp_path):
    emb = vectors(4)
    path = object_file(tmp_path / "e.npy", [("zz", emb[0]), ("a", emb[1]), ("yy", emb[2]), ("b", emb[3])])
    loaded = read_embeddings_file(path, ["b", "a"])
    np.testing.assert_array_equal(loaded.vectors, emb[[3, 1]])
    assert loaded.dropped_ids == ["yy", "zz"]
    assert loaded.form == NPY_FORM
    assert loaded.dropped_note() == (
        "2 embedding rows belong to artworks not in the catalogue and were dropped, e.g. ['yy', 'zz']"
    )
    assert read_embeddings_file(path, ["a", "b", "yy", "zz"]).dropped_note() is None


def test_a_bare_pickle_written_by_ndarray_dump_is_read_like_a_npy_file(tmp_path):
    emb = vectors(3)
    save_embeddings_npy(tmp_path / "saved.npy", ["a", "b", "c"], emb)
    save_embeddings_npy(tmp_path / "dumped.npy", ["a", "b", "c"], emb, form="dump")
    assert not (tmp_path / "dumped.npy").read_bytes().startswith(b"\x93NUMPY")
    dumped = read_embeddings_file(tmp_path / "dumped.npy", ["c", "a"])
    assert dumped.form == PICKLE_FORM
    np.testing.assert_array_equal(dumped.vectors, read_embeddings_file(tmp_path / "saved.npy", ["c", "a"]).vectors)


def test_a_bare_pickle_with_foreign_objects_runs_nothing(tmp_path, capsys):
    array = np.empty((1, 2), dtype=object)
    array[0, 0], array[0, 1] = "a", _Exploit()
    path = tmp_path / "evil.npy"
    path.write_bytes(pickle.dumps(array, protocol=2))
    assert "print: not part of a numpy array" in str(load_error(path, ["a"]))
    path.write_bytes(pickle.dumps({"a": [0.0] * EMBEDDING_DIM}, protocol=4))
    assert "dict" in str(load_error(path, ["a"]))
    assert "never run" not in capsys.readouterr().out


def test_npy_non_string_id(tmp_path):
    err = load_error(object_file(tmp_path / "e.npy", [(17, vectors(1)[0])]), ["17"])
    assert err.row == 0 and "string" in str(err)


def test_npy_wrong_shapes(tmp_path):
    three_columns = np.empty((2, 3), dtype=object)
    three_columns[:] = "x"
    np.save(tmp_path / "cols.npy", three_columns, allow_pickle=True)
    assert "(2, 3)" in str(load_error(tmp_path / "cols.npy", ["x"]))
    np.save(tmp_path / "numeric.npy", vectors(2))
    assert "object array" in str(load_error(tmp_path / "numeric.npy", ["a", "b"]))
    (tmp_path / "junk.npy").write_bytes(b"junk")
    load_error(tmp_path / "junk.npy", ["a"])


class _Exploit:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_npy_pickle_payload_with_foreign_objects_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.npy"
    object_file(path, [("a", vectors(1)[0])])
    header_end = path.read_bytes().index(b"\n") + 1
    array = np.empty((1, 2), dtype=object)
    array[0, 0], array[0, 1] = "a", _Exploit()
    path.write_bytes(path.read_bytes()[:header_end] + pickle.dumps(array, protocol=3))
    err = load_error(path, ["a"])
    assert "builtins.print" in str(err)
    assert "never run" not in capsys.readouterr().out


def test_validate_embedding_matrix():
    validate_embedding_matrix(vectors(2), "x")
    bad = vectors(3)
    bad[2, 0] = np.inf
    with pytest.raises(InputDataError) as err:
        validate_embedding_matrix(bad, "source.npy")
    assert err.value.row == 2 and err.value.file == "source.npy"
    with pytest.raises(InputDataError):
        validate_embedding_matrix(np.zeros((2, 100), np.float32), "x")
