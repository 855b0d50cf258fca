"""VBPR (He & McAuley, AAAI 2016), the visually-aware matrix-factorisation baseline, in PyTorch.

    score(u, i) = beta_i + gamma_u . gamma_i + theta_u . (E^T f_i) + beta' . f_i

beta_i item bias, gamma_u / gamma_i latent factors (``latent_dim``), theta_u the user's visual factors
(``visual_dim``), E a learned F x visual_dim projection of the item features f_i, beta' a visual bias
vector. The paper's comparison used 200 dimensions in total: 100 latent + 100 visual by default.

Trained with the BPR loss on triplets that carry a user, reading the user from the triplet's ``user_idx``
and ignoring its profile. As in the paper (5.1), guided VBPR gets strategies 3 and 4 only, since it has no
notion of sessions or baskets, and the random-sampling variant gets classic BPR triplets (u, i, j); the
Dagster assets pick those triplets. Synthetic one-item triplets (user_idx == -1) have no user to learn a
factor for, so they are skipped if present (the count is reported through ``progress`` and kept on the
model as ``skipped_triplets``).

Training runs until validation accuracy stops improving, in the epoch loop CuratorNet's training uses too
(``core.epochs``: the same schedule and best-epoch rule): the checkpoint of the best validation epoch is returned.

Regularisation (L2, ``l2_lambda``): per triplet, lambda/2 times the squared norms of the factors and biases
it touches (gamma_u, theta_u, gamma_i, gamma_j, beta_i, beta_j), averaged over the batch, plus lambda/2
times ||E||^2 + ||beta'||^2 once per batch — the stochastic form of VBPR's lambda * ||Theta||^2.

A user who never appears in the training triplets gets zero factors, so their scores fall back to the
non-personalised part beta_i + beta' . f_i.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from curatornet_pipeline.core.device import resolve_device
from curatornet_pipeline.core.epochs import deterministic_algorithms, train_epochs
from curatornet_pipeline.core.precision import autocast, check_precision, resolve_precision
from curatornet_pipeline.core.triplet_set import TripletSet


@dataclass(frozen=True)
class VBPRConfig:
    """Hyper-parameters of VBPR training."""

    latent_dim: int = 100
    visual_dim: int = 100
    l2_lambda: float = 1e-4
    learning_rate: float = 1e-3
    lr_decay: float = 0.6
    lr_patience: int = 2
    min_learning_rate: float = 1e-6
    max_epochs: int = 10
    early_stopping_patience: int = 0
    early_stopping_min_improvement: float = 0.0
    batch_size: int = 4096
    init_std: float = 0.01
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"  # forward pass: 'auto', 'fp32' or 'bf16' (core.precision)

    def __post_init__(self) -> None:
        check_precision(self.precision)
        if self.latent_dim < 0 or self.visual_dim < 0 or self.latent_dim + self.visual_dim == 0:
            raise ValueError(f"VBPRConfig needs non-negative dims with a positive total, got {self}")
        if (
            self.l2_lambda < 0
            or not self.learning_rate > 0
            or not 0 < self.lr_decay <= 1
            or self.lr_patience < 1
            or not 0 <= self.min_learning_rate <= self.learning_rate
            or self.max_epochs < 1
            or self.early_stopping_patience < 0
            or not 0 <= self.early_stopping_min_improvement < 1
            or self.batch_size < 1
        ):
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


def vbpr_loss(
    net: _VBPRNet, features: Tensor, users: Tensor, pos: Tensor, neg: Tensor, l2_lambda: float, precision: str = "fp32"
) -> Tensor:
    """BPR loss of a batch plus the L2 term described in the module docstring.

    precision: a resolved 'fp32' or 'bf16'. Only the forward is autocast (the feature projection is the
    costly product); the loss itself is computed in float32.
    """
    with autocast(precision, features.device):
        diff, sq_norm = net.score_difference(features, users, pos, neg)
    if precision == "bf16":
        diff, sq_norm = diff.float(), sq_norm.float()
    global_sq = net.projection.pow(2).sum() + net.visual_bias.pow(2).sum()
    return F.softplus(-diff).mean() + l2_lambda * 0.5 * (sq_norm.mean() + global_sq)


@torch.no_grad()
def _validation_accuracy(
    net: _VBPRNet, features: Tensor, users: Tensor, pos: Tensor, neg: Tensor, batch_size: int, precision: str
) -> float:
    """Fraction of validation triplets with x_ui > x_uj (ties count as wrong), as for CuratorNet."""
    correct = 0
    for start in range(0, len(users), batch_size):
        rows = slice(start, start + batch_size)
        with autocast(precision, features.device):
            diff, _ = net.score_difference(features, users[rows], pos[rows], neg[rows])
        correct += int((diff > 0).sum())
    return correct / len(users)


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


@dataclass
class VBPRTrainingResult:
    """The best-validation checkpoint and one history row per epoch (epoch, learning_rate, train_loss,
    validation_accuracy, seconds)."""

    model: VBPRModel
    history: pd.DataFrame
    best_epoch: int
    device_used: str
    precision_used: str = "fp32"  # the resolved forward precision

    @property
    def validation_accuracy(self) -> float:
        return float(self.history.loc[self.history["epoch"] == self.best_epoch, "validation_accuracy"].iloc[0])


def _user_triplets(ts: TripletSet, n_users: int, n_items: int, name: str) -> tuple[np.ndarray, ...]:
    """(users, positives, negatives) as int64 for the triplets that carry a user, and how many do not."""
    with_user = np.flatnonzero(ts.user_idx >= 0)
    if len(with_user) == 0:
        raise ValueError(f"no {name} triplet carries a user (all user_idx == -1); VBPR cannot learn user factors")
    users, pos, neg = (
        np.asarray(column[with_user], dtype=np.int64) for column in (ts.user_idx, ts.positive, ts.negative)
    )
    if users.max() >= n_users:
        raise ValueError(f"{name} user_idx {users.max()} >= n_users {n_users}")
    for column_name, column in (("positive", pos), ("negative", neg)):
        if column.min() < 0 or column.max() >= n_items:
            raise ValueError(f"{name} {column_name} item outside [0, {n_items})")
    return users, pos, neg, len(ts) - len(with_user)


def train_vbpr(
    features: np.ndarray,
    train: TripletSet,
    validation: TripletSet,
    n_users: int,
    config: VBPRConfig = VBPRConfig(),
    progress: Callable[[str], None] | None = None,
) -> VBPRTrainingResult:
    """Train VBPR with BPR loss + Adam on the triplets that carry a user; deterministic for a seed on CPU.

    features: [N, F] item features (the same z-scored features CuratorNet gets). n_users: size of the
    user index (user_idx values must lie in [0, n_users)). ``validation`` drives the learning-rate
    schedule, early stopping and the choice of the returned epoch.
    """
    say = progress or (lambda message: None)
    features = np.asarray(features)
    if features.ndim != 2 or not np.issubdtype(features.dtype, np.floating) or not np.isfinite(features).all():
        raise ValueError(f"features must be a finite 2-d float array, got shape {features.shape}")
    users, pos, neg, skipped = _user_triplets(train, n_users, len(features), "training")
    val_users, val_pos, val_neg, _ = _user_triplets(validation, n_users, len(features), "validation")

    device = resolve_device(config.device)
    precision = resolve_precision(config.precision, device)
    say(
        f"training VBPR on {device} ({precision}): {len(users)} triplets with a user, {skipped} one-item triplets "
        f"skipped, {len(val_users)} validation triplets"
    )
    with deterministic_algorithms(device.type == "cpu"):
        feats = torch.as_tensor(features, dtype=torch.float32).to(device)
        generator = torch.Generator().manual_seed(config.seed)
        net = _VBPRNet(n_users, len(features), features.shape[1], config, generator).to(device)
        users_t, pos_t, neg_t = (torch.from_numpy(a).to(device) for a in (users, pos, neg))
        validation_t = [torch.from_numpy(a).to(device) for a in (val_users, val_pos, val_neg)]
        epochs = train_epochs(
            net,
            config,
            lambda rows: vbpr_loss(net, feats, users_t[rows], pos_t[rows], neg_t[rows], config.l2_lambda, precision),
            lambda: _validation_accuracy(net, feats, *validation_t, config.batch_size, precision),
            n_train=len(users),
            device=device,
            rows_on_device=True,
            say=say,
            label="VBPR ",
        )
        net.load_state_dict(epochs.best_state)
        model = _scoring_model(net, feats, np.unique(users), int(skipped))
    return VBPRTrainingResult(model, epochs.history, epochs.best_epoch, str(device), precision)


@torch.no_grad()
def _scoring_model(net: _VBPRNet, features: Tensor, trained_users: np.ndarray, skipped: int) -> VBPRModel:
    """The numpy scoring model of ``net``: item visual factors E^T f_i and biases beta_i + beta' . f_i precomputed.

    Users without a training triplet hold only their random init: it is zeroed so that their scores are
    exactly the non-personalised part, not noise.
    """
    unseen = np.ones(len(net.user_latent), dtype=bool)
    unseen[trained_users] = False
    user_latent, user_visual = net.user_latent.cpu().numpy().copy(), net.user_visual.cpu().numpy().copy()
    user_latent[unseen], user_visual[unseen] = 0.0, 0.0
    return VBPRModel(
        user_latent,
        user_visual,
        net.item_latent.cpu().numpy().copy(),
        (features @ net.projection).cpu().numpy(),  # [N, K2] item visual factors
        (net.item_bias + features @ net.visual_bias).cpu().numpy(),  # [N] item + visual bias
        skipped_triplets=skipped,
    )
