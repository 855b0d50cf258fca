"""How an epoch's training triplets are cut into batches.

Two orders, both exact (every triplet exactly once per epoch), reshuffled every epoch from the loop's seeded
generator, so a run is deterministic for a given seed:

* ``shuffled_batches`` (our default): a uniform permutation cut into ``batch_size``-triplet batches. Every batch
  mixes profile lengths and strategies, so each Adam step sees the whole training distribution.
* ``length_grouped_batches`` (the authors' batching, ``--preset paper``): triplets grouped by profile length,
  each batch holding triplets of ONE length, filled until its profile+item slots (per triplet: the profile's
  length plus the positive and the negative) would pass ``max_slots`` (~100,000 in the authors' code). A batch
  of one length is a dense [B, L] profile tensor with no padding; our segment pooling needs no padding either,
  so the loss of a batch is the same exact loss as under any other grouping. Triplets are shuffled within
  their length, and the batches of all lengths are shuffled together. A triplet whose slots alone exceed
  ``max_slots`` gets a batch of its own.
"""

from __future__ import annotations

import numpy as np

BATCHINGS = ("shuffled", "length_grouped")
TRIPLET_ITEM_SLOTS = 2  # the positive and the negative


def shuffled_batches(n_triplets: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """A seeded permutation of ``range(n_triplets)`` cut into batches of ``batch_size`` (the last may be short)."""
    order = rng.permutation(n_triplets)
    return [order[start : start + batch_size] for start in range(0, n_triplets, batch_size)]


def length_grouped_batches(profile_lengths: np.ndarray, max_slots: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Batches of triplet rows with one profile length each and at most ``max_slots`` profile+item slots.

    ``profile_lengths[t]`` is the profile length of triplet t. Within a length L a batch holds
    ``max(1, max_slots // (L + 2))`` triplets (the last batch of a length may hold fewer).
    """
    if max_slots < 1:
        raise ValueError(f"max_slots must be >= 1, got {max_slots}")
    lengths = np.asarray(profile_lengths, dtype=np.int64)
    batches: list[np.ndarray] = []
    for length in np.unique(lengths):
        rows = np.flatnonzero(lengths == length)
        rows = rows[rng.permutation(len(rows))]
        per_batch = max(1, max_slots // (int(length) + TRIPLET_ITEM_SLOTS))
        batches.extend(rows[start : start + per_batch] for start in range(0, len(rows), per_batch))
    return [batches[i] for i in rng.permutation(len(batches))]


def batch_slots(profile_lengths: np.ndarray, rows: np.ndarray) -> int:
    """Profile+item slots of the triplets ``rows``: what ``length_grouped_batches`` bounds."""
    return int(np.asarray(profile_lengths)[rows].sum()) + TRIPLET_ITEM_SLOTS * len(rows)
