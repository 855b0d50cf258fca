"""Training CuratorNet on triplets: the efficient batch loss, its naive reference, the training run.

The epoch loop, learning-rate schedule and best-epoch rule are ``core.epochs``, shared with VBPR.

Loss per batch = mean over triplets of -log sigmoid(x_ui - x_uj)  (computed as softplus(x_uj - x_ui),
which never overflows) + lambda * 0.5 * (sum of squared weight matrices; biases are not penalised).

Efficiency (SPEC 8): a batch of T triplets touches far fewer distinct items and profiles than it has
profile slots. ``batch_loss`` runs the item tower once per DISTINCT item and the user tower once per
DISTINCT profile, then gathers; ``naive_triplet_loss`` runs the item tower on every slot of every triplet
(each triplet pools its own copy of its profile) and exists as the reference it must equal exactly, and
as the baseline of benchmarks/bench_training.py.

Batches are ``batch_size`` triplets (default 4096) drawn from a seeded permutation each epoch, or, with
``batching='length_grouped'``, the authors' batches: one profile length per batch, filled up to ~100,000
profile+item slots (core.batching). With dedup a batch costs about one item-tower
pass per distinct item, at most the catalogue size, so larger batches amortise better: on the
benchmark's UGallery-shaped data a 4096-triplet batch has ~18,000 slots but ~5,400 distinct items, a
22,000-triplet batch ~98,000 slots but ~6,000 distinct items (see benchmarks/bench_training.py).
"""

from __future__ import annotations

import io
import math
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor

from curatornet_pipeline.core.batching import BATCHINGS, length_grouped_batches
from curatornet_pipeline.core.device import resolve_device
from curatornet_pipeline.core.epochs import deterministic_algorithms, train_epochs
from curatornet_pipeline.core.model import CuratorNet, CuratorNetConfig, pool_profiles
from curatornet_pipeline.core.precision import PRECISIONS, autocast, resolve_precision
from curatornet_pipeline.core.triplet_set import TripletSet, gather_csr_rows

_FORMAT = "curatornet-state-v1"


