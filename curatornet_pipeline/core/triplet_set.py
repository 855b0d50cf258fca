"""The in-memory form of a set of training triplets, shared by sampling, storage and training.

Profiles are stored once, in CSR form (offsets + concatenated item indices), because many triplets
share one profile (a user's full history, a single artwork). Triplets point at a profile row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def ranks_within(lengths: np.ndarray) -> np.ndarray:
    """For segments of the given lengths laid end to end: each element's position inside its segment."""
    lengths = np.asarray(lengths, dtype=np.int64)
    starts = np.cumsum(lengths) - lengths
    return np.arange(int(lengths.sum()), dtype=np.int64) - np.repeat(starts, lengths)


def gather_csr_rows(offsets: np.ndarray, values: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CSR rows ``rows`` (they may repeat) of (offsets, values) as a new CSR table, without a Python loop."""
    starts = np.asarray(offsets[rows], dtype=np.int64)
    lengths = np.asarray(offsets[rows + 1], dtype=np.int64) - starts
    new_offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=new_offsets[1:])
    return new_offsets, values[np.repeat(starts, lengths) + ranks_within(lengths)]


@dataclass
class TripletSet:
    profile_offsets: np.ndarray  # int64 (P + 1,): profile p is profile_items[offsets[p]:offsets[p + 1]]
    profile_items: np.ndarray  # int32 (sum of profile lengths,): artwork_idx values, in profile order
    profile_id: np.ndarray  # int32 (T,): row of each triplet's profile
    positive: np.ndarray  # int32 (T,): artwork_idx of the positive item
    negative: np.ndarray  # int32 (T,): artwork_idx of the negative item
    user_idx: np.ndarray  # int32 (T,): user index, -1 for synthetic one-item profiles

    def __post_init__(self) -> None:
        n = len(self.profile_id)
        for name in ("positive", "negative", "user_idx"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"TripletSet.{name} has {len(getattr(self, name))} rows, expected {n}")
        if self.profile_offsets.ndim != 1 or len(self.profile_offsets) < 1 or self.profile_offsets[0] != 0:
            raise ValueError("TripletSet.profile_offsets must be 1-d and start at 0")
        if self.profile_offsets[-1] != len(self.profile_items):
            raise ValueError("TripletSet.profile_offsets[-1] must equal len(profile_items)")

    def __len__(self) -> int:
        return len(self.profile_id)

    @property
    def n_profiles(self) -> int:
        return len(self.profile_offsets) - 1

    def profile(self, p: int) -> np.ndarray:
        return self.profile_items[self.profile_offsets[p] : self.profile_offsets[p + 1]]

    def profile_lengths(self) -> np.ndarray:
        return np.diff(self.profile_offsets)

    def subset(self, rows: np.ndarray) -> "TripletSet":
        """Rows of this set, sharing the same profile table (profiles are not compacted)."""
        return TripletSet(
            self.profile_offsets,
            self.profile_items,
            self.profile_id[rows],
            self.positive[rows],
            self.negative[rows],
            self.user_idx[rows],
        )
