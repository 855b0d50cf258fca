"""Small vectorized set and gather helpers the samplers and the rule checker share."""

from __future__ import annotations

import numpy as np

_COSINE_CHUNK = 1 << 15  # rows per chunk when gathering PCA vectors (bounded temporary memory)


def used_ids(n: int, *id_arrays: np.ndarray) -> np.ndarray:
    """Sorted distinct ids in [0, n) that occur in any of ``id_arrays`` (O(n + rows), no sort)."""
    mask = np.zeros(n, dtype=bool)
    for ids in id_arrays:
        mask[ids] = True
    return np.flatnonzero(mask)


def sorted_contains(sorted_values: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Whether each query occurs in the sorted array ``sorted_values``."""
    if len(sorted_values) == 0:
        return np.zeros(len(queries), dtype=bool)
    pos = np.searchsorted(sorted_values, queries)
    pos[pos == len(sorted_values)] = len(sorted_values) - 1
    return sorted_values[pos] == queries


class PairIndex:
    """A set of (a, b) integer pairs, for vectorized membership and position look-ups."""

    def __init__(self, a: np.ndarray, b: np.ndarray, width: int) -> None:
        self.width = int(width)
        keys = np.asarray(a, dtype=np.int64) * self.width + np.asarray(b, dtype=np.int64)
        self.order = np.argsort(keys, kind="stable")
        self.keys = keys[self.order]

    def find(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Position in the construction arrays of each (a, b) pair (the first one), or -1."""
        if len(self.keys) == 0:
            return np.full(len(a), -1, dtype=np.int64)
        queries = np.asarray(a, dtype=np.int64) * self.width + np.asarray(b, dtype=np.int64)
        pos = np.searchsorted(self.keys, queries)
        pos[pos == len(self.keys)] = len(self.keys) - 1
        return np.where(self.keys[pos] == queries, self.order[pos], -1)

    def contains(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if len(self.keys) == 0:
            return np.zeros(len(a), dtype=bool)
        queries = np.asarray(a, dtype=np.int64) * self.width + np.asarray(b, dtype=np.int64)
        return sorted_contains(self.keys, queries)


def row_cosines(unit_vectors: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Dot products of rows a[i] and b[i] of L2-normalised vectors (the cosines), in chunks."""
    out = np.empty(len(a), dtype=np.float32)
    for start in range(0, len(a), _COSINE_CHUNK):
        stop = start + _COSINE_CHUNK
        out[start:stop] = np.einsum("ij,ij->i", unit_vectors[a[start:stop]], unit_vectors[b[start:stop]])
    return out
