"""Frozen ResNet50 image features (the 2048-d penultimate layer) and the UGallery embeddings file.

Three kinds of weights are supported and never substituted for one another:

* ``"random"`` — a seeded random initialisation. The demo gallery's images are abstract, so
  ImageNet semantics add little there, and a seeded init keeps the demo runnable offline.
* ``"imagenet"`` — torchvision's ``ResNet50_Weights.IMAGENET1K_V2``, fetched through torchvision's
  own download cache (``$TORCH_HOME/hub/checkpoints``).
* a path to a local ``state_dict`` file (``.pth``), loaded with ``torch.load(weights_only=True)``.

Preprocessing is the standard ImageNet one: resize the short side to ``image_size * 256 / 224``,
centre-crop ``image_size``, normalise with the ImageNet mean and std (224 gives resize 256 / crop 224).

``resnet_embeddings.npy`` (UGallery's published form) is a pickled numpy object array of shape
(N, 2): artwork id, 2048-float vector, written with ``numpy.save`` or as a bare pickle (``ndarray.dump()``).
Pickles can execute code when loaded, so this module reads either form with an unpickler that only admits
the numpy classes such an array needs, then validates it.
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torchvision import transforms
from torchvision.models import ResNet50_Weights, resnet50

from curatornet_pipeline.core.device import resolve_device
from curatornet_pipeline.core.errors import InputDataError
from curatornet_pipeline.core.precision import autocast, resolve_precision

EMBEDDING_DIM = 2048
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_MAX_LISTED = 5


class WeightsUnavailableError(RuntimeError):
    """The requested backbone weights cannot be obtained (no network, missing file, unknown name)."""


def _local_weights_help() -> str:
    return (
        "To use ImageNet weights offline: on a machine with internet access download "
        f"{ResNet50_Weights.IMAGENET1K_V2.url} (for example with "
        "`python -c \"import torchvision; torchvision.models.resnet50(weights='IMAGENET1K_V2')\"`, "
        "which stores it under ~/.cache/torch/hub/checkpoints/), copy the .pth file to this machine and pass "
        "its local path as the weights setting. Or choose weights='random' (seeded random init)."
    )


def build_resnet50_backbone(weights: str, seed: int = 0) -> torch.nn.Module:
    """Return a ResNet50 feature extractor (``fc`` replaced by identity, eval mode, 2048-d output).

    ``weights`` is ``"random"`` (seeded with ``seed``; the global torch RNG is left untouched),
    ``"imagenet"`` or a path to a local ``state_dict`` file. Raises :class:`WeightsUnavailableError`
    when the weights cannot be obtained and :class:`InputDataError` when a local file is unusable.
    """
    if weights == "random":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = resnet50(weights=None)
    elif weights == "imagenet":
        try:
            model = resnet50(weights=ResNet50_Weights.IMAGENET1K_V2)
        except Exception as exc:  # network, proxy, disk or hash failures all mean: not available
            raise WeightsUnavailableError(
                f"could not obtain torchvision ResNet50 ImageNet weights ({type(exc).__name__}: {exc}). "
                + _local_weights_help()
            ) from exc
    else:
        model = _resnet50_from_file(Path(weights))
    model.fc = torch.nn.Identity()
    return model.eval()


WEIGHTS_CHOICES = ("auto", "imagenet", "random")


def check_weights_setting(weights: str) -> str:
    """``weights`` when it is a named choice or an existing file, else one sentence saying what it must be."""
    if weights not in WEIGHTS_CHOICES and not Path(weights).is_file():
        raise WeightsUnavailableError(
            f"weights must be 'auto', 'imagenet', 'random' or the path of a local ResNet50 state_dict file; "
            f"{weights!r} is none of these (no such file)."
        )
    return weights


def _resnet50_from_file(path: Path) -> torch.nn.Module:
    check_weights_setting(str(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InputDataError(path, f"cannot load as a PyTorch state_dict ({type(exc).__name__}: {exc})") from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputDataError(
            path, "expected a state_dict (a mapping of parameter names to tensors) of torchvision's resnet50"
        )
    model = resnet50(weights=None)
    expected = set(model.state_dict())
    # A backbone saved with its classifier already removed lacks fc.*, which we drop anyway.
    missing = sorted(expected - set(state) - {"fc.weight", "fc.bias"})
    unexpected = sorted(set(state) - expected)
    if missing or unexpected:
        raise InputDataError(
            path,
            f"not a torchvision resnet50 state_dict: {len(missing)} missing keys {missing[:_MAX_LISTED]}, "
            f"{len(unexpected)} unexpected keys {unexpected[:_MAX_LISTED]}",
        )
    try:
        model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches
        raise InputDataError(path, f"parameter shapes do not match torchvision's resnet50: {exc}") from exc
    return model


def image_transform(image_size: int = 224) -> Callable[[Image.Image], torch.Tensor]:
    """ImageNet preprocessing scaled to ``image_size`` (resize ``image_size*256/224``, centre crop, normalise)."""
    return transforms.Compose(
        [
            transforms.Resize(round(image_size * 256 / 224)),
            transforms.CenterCrop(image_size),
            transforms.ToTensor(),
            transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


# Pillow's integer grayscale modes wider than 8 bits. convert("RGB") clips their samples at 255, which
# turns a 16-bit image (0..65535) almost entirely white, so they are rescaled to 8 bits first.
_WIDE_GRAY_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
_MAX_16BIT = 65535
UNSUPPORTED_IMAGE_MODES = {
    "F": "32-bit floating-point image (mode F) has no defined brightness range; save it as 8-bit or 16-bit",
}


def _wide_gray_to_rgb(image: Image.Image, path: Path) -> Image.Image:
    """A 16-bit grayscale image (or mode "I" holding 16-bit samples) as 8-bit RGB, scaled by 255/65535."""
    samples = np.asarray(image, dtype=np.int64)
    if samples.size and (samples.min() < 0 or samples.max() > _MAX_16BIT):
        raise InputDataError(
            path,
            f"{image.mode} image holds values in [{samples.min()}, {samples.max()}], outside the 16-bit range "
            "0..65535; save it as 8-bit or 16-bit RGB or grayscale",
        )
    eight_bit = np.rint(samples * (255 / _MAX_16BIT)).astype(np.uint8)
    return Image.fromarray(eight_bit, mode="L").convert("RGB")


def load_rgb_image(path: Path) -> Image.Image:
    """Decode ``path`` fully and return it as 8-bit RGB; 16-bit grayscale is rescaled, never clipped.

    Raises :class:`InputDataError` naming the file when it does not decode or its pixel format
    (e.g. 32-bit float) has no faithful 8-bit RGB form.
    """
    try:
        with Image.open(path) as image:
            image.load()  # decode now, so a truncated file fails here with its name
            if image.mode in _WIDE_GRAY_MODES:
                return _wide_gray_to_rgb(image, path)
            if image.mode in UNSUPPORTED_IMAGE_MODES:
                raise InputDataError(path, UNSUPPORTED_IMAGE_MODES[image.mode])
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        if isinstance(exc, InputDataError):
            raise
        raise InputDataError(path, f"image cannot be decoded ({type(exc).__name__}: {exc})") from exc


def _load_image(path: Path, transform: Callable[[Image.Image], torch.Tensor]) -> torch.Tensor:
    return transform(load_rgb_image(path))


def embed_images(
    paths: Sequence[Path],
    model: torch.nn.Module,
    image_size: int = 224,
    batch_size: int = 64,
    device: str = "cpu",
    progress: Callable[[int, int], None] | None = None,
    precision: str = "auto",
) -> np.ndarray:
    """Embed images in order; returns float32 (len(paths), 2048).

    ``progress(done, total)`` is called after every batch. An image that does not decode raises
    :class:`InputDataError` naming the file. The model is moved to ``device`` (in channels-last layout,
    which oneDNN and cuDNN convolve faster). ``precision`` (core.precision): 'auto' runs the forward pass
    under bf16 autocast where the hardware supports it natively, else fp32. While a batch goes through the
    network a worker thread decodes the next one (decoding and convolutions both release the GIL).
    """
    paths = list(paths)
    target = resolve_device(device)
    resolved = resolve_precision(precision, target)
    transform = image_transform(image_size)
    model = model.to(target).eval().to(memory_format=torch.channels_last)
    total = len(paths)
    out = np.empty((total, EMBEDDING_DIM), dtype=np.float32)

    def decode(start: int) -> torch.Tensor:
        return torch.stack([_load_image(Path(p), transform) for p in paths[start : start + batch_size]])

    starts = list(range(0, total, batch_size))
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="decode") as decoder, torch.inference_mode():
        upcoming = decoder.submit(decode, starts[0]) if starts else None
        for i, start in enumerate(starts):
            batch = upcoming.result()  # re-raises a decoding error, naming the file
            upcoming = decoder.submit(decode, starts[i + 1]) if i + 1 < len(starts) else None
            batch = batch.to(target).contiguous(memory_format=torch.channels_last)
            with autocast(resolved, target):
                features = model(batch).float().cpu().numpy()
            if features.shape[1:] != (EMBEDDING_DIM,):
                raise ValueError(f"model returned features of shape {features.shape[1:]}, expected ({EMBEDDING_DIM},)")
            out[start : start + len(batch)] = features
            if progress is not None:
                progress(min(start + batch_size, total), total)
    bad = np.flatnonzero(~np.isfinite(out).all(axis=1))
    if len(bad):
        raise RuntimeError(f"ResNet50 produced non-finite features for {len(bad)} images, e.g. {paths[int(bad[0])]}")
    return out


def validate_embedding_matrix(emb: np.ndarray, source: str) -> None:
    """Check that ``emb`` is a finite numeric (N, 2048) matrix; the error names ``source`` and the row."""
    if not isinstance(emb, np.ndarray) or emb.ndim != 2 or emb.shape[1] != EMBEDDING_DIM:
        shape = getattr(emb, "shape", None)
        raise InputDataError(source, f"embeddings must be a (N, {EMBEDDING_DIM}) array, got shape {shape}")
    if not np.issubdtype(emb.dtype, np.number):
        raise InputDataError(source, f"embeddings must be numeric, got dtype {emb.dtype}")
    bad = np.flatnonzero(~np.isfinite(emb).all(axis=1))
    if len(bad):
        raise InputDataError(
            source,
            f"embedding row {int(bad[0])} contains NaN or infinite values ({len(bad)} such rows)",
            row=int(bad[0]),
        )


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Admits only what a pickled numpy object array of strings and float vectors refers to."""

    _ALLOWED = {
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # how Python 2 era pickles store raw bytes
    }

    def find_class(self, module: str, name: str):  # noqa: ANN201 - pickle protocol
        # numpy 1.x wrote "numpy.core.*"; numpy 2 moved those to "numpy._core.*".
        canonical = "numpy._core" + module[len("numpy.core") :] if module.startswith("numpy.core") else module
        if (canonical, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: not part of a numpy array")
        return super().find_class(canonical, name)


NPY_FORM = ".npy (numpy.save)"
PICKLE_FORM = "bare pickle (ndarray.dump)"
_NPY_MAGIC = b"\x93NUMPY"
_PICKLE_PROTOCOL_OPCODE = b"\x80"  # every pickle of protocol 2 or later starts with PROTO


def _read_npy_object_array(path: Path) -> tuple[np.ndarray, str]:
    """Read a .npy file or a bare numpy pickle (what ``ndarray.dump()`` writes); return the array and its form.

    Object arrays of both forms go through the restricted unpickler instead of ``np.load``/``pickle.load``.
    """
    if not path.is_file():
        raise InputDataError(path, "file not found")
    try:
        with path.open("rb") as handle:
            start = handle.read(len(_NPY_MAGIC))
            handle.seek(0)
            if start.startswith(_PICKLE_PROTOCOL_OPCODE):
                # The authors' file may be a pickled ndarray without the .npy header; no shape to compare with.
                array = _NumpyOnlyUnpickler(handle, encoding="latin1").load()
                if not isinstance(array, np.ndarray):
                    raise InputDataError(path, f"the pickle holds a {type(array).__name__}, not a numpy array")
                return array, PICKLE_FORM
            if start != _NPY_MAGIC:
                raise InputDataError(
                    path, "neither a .npy file (numpy.save) nor a pickled numpy array (ndarray.dump)"
                )
            version = np.lib.format.read_magic(handle)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle)
            else:
                raise InputDataError(path, f"unsupported .npy format version {version}")
            if not dtype.hasobject:
                raise InputDataError(
                    path,
                    f"expected an object array of shape (N, 2) holding [artwork id, {EMBEDDING_DIM}-d vector], "
                    f"got dtype {dtype} shape {shape}",
                )
            array = _NumpyOnlyUnpickler(handle, encoding="latin1").load()
    except InputDataError:
        raise
    except (pickle.UnpicklingError, ValueError, EOFError, TypeError, AttributeError, ImportError, OSError) as exc:
        raise InputDataError(path, f"not a readable .npy embeddings file ({type(exc).__name__}: {exc})") from exc
    if not isinstance(array, np.ndarray) or array.shape != tuple(shape):
        raise InputDataError(path, f"array payload does not match its header shape {shape}")
    return array, NPY_FORM


