"""The CuratorNet network: a shared item tower, exact profile pooling and a user tower.

Shapes used in the comments below:
    N  artworks in the catalogue            F  input feature size (2048, ResNet50)
    M  distinct items touched by a batch    D  item/user vector size (200)
    P  distinct profiles in a batch         S  profile slots (sum of the P profile lengths)
    T  triplets in a batch

A user is the set of items in their profile. Their item vectors are mean-pooled and max-pooled and the
concatenation [mean, max] (2D) goes through the user tower. Score(user, item) = dot(user, item).

Variable-length profiles are pooled with segment operations (``index_add_`` for the sum,
``scatter_reduce_(..., "amax")`` for the max) over the flat list of slots, so padding never exists and
can never leak into a pool. Rows are gathered with ``F.embedding`` rather than ``tensor[index]``: its
backward is a dense accumulation that is deterministic and fast on CPU, where indexing's backward
(``index_put`` with accumulate) is nondeterministic unless deterministic mode forces a slow sorted path.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from curatornet_pipeline.core.precision import autocast, resolve_precision


@dataclass(frozen=True)
class CuratorNetConfig:
    """Layer sizes of CuratorNet.

    ``user_dims`` defaults to (300, 300, 200) as in both released implementations; the paper's text says
    (300, 200, 200). The last user dimension must equal the last item dimension (scores are dot products).
    """

    input_dim: int = 2048
    item_dims: tuple[int, ...] = (200, 200)
    user_dims: tuple[int, ...] = (300, 300, 200)

    def __post_init__(self) -> None:
        # Accept lists (e.g. from JSON or a Dagster config) but store tuples so the config stays hashable.
        object.__setattr__(self, "item_dims", tuple(int(d) for d in self.item_dims))
        object.__setattr__(self, "user_dims", tuple(int(d) for d in self.user_dims))
        if self.input_dim < 1 or not self.item_dims or not self.user_dims:
            raise ValueError(f"CuratorNetConfig needs a positive input_dim and non-empty towers, got {self}")
        if min(self.item_dims) < 1 or min(self.user_dims) < 1:
            raise ValueError(f"CuratorNetConfig layer sizes must be positive, got {self}")
        if self.item_dims[-1] != self.user_dims[-1]:
            raise ValueError(
                f"last item dim {self.item_dims[-1]} != last user dim {self.user_dims[-1]}: "
                "scores are dot products of the two"
            )

    @property
    def embedding_dim(self) -> int:
        return self.item_dims[-1]

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (ints and lists) for storage next to the weights."""
        d = asdict(self)
        d["item_dims"] = list(self.item_dims)
        d["user_dims"] = list(self.user_dims)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CuratorNetConfig":
        return cls(int(d["input_dim"]), tuple(d["item_dims"]), tuple(d["user_dims"]))


def _mlp(in_dim: int, dims: tuple[int, ...]) -> nn.Sequential:
    """Linear + SELU per layer, the last layer included (as in the paper)."""
    layers: list[nn.Module] = []
    for out_dim in dims:
        layers += [nn.Linear(in_dim, out_dim), nn.SELU()]
        in_dim = out_dim
    return nn.Sequential(*layers)


def pool_profiles(slot_vectors: Tensor, slot_profile: Tensor, n_profiles: int) -> Tensor:
    """Exact mean and max pooling of variable-length profiles.

    slot_vectors: [S, D] the item vector in each profile slot.
    slot_profile: [S] int64, the profile (0..P-1) each slot belongs to; every profile needs >= 1 slot.
    Returns [P, 2D] = concat(mean, max) per profile.
    """
    dim = slot_vectors.shape[1]
    counts = torch.bincount(slot_profile, minlength=n_profiles)  # [P]
    if n_profiles == 0 or int(counts.min()) == 0:
        raise ValueError("every profile must contain at least one item")
    sums = slot_vectors.new_zeros((n_profiles, dim)).index_add_(0, slot_profile, slot_vectors)  # [P, D]
    means = sums / counts.unsqueeze(1).to(slot_vectors.dtype)  # [P, D]
    # include_self=False: the zeros we start from never take part in the max, only real slots do.
    index = slot_profile.unsqueeze(1).expand(-1, dim)  # [S, D]
    maxes = slot_vectors.new_zeros((n_profiles, dim)).scatter_reduce(
        0, index, slot_vectors, reduce="amax", include_self=False
    )  # [P, D]
    return torch.cat([means, maxes], dim=1)  # [P, 2D]


