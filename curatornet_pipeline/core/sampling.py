"""Training-triplet sampling: the six strategies of SPEC 5, the random ablation, hashing and dedup.

A triplet is (profile, positive, negative): the model should score the positive above the negative for
the user described by the profile. Every strategy is array work over all eligible users or items at
once: a round draws one candidate per still-missing triplet, invalid draws are redrawn in vectorized
rounds (bounded, failures counted), and duplicates are rejected by a 64-bit hash. Rounds repeat until
every user's or item's quota is met or the round limit is reached.

Conventions beyond SPEC 5, decided here:

* A user's training history lists every artwork once, in time order: a repeat purchase of the same
  artwork (possible for photographs) keeps only the first, and an artwork that is also in the user's
  held-out basket is not part of their training history at all (SPEC 5: the held-out basket is never
  used in their triplets). ``SamplingInputs.from_frames`` does this and counts it in ``preparation``.
* Quotas are per eligible unit: ``ceil(budget / eligible)`` (SPEC 5). When that overshoots the budget,
  a seeded uniform subset of exactly ``budget`` triplets is kept. A strategy whose space of distinct
  triplets is smaller than its quota returns fewer triplets; the shortfall shows in the stats.
* Strategy 1 and 2 pick one of the user's (basket, position) or (basket) instances uniformly per
  triplet. Strategy 3 proposes positives as "a random work by the artist of a random profile item"
  (so favourite artists, bought more often, are proposed more often), accepted when not yet bought and
  in a cluster the user bought from, with at most 20 proposals per triplet (SPEC 5).
* Negatives of strategies 1-3 are uniform over the allowed items (rejection from the whole catalogue).
* Strategy 6 keeps the drawn positive while it redraws the negative; a row whose negative never
  passes the visual-confidence test is a failed attempt, and the next round draws a new positive.
* The near-duplicate rule is applied to every triplet, the random ablation's included.
* The random ablation (``random``) follows the paper's section 3.3: profile = P_u \\ i, so the positive's
  own vector is never pooled into the user it is scored for. Strategy 4 keeps i inside the full-history
  profile and strategy 5 uses [x] to predict x: the paper lists both as "recommending profile items"
  (and the authors' code builds strategy 4 that way); only the ablation, which stands for the paper's
  traditional BPR setting, leaves the positive out.
* Different strategies can yield identical triplets (a user whose history is one artwork gets the
  same (profile, positive, negative) from strategy 4 as strategy 5 does); ``union_deduplicate``
  keeps the first, so the union is somewhat smaller than the sum of the strategies.

``user_idx`` in the triplets is a position in ``SamplingInputs.user_ids`` (sorted user ids when built
by ``from_frames``); one-item synthetic profiles (strategies 5 and 6) carry -1.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from curatornet_pipeline.core.features import unit_rows
from curatornet_pipeline.core.split import SPLIT_COLUMN, SPLIT_LABELS, TEST, order_baskets
from curatornet_pipeline.core.triplet_set import TripletSet, gather_csr_rows, ranks_within

STRATEGIES: tuple[str, ...] = (
    "1_hidden_basket_item",
    "2_next_basket",
    "3_favourite_artist_similar",
    "4_profile_item",
    "5_single_item",
    "6_single_item_same_artist",
)
# The paper's random-sampling ablation for CuratorNet: (P_u \ i, i, j), section 3.3.
RANDOM_STRATEGY = "random"
# Classic BPR (u, i, j) for VBPR's random-sampling variant: VBPR ignores the profile, so a user with a
# single training item still yields triplets; the stored profile is the user's full history.
RANDOM_BPR_STRATEGY = "random_bpr"
RANDOM_STRATEGIES: tuple[str, ...] = (RANDOM_STRATEGY, RANDOM_BPR_STRATEGY)
# Paper numbering for the six strategies; 0 marks the random ablation, 7 its VBPR form (never in the union).
STRATEGY_CODES: dict[str, int] = {name: i + 1 for i, name in enumerate(STRATEGIES)} | {
    RANDOM_STRATEGY: 0,
    RANDOM_BPR_STRATEGY: 7,
}
REAL_USER_STRATEGIES = frozenset(STRATEGIES[:4]) | set(RANDOM_STRATEGIES)

SAME_CLUSTER_PROBABILITY = 0.6
NEAR_DUPLICATE_COSINE = 1.0 - 1e-7
VISUAL_CONFIDENCE_MARGIN = 0.1
FAVOURITE_POSITIVE_DRAWS = 20  # SPEC 5, strategy 3
MAX_REDRAW_ROUNDS = 64  # rejection rounds for one negative before the draw counts as failed
MAX_FILL_ROUNDS = 16  # rounds of topping up quotas after duplicates and failures

# 64-bit polynomial hash (odd base, arithmetic mod 2**64 by uint64 wraparound). The authors' modulus
# 402653189 (~4e8) makes the birthday bound bite at this scale: 10M triplets give ~n**2 / (2 m) ~ 1e5
# colliding pairs, i.e. valid distinct triplets silently thrown away as "duplicates". Mod 2**64 the
# expected number of colliding pairs among 10.5M triplets is ~3e-6.
_HASH_BASE = np.uint64(0x9E3779B97F4A7C15)

_COSINE_CHUNK = 1 << 15  # rows per chunk when gathering PCA vectors (bounded temporary memory)


# --------------------------------------------------------------------------------------------------
# Small array helpers
# --------------------------------------------------------------------------------------------------


def _used_ids(n: int, *id_arrays: np.ndarray) -> np.ndarray:
    """Sorted distinct ids in [0, n) that occur in any of ``id_arrays`` (O(n + rows), no sort)."""
    mask = np.zeros(n, dtype=bool)
    for ids in id_arrays:
        mask[ids] = True
    return np.flatnonzero(mask)


def _sorted_contains(sorted_values: np.ndarray, queries: np.ndarray) -> np.ndarray:
    if len(sorted_values) == 0:
        return np.zeros(len(queries), dtype=bool)
    pos = np.searchsorted(sorted_values, queries)
    pos[pos == len(sorted_values)] = len(sorted_values) - 1
    return sorted_values[pos] == queries


class _PairIndex:
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
        return _sorted_contains(self.keys, queries)


def _row_cosines(unit_vectors: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Dot products of rows a[i] and b[i] of L2-normalised vectors (the cosines), in chunks."""
    out = np.empty(len(a), dtype=np.float32)
    for start in range(0, len(a), _COSINE_CHUNK):
        stop = start + _COSINE_CHUNK
        out[start:stop] = np.einsum("ij,ij->i", unit_vectors[a[start:stop]], unit_vectors[b[start:stop]])
    return out


# --------------------------------------------------------------------------------------------------
# Hashing
# --------------------------------------------------------------------------------------------------


