"""The per-user index over one SamplingInputs: CSR histories, pair sets, feasibility counts, profile tables.

Built once per inputs (``SamplingInputs.index``) and shared by the draws of every strategy and by the
rule checker, so both look at exactly the same histories, candidate sets and near-duplicate pairs.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from curatornet_pipeline.core.features import unit_rows
from curatornet_pipeline.core.sampling.arrays import PairIndex
from curatornet_pipeline.core.sampling.hashing import profile_hashes
from curatornet_pipeline.core.triplet_set import ranks_within

if TYPE_CHECKING:
    from curatornet_pipeline.core.sampling.inputs import SamplingInputs

NEAR_DUPLICATE_COSINE = 1.0 - 1e-7


@dataclass(frozen=True)
class ProfileInstances:
    """The (user, profile) instances a strategy draws from, grouped by user in user order.

    Instance k has profile ``items[offsets[k]:offsets[k + 1]]``; user u's instances are rows
    ``user_offsets[u]`` .. ``user_offsets[u + 1] - 1`` (``per_user[u]`` of them).
    """

    user: np.ndarray
    offsets: np.ndarray
    items: np.ndarray
    user_offsets: np.ndarray
    per_user: np.ndarray

    @classmethod
    def of_users(cls, user: np.ndarray, profile_len: np.ndarray, items: np.ndarray, n_users: int, **extra):
        """Instances of users ``user`` (grouped, in user order) whose profiles, ``profile_len`` long, are laid
        out one after another in ``items``."""
        per_user = np.bincount(user, minlength=n_users)
        return cls(
            user=user,
            offsets=np.concatenate([[0], np.cumsum(profile_len)]),
            items=items,
            user_offsets=np.concatenate([[0], np.cumsum(per_user)]),
            per_user=per_user,
            **extra,
        )

    def random_rows(self, users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One instance row per entry of ``users``, uniform over that user's instances."""
        return self.user_offsets[users] + rng.integers(0, self.per_user[users])

    def profile_hashes(self) -> np.ndarray:
        return profile_hashes(self.offsets, self.items)


@dataclass(frozen=True)
class HiddenItemInstances(ProfileInstances):
    """Instances whose positive is a history item left out of the profile."""

    positive: np.ndarray


@dataclass(frozen=True)
class NextBasketInstances(ProfileInstances):
    """Instances whose profile ends with training basket ``basket``; the positive comes from the next one."""

    basket: np.ndarray
    instance_of_basket: np.ndarray  # per training basket: its instance row, or -1 (the user's last basket)


