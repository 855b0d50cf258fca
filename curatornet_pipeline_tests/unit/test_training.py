"""CuratorNet training: efficient loss == naive loss, learning, determinism, LR schedule, storage."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pytest
import torch

from curatornet_pipeline.core.device import resolve_device
from curatornet_pipeline.core.epochs import PlateauSchedule
from curatornet_pipeline.core.model import CuratorNet, CuratorNetConfig
from curatornet_pipeline.core.training import (
    TrainingConfig,
    batch_loss,
    gather_batch,
    model_from_bytes,
    model_to_bytes,
    naive_triplet_loss,
    train_curatornet,
    training_config_from_bytes,
    validation_accuracy,
)
from curatornet_pipeline.core.triplet_set import TripletSet
from curatornet_pipeline_tests.support.toy_data import (  # noqa: F401
    TOY_MODEL,
    one_torch_thread,
    shared_profile_triplets,
    toy_problem,
)

FAST = dict(
    learning_rate=1e-2, min_learning_rate=1e-5, batch_size=64, max_epochs=4, device="cpu", log_every_batches=0
)


def loss_written_out(model: CuratorNet, features: np.ndarray, ts: TripletSet, rows: np.ndarray, l2_lambda: float):
    """The loss from its definition, one triplet at a time, sharing no code with core.training:
    mean of -log sigmoid(x_ui - x_uj) with the user = user tower of [mean, max] of the profile's item vectors,
    plus lambda / 2 times the squared entries of every weight matrix (biases excluded)."""
    feats = torch.as_tensor(features)
    terms = []
    for t in rows:
        profile_vecs = model.item_tower(feats[torch.as_tensor(ts.profile(int(ts.profile_id[t])), dtype=torch.long)])
        user = model.user_tower(torch.cat([profile_vecs.mean(dim=0), profile_vecs.max(dim=0).values]))
        x_ui = torch.dot(user, model.item_tower(feats[int(ts.positive[t])]))
        x_uj = torch.dot(user, model.item_tower(feats[int(ts.negative[t])]))
        terms.append(-torch.log(torch.sigmoid(x_ui - x_uj)))
    squared_weights = sum(
        (param**2).sum() for name, param in model.named_parameters() if name.endswith("weight") and param.ndim == 2
    )
    return torch.stack(terms).mean() + l2_lambda / 2 * squared_weights


def test_efficient_and_naive_losses_and_gradients_equal_the_loss_written_out_in_float64():
    ts = shared_profile_triplets(0)
    features = np.random.default_rng(1).normal(size=(30, 16))
    model = CuratorNet(TOY_MODEL, torch.Generator().manual_seed(0)).double()
    with torch.no_grad():  # non-zero biases, so that a loss penalising them would differ
        for name, param in model.named_parameters():
            if name.endswith("bias"):
                param.uniform_(-0.5, 0.5, generator=torch.Generator().manual_seed(param.numel()))
    rows = np.random.default_rng(2).permutation(len(ts))[:50]
    params = list(model.parameters())
    for l2_lambda in (0.0, 0.1):
        reference = loss_written_out(model, features, ts, rows, l2_lambda)
        reference_grads = torch.autograd.grad(reference, params)
        for loss_fn in (batch_loss, naive_triplet_loss):
            loss = loss_fn(model, features, ts, rows, l2_lambda)
            assert torch.allclose(loss, reference, rtol=1e-12, atol=1e-12), (loss_fn.__name__, l2_lambda)
            for grad, expected in zip(torch.autograd.grad(loss, params), reference_grads):
                assert torch.allclose(grad, expected, rtol=1e-9, atol=1e-12), (loss_fn.__name__, l2_lambda)


def test_efficient_loss_matches_naive_in_float32_default_model():
    ts = shared_profile_triplets(3, n_items=40)
    features = np.random.default_rng(4).normal(size=(40, 2048)).astype(np.float32)
    model = CuratorNet(generator=torch.Generator().manual_seed(0))
    rows = np.arange(len(ts))
    efficient = batch_loss(model, features, ts, rows, 1e-4)
    assert torch.allclose(efficient, naive_triplet_loss(model, features, ts, rows, 1e-4), rtol=1e-5)


def test_batch_runs_each_tower_once_per_distinct_input():
    ts = shared_profile_triplets(5)
    rows = np.arange(len(ts))
    b = gather_batch(ts, rows)
    touched = np.concatenate([ts.profile(p) for p in np.unique(ts.profile_id)])
    assert np.array_equal(b.items, np.unique(np.concatenate([touched, ts.positive, ts.negative])))
    assert b.n_profiles == len(np.unique(ts.profile_id))
    # The indices reconstruct every triplet exactly.
    assert np.array_equal(b.items[b.triplet_positive], ts.positive)
    for t in range(len(ts)):
        slots = b.items[b.slot_items[b.slot_profile == b.triplet_profile[t]]]
        assert np.array_equal(slots, ts.profile(ts.profile_id[t]))


def test_training_learns_a_visual_preference_problem():
    features, train = toy_problem(0, 800)
    _, validation = toy_problem(0, 1000)
    validation = validation.subset(np.arange(800, 1000))
    untrained = CuratorNet(TOY_MODEL, torch.Generator().manual_seed(0))  # the initialisation training starts from
    assert validation_accuracy(untrained, features, validation) < 0.8
    messages: list[str] = []
    result = train_curatornet(features, train, validation, TrainingConfig(**FAST), messages.append, TOY_MODEL)
    history = result.history
    assert list(history.columns) == [
        "epoch", "learning_rate", "train_loss", "validation_accuracy", "seconds", "triplets_per_second"
    ]
    assert len(history) == 4
    assert history["validation_accuracy"].max() > 0.9
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]
    assert result.best_epoch == int(history["epoch"][history["validation_accuracy"].idxmax()])
    best_accuracy = history["validation_accuracy"].max()
    assert validation_accuracy(result.model, features, validation, precision=result.precision_used) == pytest.approx(
        best_accuracy
    )
    assert result.device_used == "cpu"
    assert sum(m.startswith("epoch ") for m in messages) == 4


def test_training_is_deterministic_on_cpu():
    features, train = toy_problem(1, 300)
    _, validation = toy_problem(2, 60)
    config = TrainingConfig(**FAST, seed=11)
    a = train_curatornet(features, train, validation, config, model_config=TOY_MODEL)
    b = train_curatornet(features, train, validation, config, model_config=TOY_MODEL)
    for (name, pa), pb in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(pa, pb), name
    cols = ["epoch", "learning_rate", "train_loss", "validation_accuracy"]
    assert a.history[cols].equals(b.history[cols])
    other_seed = TrainingConfig(**{**FAST, "seed": 12})
    c = train_curatornet(features, train, validation, other_seed, model_config=TOY_MODEL)
    assert not torch.equal(a.model.item_tower[0].weight, c.model.item_tower[0].weight)


def test_training_reproduces_the_run_recorded_before_the_epoch_loop_was_shared():
    """Seed 0, fp32 on the CPU: loss curve, stopping, progress lines and weights as recorded at commit c2b3d6b,
    when the epoch loop still lived here. (The tolerance only absorbs last-bit differences between CPUs; a
    change in batch order, schedule or checkpoint choice moves these numbers by far more.)"""
    features, ts = toy_problem(0, 600)
    train, validation = ts.subset(np.arange(100, 600)), ts.subset(np.arange(100))
    config = TrainingConfig(
        **{**FAST, "precision": "fp32", "max_epochs": 6, "early_stopping_patience": 2, "log_every_batches": 4}
    )
    messages: list[str] = []
    result = train_curatornet(features, train, validation, config, messages.append, TOY_MODEL)
    np.testing.assert_allclose(
        result.history["train_loss"], [0.7123349609375, 0.0036994853019714355, 0.003739633798599243], rtol=1e-4
    )
    assert result.history["validation_accuracy"].tolist() == [1.0, 1.0, 1.0]
    assert result.history["learning_rate"].tolist() == [0.01, 0.01, 0.01]
    assert result.best_epoch == 1
    np.testing.assert_allclose(
        result.model.item_tower[0].weight.detach().numpy().ravel()[:3],
        [-0.048209212720394135, 0.2524507939815521, -0.37076956033706665],
        rtol=1e-4,
    )
    assert [m.split(" (")[0] for m in messages] == [
        "training CuratorNet on cpu",
        "epoch 1 batch 4/8 loss 0.0164",
        "epoch 1 batch 8/8 loss 0.0037",
        "epoch 1/6 lr 1.00e-02 loss 0.7123 val_acc 1.0000",
        "epoch 2 batch 4/8 loss 0.0037",
        "epoch 2 batch 8/8 loss 0.0037",
        "epoch 2/6 lr 1.00e-02 loss 0.0037 val_acc 1.0000",
        "epoch 3 batch 4/8 loss 0.0037",
        "epoch 3 batch 8/8 loss 0.0037",
        "epoch 3/6 lr 1.00e-02 loss 0.0037 val_acc 1.0000",
        "stopping: 2 epochs without a better validation accuracy",
        "best epoch 1 with validation accuracy 1.0000",
    ]
    assert messages[3].endswith("triplets/s)")


def test_lr_decays_after_patience_with_a_floor_and_best_checkpoint_is_kept():
    features, train = toy_problem(3, 200)
    _, validation = toy_problem(4, 40)
    # positive == negative makes x_ui == x_uj, so validation accuracy is 0 every epoch: only epoch 1 "improves".
    validation.negative = validation.positive.copy()
    config = TrainingConfig(**{**FAST, "max_epochs": 7, "learning_rate": 1e-2, "min_learning_rate": 5e-3})
    result = train_curatornet(features, train, validation, config, model_config=TOY_MODEL)
    # Epochs 2 and 3 do not improve -> decay after epoch 3 (0.6 * 1e-2 = 6e-3);
    # epochs 4 and 5 do not either -> decay after epoch 5, floored at 5e-3.
    assert result.history["learning_rate"].tolist() == pytest.approx([1e-2, 1e-2, 1e-2, 6e-3, 6e-3, 5e-3, 5e-3])
    assert result.best_epoch == 1
    one_epoch_config = TrainingConfig(**{**FAST, "max_epochs": 1})
    one_epoch = train_curatornet(features, train, validation, one_epoch_config, model_config=TOY_MODEL)
    for pa, pb in zip(result.model.parameters(), one_epoch.model.parameters()):
        assert torch.equal(pa, pb)


def test_plateau_schedule_decays_stops_and_keeps_the_earliest_best():
    schedule = PlateauSchedule(1e-2, 0.5, lr_patience=2, min_learning_rate=3e-3, early_stopping_patience=3)
    seen = []
    for accuracy in (0.5, 0.6, 0.6, 0.55, 0.7, 0.7, 0.69, 0.7):
        improved = schedule.update(accuracy)
        seen.append((improved, schedule.learning_rate, schedule.should_stop))
        if schedule.should_stop:
            break
    assert [s[0] for s in seen] == [True, True, False, False, True, False, False, False]
    # Two epochs without a new best halve the rate (then the count restarts); the floor holds it at 3e-3.
    assert [s[1] for s in seen] == pytest.approx([1e-2, 1e-2, 1e-2, 5e-3, 5e-3, 5e-3, 3e-3, 3e-3])
    assert [s[2] for s in seen] == [False] * 7 + [True]
    assert (schedule.best_epoch, schedule.best_accuracy) == (5, 0.7)  # ties keep the earlier epoch
    never = PlateauSchedule(1e-2, 0.5, 2, 0.0, early_stopping_patience=0)
    for _ in range(20):
        never.update(0.1)
    assert not never.should_stop


def test_plateau_with_a_minimum_improvement_stops_a_creeping_model_but_keeps_its_best_epoch():
    schedule = PlateauSchedule(1e-3, 0.6, 2, 1e-6, early_stopping_patience=3, min_improvement=0.001)
    # Each epoch is a new best, but after 0.980 none is more than 0.001 above the last that counted.
    accuracies = (0.950, 0.970, 0.980, 0.9804, 0.9807, 0.9809, 0.9830)
    stopped_at = None
    for epoch, accuracy in enumerate(accuracies, 1):
        assert schedule.update(accuracy)  # strictly better every time: the checkpoint follows the best
        if schedule.should_stop:
            stopped_at = epoch
            break
    assert stopped_at == 6
    assert (schedule.best_epoch, schedule.best_accuracy) == (6, 0.9809)
    # Creeping progress adds up: 0.9830 is more than 0.001 above 0.980, the last accuracy that counted.
    patient = PlateauSchedule(1e-3, 0.6, 2, 1e-6, early_stopping_patience=4, min_improvement=0.001)
    for accuracy in accuracies:
        patient.update(accuracy)
    assert not patient.should_stop and patient.epochs_without_progress == 0
    with pytest.raises(ValueError, match="early_stopping_min_improvement"):
        TrainingConfig(early_stopping_min_improvement=-0.1)


def test_training_stops_after_early_stopping_patience_epochs_without_a_better_validation_accuracy():
    features, train = toy_problem(3, 200)
    _, validation = toy_problem(4, 40)
    validation.negative = validation.positive.copy()  # accuracy 0 every epoch: only epoch 1 is a best
    config = TrainingConfig(**{**FAST, "max_epochs": 20, "early_stopping_patience": 3})
    result = train_curatornet(features, train, validation, config, model_config=TOY_MODEL)
    assert result.history["epoch"].tolist() == [1, 2, 3, 4]
    assert result.best_epoch == 1


def test_bad_triplets_and_configs_are_rejected():
    features, train = toy_problem(0, 20)
    bad = train.subset(np.arange(20))
    bad.positive = bad.positive.copy()
    bad.positive[3] = len(features)
    with pytest.raises(ValueError, match="positive outside"):
        train_curatornet(features, bad, train, TrainingConfig(**FAST), model_config=TOY_MODEL)
    with pytest.raises(ValueError, match="validation"):
        empty = train.subset(np.arange(0))
        train_curatornet(features, train, empty, TrainingConfig(**FAST), model_config=TOY_MODEL)
    with pytest.raises(ValueError, match="lr_decay"):
        TrainingConfig(lr_decay=1.5)
    with pytest.raises(ValueError, match="early_stopping_patience"):
        TrainingConfig(early_stopping_patience=-1)


def test_resolve_device():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("gpu-please")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA GPU"):
            resolve_device("cuda")


def test_model_bytes_round_trip():
    model = CuratorNet(TOY_MODEL, torch.Generator().manual_seed(5))
    config = TrainingConfig(l2_lambda=1e-3, seed=9)
    blob = model_to_bytes(model, config)
    loaded = model_from_bytes(blob)
    assert loaded.config == TOY_MODEL
    assert training_config_from_bytes(blob) == config
    for pa, pb in zip(model.parameters(), loaded.parameters()):
        assert torch.equal(pa, pb)
    with pytest.raises(ValueError, match="not a CuratorNet"):
        bad = io.BytesIO()
        torch.save({"format": "something else"}, bad)
        model_from_bytes(bad.getvalue())


CALLS: list[str] = []


def _record_call() -> None:
    CALLS.append("executed")


class _Exploit:
    def __reduce__(self):
        return (_record_call, ())


def test_loading_a_tampered_blob_never_executes_code():
    buffer = io.BytesIO()
    torch.save({"format": "curatornet-state-v1", "state_dict": _Exploit()}, buffer)
    # A plain unpickler would run _record_call; weights_only loading must refuse instead.
    pickle.loads(pickle.dumps(_Exploit()))
    assert CALLS == ["executed"]
    with pytest.raises(pickle.UnpicklingError):
        model_from_bytes(buffer.getvalue())
    assert CALLS == ["executed"]


def test_device_batch_assembly_gives_the_same_loss_and_gradients():
    """The GPU training path assembles batches with torch ops on the device; run here on the CPU tensors."""
    from curatornet_pipeline.core.training import DeviceTriplets

    ts = shared_profile_triplets(3)
    features = np.random.default_rng(3).normal(size=(30, 16))
    rows = np.random.default_rng(4).permutation(len(ts))[:50]
    losses, grads = [], []
    for triplets in (ts, DeviceTriplets.from_set(ts, torch.device("cpu"))):
        model = CuratorNet(TOY_MODEL, generator=torch.Generator().manual_seed(0)).double()
        loss = batch_loss(model, torch.as_tensor(features), triplets, rows, l2_lambda=1e-3)
        loss.backward()
        losses.append(loss.item())
        grads.append([p.grad.clone() for p in model.parameters()])
    assert losses[0] == pytest.approx(losses[1], rel=1e-12)
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
