"""What the samplers read: artists, clusters, PCA vectors and every user's baskets, on dense indices."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from curatornet_pipeline.core.features import unit_rows
from curatornet_pipeline.core.sampling.index import SamplingIndex
from curatornet_pipeline.core.split import SPLIT_COLUMN, TRAIN, order_baskets


@dataclass(eq=False)
class SamplingInputs:
    """Everything the samplers need, indexed by artwork_idx and user_idx. Treat as immutable.

    ``train_baskets[u]`` lists user u's training baskets in time order; a history lists each artwork
    once. The inputs hold the training view only: a held-out item is, to the samplers, an item the user
    never bought, so it may be drawn as a negative (as the paper's and the authors' samplers do); knowing
    the test set here would leak test labels into training. Build it with :meth:`from_frames`.
    ``index`` holds the array structures derived from it once (see ``SamplingIndex``).
    """

    n_items: int
    item_artist: np.ndarray  # int32 (N,) artist code
    item_cluster: np.ndarray  # int32 (N,) visual cluster
    pca_unit: np.ndarray  # float32 (N, d) L2-normalised PCA vectors (for cosines)
    user_ids: list[str]  # user_idx -> user_id
    train_baskets: list[list[np.ndarray]]  # per user, training baskets in time order (artwork_idx arrays)
    preparation: dict = field(default_factory=dict)  # counts of what from_frames removed, and why
    index: SamplingIndex = field(init=False, repr=False)

    def __post_init__(self) -> None:
        n = int(self.n_items)
        for name in ("item_artist", "item_cluster"):
            if np.asarray(getattr(self, name)).shape != (n,):
                raise ValueError(f"SamplingInputs.{name} must have shape ({n},), got {np.shape(getattr(self, name))}")
        if np.ndim(self.pca_unit) != 2 or len(self.pca_unit) != n:
            raise ValueError(f"SamplingInputs.pca_unit must have shape ({n}, d), got {np.shape(self.pca_unit)}")
        if len(self.user_ids) != len(self.train_baskets):
            raise ValueError("SamplingInputs: user_ids and train_baskets must have one entry per user")
        if any(len(b) == 0 for baskets in self.train_baskets for b in baskets):
            raise ValueError("SamplingInputs.train_baskets contains an empty basket")
        self.item_artist = np.asarray(self.item_artist, dtype=np.int32)
        self.item_cluster = np.asarray(self.item_cluster, dtype=np.int32)
        self.pca_unit = np.ascontiguousarray(self.pca_unit, dtype=np.float32)
        self.index = SamplingIndex(self)  # also validates item ranges and the history rules

    @classmethod
    def from_frames(
        cls,
        artworks: pd.DataFrame,
        train_transactions: pd.DataFrame,
        labels: np.ndarray,
        pca_vectors: np.ndarray,
        user_ids: list[str] | None = None,
    ) -> "SamplingInputs":
        """Build inputs from the normalized frames, the training rows of the split, the cluster labels and
        the PCA vectors.

        ``train_transactions`` must hold only rows labelled "train" (ValueError otherwise): the samplers
        never see the test set. Users are numbered in ``user_ids`` order (default: sorted ``user_id`` of
        the rows). Training baskets are ordered by timestamp, then basket_id. A repeat purchase of an
        artwork already in the history is counted in ``preparation``; it stays in the split table, only
        the sampler ignores it.
        """
        n = len(artworks)
        idx = artworks["artwork_idx"].to_numpy()
        if not np.array_equal(np.sort(idx), np.arange(n)):
            raise ValueError("artworks.artwork_idx must be exactly 0..N-1 (the canonical index)")
        order = np.argsort(idx)
        _, item_artist = np.unique(artworks["artist_id"].astype(str).to_numpy()[order], return_inverse=True)
        labels = np.asarray(labels)
        if labels.shape != (n,):
            raise ValueError(f"labels must have shape ({n},) like the artworks, got {labels.shape}")
        pca = np.asarray(pca_vectors, dtype=np.float64)
        if pca.ndim != 2 or len(pca) != n:
            raise ValueError(f"pca_vectors must have shape ({n}, d), got {pca.shape}")
        pca_unit = unit_rows(pca).astype(np.float32)

        tx = train_transactions
        needed = ("user_id", "basket_id", "purchase_timestamp", "artwork_idx", SPLIT_COLUMN)
        missing = [c for c in needed if c not in tx]
        if missing:
            raise ValueError(f"split transactions lack column(s) {missing}")
        not_train = (tx[SPLIT_COLUMN] != TRAIN).to_numpy()
        if not_train.any():
            labels_seen = sorted(tx.loc[not_train, SPLIT_COLUMN].astype(str).unique())
            raise ValueError(
                f"the sampler reads training rows only; {int(not_train.sum())} row(s) are labelled {labels_seen}"
            )
        items = tx["artwork_idx"].to_numpy().astype(np.int64)
        if len(items) and (items.min() < 0 or items.max() >= n):
            raise ValueError(f"split transactions reference artwork_idx outside [0, {n})")
        ranks = order_baskets(tx).set_index("basket_id")["basket_rank"]
        if user_ids is None:
            user_ids = sorted(tx["user_id"].astype(str).unique())
        codes = pd.Categorical(tx["user_id"].astype(str), categories=user_ids).codes.astype(np.int64)
        if (codes < 0).any():
            raise ValueError(f"training rows name user {tx['user_id'].iloc[int(np.argmax(codes < 0))]!r}, not in user_ids")
        train = pd.DataFrame(
            {
                "user": codes,
                "rank": tx["basket_id"].map(ranks).to_numpy(),
                "basket": tx["basket_id"].to_numpy(),
                "item": items,
                "row": np.arange(len(tx)),
            }
        ).sort_values(["user", "rank", "row"], kind="stable")
        repeat = train.duplicated(["user", "item"], keep="first").to_numpy()
        kept = train[~repeat]
        n_users = len(user_ids)

        train_baskets: list[list[np.ndarray]] = [[] for _ in range(n_users)]
        basket_change = np.flatnonzero(np.diff(kept["basket"].to_numpy())) + 1
        kept_items = kept["item"].to_numpy().astype(np.int32)
        kept_users = kept["user"].to_numpy()
        for start, stop in zip(np.concatenate([[0], basket_change]), np.concatenate([basket_change, [len(kept)]])):
            if stop > start:
                train_baskets[kept_users[start]].append(kept_items[start:stop])
        n_train_baskets_before = train["basket"].nunique()
        n_train_baskets_after = sum(len(b) for b in train_baskets)
        preparation = {
            "train_rows_read": int(len(tx)),
            "train_rows_dropped_as_repeat_purchases": int(repeat.sum()),
            "train_baskets_emptied": int(n_train_baskets_before - n_train_baskets_after),
            "n_users": n_users,
        }
        return cls(
            n_items=n,
            item_artist=item_artist.astype(np.int32),
            item_cluster=labels.astype(np.int32),
            pca_unit=pca_unit,
            user_ids=list(user_ids),
            train_baskets=train_baskets,
            preparation=preparation,
        )