class SamplingIndex:
    """Array structures derived once from SamplingInputs (CSR tables, pair sets, feasibility counts).

    Items, users, artists and clusters are dense integer ids; ``hist_*`` arrays describe every user's
    training history in time order, ``basket_*`` arrays its baskets. The inputs hold no held-out item
    (``SamplingInputs``), so the index cannot know the test set.
    """

    def __init__(self, inputs: "SamplingInputs") -> None:
        n = inputs.n_items
        self.n_items = n
        # Clusters and artists renumbered densely so they can index arrays.
        self.cluster_ids, self.cluster = np.unique(inputs.item_cluster, return_inverse=True)
        self.cluster = self.cluster.astype(np.int64)
        self.n_clusters = len(self.cluster_ids)
        self.cluster_items = np.argsort(self.cluster, kind="stable")
        self.cluster_size = np.bincount(self.cluster, minlength=self.n_clusters)
        self.cluster_offsets = np.concatenate([[0], np.cumsum(self.cluster_size)])
        _, self.artist = np.unique(inputs.item_artist, return_inverse=True)
        self.artist = self.artist.astype(np.int64)
        self.n_artists = int(self.artist.max()) + 1 if n else 0
        self.artist_items = np.argsort(self.artist, kind="stable")
        self.artist_size = np.bincount(self.artist, minlength=self.n_artists)
        self.artist_offsets = np.concatenate([[0], np.cumsum(self.artist_size)])
        self.rank_in_artist = np.empty(n, dtype=np.int64)
        self.rank_in_artist[self.artist_items] = ranks_within(self.artist_size)

        # Users: training history in time order as CSR, plus basket boundaries inside it.
        n_users = len(inputs.user_ids)
        self.n_users = n_users
        basket_lengths = [len(b) for baskets in inputs.train_baskets for b in baskets]
        self.basket_len = np.asarray(basket_lengths, dtype=np.int64)
        self.user_n_baskets = np.asarray([len(b) for b in inputs.train_baskets], dtype=np.int64)
        self.user_basket_offsets = np.concatenate([[0], np.cumsum(self.user_n_baskets)])
        self.basket_offsets = np.concatenate([[0], np.cumsum(self.basket_len)])
        self.basket_user = np.repeat(np.arange(n_users), self.user_n_baskets)
        self.basket_rank = ranks_within(self.user_n_baskets)
        flat = [np.asarray(b) for baskets in inputs.train_baskets for b in baskets]
        self.hist_items = np.concatenate(flat).astype(np.int64) if flat else np.zeros(0, dtype=np.int64)
        self.hist_len = np.bincount(self.basket_user, weights=self.basket_len, minlength=n_users).astype(np.int64)
        self.hist_offsets = np.concatenate([[0], np.cumsum(self.hist_len)])
        self.hist_user = np.repeat(np.arange(n_users), self.hist_len)
        self.hist_basket = np.repeat(np.arange(len(self.basket_len)), self.basket_len)

        if len(self.hist_items) and (self.hist_items.min() < 0 or self.hist_items.max() >= n):
            raise ValueError(f"SamplingInputs.train_baskets holds an artwork_idx outside [0, {n})")

        self.user_item = PairIndex(self.hist_user, self.hist_items, n)
        if len(self.user_item.keys) and (np.diff(self.user_item.keys) == 0).any():
            dup = self.user_item.keys[1:][np.diff(self.user_item.keys) == 0][0]
            raise ValueError(
                f"SamplingInputs: user {inputs.user_ids[dup // n]!r} has artwork_idx {dup % n} twice in their "
                "training baskets; a training history lists each artwork once (from_frames does this)"
            )
        # Distinct (user, artist) and (user, cluster) pairs of the training histories.
        artist_width, cluster_width = max(self.n_artists, 1), max(self.n_clusters, 1)
        ua = np.unique(self.hist_user * artist_width + self.artist[self.hist_items])
        uc = np.unique(self.hist_user * cluster_width + self.cluster[self.hist_items])
        ua_user, ua_artist = ua // artist_width, ua % artist_width
        uc_user, uc_cluster = uc // cluster_width, uc % cluster_width
        self.user_artist = PairIndex(ua_user, ua_artist, artist_width)
        self._user_artists = (np.concatenate([[0], np.cumsum(np.bincount(ua_user, minlength=n_users))]), ua_artist)
        self.user_cluster = PairIndex(uc_user, uc_cluster, cluster_width)
        self._count_candidates(ua_user, ua_artist, uc_user, uc_cluster, n_users)
        self._find_near_duplicates(inputs.pca_unit)

    def _count_candidates(
        self, ua_user: np.ndarray, ua_artist: np.ndarray, uc_user: np.ndarray, uc_cluster: np.ndarray, n_users: int
    ) -> None:
        """Per user: how many items are valid negatives for strategies 1-3, and positives for strategy 3.

        Used to decide eligibility exactly, so quotas are never spent on users with no valid candidate.
        """
        n = self.n_items
        in_artists = np.bincount(ua_user, weights=self.artist_size[ua_artist], minlength=n_users)
        in_clusters = np.bincount(uc_user, weights=self.cluster_size[uc_cluster], minlength=n_users)
        # Expand (user, bought artist) to every work of that artist: small (~ works per artist per pair).
        lengths = self.artist_size[ua_artist]
        e_user = np.repeat(ua_user, lengths)
        e_item = self.artist_items[np.repeat(self.artist_offsets[ua_artist], lengths) + ranks_within(lengths)]
        e_in_cluster = self.user_cluster.contains(e_user, self.cluster[e_item])
        in_both = np.bincount(e_user[e_in_cluster], minlength=n_users)
        self.n_disjoint_negatives = (n - (in_artists + in_clusters - in_both)).astype(np.int64)
        favourite = e_in_cluster & ~self.user_item.contains(e_user, e_item)
        self.n_favourite_positives = np.bincount(e_user[favourite], minlength=n_users).astype(np.int64)
        self.n_outside_profile = (n - self.hist_len).astype(np.int64)

    def _find_near_duplicates(self, pca_unit: np.ndarray) -> None:
        """All same-cluster pairs with cosine >= 1 - 1e-7, as (low, high) artwork_idx pairs."""
        lows, highs = [], []
        # Normalise again in float64: float32 unit vectors can have |v|**2 off by ~1e-7, the threshold's size.
        vectors = unit_rows(pca_unit.astype(np.float64))
        for c in range(self.n_clusters):
            members = self.cluster_items[self.cluster_offsets[c] : self.cluster_offsets[c + 1]]
            if len(members) < 2:
                continue
            block = vectors[members]
            step = max(1, (1 << 22) // len(members))
            for start in range(0, len(members), step):
                gram = block[start : start + step] @ block.T
                i, j = np.nonzero(gram >= NEAR_DUPLICATE_COSINE)
                i = i + start
                keep = i < j
                lows.append(members[i[keep]])
                highs.append(members[j[keep]])
        low = np.concatenate(lows) if lows else np.zeros(0, dtype=np.int64)
        high = np.concatenate(highs) if highs else np.zeros(0, dtype=np.int64)
        self.near_duplicates = PairIndex(np.minimum(low, high), np.maximum(low, high), self.n_items)
        self.n_near_duplicate_pairs = len(low)

    def user_artist_values(self, users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One artist per entry of ``users``, uniform over that user's distinct training artists."""
        offsets, artists = self._user_artists
        return artists[offsets[users] + rng.integers(0, offsets[users + 1] - offsets[users])]

    def is_near_duplicate(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return self.near_duplicates.contains(np.minimum(a, b), np.maximum(a, b))

    # ---- profile tables shared by the draws and the rule checker ----

    @cached_property
    def history_hashes(self) -> np.ndarray:
        return profile_hashes(self.hist_offsets, self.hist_items)

    def _hidden_item_profiles(self, hist_pos: np.ndarray, end: np.ndarray) -> HiddenItemInstances:
        """One instance per history position ``hist_pos``: positive = that item, profile = its user's history
        from the start up to history position ``end`` (exclusive), without the positive. Instances must come
        grouped by user in user order (``user_offsets`` indexes them)."""
        user = self.hist_user[hist_pos]
        user_start = self.hist_offsets[user]
        profile_len = end - user_start - 1
        r = ranks_within(profile_len)
        inst = np.repeat(np.arange(len(hist_pos)), profile_len)
        skip = (r >= (hist_pos - user_start)[inst]).astype(np.int64)
        items = self.hist_items[user_start[inst] + r + skip]
        return HiddenItemInstances.of_users(user, profile_len, items, self.n_users, positive=self.hist_items[hist_pos])

    @cached_property
    def hidden_item_instances(self) -> HiddenItemInstances:
        """Strategy 1: one instance per position of a training basket with 2+ items.

        Profile = the user's training items up to the end of that basket, without that position's item.
        """
        multi = np.flatnonzero(self.basket_len >= 2)
        lengths = self.basket_len[multi]
        basket = np.repeat(multi, lengths)
        hist_pos = self.basket_offsets[basket] + ranks_within(lengths)  # position of the hidden item
        return self._hidden_item_profiles(hist_pos, self.basket_offsets[basket + 1])

    @cached_property
    def leave_one_out_instances(self) -> HiddenItemInstances:
        """The random ablation: one instance per training item of a user with 2+ training items.

        Profile = P_u \\ i, the user's whole training history without item i (the positive).
        """
        hist_pos = np.flatnonzero(self.hist_len[self.hist_user] >= 2)
        return self._hidden_item_profiles(hist_pos, self.hist_offsets[self.hist_user[hist_pos] + 1])

    @cached_property
    def next_basket_instances(self) -> NextBasketInstances:
        """Strategy 2: one instance per training basket k that has a later training basket.

        Profile = the user's baskets 0..k; the positive comes from basket k + 1.
        """
        has_next = self.basket_rank < self.user_n_baskets[self.basket_user] - 1
        basket = np.flatnonzero(has_next)
        user = self.basket_user[basket]
        start = self.hist_offsets[user]
        profile_len = self.basket_offsets[basket + 1] - start
        items = self.hist_items[np.repeat(start, profile_len) + ranks_within(profile_len)]
        instance_of_basket = np.full(len(self.basket_len), -1, dtype=np.int64)
        instance_of_basket[basket] = np.arange(len(basket))
        return NextBasketInstances.of_users(
            user, profile_len, items, self.n_users, basket=basket, instance_of_basket=instance_of_basket
        )
