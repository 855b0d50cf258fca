"""VBPR fold-in: a vector for a customer VBPR never trained on, learned from their profile with the items frozen.

VBPR's score is beta_i + gamma_u . gamma_i + theta_u . (E^T f_i) + beta' . f_i (``core.vbpr``). For a new
customer u everything but (gamma_u, theta_u) is known: fold-in keeps the item side (biases, latent factors,
visual projection, visual bias) fixed and fits only u's two vectors by the loss VBPR trained with, BPR plus
lambda/2 times their squared norms, on (u, i, j) pairs: i a random item of u's profile, j uniform over the
catalogue outside it (classic BPR; VBPR's paper samples negatives this way). Vectors start at zero, which is
exactly the model without fold-in (scores beta_i + beta' . f_i), so the loss can only be compared, not luck.

Every new customer is fitted at once (their parameters are independent; one Adam step updates all of them),
for a stated number of steps. Deterministic for a seed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from curatornet_pipeline.core.vbpr import VBPRModel


@dataclass(frozen=True)
class FoldInConfig:
    """steps: Adam steps; pairs_per_step: (i, j) pairs drawn per customer and step."""

    steps: int = 100
    pairs_per_step: int = 32
    learning_rate: float = 0.05
    l2_lambda: float = 1e-4
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 0 or self.pairs_per_step < 1 or not self.learning_rate > 0 or self.l2_lambda < 0:
            raise ValueError(f"invalid FoldInConfig {self}")


@dataclass
class FoldInResult:
    """The new customers' vectors, in profile order, and the BPR loss on their profiles before and after."""

    user_latent: np.ndarray  # [U, K1]
    user_visual: np.ndarray  # [U, K2]
    loss_before: float  # the fixed evaluation pairs, zero vectors (= VBPR without fold-in)
    loss_after: float
    seconds: float
    steps: int


def _pairs(profiles: list[np.ndarray], n_items: int, per_user: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """(user row [U*B], positive [U*B], negative [U*B]): B profile items per user and B items outside it."""
    users = np.repeat(np.arange(len(profiles)), per_user)
    pos = np.concatenate([rng.choice(p, size=per_user) for p in profiles])
    owned = np.concatenate([u * n_items + p for u, p in enumerate(profiles)])  # (user, item) keys of the profiles
    neg = rng.integers(0, n_items, size=len(users))
    for _ in range(64):  # profiles are small next to the catalogue: a few redraws clear every clash
        clash = np.isin(users * n_items + neg, owned)
        if not clash.any():
            break
        neg[clash] = rng.integers(0, n_items, size=int(clash.sum()))
    return users, pos, neg


def _loss(
    model: VBPRModel, gamma: torch.Tensor, theta: torch.Tensor, pairs: tuple[np.ndarray, ...], l2_lambda: float
) -> torch.Tensor:
    users, pos, neg = (torch.from_numpy(a) for a in pairs)
    bias = torch.from_numpy(model.item_bias).float()  # [N]
    latent = torch.from_numpy(model.item_latent).float()  # [N, K1]
    visual = torch.from_numpy(model.item_visual).float()  # [N, K2]
    g, t = gamma[users], theta[users]  # [P, K1], [P, K2]
    diff = (
        bias[pos]
        - bias[neg]
        + (g * (latent[pos] - latent[neg])).sum(1)
        + (t * (visual[pos] - visual[neg])).sum(1)
    )  # [P]
    return F.softplus(-diff).mean() + l2_lambda * 0.5 * (g.pow(2).sum(1) + t.pow(2).sum(1)).mean()


def fold_in(model: VBPRModel, profiles: list[np.ndarray], config: FoldInConfig = FoldInConfig()) -> FoldInResult:
    """Fit (gamma_u, theta_u) for each profile (artwork_idx arrays) with the item side of ``model`` frozen."""
    if any(len(p) == 0 for p in profiles):
        raise ValueError("fold-in needs a non-empty profile for every new customer")
    profiles = [np.unique(np.asarray(p, dtype=np.int64)) for p in profiles]
    n_items = len(model.item_bias)
    rng = np.random.default_rng(config.seed)
    evaluation_pairs = _pairs(profiles, n_items, config.pairs_per_step, np.random.default_rng([config.seed, 1]))
    started = time.perf_counter()
    gamma = torch.zeros((len(profiles), model.item_latent.shape[1]), requires_grad=True)
    theta = torch.zeros((len(profiles), model.item_visual.shape[1]), requires_grad=True)
    with torch.no_grad():
        loss_before = float(_loss(model, gamma, theta, evaluation_pairs, config.l2_lambda))
    optimizer = torch.optim.Adam([gamma, theta], lr=config.learning_rate)
    for _ in range(config.steps):
        optimizer.zero_grad()
        _loss(model, gamma, theta, _pairs(profiles, n_items, config.pairs_per_step, rng), config.l2_lambda).backward()
        optimizer.step()
    seconds = time.perf_counter() - started
    with torch.no_grad():
        loss_after = float(_loss(model, gamma, theta, evaluation_pairs, config.l2_lambda))
    return FoldInResult(
        gamma.detach().numpy().copy(), theta.detach().numpy().copy(), loss_before, loss_after, seconds, config.steps
    )


def folded_in_model(model: VBPRModel, result: FoldInResult) -> VBPRModel:
    """A scoring model whose users are the folded-in customers (row k = profile k), items unchanged."""
    return VBPRModel(
        result.user_latent, result.user_visual, model.item_latent, model.item_visual, model.item_bias
    )