@dataclass(frozen=True)
class TrainingConfig:
    """Hyper-parameters of CuratorNet training (defaults: the paper's best setting).

    batch_size counts triplets (``batching='shuffled'``); ``batching='length_grouped'`` ignores it and fills
    one-length batches up to ``max_batch_slots`` profile+item slots (core.batching). lr schedule and stopping: see ``core.epochs.PlateauSchedule``
    (``early_stopping_patience`` 0 = always run ``max_epochs``, as the paper). ``log_every_batches`` = 0 logs only
    per epoch.
    """

    l2_lambda: float = 1e-4
    learning_rate: float = 1e-4
    lr_decay: float = 0.6
    lr_patience: int = 2
    min_learning_rate: float = 1e-6
    max_epochs: int = 10
    early_stopping_patience: int = 0
    early_stopping_min_improvement: float = 0.0
    batch_size: int = 4096
    seed: int = 0
    device: str = "auto"
    log_every_batches: int = 200
    precision: str = "auto"  # forward passes: 'auto', 'fp32' or 'bf16' (core.precision)
    batching: str = "shuffled"  # core.batching: 'shuffled' (batch_size triplets) or 'length_grouped' (the authors')
    max_batch_slots: int = 100_000  # length_grouped: profile+item slots per batch (the authors: ~100,000)
    max_grad_norm: float = 0.0  # > 0: clip each batch's global gradient norm to this before the Adam step

    def __post_init__(self) -> None:
        problems = []
        if self.l2_lambda < 0:
            problems.append(f"l2_lambda must be >= 0, got {self.l2_lambda}")
        if not self.learning_rate > 0:
            problems.append(f"learning_rate must be > 0, got {self.learning_rate}")
        if not 0 < self.lr_decay <= 1:
            problems.append(f"lr_decay must be in (0, 1], got {self.lr_decay}")
        if self.lr_patience < 1:
            problems.append(f"lr_patience must be >= 1, got {self.lr_patience}")
        if not 0 <= self.min_learning_rate <= self.learning_rate:
            problems.append(f"min_learning_rate must be in [0, learning_rate], got {self.min_learning_rate}")
        if self.max_epochs < 1:
            problems.append(f"max_epochs must be >= 1, got {self.max_epochs}")
        if self.early_stopping_patience < 0:
            problems.append(f"early_stopping_patience must be >= 0, got {self.early_stopping_patience}")
        if not 0 <= self.early_stopping_min_improvement < 1:
            problems.append(
                f"early_stopping_min_improvement must be in [0, 1), got {self.early_stopping_min_improvement}"
            )
        if self.batch_size < 1:
            problems.append(f"batch_size must be >= 1, got {self.batch_size}")
        if self.log_every_batches < 0:
            problems.append(f"log_every_batches must be >= 0, got {self.log_every_batches}")
        if self.batching not in BATCHINGS:
            problems.append(f"batching must be one of {', '.join(BATCHINGS)}, got {self.batching!r}")
        if self.max_grad_norm < 0:
            problems.append(f"max_grad_norm must be >= 0 (0 = no clipping), got {self.max_grad_norm}")
        if self.max_batch_slots < 1:
            problems.append(f"max_batch_slots must be >= 1, got {self.max_batch_slots}")
        if self.precision not in PRECISIONS:
            problems.append(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if problems:
            raise ValueError("invalid TrainingConfig: " + "; ".join(problems))


@dataclass
class TrainingResult:
    """The best checkpoint (on CPU) and one history row per epoch.

    history columns: epoch (1-based), learning_rate (used during the epoch), train_loss (mean batch loss,
    L2 term included), validation_accuracy, seconds (whole epoch incl. validation), triplets_per_second
    (training triplets / training-step seconds).
    """

    model: CuratorNet
    history: pd.DataFrame
    best_epoch: int
    device_used: str
    precision_used: str = "fp32"  # the resolved forward precision, 'fp32' or 'bf16'


# --------------------------------------------------------------------------------------------------
# Batch assembly (numpy index work)


def csr_gather(offsets: np.ndarray, values: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate CSR rows ``rows``: (slot_values [S], slot_row [S]), slot_row[s] = position in ``rows`` of slot s."""
    new_offsets, slot_values = gather_csr_rows(offsets, values, rows)
    slot_row = np.repeat(np.arange(len(rows), dtype=np.int64), np.diff(new_offsets))
    return slot_values, slot_row


@dataclass
class TripletBatch:
    """Index arrays of one batch, deduplicated: M distinct items, P distinct profiles, S slots, T triplets."""

    items: np.ndarray  # [M] artwork_idx of the distinct items
    slot_items: np.ndarray  # [S] rows into items
    slot_profile: np.ndarray  # [S] 0..P-1
    n_profiles: int
    triplet_profile: np.ndarray  # [T] 0..P-1
    triplet_positive: np.ndarray  # [T] rows into items
    triplet_negative: np.ndarray  # [T] rows into items


def gather_batch(ts: TripletSet, rows: np.ndarray) -> TripletBatch:
    """Deduplicate the profiles and items of triplets ``rows`` of ``ts``."""
    profiles, triplet_profile = np.unique(ts.profile_id[rows], return_inverse=True)
    slot_artworks, slot_profile = csr_gather(ts.profile_offsets, ts.profile_items, profiles)
    n_slots, n_triplets = len(slot_artworks), len(rows)
    items, inverse = np.unique(
        np.concatenate([slot_artworks, ts.positive[rows], ts.negative[rows]]), return_inverse=True
    )
    return TripletBatch(
        items=items,
        slot_items=inverse[:n_slots],
        slot_profile=slot_profile,
        n_profiles=len(profiles),
        triplet_profile=triplet_profile.reshape(-1),
        triplet_positive=inverse[n_slots : n_slots + n_triplets],
        triplet_negative=inverse[n_slots + n_triplets :],
    )


@dataclass
class DeviceTriplets:
    """A TripletSet's index arrays as int64 tensors on one device, for batch assembly without host round trips.

    On a GPU the numpy batch assembly (a few host ops and seven small copies per step) costs more than the
    towers themselves; with the arrays on the device it is a handful of kernels.
    """

    profile_offsets: Tensor  # [P + 1]
    profile_items: Tensor  # [sum of profile lengths]
    profile_id: Tensor  # [T]
    positive: Tensor  # [T]
    negative: Tensor  # [T]

    @classmethod
    def from_set(cls, ts: TripletSet, device: torch.device) -> "DeviceTriplets":
        def put(array: np.ndarray) -> Tensor:
            return torch.from_numpy(np.ascontiguousarray(array, dtype=np.int64)).to(device)

        return cls(
            put(ts.profile_offsets), put(ts.profile_items), put(ts.profile_id), put(ts.positive), put(ts.negative)
        )


def _device_batch_scores(model: CuratorNet, feats: Tensor, dt: DeviceTriplets, rows: Tensor) -> tuple[Tensor, Tensor]:
    """The efficient path of ``batch_loss`` with every index operation on ``rows``' device (same dedup, same order)."""
    profiles, triplet_profile = torch.unique(dt.profile_id[rows], return_inverse=True)  # [P], [T]
    starts = dt.profile_offsets[profiles]
    lengths = dt.profile_offsets[profiles + 1] - starts
    slot_profile = torch.repeat_interleave(torch.arange(len(profiles), device=rows.device), lengths)  # [S]
    within = torch.arange(len(slot_profile), device=rows.device) - (torch.cumsum(lengths, 0) - lengths)[slot_profile]
    slot_artworks = dt.profile_items[starts[slot_profile] + within]  # [S]
    n_slots, n_triplets = len(slot_artworks), len(rows)
    items, inverse = torch.unique(
        torch.cat([slot_artworks, dt.positive[rows], dt.negative[rows]]), return_inverse=True
    )  # [M], [S + 2T]
    return model.score_triplets(
        feats.index_select(0, items),  # [M, F]
        inverse[:n_slots],
        slot_profile,
        len(profiles),
        triplet_profile,
        inverse[n_slots : n_slots + n_triplets],
        inverse[n_slots + n_triplets :],
    )


def _features_tensor(features: np.ndarray | Tensor, model: CuratorNet) -> Tensor:
    """Features on the model's device and dtype (no copy when they already are); bf16 ones stay bf16."""
    param = next(model.parameters())
    features = torch.as_tensor(features)
    dtype = torch.bfloat16 if features.dtype == torch.bfloat16 else param.dtype
    return features.to(device=param.device, dtype=dtype)


def model_features(features: np.ndarray | Tensor, model: CuratorNet, precision: str) -> Tensor:
    """The feature matrix as the item tower consumes it: on the model's device, bf16 for a 'bf16' precision.

    bf16 autocast rounds the tower's input to bf16 anyway, so storing the matrix in bf16 once gives the same
    numbers while each batch gathers half the bytes and skips a cast.
    """
    feats = _features_tensor(features, model)
    return feats.to(torch.bfloat16) if precision == "bf16" else feats


def _index(array: np.ndarray, device: torch.device) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.int64)).to(device)


