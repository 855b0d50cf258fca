"""Each strategy's vectorized draw: which units are eligible, their profile table, and one candidate per unit.

A draw returns (profile_id, positive, negative, user_idx) for a batch of units; -1 in positive or
negative marks a unit for which no valid candidate turned up within the redraw limit (a failed attempt).
Invalid candidates are redrawn in vectorized rejection rounds, only for the rows still missing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from curatornet_pipeline.core.sampling.arrays import row_cosines
from curatornet_pipeline.core.sampling.index import SamplingIndex
from curatornet_pipeline.core.sampling.inputs import SamplingInputs
from curatornet_pipeline.core.sampling.strategy import Strategy

SAME_CLUSTER_PROBABILITY = 0.6
VISUAL_CONFIDENCE_MARGIN = 0.1
FAVOURITE_POSITIVE_DRAWS = 20  # SPEC 5, strategy 3
MAX_REDRAW_ROUNDS = 64  # rejection rounds for one negative before the draw counts as failed
# Where the paper is silent, two ways to draw (docs/reproducing_the_paper.md): ours, and the authors' code's.
DRAW_STYLES = ("ours", "authors")

Draw = Callable[[np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]
Accept = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (rows, candidates) -> which candidates are valid


@dataclass
class DrawPlan:
    """One strategy, ready to draw: eligible units, its profile table and a vectorized draw function."""

    units: np.ndarray  # eligible user_idx or artwork_idx
    profile_offsets: np.ndarray
    profile_items: np.ndarray
    draw: Draw
    notes: dict = field(default_factory=dict)  # extra counts for the stats (e.g. users that cannot take part)


def passes_visual_confidence(
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
            cos_pos = row_cosines(pca_unit, x[undecided], positive[undecided])
        else:
            cos_pos = cos_x_positive[undecided]
        cos_neg = row_cosines(pca_unit, x[undecided], negative[undecided])
        result[undecided] = cos_pos > cos_neg + np.float32(VISUAL_CONFIDENCE_MARGIN)
    return result


def redraw(
    n: int,
    propose: Callable[[np.ndarray], np.ndarray],
    accept: Accept,
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


class StrategyDraws:
    """Draw plans of the strategies over one SamplingInputs; counts the near-duplicates it rejects."""

    def __init__(self, inputs: SamplingInputs, style: str = "ours") -> None:
        if style not in DRAW_STYLES:
            raise ValueError(f"draw style must be one of {DRAW_STYLES}, got {style!r}")
        self.inputs = inputs
        self.ix: SamplingIndex = inputs.index
        self.near_duplicates_rejected = 0
        # "authors": strategies 1-3 negatives uniform over clusters then items, strategy 3's positive uniform
        # over the user's distinct artists, strategies 1 and 2 quotas per basket (then uniform over its items).
        self.authors = style == "authors"

    def not_near_duplicate(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """False where (a, b) is a near-duplicate pair (counted as rejected)."""
        near = self.ix.is_near_duplicate(a, b)
        self.near_duplicates_rejected += int(near.sum())
        return ~near

    def plan(self, strategy: Strategy) -> DrawPlan:
        builders = {
            Strategy.HIDDEN_BASKET_ITEM: self._plan_hidden_basket_item,
            Strategy.NEXT_BASKET: self._plan_next_basket,
            Strategy.FAVOURITE_ARTIST_SIMILAR: self._plan_favourite_artist,
            Strategy.PROFILE_ITEM: self._plan_profile_item,
            Strategy.SINGLE_ITEM: self._plan_single_item,
            Strategy.SINGLE_ITEM_SAME_ARTIST: self._plan_single_item_same_artist,
            Strategy.RANDOM: self._plan_random,
            Strategy.RANDOM_BPR: self._plan_random_bpr,
        }
        return builders[Strategy.parse(strategy)]()

    # ---- candidate draws shared by several strategies ----

    def _biased_candidates(self, anchors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """SPEC 5 same-cluster-biased draw: p=0.6 uniform in the anchor's cluster, else a uniform cluster
        and a uniform item inside it."""
        ix = self.ix
        own = rng.random(len(anchors)) < SAME_CLUSTER_PROBABILITY
        cluster = np.where(own, ix.cluster[anchors], rng.integers(0, ix.n_clusters, len(anchors)))
        return ix.cluster_items[ix.cluster_offsets[cluster] + rng.integers(0, ix.cluster_size[cluster])]

    def _biased_negatives(self, anchors: np.ndarray, accept: Accept, rng: np.random.Generator) -> np.ndarray:
        """Same-cluster-biased candidates around ``anchors``, redrawn until ``accept`` allows them (-1: never)."""
        return redraw(
            len(anchors), lambda rows: self._biased_candidates(anchors[rows], rng), accept, MAX_REDRAW_ROUNDS
        )

    def _uniform_negatives(self, n: int, accept: Accept, rng: np.random.Generator) -> np.ndarray:
        """Candidates uniform over the catalogue, redrawn until ``accept`` allows them (-1: never)."""
        return redraw(n, lambda rows: rng.integers(0, self.ix.n_items, len(rows)), accept, MAX_REDRAW_ROUNDS)

    def _random_history_item(self, users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        ix = self.ix
        return ix.hist_items[ix.hist_offsets[users] + rng.integers(0, ix.hist_len[users])]

    def _disjoint_negatives(self, users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Strategies 1-3: uniform over items whose artist AND cluster the user never bought."""
        ix = self.ix

        def accept(rows: np.ndarray, cand: np.ndarray) -> np.ndarray:
            u = users[rows]
            return (
                ~ix.user_artist.contains(u, ix.artist[cand])
                & ~ix.user_cluster.contains(u, ix.cluster[cand])
            )

        if self.authors:  # a uniform cluster, then a uniform item in it; rejection keeps it among the allowed
            propose = lambda rows: self._cluster_then_item(len(rows), rng)  # noqa: E731
            return redraw(len(users), propose, accept, MAX_REDRAW_ROUNDS)
        return self._uniform_negatives(len(users), accept, rng)

    def _cluster_then_item(self, n: int, rng: np.random.Generator) -> np.ndarray:
        ix = self.ix
        cluster = rng.integers(0, ix.n_clusters, n)
        return ix.cluster_items[ix.cluster_offsets[cluster] + rng.integers(0, ix.cluster_size[cluster])]

    def _uniform_unbought(self, users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Uniform over the items user ``users[k]`` never bought in training (held-out items are not known here)."""
        ix = self.ix

        def accept(rows: np.ndarray, cand: np.ndarray) -> np.ndarray:
            u = users[rows]
            return ~ix.user_item.contains(u, cand)

        return self._uniform_negatives(len(users), accept, rng)

    def _single_item_table(self) -> tuple[np.ndarray, np.ndarray]:
        n = self.ix.n_items
        return np.arange(n + 1, dtype=np.int64), np.arange(n, dtype=np.int64)

    # ---- the strategies ----

    def _plan_hidden_basket_item(self) -> DrawPlan:
        ix = self.ix
        inst = ix.hidden_item_instances
        if self.authors:  # units are the multi-item baskets; the hidden position is uniform inside the basket
            multi = np.flatnonzero(ix.basket_len >= 2)
            first_row = np.zeros(len(ix.basket_len), dtype=np.int64)
            first_row[multi] = np.concatenate([[0], np.cumsum(ix.basket_len[multi])[:-1]])
            units = multi[ix.n_disjoint_negatives[ix.basket_user[multi]] > 0]

            def draw_basket(baskets: np.ndarray, rng: np.random.Generator):
                users = ix.basket_user[baskets]
                row = first_row[baskets] + rng.integers(0, ix.basket_len[baskets])
                return row, inst.positive[row], self._disjoint_negatives(users, rng), users

            return DrawPlan(units, inst.offsets, inst.items, draw_basket)
        units = np.flatnonzero((inst.per_user > 0) & (ix.n_disjoint_negatives > 0))

        def draw(users: np.ndarray, rng: np.random.Generator):
            row = inst.random_rows(users, rng)
            return row, inst.positive[row], self._disjoint_negatives(users, rng), users

        return DrawPlan(units, inst.offsets, inst.items, draw)

    def _plan_next_basket(self) -> DrawPlan:
        ix = self.ix
        inst = ix.next_basket_instances
        if self.authors:  # units are the baskets with a later training basket
            units = inst.basket[ix.n_disjoint_negatives[inst.user] > 0]

            def draw_basket(baskets: np.ndarray, rng: np.random.Generator):
                users = ix.basket_user[baskets]
                row = inst.instance_of_basket[baskets]
                following = baskets + 1
                positive = ix.hist_items[ix.basket_offsets[following] + rng.integers(0, ix.basket_len[following])]
                return row, positive, self._disjoint_negatives(users, rng), users

            return DrawPlan(units, inst.offsets, inst.items, draw_basket)
        units = np.flatnonzero((inst.per_user > 0) & (ix.n_disjoint_negatives > 0))

        def draw(users: np.ndarray, rng: np.random.Generator):
            row = inst.random_rows(users, rng)
            following = inst.basket[row] + 1
            positive = ix.hist_items[ix.basket_offsets[following] + rng.integers(0, ix.basket_len[following])]
            return row, positive, self._disjoint_negatives(users, rng), users

        return DrawPlan(units, inst.offsets, inst.items, draw)

    def _plan_favourite_artist(self) -> DrawPlan:
        ix = self.ix
        units = np.flatnonzero((ix.n_favourite_positives > 0) & (ix.n_disjoint_negatives > 0))

        def draw(users: np.ndarray, rng: np.random.Generator):
            def propose(rows: np.ndarray) -> np.ndarray:
                if self.authors:  # uniform over the user's distinct artists
                    artist = ix.user_artist_values(users[rows], rng)
                else:  # the artist of a random history item: artists bought more often are proposed more often
                    artist = ix.artist[self._random_history_item(users[rows], rng)]
                return ix.artist_items[ix.artist_offsets[artist] + rng.integers(0, ix.artist_size[artist])]

            def accept(rows: np.ndarray, cand: np.ndarray) -> np.ndarray:
                u = users[rows]
                return ~ix.user_item.contains(u, cand) & ix.user_cluster.contains(u, ix.cluster[cand])

            positive = redraw(len(users), propose, accept, FAVOURITE_POSITIVE_DRAWS)
            negative = np.full(len(users), -1, dtype=np.int64)
            found = positive >= 0
            negative[found] = self._disjoint_negatives(users[found], rng)
            return users, positive, negative, users

        return DrawPlan(units, ix.hist_offsets, ix.hist_items, draw)

    def _plan_profile_item(self) -> DrawPlan:
        ix = self.ix
        units = np.flatnonzero((ix.hist_len > 0) & (ix.n_outside_profile > 0))

        def draw(users: np.ndarray, rng: np.random.Generator):
            positive = self._random_history_item(users, rng)

            def accept(rows: np.ndarray, cand: np.ndarray) -> np.ndarray:
                u = users[rows]
                ok = ~ix.user_item.contains(u, cand)
                ok[ok] = self.not_near_duplicate(positive[rows][ok], cand[ok])
                return ok

            negative = self._biased_negatives(positive, accept, rng)
            return users, positive, negative, users

        return DrawPlan(units, ix.hist_offsets, ix.hist_items, draw)

    def _plan_single_item(self) -> DrawPlan:
        ix = self.ix
        units = np.arange(ix.n_items) if ix.n_items >= 2 else np.zeros(0, dtype=np.int64)

        def draw(items: np.ndarray, rng: np.random.Generator):
            def accept(rows: np.ndarray, cand: np.ndarray) -> np.ndarray:
                ok = cand != items[rows]
                ok[ok] = self.not_near_duplicate(items[rows][ok], cand[ok])
                return ok

            negative = self._biased_negatives(items, accept, rng)
            return items, items, negative, np.full(len(items), -1, dtype=np.int64)

        return DrawPlan(units, *self._single_item_table(), draw)

    def _plan_single_item_same_artist(self) -> DrawPlan:
        ix = self.ix
        units = np.flatnonzero(ix.artist_size[ix.artist] >= 2)
        pca_unit = self.inputs.pca_unit

        def draw(items: np.ndarray, rng: np.random.Generator):
            artist = ix.artist[items]
            # Another work by the same artist: uniform over the artist's other works (skip x's own slot).
            r = rng.integers(0, ix.artist_size[artist] - 1)
            r = r + (r >= ix.rank_in_artist[items])
            positive = ix.artist_items[ix.artist_offsets[artist] + r]
            cos_x_pos = row_cosines(pca_unit, items, positive)

            def accept(rows: np.ndarray, cand: np.ndarray) -> np.ndarray:
                ok = ix.artist[cand] != artist[rows]
                ok[ok] = self.not_near_duplicate(positive[rows][ok], cand[ok])
                sel = rows[ok]
                ok[ok] = passes_visual_confidence(
                    pca_unit, ix.cluster, items[sel], positive[sel], cand[ok], cos_x_pos[sel]
                )
                return ok

            negative = self._biased_negatives(items, accept, rng)
            return items, positive, negative, np.full(len(items), -1, dtype=np.int64)

        return DrawPlan(units, *self._single_item_table(), draw)

    def _plan_random(self) -> DrawPlan:
        """(P_u \\ i, i, j): a user with one training item has no P_u \\ i, so the budget goes to the others."""
        ix = self.ix
        inst = ix.leave_one_out_instances
        has_negative = ix.n_outside_profile > 0
        units = np.flatnonzero((inst.per_user > 0) & has_negative)

        def draw(users: np.ndarray, rng: np.random.Generator):
            row = inst.random_rows(users, rng)
            return row, inst.positive[row], self._uniform_unbought(users, rng), users

        skipped = int(((ix.hist_len == 1) & has_negative).sum())
        return DrawPlan(units, inst.offsets, inst.items, draw, {"users_skipped_one_training_item": skipped})

    def _plan_random_bpr(self) -> DrawPlan:
        ix = self.ix
        units = np.flatnonzero((ix.hist_len > 0) & (ix.n_outside_profile > 0))

        def draw(users: np.ndarray, rng: np.random.Generator):
            return users, self._random_history_item(users, rng), self._uniform_unbought(users, rng), users

        return DrawPlan(units, ix.hist_offsets, ix.hist_items, draw)