@dataclass(frozen=True)
class EmbeddingsFile:
    """What ``read_embeddings_file`` found: catalogue-ordered vectors, the file's form, the rows it dropped."""

    vectors: np.ndarray  # float32 (len(artwork_ids), 2048)
    form: str  # NPY_FORM or PICKLE_FORM
    dropped_ids: list[str]  # ids with a vector but no catalogue row, sorted

    def dropped_note(self) -> str | None:
        """One sentence for the log and metadata, or None when no row was dropped."""
        if not self.dropped_ids:
            return None
        return (
            f"{len(self.dropped_ids)} embedding rows belong to artworks not in the catalogue and were dropped, "
            f"e.g. {self.dropped_ids[:_MAX_LISTED]}"
        )


def read_embeddings_file(path: Path, artwork_ids: Sequence[str]) -> EmbeddingsFile:
    """Load ``resnet_embeddings.npy`` (a .npy file or a bare pickle) with vectors in ``artwork_ids`` order.

    The file is untrusted: it must be an (N, 2) object array of [str id, 2048 finite floats]; every
    catalogue artwork needs exactly one row. Rows for artworks outside the catalogue are dropped and listed
    (the authors' published file has such rows, and their code ignores them). Errors name the file and the
    array index (0-based) of the offending entry.
    """
    path = Path(path)
    array, form = _read_npy_object_array(path)
    if array.ndim != 2 or array.shape[1] != 2:
        raise InputDataError(path, f"expected shape (N, 2) [artwork id, vector], got {array.shape}")
    n = array.shape[0]
    ids: list[str] = []
    vectors = np.empty((n, EMBEDDING_DIM), dtype=np.float32)
    first_index: dict[str, int] = {}
    for i in range(n):
        raw_id, raw_vec = array[i, 0], array[i, 1]
        if not isinstance(raw_id, str) or not raw_id:
            raise InputDataError(path, f"array index {i}: artwork id must be a non-empty string, got {raw_id!r}", row=i)
        artwork_id = str(raw_id)
        if artwork_id in first_index:
            raise InputDataError(
                path,
                f"array index {i}: artwork id {artwork_id!r} already has a vector at index {first_index[artwork_id]}",
                row=i,
            )
        first_index[artwork_id] = i
        try:
            vec = np.asarray(raw_vec, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InputDataError(
                path, f"array index {i} ({artwork_id!r}): vector is not numeric ({exc})", row=i
            ) from None
        if vec.ndim != 1 or vec.shape[0] != EMBEDDING_DIM:
            raise InputDataError(
                path,
                f"array index {i} ({artwork_id!r}): vector has shape {vec.shape}, expected ({EMBEDDING_DIM},)",
                row=i,
            )
        vec32 = vec.astype(np.float32)
        if not np.isfinite(vec32).all():
            raise InputDataError(
                path, f"array index {i} ({artwork_id!r}): vector contains NaN or infinite values", row=i
            )
        ids.append(artwork_id)
        vectors[i] = vec32
    wanted = list(artwork_ids)
    missing = [a for a in wanted if a not in first_index]
    if missing:
        raise InputDataError(path, f"{len(missing)} catalogue artworks have no embedding, e.g. {missing[:_MAX_LISTED]}")
    dropped = sorted(set(ids) - set(wanted))
    order = np.fromiter((first_index[a] for a in wanted), dtype=np.int64, count=len(wanted))
    return EmbeddingsFile(vectors[order], form, dropped)


def load_embeddings_npy(path: Path, artwork_ids: Sequence[str]) -> np.ndarray:
    """The vectors of ``read_embeddings_file`` alone (float32, ``artwork_ids`` order)."""
    return read_embeddings_file(path, artwork_ids).vectors


def image_content_hashes(paths: Sequence[Path]) -> list[str]:
    """SHA-256 of each file's bytes: the key under which an image's embedding is kept and reused."""
    hashes = []
    for path in paths:
        digest = hashlib.sha256()
        with Path(path).open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        hashes.append(digest.hexdigest())
    return hashes


def vector_content_hashes(vectors: np.ndarray) -> list[str]:
    """SHA-256 of each float32 row: the content key of an embedding that came without an image (.npy)."""
    rows = np.ascontiguousarray(vectors, dtype=np.float32)
    return [hashlib.sha256(row.tobytes()).hexdigest() for row in rows]