def _feature_rows(feats: Tensor, rows: np.ndarray) -> Tensor:
    """feats[rows] for a numpy index array."""
    return feats.index_select(0, _index(rows, feats.device))


def _bpr_loss(model: CuratorNet, x_ui: Tensor, x_uj: Tensor, l2_lambda: float) -> Tensor:
    # -log sigmoid(d) == softplus(-d): stable for large |d|.
    ranking = F.softplus(x_uj - x_ui).mean()
    if l2_lambda == 0:
        return ranking
    l2 = sum(w.pow(2).sum() for w in model.weight_matrices())
    return ranking + l2_lambda * 0.5 * l2


# --------------------------------------------------------------------------------------------------
# Losses


def batch_loss(
    model: CuratorNet,
    features: np.ndarray | Tensor,
    ts: TripletSet | DeviceTriplets,
    rows: np.ndarray | Tensor,
    l2_lambda: float,
    precision: str = "fp32",
) -> Tensor:
    """Loss of triplets ``rows`` with each tower run once per distinct input (the training path).

    features: [N, F] z-scored item features (numpy or a tensor already on the model's device). With a
    ``DeviceTriplets`` the batch is assembled on the device (used for GPU training); the result is the same.
    precision: a resolved 'fp32' or 'bf16' (core.precision); only the towers' forward is autocast, the
    scores come back in float32 and the loss is computed in float32.
    """
    feats = _features_tensor(features, model)
    device = feats.device
    if isinstance(ts, DeviceTriplets):
        rows_t = torch.as_tensor(rows, device=device)
        with autocast(precision, device):
            x_ui, x_uj = _device_batch_scores(model, feats, ts, rows_t)
        return _bpr_loss(model, x_ui, x_uj, l2_lambda)
    b = gather_batch(ts, np.asarray(rows))
    with autocast(precision, device):
        x_ui, x_uj = model.score_triplets(
            _feature_rows(feats, b.items),  # [M, F]
            _index(b.slot_items, device),
            _index(b.slot_profile, device),
            b.n_profiles,
            _index(b.triplet_profile, device),
            _index(b.triplet_positive, device),
            _index(b.triplet_negative, device),
        )
    return _bpr_loss(model, x_ui, x_uj, l2_lambda)


