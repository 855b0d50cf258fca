"""CuratorNet network: shapes, exact variable-length pooling, initialisation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from curatornet_pipeline.core.model import CuratorNet, CuratorNetConfig, pool_profiles

SMALL = CuratorNetConfig(input_dim=12, item_dims=(10, 6), user_dims=(9, 6))


def _model(config: CuratorNetConfig = SMALL, seed: int = 0) -> CuratorNet:
    return CuratorNet(config, generator=torch.Generator().manual_seed(seed)).double()


def test_default_architecture_matches_the_paper():
    model = CuratorNet()
    item_shapes = [tuple(m.weight.shape) for m in model.item_tower if isinstance(m, torch.nn.Linear)]
    user_shapes = [tuple(m.weight.shape) for m in model.user_tower if isinstance(m, torch.nn.Linear)]
    assert item_shapes == [(200, 2048), (200, 200)]
    assert user_shapes == [(300, 400), (300, 300), (200, 300)]
    assert sum(isinstance(m, torch.nn.SELU) for m in model.modules()) == 5


def test_shapes_of_item_user_and_triplet_scores():
    model = _model()
    feats = torch.randn(7, 12, dtype=torch.float64)
    item_vecs = model.item_vectors(feats)
    assert item_vecs.shape == (7, 6)
    slot_items = torch.tensor([0, 1, 2, 3, 4, 5, 6])
    slot_profile = torch.tensor([0, 0, 1, 2, 2, 2, 2])
    assert model.user_vectors(item_vecs, slot_items, slot_profile, 3).shape == (3, 6)
    x_ui, x_uj = model.score_triplets(
        feats, slot_items, slot_profile, 3, torch.tensor([0, 2, 1, 1]), torch.tensor([3, 4, 5, 6]),
        torch.tensor([0, 0, 1, 2]),
    )
    assert x_ui.shape == x_uj.shape == (4,)


def test_score_is_dot_product_of_user_and_item_vectors():
    model = _model()
    feats = torch.randn(5, 12, dtype=torch.float64)
    slot_items, slot_profile = torch.tensor([0, 1, 2]), torch.tensor([0, 0, 1])
    x_ui, x_uj = model.score_triplets(
        feats, slot_items, slot_profile, 2, torch.tensor([1, 0]), torch.tensor([3, 4]), torch.tensor([4, 3])
    )
    item_vecs = model.item_vectors(feats)
    users = model.user_vectors(item_vecs, slot_items, slot_profile, 2)
    assert torch.allclose(x_ui, torch.stack([users[1] @ item_vecs[3], users[0] @ item_vecs[4]]))
    assert torch.allclose(x_uj, torch.stack([users[1] @ item_vecs[4], users[0] @ item_vecs[3]]))


def test_pooling_equals_a_per_profile_loop_for_shuffled_variable_length_profiles():
    rng = np.random.default_rng(1)
    lengths = [1, 5, 2, 9, 1, 3]
    segment = np.repeat(np.arange(len(lengths)), lengths)
    rng.shuffle(segment)  # slots of one profile need not be contiguous
    vectors = torch.from_numpy(rng.normal(size=(len(segment), 4)))
    pooled = pool_profiles(vectors, torch.from_numpy(segment), len(lengths))
    for p in range(len(lengths)):
        rows = vectors[torch.from_numpy(segment == p)]
        expected = torch.cat([rows.mean(0), rows.max(0).values])
        assert torch.allclose(pooled[p], expected, rtol=0, atol=1e-12)


def test_padding_is_never_pooled():
    # All item vectors negative: a max over zero padding would return 0, a mean over padding would shrink.
    vectors = -1.0 - torch.rand(10, 3, dtype=torch.float64)
    segment = torch.tensor([0] + [1] * 9)  # a length-1 profile next to a length-9 one
    pooled = pool_profiles(vectors, segment, 2)
    assert torch.equal(pooled[0], torch.cat([vectors[0], vectors[0]]))
    assert (pooled[:, 3:] < 0).all()
    alone = pool_profiles(vectors[:1], torch.tensor([0]), 1)
    assert torch.equal(alone[0], pooled[0])


def test_empty_profile_is_rejected():
    with pytest.raises(ValueError, match="at least one item"):
        pool_profiles(torch.zeros(2, 3), torch.tensor([0, 2]), 3)


def test_gradients_flow_through_mean_and_max():
    model = _model()
    feats = torch.randn(4, 12, dtype=torch.float64)
    x_ui, x_uj = model.score_triplets(
        feats, torch.tensor([0, 1]), torch.tensor([0, 0]), 1,
        torch.tensor([0]), torch.tensor([2]), torch.tensor([3]),
    )
    (x_ui - x_uj).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert model.item_tower[0].weight.grad.abs().sum() > 0


def test_xavier_uniform_weights_and_zero_biases():
    model = CuratorNet(generator=torch.Generator().manual_seed(3))
    for linear in [m for m in model.modules() if isinstance(m, torch.nn.Linear)]:
        fan_out, fan_in = linear.weight.shape
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        assert torch.count_nonzero(linear.bias) == 0
        assert linear.weight.abs().max() <= bound
        # Uniform(-b, b) has standard deviation b / sqrt(3).
        assert abs(linear.weight.std().item() - bound / math.sqrt(3)) < 0.05 * bound
    assert len(model.weight_matrices()) == 5
    assert all(w.ndim == 2 for w in model.weight_matrices())


def test_initialisation_is_seeded():
    a, b, c = (CuratorNet(SMALL, torch.Generator().manual_seed(s)) for s in (7, 7, 8))
    for pa, pb, pc in zip(a.parameters(), b.parameters(), c.parameters()):
        assert torch.equal(pa, pb)
    assert not torch.equal(a.item_tower[0].weight, c.item_tower[0].weight)


def test_config_rejects_mismatched_output_dims_and_round_trips():
    with pytest.raises(ValueError, match="dot products"):
        CuratorNetConfig(item_dims=(200, 100), user_dims=(300, 200))
    config = CuratorNetConfig(input_dim=12, item_dims=[10, 6], user_dims=[9, 6])
    assert config == SMALL
    assert CuratorNetConfig.from_dict(config.to_dict()) == config


def test_embed_catalogue_matches_item_tower():
    model = _model().float()
    feats = np.random.default_rng(0).normal(size=(11, 12)).astype(np.float32)
    out = model.embed_catalogue(feats, batch_size=4, precision="fp32")  # bf16 parity: test_precision.py
    assert out.shape == (11, 6) and out.dtype == np.float32
    assert np.allclose(out, model.item_vectors(torch.from_numpy(feats)).detach().numpy(), atol=1e-6)