class CuratorNet(nn.Module):
    """Item tower (shared) + profile pooling + user tower; score = dot(user vector, item vector)."""

    def __init__(self, config: CuratorNetConfig | None = None, generator: torch.Generator | None = None):
        super().__init__()
        self.config = config or CuratorNetConfig()
        self.item_tower = _mlp(self.config.input_dim, self.config.item_dims)  # F -> D
        self.user_tower = _mlp(2 * self.config.embedding_dim, self.config.user_dims)  # 2D -> D
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Glorot/Xavier-uniform weights and zero biases (the paper's initialisation)."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight, generator=generator)
                nn.init.zeros_(module.bias)

    def _parameter_dtype(self) -> torch.dtype:
        return self.item_tower[0].weight.dtype

    def item_vectors(self, features: Tensor) -> Tensor:
        """[N, F] item features -> [N, D] item vectors, in the parameters' dtype.

        Under bf16 autocast (core.precision) the tower's products run in bfloat16; casting the result back
        keeps pooling, scores and the loss in full precision.
        """
        return self.item_tower(features).to(self._parameter_dtype())

    def user_vectors(self, item_vecs: Tensor, slot_items: Tensor, slot_profile: Tensor, n_profiles: int) -> Tensor:
        """User vectors of P profiles given as flat slots.

        item_vecs: [M, D] item vectors; slot_items: [S] rows of item_vecs in profile order;
        slot_profile: [S] profile of each slot (0..P-1). Returns [P, D].
        """
        pooled = pool_profiles(F.embedding(slot_items, item_vecs), slot_profile, n_profiles)  # [P, 2D]
        return self.user_tower(pooled).to(self._parameter_dtype())  # [P, D], full precision as item_vectors

    def profile_vector(self, profile_item_vecs: Tensor) -> Tensor:
        """User vector [D] of a single profile given its item vectors [L, D]."""
        slots = torch.arange(len(profile_item_vecs), device=profile_item_vecs.device)
        segment = torch.zeros_like(slots)
        return self.user_vectors(profile_item_vecs, slots, segment, 1)[0]

    def score_triplets(
        self,
        item_features: Tensor,
        slot_items: Tensor,
        slot_profile: Tensor,
        n_profiles: int,
        triplet_profile: Tensor,
        triplet_positive: Tensor,
        triplet_negative: Tensor,
    ) -> tuple[Tensor, Tensor]:
        """Scores (x_ui, x_uj) of T triplets, running each tower once per distinct input.

        item_features: [M, F] features of the DISTINCT items the batch touches (profiles, positives,
        negatives); slot_items/slot_profile: [S] the P distinct profiles as rows of item_features;
        triplet_profile/positive/negative: [T] rows into the P profiles and the M items.
        Returns two [T] tensors.
        """
        item_vecs = self.item_vectors(item_features)  # [M, D], once per distinct item
        users = self.user_vectors(item_vecs, slot_items, slot_profile, n_profiles)  # [P, D], once per profile
        u = F.embedding(triplet_profile, users)  # [T, D]
        x_ui = (u * F.embedding(triplet_positive, item_vecs)).sum(dim=1)  # [T]
        x_uj = (u * F.embedding(triplet_negative, item_vecs)).sum(dim=1)  # [T]
        return x_ui, x_uj

    def weight_matrices(self) -> list[Tensor]:
        """The Linear weight matrices (no biases): what the L2 term penalises."""
        return [m.weight for m in self.modules() if isinstance(m, nn.Linear)]

    @torch.no_grad()
    def embed_catalogue(
        self, features: np.ndarray | Tensor, batch_size: int = 8192, precision: str = "auto"
    ) -> np.ndarray:
        """Item vectors [N, D] (float32, numpy) for a whole catalogue of features [N, F], in inference mode.

        ``precision``: see core.precision ('auto' runs bf16 autocast where the hardware supports it).
        """
        param = next(self.parameters())
        resolved = resolve_precision(precision, param.device)
        out = []
        for start in range(0, len(features), batch_size):
            chunk = torch.as_tensor(features[start : start + batch_size]).to(param.device, param.dtype)
            with autocast(resolved, param.device):
                out.append(self.item_vectors(chunk).float().cpu())
        if not out:
            return np.zeros((0, self.config.embedding_dim), dtype=np.float32)
        return torch.cat(out).numpy()

    @torch.no_grad()
    def profile_vectors(
        self, item_vecs: np.ndarray | Tensor, profiles: list[np.ndarray], precision: str = "auto", chunk: int = 4096
    ) -> np.ndarray:
        """User vectors [U, D] (float32, numpy) of U profiles (artwork rows of ``item_vecs`` [N, D]), batched.

        One user-tower pass per ``chunk`` profiles instead of one per profile. Raises ValueError when a
        profile is empty.
        """
        param = next(self.parameters())
        resolved = resolve_precision(precision, param.device)
        cache = torch.as_tensor(item_vecs).to(param.device, param.dtype)  # [N, D]
        out = [torch.zeros((0, self.config.embedding_dim))]
        for start in range(0, len(profiles), chunk):
            group = [np.asarray(p, dtype=np.int64).reshape(-1) for p in profiles[start : start + chunk]]
            lengths = np.array([len(p) for p in group], dtype=np.int64)
            if (lengths == 0).any():
                raise ValueError(f"profile {start + int(np.argmin(lengths))} is empty: a user vector needs an item")
            slot_items = torch.from_numpy(np.concatenate(group)).to(param.device)  # [S]
            slot_profile = torch.from_numpy(np.repeat(np.arange(len(group)), lengths)).to(param.device)  # [S]
            with autocast(resolved, param.device):
                out.append(self.user_vectors(cache, slot_items, slot_profile, len(group)).float().cpu())
        return torch.cat(out).numpy()