def naive_triplet_loss(
    model: CuratorNet, features: np.ndarray | Tensor, ts: TripletSet, rows: np.ndarray, l2_lambda: float
) -> Tensor:
    """Reference loss without deduplication: every triplet pools its own copy of its profile.

    The item tower runs once per profile slot of every triplet plus once for its positive and its negative,
    the user tower once per triplet. Pooling is the same exact segment pooling as the efficient path
    (tested against a per-profile loop in the model tests), so the two losses differ only in the dedup.
    """
    feats = _features_tensor(features, model)
    device = feats.device
    rows = np.asarray(rows)
    slot_artworks, slot_triplet = csr_gather(ts.profile_offsets, ts.profile_items, ts.profile_id[rows])
    slot_vecs = model.item_vectors(_feature_rows(feats, slot_artworks))  # [S_naive, D], one pass per slot
    users = model.user_tower(pool_profiles(slot_vecs, _index(slot_triplet, device), len(rows)))  # [T, D]
    x_ui = (users * model.item_vectors(_feature_rows(feats, ts.positive[rows]))).sum(1)  # [T]
    x_uj = (users * model.item_vectors(_feature_rows(feats, ts.negative[rows]))).sum(1)  # [T]
    return _bpr_loss(model, x_ui, x_uj, l2_lambda)


@torch.no_grad()
def validation_accuracy(
    model: CuratorNet, features: np.ndarray | Tensor, ts: TripletSet, batch_size: int = 4096, precision: str = "fp32"
) -> float:
    """Fraction of triplets with x_ui > x_uj (strictly; ties count as wrong). NaN for an empty set.

    precision: a resolved 'fp32' or 'bf16', the forward passes' precision (as in training).
    """
    if len(ts) == 0:
        return float("nan")
    feats = _features_tensor(features, model)
    device = feats.device
    # Item vectors of the whole catalogue once; the profile/positive/negative rows then index them.
    with autocast(precision, device):
        item_vecs = torch.cat([model.item_vectors(feats[s : s + 8192]) for s in range(0, len(feats), 8192)])
    correct = 0
    for start in range(0, len(ts), batch_size):
        rows = np.arange(start, min(start + batch_size, len(ts)))
        profiles, triplet_profile = np.unique(ts.profile_id[rows], return_inverse=True)
        slot_artworks, slot_profile = csr_gather(ts.profile_offsets, ts.profile_items, profiles)
        with autocast(precision, device):
            users = model.user_vectors(
                item_vecs, _index(slot_artworks, device), _index(slot_profile, device), len(profiles)
            )[_index(triplet_profile.reshape(-1), device)]  # [T, D]
        x_ui = (users * item_vecs[_index(ts.positive[rows], device)]).sum(1)
        x_uj = (users * item_vecs[_index(ts.negative[rows], device)]).sum(1)
        correct += int((x_ui > x_uj).sum())
    return correct / len(ts)


# --------------------------------------------------------------------------------------------------
# Training loop


def check_triplets(ts: TripletSet, n_items: int, name: str) -> None:
    """Raise ValueError if ``ts`` points outside the catalogue or at an empty profile."""
    for column in ("positive", "negative"):
        values = getattr(ts, column)
        if len(values) and (values.min() < 0 or values.max() >= n_items):
            raise ValueError(f"{name} triplets: {column} outside [0, {n_items})")
    if len(ts.profile_items) and (ts.profile_items.min() < 0 or ts.profile_items.max() >= n_items):
        raise ValueError(f"{name} triplets: profile item outside [0, {n_items})")
    if len(ts.profile_id) and (ts.profile_id.min() < 0 or ts.profile_id.max() >= ts.n_profiles):
        raise ValueError(f"{name} triplets: profile_id outside [0, {ts.n_profiles})")
    empty = np.flatnonzero(ts.profile_lengths()[ts.profile_id] == 0)
    if len(empty):
        raise ValueError(f"{name} triplets: {len(empty)} triplets have an empty profile (first row {empty[0]})")


