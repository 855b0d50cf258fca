"""The 64-bit rolling hash that identifies a triplet by its content (profile items in order, positive, negative).

A polynomial hash with an odd base, arithmetic mod 2**64 by uint64 wraparound. The authors' modulus
402653189 (~4e8) makes the birthday bound bite at this scale: 10M triplets give ~n**2 / (2 m) ~ 1e5
colliding pairs, i.e. valid distinct triplets silently thrown away as "duplicates". Mod 2**64 the
expected number of colliding pairs among 10.5M triplets is ~3e-6.
"""

from __future__ import annotations

import numpy as np

from curatornet_pipeline.core.triplet_set import TripletSet

HASH_BASE = np.uint64(0x9E3779B97F4A7C15)


def profile_hashes(offsets: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Polynomial hash of each CSR profile: h = sum_j (item_j + 1) * B**(L - 1 - j) mod 2**64.

    Items are shifted by one so that item 0 still contributes (profiles of different lengths differ).
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    lengths = np.diff(offsets)
    if len(items) == 0:
        return np.zeros(len(lengths), dtype=np.uint64)
    powers = np.full(int(lengths.max()), HASH_BASE, dtype=np.uint64)
    powers[0] = 1
    powers = np.cumprod(powers, dtype=np.uint64)  # wraps mod 2**64, which is the point
    profile_of_element = np.repeat(np.arange(len(lengths)), lengths)
    from_end = offsets[1:][profile_of_element] - 1 - np.arange(len(items), dtype=np.int64)
    contributions = (np.asarray(items).astype(np.uint64) + np.uint64(1)) * powers[from_end]
    cumulative = np.zeros(len(items) + 1, dtype=np.uint64)
    np.cumsum(contributions, dtype=np.uint64, out=cumulative[1:])
    return cumulative[offsets[1:]] - cumulative[offsets[:-1]]


def combine_hashes(profile_hash: np.ndarray, positive: np.ndarray, negative: np.ndarray) -> np.ndarray:
    """Continue the rolling hash of the profile with the positive, then the negative."""
    h = profile_hash * HASH_BASE + (positive.astype(np.uint64) + np.uint64(1))
    return h * HASH_BASE + (negative.astype(np.uint64) + np.uint64(1))


def triplet_hashes(ts: TripletSet) -> np.ndarray:
    """uint64 hash of every triplet of ``ts`` over (profile items in order, positive, negative).

    Depends only on the contents, not on profile row numbers, so it identifies a triplet across
    strategies and across differently laid-out profile tables.
    """
    profile_hash = profile_hashes(ts.profile_offsets, ts.profile_items)
    return combine_hashes(profile_hash[ts.profile_id], ts.positive, ts.negative)
