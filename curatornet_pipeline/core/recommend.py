"""Cold-start recommendation: a profile of known artworks in, a ranked list out, no retraining.

The item vectors of the whole catalogue are computed once and cached; each request is one user-tower
pass over the profile's pooled item vectors plus one matrix-vector product over the cached vectors.
Ties in score are ordered by artwork index (see ``metrics.top_k_order``).
"""

from __future__ import annotations

import copy
from typing import Sequence

import numpy as np
import pandas as pd

from curatornet_pipeline.core.evaluation import curatornet_scores
from curatornet_pipeline.core.metrics import top_k_order
from curatornet_pipeline.core.model import CuratorNet
from curatornet_pipeline.core.precision import check_precision


class Recommender:
    """Recommends artworks for any set of artwork ids, new users included."""

    def __init__(
        self,
        model: CuratorNet,
        item_vectors: np.ndarray,
        artwork_ids: Sequence[str],
        available: np.ndarray | None = None,
        precision: str = "auto",
    ):
        """item_vectors: [N, D] CuratorNet item vectors aligned with artwork_ids (the artwork_idx order).

        available: optional boolean [N]; only those artworks are recommended (a profile may hold any artwork).
        precision: of the user-tower pass per request (core.precision).
        """
        self.precision = check_precision(precision)
        item_vectors = np.ascontiguousarray(item_vectors, dtype=np.float32)
        if item_vectors.ndim != 2 or item_vectors.shape != (len(artwork_ids), model.config.embedding_dim):
            raise ValueError(
                f"item_vectors {item_vectors.shape} must be ({len(artwork_ids)}, {model.config.embedding_dim})"
            )
        # A private CPU copy: the caller's model (maybe on a GPU, maybe training) is left untouched.
        self.model = copy.deepcopy(model).to("cpu").float().eval()
        self.item_vectors = item_vectors
        self.artwork_ids = np.asarray([str(a) for a in artwork_ids], dtype=object)
        self._index = {artwork_id: i for i, artwork_id in enumerate(self.artwork_ids)}
        if len(self._index) != len(self.artwork_ids):
            raise ValueError("artwork_ids contain duplicates")
        self.available = np.ones(len(self.artwork_ids), dtype=bool) if available is None else np.asarray(available, bool)
        if self.available.shape != (len(self.artwork_ids),):
            raise ValueError(f"available has shape {self.available.shape}, expected ({len(self.artwork_ids)},)")

    @classmethod
    def from_features(
        cls, model: CuratorNet, features: np.ndarray, artwork_ids: Sequence[str], precision: str = "auto"
    ) -> "Recommender":
        """Build from raw (z-scored) features [N, F], running the item tower once over the catalogue."""
        return cls(model, model.embed_catalogue(features, precision=precision), artwork_ids, precision=precision)

    def recommend(self, item_ids: Sequence[str], k: int = 20, exclude_profile: bool = True) -> pd.DataFrame:
        """Top ``k`` artworks for a profile of artwork ids: DataFrame(rank, artwork_id, score), rank from 1."""
        if isinstance(item_ids, str):
            item_ids = [item_ids]  # a lone id, not a sequence of characters
        if len(item_ids) == 0:
            raise ValueError("the profile is empty: give at least one artwork id")
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        unknown = [i for i in item_ids if str(i) not in self._index]
        if unknown:
            raise ValueError(f"unknown artwork ids: {', '.join(map(repr, unknown))}")
        profile = np.array([self._index[str(i)] for i in item_ids], dtype=np.int64)

        allowed = self.available.copy()
        if exclude_profile:
            allowed[profile] = False
        candidates = np.flatnonzero(allowed)
        scores = curatornet_scores(self.model, self.item_vectors, profile, candidates, self.precision)
        top = top_k_order(scores, candidates, k)
        return pd.DataFrame(
            {
                "rank": np.arange(1, len(top) + 1),
                "artwork_id": self.artwork_ids[candidates[top]],
                "score": scores[top],
            }
        )