def train_curatornet(
    features: np.ndarray,
    train: TripletSet,
    validation: TripletSet,
    config: TrainingConfig = TrainingConfig(),
    progress: Callable[[str], None] | None = None,
    model_config: CuratorNetConfig | None = None,
) -> TrainingResult:
    """Train CuratorNet with Adam and the plateau learning-rate schedule; return the best checkpoint.

    features: [N, F] float32 z-scored item features aligned with artwork_idx. The best checkpoint is
    the epoch with the highest validation accuracy (earliest on ties). Deterministic on CPU for a given
    config; on CUDA the segment ops use atomics, so results can differ in the last bits between runs.
    """
    features = np.asarray(features)
    if features.ndim != 2 or not np.issubdtype(features.dtype, np.floating):
        raise ValueError(f"features must be a 2-d float array, got shape {features.shape} dtype {features.dtype}")
    if not np.isfinite(features).all():
        raise ValueError("features contain NaN or infinite values")
    model_config = model_config or CuratorNetConfig(input_dim=features.shape[1])
    if model_config.input_dim != features.shape[1]:
        raise ValueError(f"model input_dim {model_config.input_dim} != feature width {features.shape[1]}")
    if len(train) == 0 or len(validation) == 0:
        raise ValueError(f"need training and validation triplets, got {len(train)} and {len(validation)}")
    check_triplets(train, len(features), "training")
    check_triplets(validation, len(features), "validation")
    say = progress or (lambda message: None)

    device = resolve_device(config.device)
    precision = resolve_precision(config.precision, device)
    with deterministic_algorithms(device.type == "cpu"):
        model = CuratorNet(model_config, generator=torch.Generator().manual_seed(config.seed)).to(device)
        feats = model_features(np.asarray(features, dtype=np.float32), model, precision)
        # On a GPU the batch index work runs on the device too; on the CPU numpy is faster for it.
        on_gpu = device.type == "cuda"
        train_triplets = DeviceTriplets.from_set(train, device) if on_gpu else train
        epoch_batches = None
        if config.batching == "length_grouped":
            triplet_lengths = train.profile_lengths()[train.profile_id]
            epoch_batches = lambda rng: length_grouped_batches(triplet_lengths, config.max_batch_slots, rng)  # noqa: E731
            batches = f"batches of one profile length, at most {config.max_batch_slots} profile+item slots each"
        else:
            batches = f"{math.ceil(len(train) / config.batch_size)} shuffled batches of {config.batch_size}"
        say(
            f"training CuratorNet on {device} ({precision}): {len(train)} triplets, {batches}, "
            f"{len(validation)} validation triplets"
        )
        epochs = train_epochs(
            model,
            config,
            lambda rows: batch_loss(model, feats, train_triplets, rows, config.l2_lambda, precision),
            lambda: validation_accuracy(model, feats, validation, config.batch_size, precision),
            n_train=len(train),
            device=device,
            rows_on_device=on_gpu,
            say=say,
            log_every_batches=config.log_every_batches,
            report_throughput=True,
            epoch_batches=epoch_batches,
            max_grad_norm=config.max_grad_norm,
        )

    best = CuratorNet(model_config, generator=torch.Generator())  # own generator: global RNG untouched
    best.load_state_dict(epochs.best_state)
    best.eval()
    return TrainingResult(best, epochs.history, epochs.best_epoch, str(device), precision)


# --------------------------------------------------------------------------------------------------
# Storage


def model_to_bytes(model: CuratorNet, config: TrainingConfig | None = None) -> bytes:
    """Serialise weights + architecture (+ optional training config) as plain data, for a DuckDB BLOB."""
    payload = {
        "format": _FORMAT,
        "model_config": model.config.to_dict(),
        "training_config": asdict(config) if config is not None else None,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def model_from_bytes(blob: bytes) -> CuratorNet:
    """Load a model written by ``model_to_bytes`` onto the CPU.

    Uses ``torch.load(weights_only=True)``: only tensors and plain containers are accepted, so a tampered
    blob cannot run code while loading (it raises instead).
    """
    payload = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
        raise ValueError(f"not a CuratorNet model blob (expected format {_FORMAT!r})")
    model = CuratorNet(CuratorNetConfig.from_dict(payload["model_config"]), generator=torch.Generator())
    model.load_state_dict(payload["state_dict"])
    model.eval()
    return model


def training_config_from_bytes(blob: bytes) -> TrainingConfig | None:
    """The TrainingConfig stored with a model blob, if one was stored."""
    payload = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    stored = payload.get("training_config") if isinstance(payload, dict) else None
    return TrainingConfig(**stored) if stored is not None else None
