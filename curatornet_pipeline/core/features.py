"""Model input features: the ResNet50 embeddings z-scored over the catalogue (SPEC 4)."""

from __future__ import annotations

import numpy as np
from sklearn.preprocessing import StandardScaler


def zscore_catalogue(embeddings: np.ndarray, dtype: type = np.float32) -> np.ndarray:
    """Each of the 2048 dimensions standardized over the whole catalogue (constant ones stay 0)."""
    return StandardScaler().fit_transform(np.asarray(embeddings, dtype=np.float64)).astype(dtype, copy=False)
