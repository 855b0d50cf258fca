"""The authors' length-grouped batching (core.batching) and the training loop that uses it."""

from __future__ import annotations

import numpy as np
import torch

from curatornet_pipeline.core.batching import batch_slots, length_grouped_batches, shuffled_batches
from curatornet_pipeline.core.model import CuratorNet
from curatornet_pipeline.core.training import TrainingConfig, batch_loss, naive_triplet_loss, train_curatornet
from curatornet_pipeline_tests.support.toy_data import (  # noqa: F401
    TOY_MODEL,
    one_torch_thread,
    shared_profile_triplets,
    toy_problem,
)


def test_every_triplet_exactly_once_per_epoch_one_length_per_batch_and_the_slot_bound_kept():
    lengths = np.random.default_rng(0).integers(1, 40, 5000)
    rng = np.random.default_rng(3)
    epochs = [length_grouped_batches(lengths, 600, rng) for _ in range(2)]
    for batches in epochs:
        rows = np.concatenate(batches)
        assert np.array_equal(np.sort(rows), np.arange(len(lengths)))  # every triplet, exactly once
        for batch in batches:
            assert len(np.unique(lengths[batch])) == 1  # one profile length: a dense [B, L] tensor, no padding
            assert batch_slots(lengths, batch) <= 600
            # Full: one more triplet of that length would pass the bound (unless it is the length's last batch).
        full = [b for b in batches if batch_slots(lengths, b) + lengths[b[0]] + 2 <= 600]
        assert len(full) <= len(np.unique(lengths))  # at most one partly filled batch per length
    # Reshuffled each epoch (the generator moves on), yet a fresh generator with the same seed repeats it.
    assert [b.tolist() for b in epochs[0]] != [b.tolist() for b in epochs[1]]
    again = length_grouped_batches(lengths, 600, np.random.default_rng(3))
    assert [b.tolist() for b in again] == [b.tolist() for b in epochs[0]]


def test_a_triplet_larger_than_the_bound_gets_a_batch_of_its_own():
    batches = length_grouped_batches(np.array([3, 50, 3, 50]), 20, np.random.default_rng(0))
    assert sorted(sorted(b.tolist()) for b in batches) == [[0, 2], [1], [3]]


def test_shuffled_batches_are_the_permutation_the_loop_always_cut():
    batches = shuffled_batches(10, 4, np.random.default_rng(5))
    assert [len(b) for b in batches] == [4, 4, 2]
    assert np.array_equal(np.concatenate(batches), np.random.default_rng(5).permutation(10))


def test_a_length_grouped_batch_pools_no_padding():
    # The batch's efficient loss equals the naive loss, where every triplet pools exactly its own profile.
    ts = shared_profile_triplets(2, n_items=30)
    features = np.random.default_rng(1).normal(size=(30, 16)).astype(np.float32)
    model = CuratorNet(TOY_MODEL, torch.Generator().manual_seed(0))
    lengths = ts.profile_lengths()[ts.profile_id]
    for rows in length_grouped_batches(lengths, 60, np.random.default_rng(0)):
        efficient = batch_loss(model, features, ts, rows, 1e-3)
        assert torch.allclose(efficient, naive_triplet_loss(model, features, ts, rows, 1e-3), rtol=1e-5)


def test_training_with_length_grouped_batches_learns_and_is_deterministic():
    features, train = toy_problem(0, 800)
    _, validation = toy_problem(0, 1000)
    validation = validation.subset(np.arange(800, 1000))
    config = TrainingConfig(
        learning_rate=1e-2, batching="length_grouped", max_batch_slots=400, max_epochs=3, device="cpu",
        log_every_batches=0, precision="fp32",
    )
    messages: list[str] = []
    a = train_curatornet(features, train, validation, config, messages.append, TOY_MODEL)
    b = train_curatornet(features, train, validation, config, model_config=TOY_MODEL)
    assert a.history["validation_accuracy"].max() > 0.9
    assert a.history[["train_loss", "validation_accuracy"]].equals(b.history[["train_loss", "validation_accuracy"]])
    assert "batches of one profile length, at most 400 profile+item slots each" in messages[0]
    shuffled = train_curatornet(features, train, validation, TrainingConfig(**{**config.__dict__, "batching": "shuffled"}),
                                model_config=TOY_MODEL)
    assert not shuffled.history["train_loss"].equals(a.history["train_loss"])


def test_gradient_clipping_bounds_every_step_and_is_off_by_default():
    features, train = toy_problem(1, 300)
    _, validation = toy_problem(2, 60)
    base = dict(learning_rate=1e-2, batch_size=64, max_epochs=2, device="cpu", log_every_batches=0, precision="fp32")
    assert TrainingConfig().max_grad_norm == 0.0
    unclipped = train_curatornet(features, train, validation, TrainingConfig(**base), model_config=TOY_MODEL)
    loose = train_curatornet(features, train, validation, TrainingConfig(**base, max_grad_norm=1e9), model_config=TOY_MODEL)
    tight = train_curatornet(features, train, validation, TrainingConfig(**base, max_grad_norm=1e-3), model_config=TOY_MODEL)
    # A bound no gradient reaches changes nothing; a tight one changes the run (Adam still steps at its own scale).
    assert unclipped.history["train_loss"].equals(loose.history["train_loss"])
    assert not unclipped.history["train_loss"].equals(tight.history["train_loss"])
