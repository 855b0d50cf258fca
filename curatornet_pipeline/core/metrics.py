"""Per-user ranking metrics (AUC, P@k, R@k, nDCG@k) and paired significance tests between methods.

Conventions:
- Top-k order: by score descending; equal scores are ordered by artwork index ascending, so rankings are
  deterministic and identical across methods and runs.
- AUC counts (relevant, non-relevant candidate) pairs ranked correctly, ties as 1/2 (computed from average
  ranks, the Mann-Whitney U statistic). NaN when every candidate is relevant (no pair exists).
- P@k = hits in top k / k (k, even if there are fewer than k candidates); R@k = hits / |ground truth|.
- nDCG@k: binary gains, 1/log2(rank + 1) discount, ideal DCG over min(|ground truth|, k) hits.
  ``ndcg_authors_at_k`` divides by the ideal DCG of the number of hits actually found instead (what the
  authors' code did; it inflates multi-item baskets), 0 when nothing was hit. Kept as a separate column.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
from scipy import stats


def top_k_order(scores: np.ndarray, candidate_items: np.ndarray, k: int) -> np.ndarray:
    """Positions (into ``scores``) of the top ``k`` candidates, best first, ties by item index ascending."""
    scores = np.asarray(scores)
    n = len(scores)
    k = min(k, n)
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    if k < n:
        # Everything scoring at least the k-th best score: the tie group at the boundary is kept whole,
        # so the lexsort below settles it by item index rather than by argpartition's arbitrary choice.
        threshold = scores[np.argpartition(-scores, k - 1)[:k]].min()
        selected = np.flatnonzero(scores >= threshold)
    else:
        selected = np.arange(n)
    order = np.lexsort((np.asarray(candidate_items)[selected], -scores[selected]))
    return selected[order[:k]]


def _discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2))  # rank r (1-based) -> 1 / log2(r + 1)


def user_metrics(
    scores: np.ndarray, candidate_items: np.ndarray, relevant: np.ndarray, ks: tuple[int, ...] = (20, 100)
) -> dict[str, float]:
    """AUC and P/R/nDCG (+ the authors' nDCG variant) at each k for one user.

    scores[i] is the score of candidate_items[i] (distinct artwork indices); relevant: the ground-truth
    items, which must all be candidates.
    """
    scores = np.asarray(scores, dtype=np.float64)
    candidate_items = np.asarray(candidate_items)
    relevant = np.unique(np.asarray(relevant))
    if scores.shape != candidate_items.shape or scores.ndim != 1:
        raise ValueError(f"scores {scores.shape} and candidate_items {candidate_items.shape} must be equal 1-d")
    if not np.isfinite(scores).all():
        raise ValueError("scores contain NaN or infinite values")
    if len(relevant) == 0:
        raise ValueError("a user needs at least one relevant item")
    if len(np.unique(candidate_items)) != len(candidate_items):
        raise ValueError("candidate_items contain duplicates")
    is_relevant = np.isin(candidate_items, relevant)
    n_relevant = int(is_relevant.sum())
    if n_relevant != len(relevant):
        missing = np.setdiff1d(relevant, candidate_items)
        raise ValueError(f"relevant items {missing[:10].tolist()} are not among the candidates")

    n_negative = len(candidate_items) - n_relevant
    if n_negative == 0:
        auc = float("nan")
    else:
        ranks = stats.rankdata(scores)  # average ranks: a tie contributes 1/2 a pair
        auc = (ranks[is_relevant].sum() - n_relevant * (n_relevant + 1) / 2) / (n_relevant * n_negative)

    out: dict[str, float] = {"auc": float(auc)}
    hits = is_relevant[top_k_order(scores, candidate_items, max(ks))].astype(np.float64)
    discounts = _discounts(max(ks))
    for k in ks:
        hits_k = hits[:k]
        n_hits = int(hits_k.sum())
        dcg = float((hits_k * discounts[: len(hits_k)]).sum())
        out[f"precision_at_{k}"] = n_hits / k
        out[f"recall_at_{k}"] = n_hits / n_relevant
        out[f"ndcg_at_{k}"] = dcg / float(discounts[: min(n_relevant, k)].sum())
        out[f"ndcg_authors_at_{k}"] = dcg / float(discounts[:n_hits].sum()) if n_hits else 0.0
    return out


def paired_t_tests(per_user: pd.DataFrame, metric: str = "auc") -> pd.DataFrame:
    """Paired t-test (scipy.stats.ttest_rel) of ``metric`` between every pair of methods.

    per_user: one row per (method, user_id). Each pair is compared over the users both methods have a
    non-NaN value for. Columns: method_a, method_b, mean_diff (a - b), t, p_value, n_users. t and p are
    NaN with fewer than 2 common users or when the differences have zero variance.
    """
    if per_user.duplicated(["method", "user_id"]).any():
        raise ValueError("per_user has more than one row for some (method, user_id)")
    table = per_user.pivot(index="user_id", columns="method", values=metric)
    methods = list(dict.fromkeys(per_user["method"]))  # order of first appearance
    rows = []
    for a, b in itertools.combinations(methods, 2):
        pair = table[[a, b]].dropna()
        diff = pair[a] - pair[b]
        t = p = float("nan")
        if len(pair) >= 2 and diff.std(ddof=1) > 0:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                t, p = stats.ttest_rel(pair[a], pair[b])
        rows.append(
            {
                "method_a": a,
                "method_b": b,
                "mean_diff": float(diff.mean()) if len(pair) else float("nan"),
                "t": float(t),
                "p_value": float(p),
                "n_users": len(pair),
            }
        )
    return pd.DataFrame(rows, columns=["method_a", "method_b", "mean_diff", "t", "p_value", "n_users"])
