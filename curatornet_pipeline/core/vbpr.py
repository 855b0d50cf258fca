"""VBPR (He & McAuley, AAAI 2016), the visually-aware matrix-factorisation baseline, in PyTorch.

    score(u, i) = beta_i + gamma_u . gamma_i + theta_u . (E^T f_i) + beta' . f_i

beta_i item bias, gamma_u / gamma_i latent factors (``latent_dim``), theta_u the user's visual factors
(``visual_dim``), E a learned F x visual_dim projection of the item features f_i, beta' a visual bias
vector. The paper's comparison used 200 dimensions in total: 100 latent + 100 visual by default.

Trained with the BPR loss on the same training triplets as CuratorNet, reading the user from the
triplet's ``user_idx`` and ignoring its profile. Synthetic one-item triplets (user_idx == -1) have no user
to learn a factor for, so they are skipped (the count is reported through ``progress`` and kept on the
model as ``skipped_triplets``).

Regularisation (L2, ``l2_lambda``): per triplet, lambda/2 times the squared norms of the factors and biases
it touches (gamma_u, theta_u, gamma_i, gamma_j, beta_i, beta_j), averaged over the batch, plus lambda/2
times ||E||^2 + ||beta'||^2 once per batch — the stochastic form of VBPR's lambda * ||Theta||^2.

A user who never appears in the training triplets gets zero factors, so their scores fall back to the
non-personalised part beta_i + beta' . f_i.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from curatornet_pipeline.core.device import resolve_device
from curatornet_pipeline.core.precision import autocast, check_precision, resolve_precision
from curatornet_pipeline.core.training import deterministic_algorithms
from curatornet_pipeline.core.triplet_set import TripletSet


@dataclass(frozen=True)
class VBPRConfig:
    """Hyper-parameters of VBPR training."""

    latent_dim: int = 100
    visual_dim: int = 100
    l2_lambda: float = 1e-4
    learning_rate: float = 1e-3
    epochs: int = 10
    batch_size: int = 4096
    init_std: float = 0.01
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"  # forward pass: 'auto', 'fp32' or 'bf16' (core.precision)

    def __post_init__(self) -> None:
        check_precision(self.precision)
        if self.latent_dim < 0 or self.visual_dim < 0 or self.latent_dim + self.visual_dim == 0:
            raise ValueError(f"VBPRConfig needs non-negative dims with a positive total, got {self}")
        if self.l2_lambda < 0 or not self.learning_rate > 0 or self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"invalid VBPRConfig {self}")


class _VBPRNet(nn.Module):
    def __init__(self, n_users: int, n_items: int, n_features: int, cfg: VBPRConfig, generator: torch.Generator):
        super().__init__()

        def normal(*shape: int) -> nn.Parameter:
            return nn.Parameter(torch.randn(*shape, generator=generator) * cfg.init_std)

        self.item_bias = nn.Parameter(torch.zeros(n_items))  # beta_i
        self.user_latent = normal(n_users, cfg.latent_dim)  # gamma_u
        self.item_latent = normal(n_items, cfg.latent_dim)  # gamma_i
        self.user_visual = normal(n_users, cfg.visual_dim)  # theta_u
        self.projection = normal(n_features, cfg.visual_dim)  # E
        self.visual_bias = nn.Parameter(torch.zeros(n_features))  # beta'

    def score_difference(self, features: Tensor, users: Tensor, pos: Tensor, neg: Tensor) -> tuple[Tensor, Tensor]:
        """(x_ui - x_uj [T], per-triplet squared norm of the touched factors [T])."""
        feature_diff = features[pos] - features[neg]  # [T, F]
        gamma_u, theta_u = self.user_latent[users], self.user_visual[users]  # [T, K1], [T, K2]
        gamma_i, gamma_j = self.item_latent[pos], self.item_latent[neg]  # [T, K1]
        diff = (
            self.item_bias[pos]
            - self.item_bias[neg]
            + (gamma_u * (gamma_i - gamma_j)).sum(1)
            + (theta_u * (feature_diff @ self.projection)).sum(1)
            + feature_diff @ self.visual_bias
        )
        sq_norm = (
            gamma_u.pow(2).sum(1)
            + theta_u.pow(2).sum(1)
            + gamma_i.pow(2).sum(1)
            + gamma_j.pow(2).sum(1)
            + self.item_bias[pos].pow(2)
            + self.item_bias[neg].pow(2)
        )
        return diff, sq_norm


class VBPRModel:
    """A trained VBPR model with its item side precomputed; scoring is numpy only."""

    def __init__(
        self,
        user_latent: np.ndarray,
        user_visual: np.ndarray,
        item_latent: np.ndarray,
        item_visual: np.ndarray,
        item_bias: np.ndarray,
        skipped_triplets: int = 0,
    ):
        self.user_latent = user_latent  # [U, K1]
        self.user_visual = user_visual  # [U, K2]
        self.item_latent = item_latent  # [N, K1]
        self.item_visual = item_visual  # [N, K2] = features @ E
        self.item_bias = item_bias  # [N] = beta_i + features @ beta'
        self.skipped_triplets = skipped_triplets

    @property
    def n_users(self) -> int:
        return len(self.user_latent)

    def score(self, user_idx: int, items: np.ndarray) -> np.ndarray:
        """Scores of ``items`` (artwork_idx) for user ``user_idx``."""
        if not 0 <= user_idx < self.n_users:
            raise ValueError(f"user_idx {user_idx} outside [0, {self.n_users})")
        items = np.asarray(items, dtype=np.int64)
        return (
            self.item_bias[items]
            + self.item_latent[items] @ self.user_latent[user_idx]
            + self.item_visual[items] @ self.user_visual[user_idx]
        )

    def to_bytes(self) -> bytes:
        """numpy .npz bytes (no pickle) for storage."""
        buffer = io.BytesIO()
        np.savez(
            buffer,
            user_latent=self.user_latent,
            user_visual=self.user_visual,
            item_latent=self.item_latent,
            item_visual=self.item_visual,
            item_bias=self.item_bias,
            skipped_triplets=np.array(self.skipped_triplets),
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes) -> "VBPRModel":
        with np.load(io.BytesIO(blob), allow_pickle=False) as z:
            return cls(
                z["user_latent"],
                z["user_visual"],
                z["item_latent"],
                z["item_visual"],
                z["item_bias"],
                int(z["skipped_triplets"]),
            )


def train_vbpr(
    features: np.ndarray,
    train: TripletSet,
    n_users: int,
    config: VBPRConfig = VBPRConfig(),
    progress: Callable[[str], None] | None = None,
) -> VBPRModel:
    """Train VBPR with BPR loss + Adam on the triplets that carry a user; deterministic for a seed on CPU.

    features: [N, F] item features (the same z-scored features CuratorNet gets). n_users: size of the
    user index (user_idx values must lie in [0, n_users)).
    """
    say = progress or (lambda message: None)
    features = np.asarray(features)
    if features.ndim != 2 or not np.issubdtype(features.dtype, np.floating) or not np.isfinite(features).all():
        raise ValueError(f"features must be a finite 2-d float array, got shape {features.shape}")
    with_user = np.flatnonzero(train.user_idx >= 0)
    skipped = len(train) - len(with_user)
    if len(with_user) == 0:
        raise ValueError("no training triplet carries a user (all user_idx == -1); VBPR cannot learn user factors")
    users, pos, neg = (
        np.asarray(column[with_user], dtype=np.int64) for column in (train.user_idx, train.positive, train.negative)
    )
    if users.max() >= n_users:
        raise ValueError(f"user_idx {users.max()} >= n_users {n_users}")
    for name, column in (("positive", pos), ("negative", neg)):
        if column.min() < 0 or column.max() >= len(features):
            raise ValueError(f"{name} item outside [0, {len(features)})")

    device = resolve_device(config.device)
    precision = resolve_precision(config.precision, device)
    say(
        f"training VBPR on {device} ({precision}): {len(users)} triplets with a user, "
        f"{skipped} one-item triplets skipped"
    )
    with deterministic_algorithms(device.type == "cpu"):
        feats = torch.as_tensor(features, dtype=torch.float32).to(device)
        generator = torch.Generator().manual_seed(config.seed)
        net = _VBPRNet(n_users, len(features), features.shape[1], config, generator).to(device)
        users_t, pos_t, neg_t = (torch.from_numpy(a).to(device) for a in (users, pos, neg))
        optimizer = torch.optim.Adam(net.parameters(), lr=config.learning_rate)
        rng = np.random.default_rng(config.seed)
        n_batches = math.ceil(len(users) / config.batch_size)
        for epoch in range(1, config.epochs + 1):
            order = torch.from_numpy(rng.permutation(len(users))).to(device)
            loss_sum = 0.0
            for b in range(n_batches):
                rows = order[b * config.batch_size : (b + 1) * config.batch_size]
                optimizer.zero_grad(set_to_none=True)
                # Only the forward is autocast (the feature projection is the costly product); loss in float32.
                with autocast(precision, device):
                    diff, sq_norm = net.score_difference(feats, users_t[rows], pos_t[rows], neg_t[rows])
                diff, sq_norm = diff.float(), sq_norm.float()
                global_sq = net.projection.pow(2).sum() + net.visual_bias.pow(2).sum()
                loss = F.softplus(-diff).mean() + config.l2_lambda * 0.5 * (sq_norm.mean() + global_sq)
                loss.backward()
                optimizer.step()
                loss_sum += loss.item() * len(rows)
            say(f"VBPR epoch {epoch}/{config.epochs} loss {loss_sum / len(users):.4f}")

        # Users without a training triplet hold only their random init: zero it so that their scores are
        # exactly the non-personalised part, not noise.
        unseen = np.ones(n_users, dtype=bool)
        unseen[users] = False
        with torch.no_grad():
            user_latent, user_visual = net.user_latent.cpu().numpy().copy(), net.user_visual.cpu().numpy().copy()
            user_latent[unseen], user_visual[unseen] = 0.0, 0.0
            return VBPRModel(
                user_latent,
                user_visual,
                net.item_latent.cpu().numpy().copy(),
                (feats @ net.projection).cpu().numpy(),  # [N, K2] item visual factors
                (net.item_bias + feats @ net.visual_bias).cpu().numpy(),  # [N] item + visual bias
                skipped_triplets=skipped,
            )
