"""The rule checker behind the asset checks: every rule of a strategy counted over every row of a table."""

from __future__ import annotations

import numpy as np

from curatornet_pipeline.core.sampling.arrays import PairIndex
from curatornet_pipeline.core.sampling.draws import passes_visual_confidence
from curatornet_pipeline.core.sampling.hashing import combine_hashes, profile_hashes
from curatornet_pipeline.core.sampling.index import HiddenItemInstances
from curatornet_pipeline.core.sampling.inputs import SamplingInputs
from curatornet_pipeline.core.sampling.strategy import Strategy
from curatornet_pipeline.core.triplet_set import TripletSet


def _hidden_item_rules(
    inst: HiddenItemInstances, profile_hash: np.ndarray, p: np.ndarray, u: np.ndarray, a: np.ndarray, n_items: int
) -> tuple[int, int]:
    """(rows whose (user, positive) is no instance, rows whose profile is not that instance's profile)."""
    found = PairIndex(inst.user, inst.positive, n_items).find(u, a)
    expected = inst.profile_hashes()
    mismatch = profile_hash[p[found >= 0]] != expected[found[found >= 0]]
    return int((found < 0).sum()), int(mismatch.sum())


def check_strategy_rules(strategy: Strategy | str, ts: TripletSet, inputs: SamplingInputs) -> dict[str, int]:
    """Count, for every triplet of ``ts``, violations of ``strategy``'s rules (SPEC 5); all 0 when valid.

    Vectorized over the whole set (no sampling). Rules: indices in range and the right user marker;
    non-empty profile; positive != negative; no near-duplicate pair; negative not in the profile; no
    duplicate triplet; the profile is the one the strategy builds from that user's training history and
    positive (the inputs hold no held-out item, so nothing here can consult the test set); plus each strategy's own positive/negative
    conditions (strategy 6: same-artist positive, other-artist negative, visual-confidence test).
    Rows failing the range or user-marker rule are only counted there.
    """
    strategy = Strategy.parse(strategy)
    ix = inputs.index
    n = ix.n_items
    real_user = strategy.has_real_users
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
    in_profile = PairIndex(np.repeat(np.arange(n_profiles), lengths), safe_items, n)
    profile_hash = profile_hashes(offsets, safe_items)

    counts["empty_profile"] = int((lengths[p] == 0).sum())
    counts["positive_equals_negative"] = int((a == b).sum())
    counts["near_duplicate_pair"] = int(ix.is_near_duplicate(a, b).sum())
    counts["negative_in_profile"] = int(in_profile.contains(p, b).sum())
    hashes = combine_hashes(profile_hash[p], a, b)
    sorted_hashes = np.sort(hashes)  # (np.unique without flags takes a far slower hash-table path here)
    counts["duplicate_triplet"] = int((sorted_hashes[1:] == sorted_hashes[:-1]).sum())

    if strategy == Strategy.HIDDEN_BASKET_ITEM:
        counts["positive_not_in_multi_item_training_basket"], counts["profile_mismatch"] = _hidden_item_rules(
            ix.hidden_item_instances, profile_hash, p, u, a, n
        )
    elif strategy == Strategy.NEXT_BASKET:
        inst = ix.next_basket_instances
        hist_pos = ix.user_item.find(u, a)
        basket = np.where(hist_pos >= 0, ix.hist_basket[np.maximum(hist_pos, 0)], -1)
        later = (basket >= 0) & (ix.basket_rank[np.maximum(basket, 0)] > 0)
        counts["positive_not_in_a_later_training_basket"] = int((~later).sum())
        previous_instance = inst.instance_of_basket[basket[later] - 1]
        expected = inst.profile_hashes()
        counts["profile_mismatch"] = int((profile_hash[p[later]] != expected[previous_instance]).sum())
    elif strategy == Strategy.RANDOM:
        counts["positive_not_in_training_history_of_2_plus_items"], counts["profile_mismatch"] = _hidden_item_rules(
            ix.leave_one_out_instances, profile_hash, p, u, a, n
        )
        counts["positive_in_profile"] = int(in_profile.contains(p, a).sum())
        counts["negative_bought_by_user"] = int(ix.user_item.contains(u, b).sum())
    elif strategy in (Strategy.FAVOURITE_ARTIST_SIMILAR, Strategy.PROFILE_ITEM, Strategy.RANDOM_BPR):
        counts["profile_mismatch"] = int((profile_hash[p] != ix.history_hashes[u]).sum())
    if strategy == Strategy.FAVOURITE_ARTIST_SIMILAR:
        counts["positive_already_bought"] = int(ix.user_item.contains(u, a).sum())
        counts["positive_artist_not_bought"] = int((~ix.user_artist.contains(u, ix.artist[a])).sum())
        counts["positive_cluster_not_bought"] = int((~ix.user_cluster.contains(u, ix.cluster[a])).sum())
    if strategy in (Strategy.PROFILE_ITEM, Strategy.RANDOM_BPR):
        counts["positive_not_in_profile"] = int((~in_profile.contains(p, a)).sum())
    if strategy.has_disjoint_negatives:
        counts["negative_artist_bought"] = int(ix.user_artist.contains(u, ix.artist[b]).sum())
        counts["negative_cluster_bought"] = int(ix.user_cluster.contains(u, ix.cluster[b]).sum())

    if not real_user:  # strategies 5 and 6: the profile is the one item x
        single = lengths[p] == 1
        x = np.full(len(p), -1, dtype=np.int64)
        x[single] = safe_items[offsets[p[single]]]
        if strategy == Strategy.SINGLE_ITEM:
            counts["profile_mismatch"] = int((~single | (x != a)).sum())
        else:
            counts["profile_mismatch"] = int((~single).sum())
            xs, as_, bs = x[single], a[single], b[single]
            counts["positive_not_same_artist"] = int(((ix.artist[as_] != ix.artist[xs]) | (as_ == xs)).sum())
            counts["negative_same_artist"] = int((ix.artist[bs] == ix.artist[xs]).sum())
            passes = passes_visual_confidence(inputs.pca_unit, ix.cluster, xs, as_, bs)
            counts["visual_confidence_failed"] = int((~passes).sum())
    return counts
