"""Mixed precision: the setting's resolution, bf16 parity with fp32, determinism per precision, batched inference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from curatornet_pipeline.core.model import CuratorNet
from curatornet_pipeline.core.precision import PRECISION_ENV, cpu_has_native_bf16, resolve_precision
from curatornet_pipeline.core.training import TrainingConfig, batch_loss, train_curatornet
from curatornet_pipeline.core.vbpr import VBPRConfig, train_vbpr
from curatornet_pipeline_tests.test_training import TOY_MODEL, shared_profile_triplets
from curatornet_pipeline_tests.test_training import _one_torch_thread  # noqa: F401  (autouse: tiny tensors, 1 thread)

CPU = torch.device("cpu")


def test_precision_setting_resolves_explicitly_from_the_environment_and_from_the_hardware(monkeypatch):
    monkeypatch.delenv(PRECISION_ENV, raising=False)
    assert resolve_precision("fp32", CPU) == "fp32"
    assert resolve_precision("bf16", CPU) == "bf16"
    assert resolve_precision("auto", CPU) == ("bf16" if cpu_has_native_bf16() else "fp32")
    monkeypatch.setenv(PRECISION_ENV, "fp32")
    assert resolve_precision("auto", CPU) == "fp32"
    assert resolve_precision("bf16", CPU) == "bf16"  # an explicit setting wins over the environment
    monkeypatch.setenv(PRECISION_ENV, "half")
    with pytest.raises(ValueError, match=PRECISION_ENV):
        resolve_precision("auto", CPU)
    with pytest.raises(ValueError, match="unknown precision 'fp16'"):
        resolve_precision("fp16", CPU)
    with pytest.raises(ValueError, match="precision must be one of"):
        TrainingConfig(precision="fp16")
    with pytest.raises(ValueError, match="unknown precision"):
        VBPRConfig(precision="fp16")


def test_bf16_loss_and_gradients_match_fp32_on_the_default_model():
    """Stated tolerance: loss within 1% relative, every gradient within cosine 0.99 of the fp32 one."""
    ts = shared_profile_triplets(0, n_items=300, n_profiles=60, n_triplets=512)
    features = np.random.default_rng(1).normal(size=(300, 2048)).astype(np.float32)
    model = CuratorNet(generator=torch.Generator().manual_seed(0))
    rows = np.arange(len(ts))
    fp32 = batch_loss(model, features, ts, rows, 1e-4, "fp32")
    bf16 = batch_loss(model, features, ts, rows, 1e-4, "bf16")
    assert fp32.dtype == bf16.dtype == torch.float32  # the loss itself stays float32
    assert bf16.item() == pytest.approx(fp32.item(), rel=1e-2)
    params = list(model.parameters())
    for p, g32, g16 in zip(params, torch.autograd.grad(fp32, params), torch.autograd.grad(bf16, params)):
        assert g16.dtype == torch.float32  # gradients land on the float32 weights
        if g32.norm() > 0:
            cosine = torch.nn.functional.cosine_similarity(g32.flatten(), g16.flatten(), dim=0)
            assert cosine > 0.99, (p.shape, float(cosine))


def toy_training_problem(seed: int, n_triplets: int):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=3.0, size=(4, 16))
    group = np.repeat(np.arange(4), 10)
    features = (centers[group] + rng.normal(size=(40, 16))).astype(np.float32)
    ts = shared_profile_triplets(seed, 40, 30, n_triplets)
    return features, ts


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_training_is_deterministic_per_precision(precision):
    features, train = toy_training_problem(1, 300)
    _, validation = toy_training_problem(2, 60)
    config = TrainingConfig(
        learning_rate=1e-2, batch_size=64, max_epochs=2, device="cpu", log_every_batches=0, precision=precision
    )
    a = train_curatornet(features, train, validation, config, model_config=TOY_MODEL)
    b = train_curatornet(features, train, validation, config, model_config=TOY_MODEL)
    assert a.precision_used == precision
    for (name, pa), pb in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(pa, pb), name
    assert a.history["train_loss"].equals(b.history["train_loss"])
    assert all(t.dtype == torch.float32 for t in a.model.state_dict().values())


def test_the_precision_switch_changes_the_arithmetic():
    features, train = toy_training_problem(3, 200)
    _, validation = toy_training_problem(4, 60)
    common = dict(learning_rate=1e-2, batch_size=64, max_epochs=1, device="cpu", log_every_batches=0)
    fp32, bf16 = (
        train_curatornet(features, train, validation, TrainingConfig(**common, precision=p), model_config=TOY_MODEL)
        for p in ("fp32", "bf16")
    )
    w32, w16 = fp32.model.item_tower[0].weight, bf16.model.item_tower[0].weight
    assert not torch.equal(w32, w16)
    # Apart only by rounding: Adam can move a weight by up to lr per step either way, so compare norms.
    assert ((w32 - w16).norm() / w32.norm()).item() < 0.05


def test_vbpr_bf16_is_deterministic_and_close_to_fp32():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(40, 64)).astype(np.float32)
    ts = shared_profile_triplets(5, 40, 50, 600)  # users 0..4 (and user-less -1)
    base = dict(latent_dim=8, visual_dim=8, learning_rate=0.02, epochs=2, batch_size=128, device="cpu")
    a = train_vbpr(features, ts, 5, VBPRConfig(**base, precision="bf16"))
    b = train_vbpr(features, ts, 5, VBPRConfig(**base, precision="bf16"))
    c = train_vbpr(features, ts, 5, VBPRConfig(**base, precision="fp32"))
    items = np.arange(40)
    for u in range(5):
        assert np.array_equal(a.score(u, items), b.score(u, items))
    scores_bf16 = np.stack([a.score(u, items) for u in range(5)])
    scores_fp32 = np.stack([c.score(u, items) for u in range(5)])
    assert not np.array_equal(scores_bf16, scores_fp32)
    assert np.corrcoef(scores_bf16.ravel(), scores_fp32.ravel())[0, 1] > 0.99


def test_batched_user_vectors_equal_one_profile_at_a_time_and_bf16_inference_stays_close():
    model = CuratorNet(generator=torch.Generator().manual_seed(0))
    features = np.random.default_rng(0).normal(size=(50, 2048)).astype(np.float32)
    item_vecs = model.embed_catalogue(features, precision="fp32")
    profiles = [np.array([3]), np.array([1, 4, 4, 9]), np.arange(20, 45)]
    batched = model.profile_vectors(item_vecs, profiles, precision="fp32", chunk=2)  # two chunks
    one_by_one = np.stack([model.profile_vectors(item_vecs, [p], precision="fp32")[0] for p in profiles])
    np.testing.assert_allclose(batched, one_by_one, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="profile 1 is empty"):
        model.profile_vectors(item_vecs, [np.array([1]), np.array([], dtype=np.int64)], precision="fp32")

    item_bf16 = model.embed_catalogue(features, precision="bf16")
    assert item_bf16.dtype == np.float32
    cosine = (item_vecs * item_bf16).sum(1) / np.linalg.norm(item_vecs, axis=1) / np.linalg.norm(item_bf16, axis=1)
    assert cosine.min() > 0.99
