"""Small synthetic inputs shared by the training, VBPR and precision tests."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from curatornet_pipeline.core.model import CuratorNetConfig
from curatornet_pipeline.core.triplet_set import TripletSet

TOY_MODEL = CuratorNetConfig(input_dim=16, item_dims=(16, 16), user_dims=(16, 16))


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """These tensors are tiny: on a shared 2-core machine thread hand-offs cost more than they save (5x)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def shared_profile_triplets(seed: int, n_items: int = 30, n_profiles: int = 12, n_triplets: int = 80):
    """Many triplets per profile, repeated items inside profiles: where dedup matters."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 9, n_profiles)
    return TripletSet(
        profile_offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        profile_items=rng.integers(0, n_items, lengths.sum()).astype(np.int32),
        profile_id=rng.integers(0, n_profiles, n_triplets).astype(np.int32),
        positive=rng.integers(0, n_items, n_triplets).astype(np.int32),
        negative=rng.integers(0, n_items, n_triplets).astype(np.int32),
        user_idx=rng.integers(-1, 5, n_triplets).astype(np.int32),
    )


def toy_problem(seed: int, n_triplets: int, n_groups: int = 4, per_group: int = 10):
    """Items in visual groups; a profile is drawn from one group, its positive too, its negative elsewhere."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=3.0, size=(n_groups, 16))
    group = np.repeat(np.arange(n_groups), per_group)
    features = (centers[group] + rng.normal(size=(len(group), 16))).astype(np.float32)

    lengths = rng.integers(1, 6, n_triplets)
    profile_group = rng.integers(0, n_groups, n_triplets)
    profile_items = np.concatenate(
        [g * per_group + rng.integers(0, per_group, n) for g, n in zip(profile_group, lengths)]
    )
    negative_group = (profile_group + rng.integers(1, n_groups, n_triplets)) % n_groups
    ts = TripletSet(
        profile_offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        profile_items=profile_items.astype(np.int32),
        profile_id=np.arange(n_triplets, dtype=np.int32),
        positive=(profile_group * per_group + rng.integers(0, per_group, n_triplets)).astype(np.int32),
        negative=(negative_group * per_group + rng.integers(0, per_group, n_triplets)).astype(np.int32),
        user_idx=np.full(n_triplets, -1, dtype=np.int32),
    )
    return features, ts