def _profile_hashes(offsets: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Polynomial hash of each CSR profile: h = sum_j (item_j + 1) * B**(L - 1 - j) mod 2**64.

    Items are shifted by one so that item 0 still contributes (profiles of different lengths differ).
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    lengths = np.diff(offsets)
    if len(items) == 0:
        return np.zeros(len(lengths), dtype=np.uint64)
    powers = np.full(int(lengths.max()), _HASH_BASE, dtype=np.uint64)
    powers[0] = 1
    powers = np.cumprod(powers, dtype=np.uint64)  # wraps mod 2**64, which is the point
    profile_of_element = np.repeat(np.arange(len(lengths)), lengths)
    from_end = offsets[1:][profile_of_element] - 1 - np.arange(len(items), dtype=np.int64)
    contributions = (np.asarray(items).astype(np.uint64) + np.uint64(1)) * powers[from_end]
    cumulative = np.zeros(len(items) + 1, dtype=np.uint64)
    np.cumsum(contributions, dtype=np.uint64, out=cumulative[1:])
    return cumulative[offsets[1:]] - cumulative[offsets[:-1]]


def _combine_hashes(profile_hash: np.ndarray, positive: np.ndarray, negative: np.ndarray) -> np.ndarray:
    """Continue the rolling hash of the profile with the positive, then the negative."""
    h = profile_hash * _HASH_BASE + (positive.astype(np.uint64) + np.uint64(1))
    return h * _HASH_BASE + (negative.astype(np.uint64) + np.uint64(1))


def triplet_hashes(ts: TripletSet) -> np.ndarray:
    """uint64 hash of every triplet of ``ts`` over (profile items in order, positive, negative).

    Depends only on the contents, not on profile row numbers, so it identifies a triplet across
    strategies and across differently laid-out profile tables.
    """
    profile_hash = _profile_hashes(ts.profile_offsets, ts.profile_items)
    return _combine_hashes(profile_hash[ts.profile_id], ts.positive, ts.negative)


# --------------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------------


class _Index:
    """Array structures derived once from SamplingInputs (CSR tables, pair sets, feasibility counts)."""

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

        test_lengths = np.asarray([len(t) for t in inputs.test_items], dtype=np.int64)
        self.test_user = np.repeat(np.arange(n_users), test_lengths)
        flat_test = [np.asarray(t) for t in inputs.test_items]
        self.test_item = np.concatenate(flat_test).astype(np.int64) if flat_test else np.zeros(0, dtype=np.int64)
        for name, values in (("train_baskets", self.hist_items), ("test_items", self.test_item)):
            if len(values) and (values.min() < 0 or values.max() >= n):
                raise ValueError(f"SamplingInputs.{name} holds an artwork_idx outside [0, {n})")

        self.user_item = _PairIndex(self.hist_user, self.hist_items, n)
        if len(self.user_item.keys) and (np.diff(self.user_item.keys) == 0).any():
            dup = self.user_item.keys[1:][np.diff(self.user_item.keys) == 0][0]
            raise ValueError(
                f"SamplingInputs: user {inputs.user_ids[dup // n]!r} has artwork_idx {dup % n} twice in their "
                "training baskets; a training history lists each artwork once (from_frames does this)"
            )
        self.user_test = _PairIndex(self.test_user, self.test_item, n)
        leaked = self.user_test.contains(self.hist_user, self.hist_items)
        if leaked.any():
            i = int(np.flatnonzero(leaked)[0])
            raise ValueError(
                f"SamplingInputs: artwork_idx {self.hist_items[i]} of user {inputs.user_ids[self.hist_user[i]]!r} "
                "is both in their training baskets and in their held-out basket"
            )
        # Distinct (user, artist) and (user, cluster) pairs of the training histories.
        artist_width, cluster_width = max(self.n_artists, 1), max(self.n_clusters, 1)
        ua = np.unique(self.hist_user * artist_width + self.artist[self.hist_items])
        uc = np.unique(self.hist_user * cluster_width + self.cluster[self.hist_items])
        ua_user, ua_artist = ua // artist_width, ua % artist_width
        uc_user, uc_cluster = uc // cluster_width, uc % cluster_width
        self.user_artist = _PairIndex(ua_user, ua_artist, artist_width)
        self.user_cluster = _PairIndex(uc_user, uc_cluster, cluster_width)
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
        test_artist_bought = self.user_artist.contains(self.test_user, self.artist[self.test_item])
        test_cluster_bought = self.user_cluster.contains(self.test_user, self.cluster[self.test_item])
        test_outside = ~test_artist_bought & ~test_cluster_bought
        test_outside_count = np.bincount(self.test_user[test_outside], minlength=n_users)
        self.n_disjoint_negatives = (n - (in_artists + in_clusters - in_both) - test_outside_count).astype(np.int64)
        favourite = e_in_cluster & ~self.user_item.contains(e_user, e_item) & ~self.user_test.contains(e_user, e_item)
        self.n_favourite_positives = np.bincount(e_user[favourite], minlength=n_users).astype(np.int64)
        # Held-out items are never in the history (checked), so profile and held-out basket are disjoint.
        distinct_test_count = np.bincount(np.unique(self.user_test.keys) // max(n, 1), minlength=n_users)
        self.n_outside_profile = (n - self.hist_len - distinct_test_count).astype(np.int64)

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
        self.near_duplicates = _PairIndex(np.minimum(low, high), np.maximum(low, high), self.n_items)
        self.n_near_duplicate_pairs = len(low)

    def is_near_duplicate(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return self.near_duplicates.contains(np.minimum(a, b), np.maximum(a, b))

    # ---- profile tables shared by the sampler and the rule checker ----

    @cached_property
    def history_hashes(self) -> np.ndarray:
        return _profile_hashes(self.hist_offsets, self.hist_items)

    def _hidden_item_profiles(self, hist_pos: np.ndarray, end: np.ndarray) -> dict[str, np.ndarray]:
        """One instance per history position ``hist_pos``: positive = that item, profile = its user's history
        from the start up to history position ``end`` (exclusive), without the positive. Instances must come
        grouped by user in user order (``user_offsets`` indexes them)."""
        user = self.hist_user[hist_pos]
        user_start = self.hist_offsets[user]
        profile_len = end - user_start - 1
        offsets = np.concatenate([[0], np.cumsum(profile_len)])
        r = ranks_within(profile_len)
        inst = np.repeat(np.arange(len(hist_pos)), profile_len)
        skip = (r >= (hist_pos - user_start)[inst]).astype(np.int64)
        items = self.hist_items[user_start[inst] + r + skip]
        per_user = np.bincount(user, minlength=self.n_users)
        return {
            "user": user,
            "positive": self.hist_items[hist_pos],
            "offsets": offsets,
            "items": items,
            "user_offsets": np.concatenate([[0], np.cumsum(per_user)]),
            "per_user": per_user,
        }

    @cached_property
    def hidden_item_instances(self) -> dict[str, np.ndarray]:
        """Strategy 1: one instance per position of a training basket with 2+ items.

        Profile = the user's training items up to the end of that basket, without that position's item.
        """
        multi = np.flatnonzero(self.basket_len >= 2)
        lengths = self.basket_len[multi]
        basket = np.repeat(multi, lengths)
        hist_pos = self.basket_offsets[basket] + ranks_within(lengths)  # position of the hidden item
        return self._hidden_item_profiles(hist_pos, self.basket_offsets[basket + 1])

    @cached_property
    def leave_one_out_instances(self) -> dict[str, np.ndarray]:
        """The random ablation: one instance per training item of a user with 2+ training items.

        Profile = P_u \\ i, the user's whole training history without item i (the positive).
        """
        hist_pos = np.flatnonzero(self.hist_len[self.hist_user] >= 2)
        return self._hidden_item_profiles(hist_pos, self.hist_offsets[self.hist_user[hist_pos] + 1])

    @cached_property
    def next_basket_instances(self) -> dict[str, np.ndarray]:
        """Strategy 2: one instance per training basket k that has a later training basket.

        Profile = the user's baskets 0..k; the positive comes from basket k + 1.
        """
        has_next = self.basket_rank < self.user_n_baskets[self.basket_user] - 1
        basket = np.flatnonzero(has_next)
        user = self.basket_user[basket]
        start = self.hist_offsets[user]
        profile_len = self.basket_offsets[basket + 1] - start
        offsets = np.concatenate([[0], np.cumsum(profile_len)])
        items = self.hist_items[np.repeat(start, profile_len) + ranks_within(profile_len)]
        instance_of_basket = np.full(len(self.basket_len), -1, dtype=np.int64)
        instance_of_basket[basket] = np.arange(len(basket))
        per_user = np.bincount(user, minlength=self.n_users)
        return {
            "user": user,
            "basket": basket,
            "offsets": offsets,
            "items": items,
            "user_offsets": np.concatenate([[0], np.cumsum(per_user)]),
            "per_user": per_user,
            "instance_of_basket": instance_of_basket,
        }


@dataclass(eq=False)
class SamplingInputs:
    """Everything the samplers need, indexed by artwork_idx and user_idx. Treat as immutable.

    ``train_baskets[u]`` lists user u's training baskets in time order; a history lists each artwork
    once and never an item of ``test_items[u]`` (checked). Build it with :meth:`from_frames`.
    """

    n_items: int
    item_artist: np.ndarray  # int32 (N,) artist code
    item_cluster: np.ndarray  # int32 (N,) visual cluster
    pca_unit: np.ndarray  # float32 (N, d) L2-normalised PCA vectors (for cosines)
    user_ids: list[str]  # user_idx -> user_id
    train_baskets: list[list[np.ndarray]]  # per user, training baskets in time order (artwork_idx arrays)
    test_items: list[np.ndarray]  # per user, held-out basket items (empty if none)
    preparation: dict = field(default_factory=dict)  # counts of what from_frames removed, and why

    def __post_init__(self) -> None:
        n = int(self.n_items)
        for name in ("item_artist", "item_cluster"):
            if np.asarray(getattr(self, name)).shape != (n,):
                raise ValueError(f"SamplingInputs.{name} must have shape ({n},), got {np.shape(getattr(self, name))}")
        if np.ndim(self.pca_unit) != 2 or len(self.pca_unit) != n:
            raise ValueError(f"SamplingInputs.pca_unit must have shape ({n}, d), got {np.shape(self.pca_unit)}")
        if not (len(self.user_ids) == len(self.train_baskets) == len(self.test_items)):
            raise ValueError("SamplingInputs: user_ids, train_baskets and test_items must have one entry per user")
        if any(len(b) == 0 for baskets in self.train_baskets for b in baskets):
            raise ValueError("SamplingInputs.train_baskets contains an empty basket")
        self.item_artist = np.asarray(self.item_artist, dtype=np.int32)
        self.item_cluster = np.asarray(self.item_cluster, dtype=np.int32)
        self.pca_unit = np.ascontiguousarray(self.pca_unit, dtype=np.float32)
        self._index = _Index(self)  # also validates item ranges and the history rules

    @classmethod
    def from_frames(
        cls,
        artworks: pd.DataFrame,
        split_transactions: pd.DataFrame,
        labels: np.ndarray,
        pca_vectors: np.ndarray,
    ) -> "SamplingInputs":
        """Build inputs from the normalized frames, the split, the cluster labels and the PCA vectors.

        Users are numbered in sorted ``user_id`` order. Training baskets are ordered as in the split
        (timestamp, then basket_id). Rows removed from training histories (an artwork also in the
        user's held-out basket; a repeat purchase of an artwork already in the history) are counted in
        ``preparation``; they stay in the split table, only the sampler ignores them.
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

        tx = split_transactions
        needed = ("user_id", "basket_id", "purchase_timestamp", "artwork_idx", SPLIT_COLUMN)
        missing = [c for c in needed if c not in tx]
        if missing:
            raise ValueError(f"split transactions lack column(s) {missing}")
        unknown_split = ~tx[SPLIT_COLUMN].isin(SPLIT_LABELS).to_numpy()
        if unknown_split.any():
            first_bad = tx[SPLIT_COLUMN][unknown_split].iloc[0]
            raise ValueError(f"split column holds values other than {SPLIT_LABELS}, e.g. {first_bad!r}")
        items = tx["artwork_idx"].to_numpy().astype(np.int64)
        if len(items) and (items.min() < 0 or items.max() >= n):
            raise ValueError(f"split transactions reference artwork_idx outside [0, {n})")
        ranks = order_baskets(tx).set_index("basket_id")["basket_rank"]
        user_ids = sorted(tx["user_id"].astype(str).unique())
        frame = pd.DataFrame(
            {
                "user": pd.Categorical(tx["user_id"].astype(str), categories=user_ids).codes.astype(np.int64),
                "rank": tx["basket_id"].map(ranks).to_numpy(),
                "basket": tx["basket_id"].to_numpy(),
                "item": items,
                "test": (tx[SPLIT_COLUMN] == TEST).to_numpy(),
                "row": np.arange(len(tx)),
            }
        ).sort_values(["user", "rank", "row"], kind="stable")
        test = frame[frame["test"]].drop_duplicates(["user", "item"])
        train = frame[~frame["test"]]
        in_test = _PairIndex(test["user"].to_numpy(), test["item"].to_numpy(), n).contains(
            train["user"].to_numpy(), train["item"].to_numpy()
        )
        repeat = train.duplicated(["user", "item"], keep="first").to_numpy() & ~in_test
        kept = train[~in_test & ~repeat]
        n_users = len(user_ids)

        test_items = [np.zeros(0, dtype=np.int32) for _ in range(n_users)]
        for u, group in test.groupby("user", sort=True)["item"]:
            test_items[u] = np.sort(group.to_numpy()).astype(np.int32)
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
            "train_rows_dropped_as_held_out_items": int(in_test.sum()),
            "train_rows_dropped_as_repeat_purchases": int(repeat.sum()),
            "train_baskets_emptied": int(n_train_baskets_before - n_train_baskets_after),
            "n_users": n_users,
            "n_users_with_test_basket": int(sum(len(t) > 0 for t in test_items)),
        }
        return cls(
            n_items=n,
            item_artist=item_artist.astype(np.int32),
            item_cluster=labels.astype(np.int32),
            pca_unit=pca_unit,
            user_ids=user_ids,
            train_baskets=train_baskets,
            test_items=test_items,
            preparation=preparation,
        )


# --------------------------------------------------------------------------------------------------
# Budget and results
# --------------------------------------------------------------------------------------------------


def _ceil_fraction(n: int, fraction: float) -> int:
    # round() first so that e.g. 1000 * 0.05 = 50.000000000000004 gives 50, not 51
    return int(math.ceil(round(n * fraction, 9)))


@dataclass(frozen=True)
class SamplingBudget:
    """How many triplets to sample: ``total_train`` over the six strategies, split evenly."""

    total_train: int
    validation_fraction: float = 0.05

    def __post_init__(self) -> None:
        if int(self.total_train) < 1:
            raise ValueError(f"SamplingBudget.total_train must be at least 1, got {self.total_train}")
        if not 0.0 <= self.validation_fraction <= 1.0:
            raise ValueError(f"SamplingBudget.validation_fraction must be in [0, 1], got {self.validation_fraction}")

    @classmethod
    def paper(cls) -> "SamplingBudget":
        """The paper's scale: 10,000,000 training triplets (and 5% validation)."""
        return cls(10_000_000)

    def per_strategy_train(self) -> int:
        return int(math.ceil(self.total_train / len(STRATEGIES)))

    def per_strategy_validation(self) -> int:
        return _ceil_fraction(self.per_strategy_train(), self.validation_fraction)

    def random_train(self) -> int:
        """Training budget of the random-sampling ablation: the whole total, not a sixth."""
        return int(self.total_train)

    def random_validation(self) -> int:
        return _ceil_fraction(self.total_train, self.validation_fraction)


@dataclass
class StrategySample:
    """Triplets of one strategy; train and validation share one profile table.

    ``stats`` (plain Python values, for asset metadata): strategy, seed, target_train,
    target_validation, actual_train, actual_validation, eligible_users_or_items,
    quota_per_unit_train / _validation, and over both splits' draws: hash_collisions (valid draws
    rejected as duplicates), near_duplicates_rejected, failed_attempts (draws that found no valid
    candidate within the redraw limit and were skipped); n_profiles; profile_length_histogram
    (profile length -> number of training triplets).
    """

    train: TripletSet
    validation: TripletSet
    stats: dict
    strategy: str


# --------------------------------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------------------------------


@dataclass
class _Plan:
    """One strategy, ready to draw: eligible units, its profile table and a vectorized draw function."""

    units: np.ndarray  # eligible user_idx or artwork_idx
    profile_offsets: np.ndarray
    profile_items: np.ndarray
    draw: Callable[[np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]
    notes: dict = field(default_factory=dict)  # extra counts for the stats (e.g. users that cannot take part)


class _Sampler:
    """Draw functions of the strategies over one SamplingInputs, with counters for the stats."""

    def __init__(self, inputs: SamplingInputs) -> None:
        self.inputs = inputs
        self.ix: _Index = inputs._index
        self.failed_attempts = 0
        self.near_duplicates_rejected = 0
        self.hash_collisions = 0

    # ---- generic redraw machinery ----

    def _redraw(
        self,
        n: int,
        propose: Callable[[np.ndarray], np.ndarray],
        accept: Callable[[np.ndarray, np.ndarray], np.ndarray],
        max_rounds: int,
    ) -> np.ndarray:
        """Vectorized rejection sampling: ``propose(rows)`` candidates, keep those ``accept`` allows, and
        redraw only the rest, at most ``max_rounds`` times. Rows never accepted get -1."""
        out = np.full(n, -1, dtype=np.int64)
        pending = np.arange(n)
        for _ in range(max_rounds):
            if len(pending) == 0:
                break
            candidates = propose(pending)
            ok = accept(pending, candidates)
            out[pending[ok]] = candidates[ok]
            pending = pending[~ok]
        return out

    def _not_near_duplicate(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        near = self.ix.is_near_duplicate(a, b)
        self.near_duplicates_rejected += int(near.sum())
        return ~near

    def _biased_candidates(self, anchors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """SPEC 5 same-cluster-biased draw: p=0.6 uniform in the anchor's cluster, else a uniform cluster
        and a uniform item inside it."""
        ix = self.ix
        own = rng.random(len(anchors)) < SAME_CLUSTER_PROBABILITY
        cluster = np.where(own, ix.cluster[anchors], rng.integers(0, ix.n_clusters, len(anchors)))
        return ix.cluster_items[ix.cluster_offsets[cluster] + rng.integers(0, ix.cluster_size[cluster])]

    def _uniform_items(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.integers(0, self.ix.n_items, n)

    def _random_history_item(self, users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        ix = self.ix
        return ix.hist_items[ix.hist_offsets[users] + rng.integers(0, ix.hist_len[users])]

    def _disjoint_negatives(self, users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Strategies 1-3: uniform over items whose artist AND cluster the user never bought (held-out excluded)."""
        ix = self.ix

        def accept(rows: np.ndarray, cand: np.ndarray) -> np.ndarray:
            u = users[rows]
            return (
                ~ix.user_artist.contains(u, ix.artist[cand])
                & ~ix.user_cluster.contains(u, ix.cluster[cand])
                & ~ix.user_test.contains(u, cand)
            )

        return self._redraw(len(users), lambda rows: self._uniform_items(len(rows), rng), accept, MAX_REDRAW_ROUNDS)

    # ---- the strategies ----

    def plan(self, strategy: str) -> _Plan:
        builders = {
            STRATEGIES[0]: self._plan_hidden_basket_item,
            STRATEGIES[1]: self._plan_next_basket,
            STRATEGIES[2]: self._plan_favourite_artist,
            STRATEGIES[3]: self._plan_profile_item,
            STRATEGIES[4]: self._plan_single_item,
            STRATEGIES[5]: self._plan_single_item_same_artist,
            RANDOM_STRATEGY: self._plan_random,
            RANDOM_BPR_STRATEGY: self._plan_random_bpr,
        }
        if strategy not in builders:
            raise ValueError(f"unknown sampling strategy {strategy!r}; expected one of {list(builders)}")
        return builders[strategy]()

    def _plan_hidden_basket_item(self) -> _Plan:
        ix = self.ix
        inst = ix.hidden_item_instances
        units = np.flatnonzero((inst["per_user"] > 0) & (ix.n_disjoint_negatives > 0))

        def draw(users: np.ndarray, rng: np.random.Generator):
            row = inst["user_offsets"][users] + rng.integers(0, inst["per_user"][users])
            return row, inst["positive"][row], self._disjoint_negatives(users, rng), users

        return _Plan(units, inst["offsets"], inst["items"], draw)

    def _plan_next_basket(self) -> _Plan:
        ix = self.ix
        inst = ix.next_basket_instances
        units = np.flatnonzero((inst["per_user"] > 0) & (ix.n_disjoint_negatives > 0))

        def draw(users: np.ndarray, rng: np.random.Generator):
            row = inst["user_offsets"][users] + rng.integers(0, inst["per_user"][users])
            following = inst["basket"][row] + 1
            positive = ix.hist_items[ix.basket_offsets[following] + rng.integers(0, ix.basket_len[following])]
            return row, positive, self._disjoint_negatives(users, rng), users

        return _Plan(units, inst["offsets"], inst["items"], draw)

    def _plan_favourite_artist(self) -> _Plan:
        ix = self.ix
        units = np.flatnonzero((ix.n_favourite_positives > 0) & (ix.n_disjoint_negatives > 0))

        def draw(users: np.ndarray, rng: np.random.Generator):
            def propose(rows: np.ndarray) -> np.ndarray:
                artist = ix.artist[self._random_history_item(users[rows], rng)]
                return ix.artist_items[ix.artist_offsets[artist] + rng.integers(0, ix.artist_size[artist])]

            def accept(rows: np.ndarray, cand: np.ndarray) -> np.ndarray:
                u = users[rows]
                return (
                    ~ix.user_item.contains(u, cand)
                    & ix.user_cluster.contains(u, ix.cluster[cand])
                    & ~ix.user_test.contains(u, cand)
                )

            positive = self._redraw(len(users), propose, accept, FAVOURITE_POSITIVE_DRAWS)
            negative = np.full(len(users), -1, dtype=np.int64)
            found = positive >= 0
            negative[found] = self._disjoint_negatives(users[found], rng)
            return users, positive, negative, users

        return _Plan(units, ix.hist_offsets, ix.hist_items, draw)

    def _plan_profile_item(self) -> _Plan:
        ix = self.ix
        units = np.flatnonzero((ix.hist_len > 0) & (ix.n_outside_profile > 0))

        def draw(users: np.ndarray, rng: np.random.Generator):
            positive = self._random_history_item(users, rng)

            def accept(rows: np.ndarray, cand: np.ndarray) -> np.ndarray:
                u = users[rows]
                ok = ~ix.user_item.contains(u, cand) & ~ix.user_test.contains(u, cand)
                ok[ok] = self._not_near_duplicate(positive[rows][ok], cand[ok])
                return ok

            negative = self._redraw(
                len(users), lambda rows: self._biased_candidates(positive[rows], rng), accept, MAX_REDRAW_ROUNDS
            )
            return users, positive, negative, users

        return _Plan(units, ix.hist_offsets, ix.hist_items, draw)

    def _single_item_table(self) -> tuple[np.ndarray, np.ndarray]:
        n = self.ix.n_items
        return np.arange(n + 1, dtype=np.int64), np.arange(n, dtype=np.int64)

    def _plan_single_item(self) -> _Plan:
        ix = self.ix
        units = np.arange(ix.n_items) if ix.n_items >= 2 else np.zeros(0, dtype=np.int64)

        def draw(items: np.ndarray, rng: np.random.Generator):
            def accept(rows: np.ndarray, cand: np.ndarray) -> np.ndarray:
                ok = cand != items[rows]
                ok[ok] = self._not_near_duplicate(items[rows][ok], cand[ok])
                return ok

            negative = self._redraw(
                len(items), lambda rows: self._biased_candidates(items[rows], rng), accept, MAX_REDRAW_ROUNDS
            )
            return items, items, negative, np.full(len(items), -1, dtype=np.int64)

        return _Plan(units, *self._single_item_table(), draw)

    def _plan_single_item_same_artist(self) -> _Plan:
        ix = self.ix
        units = np.flatnonzero(ix.artist_size[ix.artist] >= 2)
        pca_unit = self.inputs.pca_unit

        def draw(items: np.ndarray, rng: np.random.Generator):
            artist = ix.artist[items]
            # Another work by the same artist: uniform over the artist's other works (skip x's own slot).
            r = rng.integers(0, ix.artist_size[artist] - 1)
            r = r + (r >= ix.rank_in_artist[items])
            positive = ix.artist_items[ix.artist_offsets[artist] + r]
            cos_x_pos = _row_cosines(pca_unit, items, positive)

            def accept(rows: np.ndarray, cand: np.ndarray) -> np.ndarray:
                ok = ix.artist[cand] != artist[rows]
                ok[ok] = self._not_near_duplicate(positive[rows][ok], cand[ok])
                sel = rows[ok]
                ok[ok] = _passes_visual_confidence(
                    pca_unit, ix.cluster, items[sel], positive[sel], cand[ok], cos_x_pos[sel]
                )
                return ok

            negative = self._redraw(
                len(items), lambda rows: self._biased_candidates(items[rows], rng), accept, MAX_REDRAW_ROUNDS
            )
            return items, positive, negative, np.full(len(items), -1, dtype=np.int64)

        return _Plan(units, *self._single_item_table(), draw)

    def _uniform_unbought(self, users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Uniform over the items user ``users[k]`` never bought (held-out basket included)."""
        ix = self.ix

        def accept(rows: np.ndarray, cand: np.ndarray) -> np.ndarray:
            u = users[rows]
            return ~ix.user_item.contains(u, cand) & ~ix.user_test.contains(u, cand)

        return self._redraw(len(users), lambda rows: self._uniform_items(len(rows), rng), accept, MAX_REDRAW_ROUNDS)

    def _plan_random(self) -> _Plan:
        """(P_u \\ i, i, j): a user with one training item has no P_u \\ i, so the budget goes to the others."""
        ix = self.ix
        inst = ix.leave_one_out_instances
        has_negative = ix.n_outside_profile > 0
        units = np.flatnonzero((inst["per_user"] > 0) & has_negative)

        def draw(users: np.ndarray, rng: np.random.Generator):
            row = inst["user_offsets"][users] + rng.integers(0, inst["per_user"][users])
            return row, inst["positive"][row], self._uniform_unbought(users, rng), users

        skipped = int(((ix.hist_len == 1) & has_negative).sum())
        return _Plan(units, inst["offsets"], inst["items"], draw, {"users_skipped_one_training_item": skipped})

    def _plan_random_bpr(self) -> _Plan:
        ix = self.ix
        units = np.flatnonzero((ix.hist_len > 0) & (ix.n_outside_profile > 0))

        def draw(users: np.ndarray, rng: np.random.Generator):
            return users, self._random_history_item(users, rng), self._uniform_unbought(users, rng), users

        return _Plan(units, ix.hist_offsets, ix.hist_items, draw)

    # ---- quotas, dedup, trimming ----

    def fill(
        self, plan: _Plan, profile_hash: np.ndarray, quota: int, taken: np.ndarray, rng: np.random.Generator
    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Draw up to ``quota`` distinct valid triplets per unit, avoiding hashes in sorted ``taken``.

        Returns the accepted columns and ``taken`` extended with their hashes (still sorted).
        """
        n_units = len(plan.units)
        deficit = np.full(n_units, quota, dtype=np.int64)
        parts: list[dict[str, np.ndarray]] = []
        for _ in range(MAX_FILL_ROUNDS):
            unit_slot = np.repeat(np.arange(n_units), deficit)
            if len(unit_slot) == 0:
                break
            profile_id, positive, negative, user = plan.draw(plan.units[unit_slot], rng)
            ok = (positive >= 0) & (negative >= 0)
            self.failed_attempts += int((~ok).sum())
            # Strategies 4-6 and the ablation already redraw near-duplicates; this covers the rest.
            ok[ok] = self._not_near_duplicate(positive[ok], negative[ok])
            keep = np.flatnonzero(ok)
            hashes = _combine_hashes(profile_hash[profile_id[keep]], positive[keep], negative[keep])
            unique_hashes, first = np.unique(hashes, return_index=True)
            fresh = ~_sorted_contains(taken, unique_hashes)
            self.hash_collisions += len(keep) - int(fresh.sum())
            accepted = keep[_used_ids(len(keep), first[fresh])]
            new_hashes = unique_hashes[fresh]
            taken = np.insert(taken, np.searchsorted(taken, new_hashes), new_hashes)
            parts.append(
                {
                    "profile_id": profile_id[accepted],
                    "positive": positive[accepted],
                    "negative": negative[accepted],
                    "user_idx": user[accepted],
                }
            )
            deficit -= np.bincount(unit_slot[accepted], minlength=n_units)
        columns = {
            name: (np.concatenate([p[name] for p in parts]) if parts else np.zeros(0, dtype=np.int64)).astype(np.int32)
            for name in ("profile_id", "positive", "negative", "user_idx")
        }
        return columns, taken


def _trim(columns: dict[str, np.ndarray], target: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Keep a seeded uniform subset of exactly ``target`` rows (order preserved) when there are more."""
    n = len(columns["profile_id"])
    if n <= target:
        return columns
    keep = np.sort(rng.choice(n, size=target, replace=False))
    return {name: values[keep] for name, values in columns.items()}


def _reserve_validation(
    train: dict[str, np.ndarray],
    validation: dict[str, np.ndarray],
    target_train: int,
    target_validation: int,
    rng: np.random.Generator,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Split what a small gallery yields by the budget's train/validation ratio.

    When the gallery has fewer distinct triplets than the training budget, the training draw takes them
    all and the validation draw finds nothing new; moving a seeded share of the training rows over keeps
    validation at the configured fraction of what exists (rows stay distinct: none is in both).
    """
    n_train, n_validation = len(train["profile_id"]), len(validation["profile_id"])
    wanted = math.ceil((n_train + n_validation) * target_validation / (target_train + target_validation))
    move = min(wanted - n_validation, n_train - 1)
    if move <= 0:
        return train, validation
    moved = np.zeros(n_train, dtype=bool)
    moved[rng.choice(n_train, size=move, replace=False)] = True
    return (
        {name: values[~moved] for name, values in train.items()},
        {name: np.concatenate([validation[name], values[moved]]) for name, values in train.items()},
    )


def _passes_visual_confidence(
    pca_unit: np.ndarray,
    cluster: np.ndarray,
    x: np.ndarray,
    positive: np.ndarray,
    negative: np.ndarray,
    cos_x_positive: np.ndarray | None = None,
) -> np.ndarray:
    """Strategy 6's test (SPEC 5): accept when x and the positive share a cluster and the negative is in
    another; reject when x and the negative share a cluster and the positive is elsewhere; otherwise
    accept only if cos(x, pos) > cos(x, neg) + 0.1 on the PCA vectors."""
    same_pos = cluster[x] == cluster[positive]
    same_neg = cluster[x] == cluster[negative]
    result = same_pos & ~same_neg
    undecided = np.flatnonzero(same_pos == same_neg)
    if len(undecided):
        if cos_x_positive is None:
            cos_pos = _row_cosines(pca_unit, x[undecided], positive[undecided])
        else:
            cos_pos = cos_x_positive[undecided]
        cos_neg = _row_cosines(pca_unit, x[undecided], negative[undecided])
        result[undecided] = cos_pos > cos_neg + np.float32(VISUAL_CONFIDENCE_MARGIN)
    return result


def _make_triplet_set(offsets: np.ndarray, items: np.ndarray, columns: dict[str, np.ndarray]) -> TripletSet:
    return TripletSet(
        profile_offsets=offsets,
        profile_items=items,
        profile_id=columns["profile_id"],
        positive=columns["positive"],
        negative=columns["negative"],
        user_idx=columns["user_idx"],
    )


def _compact_profiles(
    offsets: np.ndarray, items: np.ndarray, *column_sets: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Keep only the profiles some triplet uses, renumbering ``profile_id`` in place."""
    used = _used_ids(len(offsets) - 1, *(c["profile_id"] for c in column_sets))
    new_offsets, new_items = gather_csr_rows(np.asarray(offsets, dtype=np.int64), items, used)
    renumber = np.full(len(offsets) - 1, -1, dtype=np.int32)
    renumber[used] = np.arange(len(used), dtype=np.int32)
    for columns in column_sets:
        columns["profile_id"] = renumber[columns["profile_id"]]
    return new_offsets, new_items.astype(np.int32)


def _sample(
    strategy: str, inputs: SamplingInputs, target_train: int, target_validation: int, seed: int
) -> StrategySample:
    sampler = _Sampler(inputs)
    plan = sampler.plan(strategy)
    code = STRATEGY_CODES[strategy]
    rng_train, rng_validation, rng_trim = (
        np.random.default_rng(np.random.SeedSequence([seed, code, stream])) for stream in (0, 1, 2)
    )
    profile_hash = _profile_hashes(plan.profile_offsets, plan.profile_items)
    n_eligible = len(plan.units)
    quota_train = math.ceil(target_train / n_eligible) if n_eligible else 0
    quota_validation = math.ceil(target_validation / n_eligible) if n_eligible else 0

    train, _ = sampler.fill(plan, profile_hash, quota_train, np.zeros(0, dtype=np.uint64), rng_train)
    train = _trim(train, target_train, rng_trim)
    train_hashes = np.sort(_combine_hashes(profile_hash[train["profile_id"]], train["positive"], train["negative"]))
    validation, _ = sampler.fill(plan, profile_hash, quota_validation, train_hashes, rng_validation)
    validation = _trim(validation, target_validation, rng_trim)
    budget_capped = len(train["profile_id"]) < target_train
    if budget_capped:
        train, validation = _reserve_validation(train, validation, target_train, target_validation, rng_trim)

    offsets, items = _compact_profiles(plan.profile_offsets, plan.profile_items, train, validation)
    train_set = _make_triplet_set(offsets, items, train)
    validation_set = _make_triplet_set(offsets, items, validation)
    length_counts = np.bincount(train_set.profile_lengths()[train_set.profile_id])
    lengths = np.flatnonzero(length_counts)
    counts = length_counts[lengths]
    stats = {
        "strategy": strategy,
        "seed": int(seed),
        "target_train": int(target_train),
        "target_validation": int(target_validation),
        "actual_train": len(train_set),
        "actual_validation": len(validation_set),
        "budget_capped": bool(budget_capped),
        "eligible_users_or_items": int(n_eligible),
        "quota_per_unit_train": int(quota_train),
        "quota_per_unit_validation": int(quota_validation),
        "hash_collisions": int(sampler.hash_collisions),
        "near_duplicates_rejected": int(sampler.near_duplicates_rejected),
        "failed_attempts": int(sampler.failed_attempts),
        "n_profiles": train_set.n_profiles,
        "profile_length_histogram": {int(k): int(v) for k, v in zip(lengths, counts)},
        **plan.notes,
    }
    return StrategySample(train=train_set, validation=validation_set, stats=stats, strategy=strategy)


def sample_strategy(strategy: str, inputs: SamplingInputs, budget: SamplingBudget, seed: int) -> StrategySample:
    """Sample one of the six strategies (a key of ``STRATEGIES``) with its share of the budget.

    Training and validation triplets come from separate seed streams; validation triplets never
    repeat a training triplet of this strategy. Same inputs, budget and seed give identical arrays.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown sampling strategy {strategy!r}; expected one of {list(STRATEGIES)}")
    return _sample(strategy, inputs, budget.per_strategy_train(), budget.per_strategy_validation(), seed)


def sample_random(
    inputs: SamplingInputs, budget: SamplingBudget, seed: int, strategy: str = RANDOM_STRATEGY
) -> StrategySample:
    """The paper's random-sampling ablation (Figure 3) with the whole budget.

    ``random`` (CuratorNet's, the paper's section 3.3): a user u with 2+ training items, a positive i
    uniform over their training items, profile = P_u \\ i (their history without i), negative uniform over
    items u never bought (held-out basket included). Users with one training item cannot form one; their
    share of the budget goes to the others (``users_skipped_one_training_item`` in the stats).
    ``random_bpr`` (VBPR's): the same (u, i, j) draw for every user with a training item; the stored
    profile is the full history, which VBPR does not read.
    """
    if strategy not in RANDOM_STRATEGIES:
        raise ValueError(f"unknown random sampling {strategy!r}; expected one of {list(RANDOM_STRATEGIES)}")
    return _sample(strategy, inputs, budget.random_train(), budget.random_validation(), seed)


# --------------------------------------------------------------------------------------------------
# Union of the strategies
# --------------------------------------------------------------------------------------------------


def union_deduplicate(
    samples: list[StrategySample],
) -> tuple[TripletSet, TripletSet, np.ndarray, np.ndarray, dict]:
    """Merge strategy samples into one training and one validation set without duplicates.

    One hash space covers all strategies and both splits: a training triplet already seen (earlier in
    ``samples`` order) is dropped; a validation triplet is dropped when it repeats any kept training
    triplet (train wins) or an earlier validation triplet. Profiles are merged into one table shared by
    both returned sets (identical profiles from different strategies become one row).
    Returns (train, validation, train_strategy_code, validation_strategy_code, stats); the codes are
    ``STRATEGY_CODES`` values (int8).
    """
    tables: dict[tuple[int, int], int] = {}
    table_arrays: list[tuple[np.ndarray, np.ndarray]] = []

    def table_of(ts: TripletSet) -> int:
        key = (id(ts.profile_offsets), id(ts.profile_items))
        if key not in tables:
            tables[key] = len(table_arrays)
            table_arrays.append((np.asarray(ts.profile_offsets, dtype=np.int64), ts.profile_items))
        return tables[key]

    parts = {"train": [], "validation": []}
    for sample in samples:
        code = STRATEGY_CODES[sample.strategy]
        for split, ts in (("train", sample.train), ("validation", sample.validation)):
            parts[split].append((table_of(ts), ts, code))

    # One global table of every input profile, then one row per distinct profile content.
    n_rows = [len(offsets) - 1 for offsets, _ in table_arrays]
    row_base = np.concatenate([[0], np.cumsum(n_rows)]).astype(np.int64)
    item_base = np.concatenate([[0], np.cumsum([len(items) for _, items in table_arrays])]).astype(np.int64)
    all_offsets = np.concatenate(
        [[0]] + [offsets[1:] + item_base[t] for t, (offsets, _) in enumerate(table_arrays)]
    ).astype(np.int64)
    all_items = (
        np.concatenate([np.asarray(items, dtype=np.int32) for _, items in table_arrays])
        if table_arrays
        else np.zeros(0, dtype=np.int32)
    )
    all_profile_hash = _profile_hashes(all_offsets, all_items)
    distinct_hash, first_row, distinct_of_row = np.unique(all_profile_hash, return_index=True, return_inverse=True)
    distinct_of_row = distinct_of_row.astype(np.int32)

    def gather(split: str) -> dict[str, np.ndarray]:
        cols = {k: [] for k in ("profile", "positive", "negative", "user_idx", "code")}
        for t, ts, code in parts[split]:
            cols["profile"].append(distinct_of_row[row_base[t] + ts.profile_id])
            cols["positive"].append(ts.positive)
            cols["negative"].append(ts.negative)
            cols["user_idx"].append(ts.user_idx)
            cols["code"].append(np.full(len(ts), code, dtype=np.int8))
        dtypes = {"profile": np.int32, "positive": np.int32, "negative": np.int32, "user_idx": np.int32}
        dtypes["code"] = np.int8
        return {
            k: np.concatenate([np.asarray(x, dtype=dtypes[k]) for x in v]) if v else np.zeros(0, dtype=dtypes[k])
            for k, v in cols.items()
        }

    train = gather("train")
    validation = gather("validation")
    train_hash = _combine_hashes(distinct_hash[train["profile"]], train["positive"], train["negative"])
    validation_hash = _combine_hashes(
        distinct_hash[validation["profile"]], validation["positive"], validation["negative"]
    )

    train_unique, train_first = np.unique(train_hash, return_index=True)
    train_keep = _used_ids(len(train_hash), train_first)
    validation_unique, validation_first = np.unique(validation_hash, return_index=True)
    not_in_train = ~_sorted_contains(train_unique, validation_unique)
    validation_keep = _used_ids(len(validation_hash), validation_first[not_in_train])

    train = {k: v[train_keep] for k, v in train.items()}
    validation = {k: v[validation_keep] for k, v in validation.items()}

    used = _used_ids(len(distinct_hash), train["profile"], validation["profile"])
    shared_offsets, shared_items = gather_csr_rows(all_offsets, all_items, first_row[used])
    new_profile_id = np.full(len(distinct_hash), -1, dtype=np.int32)
    new_profile_id[used] = np.arange(len(used), dtype=np.int32)

    def to_set(cols: dict[str, np.ndarray]) -> TripletSet:
        return TripletSet(
            profile_offsets=shared_offsets,
            profile_items=shared_items,
            profile_id=new_profile_id[cols["profile"]],
            positive=cols["positive"],
            negative=cols["negative"],
            user_idx=cols["user_idx"],
        )

    per_strategy = {}
    for sample in samples:
        code = STRATEGY_CODES[sample.strategy]
        per_strategy[sample.strategy] = {
            "train_in": len(sample.train),
            "train_kept": int((train["code"] == code).sum()),
            "validation_in": len(sample.validation),
            "validation_kept": int((validation["code"] == code).sum()),
        }
    n_validation_in = len(validation_hash)
    stats = {
        "train_in": int(len(train_hash)),
        "train_kept": int(len(train_keep)),
        "train_duplicates_removed": int(len(train_hash) - len(train_keep)),
        "validation_in": int(n_validation_in),
        "validation_kept": int(len(validation_keep)),
        "validation_duplicates_removed": int(n_validation_in - len(validation_unique)),
        "validation_repeating_train_removed": int((~not_in_train).sum()),
        "n_profiles": int(len(used)),
        "n_profile_items": int(len(shared_items)),
        "per_strategy": per_strategy,
    }
    return to_set(train), to_set(validation), train["code"], validation["code"], stats


# --------------------------------------------------------------------------------------------------
# Rule checking (for asset checks on materialized triplet tables)
# --------------------------------------------------------------------------------------------------

_DISJOINT_NEGATIVE_STRATEGIES = frozenset(STRATEGIES[:3])


def check_strategy_rules(strategy: str, ts: TripletSet, inputs: SamplingInputs) -> dict[str, int]:
    """Count, for every triplet of ``ts``, violations of ``strategy``'s rules (SPEC 5); all 0 when valid.

    Vectorized over the whole set (no sampling). Rules: indices in range and the right user marker;
    non-empty profile; positive != negative; no near-duplicate pair; negative not in the profile; no
    duplicate triplet; for real users no held-out item in profile, positive or negative; the profile is
    the one the strategy builds for that user and positive; plus each strategy's own positive/negative
    conditions (strategy 6: same-artist positive, other-artist negative, visual-confidence test).
    Rows failing the range or user-marker rule are only counted there.
    """
    if strategy not in STRATEGY_CODES:
        raise ValueError(f"unknown sampling strategy {strategy!r}; expected one of {list(STRATEGY_CODES)}")
    ix = inputs._index
    n = ix.n_items
    real_user = strategy in REAL_USER_STRATEGIES
    offsets = np.asarray(ts.profile_offsets, dtype=np.int64)
    items = np.asarray(ts.profile_items, dtype=np.int64)
    lengths = np.diff(offsets)
    n_profiles = len(lengths)
    profile_id = np.asarray(ts.profile_id, dtype=np.int64)
    positive = np.asarray(ts.positive, dtype=np.int64)
    negative = np.asarray(ts.negative, dtype=np.int64)
    user = np.asarray(ts.user_idx, dtype=np.int64)
    counts: dict[str, int] = {}

    profile_out_of_range = np.zeros(n_profiles, dtype=bool)
    bad_items = (items < 0) | (items >= n)
    if bad_items.any():
        profile_out_of_range[np.repeat(np.arange(n_profiles), lengths)[bad_items]] = True
    out_of_range = (profile_id < 0) | (profile_id >= n_profiles)
    for column in (positive, negative):
        out_of_range |= (column < 0) | (column >= n)
    out_of_range[~out_of_range] = profile_out_of_range[profile_id[~out_of_range]]
    counts["index_out_of_range"] = int(out_of_range.sum())
    wrong_user = ((user < 0) | (user >= ix.n_users)) if real_user else (user != -1)
    counts["wrong_user_marker"] = int((wrong_user & ~out_of_range).sum())

    rows = np.flatnonzero(~out_of_range & ~wrong_user)
    p, a, b, u = profile_id[rows], positive[rows], negative[rows], user[rows]
    safe_items = np.where(bad_items, 0, items)
    in_profile = _PairIndex(np.repeat(np.arange(n_profiles), lengths), safe_items, n)
    profile_hash = _profile_hashes(offsets, safe_items)

    counts["empty_profile"] = int((lengths[p] == 0).sum())
    counts["positive_equals_negative"] = int((a == b).sum())
    counts["near_duplicate_pair"] = int(ix.is_near_duplicate(a, b).sum())
    counts["negative_in_profile"] = int(in_profile.contains(p, b).sum())
    hashes = _combine_hashes(profile_hash[p], a, b)
    sorted_hashes = np.sort(hashes)  # (np.unique without flags takes a far slower hash-table path here)
    counts["duplicate_triplet"] = int((sorted_hashes[1:] == sorted_hashes[:-1]).sum())

    if real_user:
        counts["held_out_item_as_positive"] = int(ix.user_test.contains(u, a).sum())
        counts["held_out_item_as_negative"] = int(ix.user_test.contains(u, b).sum())
        pair_keys, pair_of_row = np.unique(p * max(ix.n_users, 1) + u, return_inverse=True)
        pair_profile, pair_user = pair_keys // max(ix.n_users, 1), pair_keys % max(ix.n_users, 1)
        pair_len = lengths[pair_profile]
        element_item = safe_items[np.repeat(offsets[pair_profile], pair_len) + ranks_within(pair_len)]
        element_pair = np.repeat(np.arange(len(pair_keys)), pair_len)
        leaked = ix.user_test.contains(pair_user[element_pair], element_item)
        pair_leaks = np.bincount(element_pair[leaked], minlength=len(pair_keys)) > 0
        counts["held_out_item_in_profile"] = int(pair_leaks[pair_of_row].sum())

    if strategy == STRATEGIES[0]:
        inst = ix.hidden_item_instances
        found = _PairIndex(inst["user"], inst["positive"], n).find(u, a)
        counts["positive_not_in_multi_item_training_basket"] = int((found < 0).sum())
        expected = _profile_hashes(inst["offsets"], inst["items"])
        counts["profile_mismatch"] = int((profile_hash[p[found >= 0]] != expected[found[found >= 0]]).sum())
    elif strategy == STRATEGIES[1]:
        inst = ix.next_basket_instances
        hist_pos = ix.user_item.find(u, a)
        basket = np.where(hist_pos >= 0, ix.hist_basket[np.maximum(hist_pos, 0)], -1)
        later = (basket >= 0) & (ix.basket_rank[np.maximum(basket, 0)] > 0)
        counts["positive_not_in_a_later_training_basket"] = int((~later).sum())
        previous_instance = inst["instance_of_basket"][basket[later] - 1]
        expected = _profile_hashes(inst["offsets"], inst["items"])
        counts["profile_mismatch"] = int((profile_hash[p[later]] != expected[previous_instance]).sum())
    elif strategy == RANDOM_STRATEGY:
        inst = ix.leave_one_out_instances
        found = _PairIndex(inst["user"], inst["positive"], n).find(u, a)
        counts["positive_not_in_training_history_of_2_plus_items"] = int((found < 0).sum())
        expected = _profile_hashes(inst["offsets"], inst["items"])
        counts["profile_mismatch"] = int((profile_hash[p[found >= 0]] != expected[found[found >= 0]]).sum())
        counts["positive_in_profile"] = int(in_profile.contains(p, a).sum())
        counts["negative_bought_by_user"] = int(ix.user_item.contains(u, b).sum())
    elif strategy in (STRATEGIES[2], STRATEGIES[3], RANDOM_BPR_STRATEGY):
        counts["profile_mismatch"] = int((profile_hash[p] != ix.history_hashes[u]).sum())
    if strategy == STRATEGIES[2]:
        counts["positive_already_bought"] = int(ix.user_item.contains(u, a).sum())
        counts["positive_artist_not_bought"] = int((~ix.user_artist.contains(u, ix.artist[a])).sum())
        counts["positive_cluster_not_bought"] = int((~ix.user_cluster.contains(u, ix.cluster[a])).sum())
    if strategy in (STRATEGIES[3], RANDOM_BPR_STRATEGY):
        counts["positive_not_in_profile"] = int((~in_profile.contains(p, a)).sum())
    if strategy in _DISJOINT_NEGATIVE_STRATEGIES:
        counts["negative_artist_bought"] = int(ix.user_artist.contains(u, ix.artist[b]).sum())
        counts["negative_cluster_bought"] = int(ix.user_cluster.contains(u, ix.cluster[b]).sum())

    if strategy in (STRATEGIES[4], STRATEGIES[5]):
        single = lengths[p] == 1
        x = np.full(len(p), -1, dtype=np.int64)
        x[single] = safe_items[offsets[p[single]]]
        if strategy == STRATEGIES[4]:
            counts["profile_mismatch"] = int((~single | (x != a)).sum())
        else:
            counts["profile_mismatch"] = int((~single).sum())
            xs, as_, bs = x[single], a[single], b[single]
            counts["positive_not_same_artist"] = int(((ix.artist[as_] != ix.artist[xs]) | (as_ == xs)).sum())
            counts["negative_same_artist"] = int((ix.artist[bs] == ix.artist[xs]).sum())
            passes = _passes_visual_confidence(inputs.pca_unit, ix.cluster, xs, as_, bs)
            counts["visual_confidence_failed"] = int((~passes).sum())
    return counts
