"""Ranking metrics against hand computations, sklearn and a textbook nDCG; paired t-tests."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from curatornet_pipeline.core.metrics import paired_t_tests, top_k_order, user_metrics


def textbook_ndcg(ranked_items: list[int], relevant: set[int], k: int) -> float:
    dcg = 0.0
    for position, item in enumerate(ranked_items[:k], start=1):
        if item in relevant:
            dcg += 1.0 / math.log2(position + 1)
    ideal = 0.0
    for position in range(1, min(len(relevant), k) + 1):
        ideal += 1.0 / math.log2(position + 1)
    return dcg / ideal


def test_hand_computed_single_item_basket():
    candidates = np.array([10, 11, 12, 13, 14])
    scores = np.array([0.9, 0.1, 0.5, 0.7, 0.3])  # ranking: 10, 13, 12, 14, 11
    m = user_metrics(scores, candidates, np.array([12]), ks=(2, 3))
    assert m["auc"] == pytest.approx(2 / 4)  # 12 beats 14 and 11, loses to 10 and 13
    assert m["precision_at_2"] == 0 and m["recall_at_2"] == 0 and m["ndcg_at_2"] == 0
    assert m["precision_at_3"] == pytest.approx(1 / 3)
    assert m["recall_at_3"] == 1.0
    assert m["ndcg_at_3"] == pytest.approx(1 / math.log2(4))  # hit at rank 3, ideal: rank 1
    assert m["ndcg_authors_at_3"] == pytest.approx(m["ndcg_at_3"])  # one relevant item: both variants agree


def test_hand_computed_multi_item_basket_and_authors_variant():
    candidates = np.arange(6)
    scores = np.array([6.0, 5.0, 4.0, 3.0, 2.0, 1.0])
    relevant = np.array([1, 4, 5])
    m = user_metrics(scores, candidates, relevant, ks=(2, 5))
    # Pairs: item 1 beats 2 and 3; items 4 and 5 beat none: 2 of 9.
    assert m["auc"] == pytest.approx(2 / 9)
    assert m["precision_at_2"] == pytest.approx(1 / 2)
    assert m["recall_at_2"] == pytest.approx(1 / 3)
    dcg2 = 1 / math.log2(3)
    assert m["ndcg_at_2"] == pytest.approx(dcg2 / (1 + 1 / math.log2(3)))
    assert m["ndcg_authors_at_2"] == pytest.approx(dcg2 / 1.0)  # ideal for 1 hit found: inflated
    dcg5 = 1 / math.log2(3) + 1 / math.log2(6)
    assert m["ndcg_at_5"] == pytest.approx(dcg5 / (1 + 1 / math.log2(3) + 1 / math.log2(4)))
    assert m["ndcg_authors_at_5"] == pytest.approx(dcg5 / (1 + 1 / math.log2(3)))
    assert m["recall_at_5"] == pytest.approx(2 / 3)


def test_ties_count_half_in_auc_and_break_by_item_index_in_top_k():
    candidates = np.array([7, 3, 5, 9])
    scores = np.array([1.0, 1.0, 1.0, 0.0])
    assert top_k_order(scores, candidates, 4).tolist() == [1, 2, 0, 3]  # items 3, 5, 7 then 9
    m = user_metrics(scores, candidates, np.array([7]), ks=(1, 3))
    assert m["auc"] == pytest.approx((0.5 + 0.5 + 1.0) / 3)
    assert m["precision_at_1"] == 0.0  # the tie puts item 3 first
    assert m["ndcg_at_3"] == pytest.approx(1 / math.log2(4))


def test_top_k_is_exact_when_a_tie_straddles_the_cut():
    rng = np.random.default_rng(0)
    candidates = rng.permutation(1000)
    scores = rng.integers(0, 5, 1000).astype(float)
    full = np.lexsort((candidates, -scores))
    for k in (1, 7, 100, 999, 1000, 5000):
        assert np.array_equal(top_k_order(scores, candidates, k), full[:k])


def test_auc_matches_sklearn_per_user_with_ties():
    rng = np.random.default_rng(1)
    for _ in range(50):
        n = int(rng.integers(5, 300))
        candidates = rng.choice(10_000, n, replace=False)
        scores = np.round(rng.normal(size=n), 1)  # coarse rounding creates ties
        relevant = rng.choice(candidates, int(rng.integers(1, min(5, n - 1) + 1)), replace=False)
        expected = roc_auc_score(np.isin(candidates, relevant), scores)
        assert user_metrics(scores, candidates, relevant)["auc"] == pytest.approx(expected, abs=1e-12)


def test_ndcg_precision_recall_match_textbook_loops():
    rng = np.random.default_rng(2)
    for _ in range(50):
        n = int(rng.integers(30, 400))
        candidates = rng.choice(10_000, n, replace=False)
        scores = rng.normal(size=n)
        relevant = rng.choice(candidates, int(rng.integers(1, 6)), replace=False)
        ranked = [int(candidates[i]) for i in np.argsort(-scores, kind="stable")]  # no ties with normal scores
        m = user_metrics(scores, candidates, relevant, ks=(20, 100))
        for k in (20, 100):
            hits = len(set(ranked[:k]) & set(relevant.tolist()))
            assert m[f"ndcg_at_{k}"] == pytest.approx(textbook_ndcg(ranked, set(relevant.tolist()), k))
            assert m[f"precision_at_{k}"] == pytest.approx(hits / k)
            assert m[f"recall_at_{k}"] == pytest.approx(hits / len(relevant))


def test_auc_is_nan_without_negatives_and_bad_input_is_rejected():
    assert math.isnan(user_metrics(np.array([1.0, 2.0]), np.array([0, 1]), np.array([0, 1]))["auc"])
    with pytest.raises(ValueError, match="not among the candidates"):
        user_metrics(np.array([1.0, 2.0]), np.array([0, 1]), np.array([5]))
    with pytest.raises(ValueError, match="NaN"):
        user_metrics(np.array([np.nan, 2.0]), np.array([0, 1]), np.array([1]))
    with pytest.raises(ValueError, match="duplicates"):
        user_metrics(np.array([1.0, 2.0]), np.array([1, 1]), np.array([1]))


def test_paired_t_tests_over_common_users():
    rng = np.random.default_rng(3)
    a = rng.uniform(0.6, 0.9, 40)
    b = a - 0.05 + rng.normal(scale=0.02, size=40)
    c = rng.uniform(0.4, 0.6, 40)
    rows = [("A", f"u{i}", a[i]) for i in range(40)]
    rows += [("B", f"u{i}", b[i]) for i in range(40)]
    rows += [("C", f"u{i}", c[i]) for i in range(30)]  # C lacks the last 10 users
    per_user = pd.DataFrame(rows, columns=["method", "user_id", "auc"])
    out = paired_t_tests(per_user)
    assert list(zip(out["method_a"], out["method_b"])) == [("A", "B"), ("A", "C"), ("B", "C")]
    ab = out.iloc[0]
    expected = stats.ttest_rel(a, b)
    assert ab["t"] == pytest.approx(expected.statistic) and ab["p_value"] == pytest.approx(expected.pvalue)
    assert ab["mean_diff"] == pytest.approx(np.mean(a - b)) and ab["n_users"] == 40
    assert ab["p_value"] < 1e-6
    ac = out.iloc[1]
    assert ac["n_users"] == 30
    assert ac["t"] == pytest.approx(stats.ttest_rel(a[:30], c[:30]).statistic)


def test_paired_t_tests_rejects_duplicate_rows():
    per_user = pd.DataFrame({"method": ["A", "A"], "user_id": ["u", "u"], "auc": [0.1, 0.2]})
    with pytest.raises(ValueError, match="more than one row"):
        paired_t_tests(per_user)
