"""Cold-start recommendation from a list of artwork ids."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from curatornet_pipeline.core.model import CuratorNet, CuratorNetConfig
from curatornet_pipeline.core.recommend import Recommender

CONFIG = CuratorNetConfig(input_dim=10, item_dims=(8, 6), user_dims=(7, 6))
N_ITEMS = 40


@pytest.fixture(scope="module")
def setup():
    model = CuratorNet(CONFIG, torch.Generator().manual_seed(0))
    features = np.random.default_rng(0).normal(size=(N_ITEMS, 10)).astype(np.float32)
    ids = [f"art{i:03d}" for i in range(N_ITEMS)]
    # fp32: the rankings are compared with an fp32 pass through the full network (bf16: test_precision.py).
    return model, features, ids, Recommender.from_features(model, features, ids, precision="fp32")


def full_model_ranking(model: CuratorNet, features: np.ndarray, profile: list[int]) -> np.ndarray:
    """Scores of every item through the full network (item tower + pooling + user tower), independently."""
    with torch.no_grad():
        feats = torch.from_numpy(features)
        x_ui, _ = model.score_triplets(
            feats, torch.tensor(profile), torch.zeros(len(profile), dtype=torch.long), 1,
            torch.zeros(N_ITEMS, dtype=torch.long), torch.arange(N_ITEMS), torch.arange(N_ITEMS),
        )
    return x_ui.numpy()


def test_ranking_equals_full_model_scoring_and_excludes_the_profile(setup):
    model, features, ids, recommender = setup
    profile = [3, 17, 25]
    recs = recommender.recommend([ids[i] for i in profile], k=10)
    assert recs.columns.tolist() == ["rank", "artwork_id", "score"]
    assert recs["rank"].tolist() == list(range(1, 11))
    scores = full_model_ranking(model, features, profile)
    scores[profile] = -np.inf
    expected = [ids[i] for i in np.argsort(-scores, kind="stable")[:10]]
    assert recs["artwork_id"].tolist() == expected
    assert recs["score"].to_numpy() == pytest.approx(np.sort(scores)[::-1][:10], abs=1e-5)
    assert not set(recs["artwork_id"]) & {ids[i] for i in profile}


def test_profile_items_can_be_kept_and_k_is_capped_by_the_catalogue(setup):
    _, _, ids, recommender = setup
    everything = recommender.recommend([ids[5]], k=1000, exclude_profile=False)
    assert len(everything) == N_ITEMS and ids[5] in set(everything["artwork_id"])
    assert len(recommender.recommend([ids[5], ids[6]], k=1000)) == N_ITEMS - 2


def test_unknown_ids_are_listed_in_the_error(setup):
    _, _, ids, recommender = setup
    with pytest.raises(ValueError, match="unknown artwork ids: 'nope', 'missing'"):
        recommender.recommend([ids[0], "nope", "missing"])
    with pytest.raises(ValueError, match="empty"):
        recommender.recommend([])


def test_recommender_leaves_the_callers_model_untouched(setup):
    model, features, ids, _ = setup
    double = CuratorNet(CONFIG, torch.Generator().manual_seed(1)).double()
    Recommender.from_features(double, features.astype(np.float64), ids)
    assert next(double.parameters()).dtype == torch.float64
    with pytest.raises(ValueError, match="must be"):
        Recommender(model, np.zeros((N_ITEMS - 1, 6)), ids)
