"""Feature transforms shared by clustering, sampling, training and evaluation."""

from __future__ import annotations

import numpy as np
from sklearn.preprocessing import StandardScaler


def zscore_catalogue(embeddings: np.ndarray, dtype: type = np.float32) -> np.ndarray:
    """Each of the 2048 dimensions standardized over the whole catalogue (constant ones stay 0)."""
    return StandardScaler().fit_transform(np.asarray(embeddings, dtype=np.float64)).astype(dtype, copy=False)


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm in x's float dtype; a zero row stays zero (cosine 0 with everything)."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)
