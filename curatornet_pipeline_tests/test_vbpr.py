"""VBPR baseline: it learns user preferences, is deterministic, skips user-less triplets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from curatornet_pipeline.core.triplet_set import TripletSet
from curatornet_pipeline.core.vbpr import VBPRConfig, VBPRModel, train_vbpr

N_USERS, N_GROUPS, PER_GROUP = 30, 3, 12


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """These tensors are tiny: on a shared 2-core machine thread hand-offs cost more than they save (5x)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def preference_problem(seed: int, n_triplets: int = 3000):
    """Each user likes one visual group of items; one third of the triplets are user-less one-item ones."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=2.0, size=(N_GROUPS, 8))
    group = np.repeat(np.arange(N_GROUPS), PER_GROUP)
    features = (centers[group] + rng.normal(size=(len(group), 8))).astype(np.float32)
    liked = rng.integers(0, N_GROUPS, N_USERS)
    users = rng.integers(0, N_USERS, n_triplets)
    other = (liked[users] + rng.integers(1, N_GROUPS, n_triplets)) % N_GROUPS
    positive = liked[users] * PER_GROUP + rng.integers(0, PER_GROUP, n_triplets)
    negative = other * PER_GROUP + rng.integers(0, PER_GROUP, n_triplets)
    user_idx = np.where(np.arange(n_triplets) % 3 == 0, -1, users)
    ts = TripletSet(
        profile_offsets=np.arange(n_triplets + 1, dtype=np.int64),
        profile_items=positive.astype(np.int32),
        profile_id=np.arange(n_triplets, dtype=np.int32),
        positive=positive.astype(np.int32),
        negative=negative.astype(np.int32),
        user_idx=user_idx.astype(np.int32),
    )
    return features, ts, liked, group


CONFIG = VBPRConfig(latent_dim=8, visual_dim=8, learning_rate=0.02, epochs=8, batch_size=256, device="cpu")


def pairwise_accuracy(model: VBPRModel, liked: np.ndarray, group: np.ndarray) -> float:
    """Mean over users of the fraction of (liked item, other item) pairs ranked correctly."""
    items = np.arange(len(group))
    accs = []
    for u in range(N_USERS):
        scores = model.score(u, items)
        good, bad = scores[group == liked[u]], scores[group != liked[u]]
        accs.append((good[:, None] > bad[None, :]).mean())
    return float(np.mean(accs))


def test_vbpr_learns_user_preferences_well_above_chance():
    features, ts, liked, group = preference_problem(0)
    messages: list[str] = []
    model = train_vbpr(features, ts, N_USERS, CONFIG, messages.append)
    assert pairwise_accuracy(model, liked, group) > 0.9
    assert model.skipped_triplets == 1000
    assert "1000 one-item triplets skipped" in messages[0]
    assert len([m for m in messages if m.startswith("VBPR epoch")]) == CONFIG.epochs


def test_vbpr_is_deterministic_and_seed_dependent():
    features, ts, _, _ = preference_problem(1, 600)
    config = VBPRConfig(**{**CONFIG.__dict__, "epochs": 2})
    a, b = train_vbpr(features, ts, N_USERS, config), train_vbpr(features, ts, N_USERS, config)
    c = train_vbpr(features, ts, N_USERS, VBPRConfig(**{**config.__dict__, "seed": 1}))
    items = np.arange(len(features))
    for u in range(N_USERS):
        assert np.array_equal(a.score(u, items), b.score(u, items))
    assert not np.array_equal(a.score(0, items), c.score(0, items))


def test_score_follows_the_vbpr_formula_and_unseen_users_get_the_non_personal_part():
    features, ts, _, _ = preference_problem(2, 600)
    ts.user_idx[ts.user_idx == 5] = -1  # user 5 never appears in training
    model = train_vbpr(features, ts, N_USERS, VBPRConfig(**{**CONFIG.__dict__, "epochs": 1}))
    items = np.array([3, 0, 17])
    expected = (
        model.item_bias[items]
        + model.item_latent[items] @ model.user_latent[2]
        + model.item_visual[items] @ model.user_visual[2]
    )
    assert np.allclose(model.score(2, items), expected)
    assert np.allclose(model.score(5, items), model.item_bias[items])
    with pytest.raises(ValueError, match="outside"):
        model.score(N_USERS, items)


def test_vbpr_bytes_round_trip():
    features, ts, _, _ = preference_problem(3, 300)
    model = train_vbpr(features, ts, N_USERS, VBPRConfig(**{**CONFIG.__dict__, "epochs": 1}))
    loaded = VBPRModel.from_bytes(model.to_bytes())
    assert np.array_equal(loaded.score(4, np.arange(10)), model.score(4, np.arange(10)))
    assert loaded.skipped_triplets == model.skipped_triplets


def test_vbpr_rejects_triplets_without_users_and_out_of_range_users():
    features, ts, _, _ = preference_problem(4, 30)
    no_users = ts.subset(np.arange(30))
    no_users.user_idx = np.full(30, -1, dtype=np.int32)
    with pytest.raises(ValueError, match="no training triplet carries a user"):
        train_vbpr(features, no_users, N_USERS, CONFIG)
    with pytest.raises(ValueError, match="n_users"):
        train_vbpr(features, ts, 2, CONFIG)
