"""The paper's "last basket" evaluation: evaluation users, candidate sets, scorers and metric tables.

Protocol (the paper's last-basket evaluation). Evaluation users are the users with a held-out (test) basket; their profile is their
training purchases in time order; their ground truth is the items of the held-out basket.

Candidates, protocol "inventory_at_basket_time" (used when the catalogue has upload times): the artworks
uploaded at or before the test basket's timestamp, minus one-of-a-kind artworks sold strictly before it.
- One-of-a-kind is inferred, because the UGallery files carry no flag: an artwork purchased more than once
  in the whole transaction log (train and test, all users) is a reproducible print/photograph; every other
  artwork is treated as one-of-a-kind. A one-of-a-kind piece bought once only in a later basket is still
  available at this basket's time, so it stays a candidate.
- Artworks with an unknown upload time (NaT) next to known ones are treated as available.
- The user's own profile items are excluded from the candidates: one-of-a-kind ones are sold anyway, and a
  reproducible print they already own is not a discovery. (If the held-out basket re-buys a profile item,
  that item stays a candidate: it is ground truth.)
- Held-out items are candidates by construction (the user bought them then). Should the data contradict
  that (an upload time after the purchase), the item is still kept as a candidate and a warning names
  the number of such items.

Candidates, protocol "catalogue_minus_profile" (no upload time known for any artwork): the whole catalogue
minus the user's profile items (held-out items always kept).
"""

from __future__ import annotations

import math
import warnings
import zlib
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from curatornet_pipeline.core.features import unit_rows
from curatornet_pipeline.core.metrics import paired_t_tests, top_k_order, user_metrics
from curatornet_pipeline.core.model import CuratorNet
from curatornet_pipeline.core.vbpr import VBPRModel

INVENTORY_PROTOCOL = "inventory_at_basket_time"
CATALOGUE_PROTOCOL = "catalogue_minus_profile"


@dataclass(frozen=True)
class EvaluationUser:
    """Everything a scorer may look at for one evaluation user."""

    user_id: str
    profile: np.ndarray  # int64 distinct training artwork_idx in order of first purchase (as in training)
    candidates: np.ndarray  # int64, ascending
    relevant: np.ndarray  # int64, ascending
    protocol: str


Scorer = Callable[[EvaluationUser], np.ndarray]  # scores aligned with user.candidates


def reproducible_items(transactions: pd.DataFrame, n_items: int) -> np.ndarray:
    """Boolean [n_items]: True for artworks purchased more than once in ``transactions`` (prints/photos)."""
    return np.bincount(transactions["artwork_idx"].to_numpy(np.int64), minlength=n_items) > 1


def _as_ns(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(int64 nanoseconds, NaT mask) of a datetime column."""
    times = pd.to_datetime(values)
    return times.to_numpy("datetime64[ns]").astype(np.int64), times.isna().to_numpy()


def evaluation_users(artworks: pd.DataFrame, split_transactions: pd.DataFrame) -> list[EvaluationUser]:
    """One EvaluationUser per user with a held-out basket, sorted by user_id (see module docstring)."""
    n_items = len(artworks)
    if not np.array_equal(np.sort(artworks["artwork_idx"].to_numpy()), np.arange(n_items)):
        raise ValueError("artworks.artwork_idx must be 0..N-1")
    tx = split_transactions
    missing = {"user_id", "basket_id", "purchase_timestamp", "artwork_idx", "split"} - set(tx.columns)
    if missing:
        raise ValueError(f"split_transactions lacks columns {sorted(missing)}")
    idx = tx["artwork_idx"].to_numpy(np.int64)
    if len(idx) and (idx.min() < 0 or idx.max() >= n_items):
        raise ValueError(f"split_transactions.artwork_idx outside [0, {n_items})")

    upload_ns = np.zeros(n_items, dtype=np.int64)
    upload_unknown = np.ones(n_items, dtype=bool)
    order = artworks["artwork_idx"].to_numpy(np.int64)
    upload_ns[order], upload_unknown[order] = _as_ns(artworks["upload_timestamp"])
    protocol = CATALOGUE_PROTOCOL if upload_unknown.all() else INVENTORY_PROTOCOL

    # When each one-of-a-kind artwork left the inventory (int64 max = never sold).
    purchase_ns, _ = _as_ns(tx["purchase_timestamp"])
    sold_at = np.full(n_items, np.iinfo(np.int64).max)
    once = ~reproducible_items(tx, n_items)
    sold_once = once[idx]
    sold_at[idx[sold_once]] = purchase_ns[sold_once]

    ordered = tx.assign(_ns=purchase_ns).sort_values(["user_id", "_ns", "basket_id"], kind="stable")
    users: list[EvaluationUser] = []
    late_uploads = 0
    for user_id, rows in ordered.groupby("user_id", sort=True):
        test = rows[rows["split"] == "test"]
        if test.empty:
            continue
        if test["basket_id"].nunique() != 1:
            raise ValueError(f"user {user_id!r} has {test['basket_id'].nunique()} held-out baskets, expected 1")
        # Each artwork once, as in the training histories: a print bought twice must not weigh double in the pool.
        profile = pd.unique(rows.loc[rows["split"] == "train", "artwork_idx"].to_numpy(np.int64))
        relevant = np.unique(test["artwork_idx"].to_numpy(np.int64))
        basket_ns = int(test["_ns"].min())

        if protocol == INVENTORY_PROTOCOL:
            available = (upload_ns <= basket_ns) | upload_unknown
            available &= sold_at >= basket_ns
            late_uploads += int((~available[relevant]).sum())
        else:
            available = np.ones(n_items, dtype=bool)
        available[profile] = False
        available[relevant] = True
        users.append(EvaluationUser(str(user_id), profile, np.flatnonzero(available), relevant, protocol))
    if late_uploads:
        warnings.warn(
            f"{late_uploads} held-out items were not in the inventory at their basket's time "
            "(uploaded after the purchase); they were kept as candidates",
            stacklevel=2,
        )
    return users


# --------------------------------------------------------------------------------------------------
# Scorers: plain functions, and adapters to the Scorer signature used by evaluate_methods.


def _visrank_unit_scores(unit_catalogue: np.ndarray, profile: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """VisRank from the catalogue's unit rows [N, F]: one [L, N] product per user, no per-user normalisation."""
    if len(profile) == 0:
        raise ValueError("VisRank needs a non-empty profile")
    return (unit_catalogue[np.unique(profile)] @ unit_catalogue.T).max(axis=0)[candidates]  # [C]


def random_scores(seed: int, user: str, candidates: np.ndarray) -> np.ndarray:
    """Uniform random scores, seeded by (seed, user id) so a user's scores do not depend on user order."""
    rng = np.random.default_rng([seed, zlib.crc32(str(user).encode("utf-8"))])
    return rng.random(len(candidates))


def training_popularity(split_transactions: pd.DataFrame, n_items: int) -> np.ndarray:
    """Purchases of each artwork in the training rows (split == 'train'): the Most-Popular baseline's scores.

    Held-out and excluded rows do not count, so the baseline sees exactly what the trained models see.
    """
    train = split_transactions.loc[split_transactions["split"] == "train", "artwork_idx"].to_numpy(np.int64)
    return np.bincount(train, minlength=n_items).astype(np.float64)


def oracle_scores(candidates: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    """1 for ground-truth items, 0 otherwise: the upper bound."""
    return np.isin(candidates, relevant).astype(np.float64)


def user_vector(model: CuratorNet, item_vecs: np.ndarray, profile: np.ndarray, precision: str = "auto") -> np.ndarray:
    """The [D] float32 user vector of a profile: one user-tower pass over its cached item vectors."""
    if len(profile) == 0:
        raise ValueError("CuratorNet needs a non-empty profile")
    return model.profile_vectors(item_vecs, [profile], precision)[0]


def dot_scores(item_vecs: np.ndarray, user: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """dot(user, item) for each candidate: one matrix-vector product over the whole cache, then the candidates.

    Done in torch: numpy's threaded BLAS was ~100x slower for this shape on a busy 2-core machine.
    """
    cache = torch.as_tensor(item_vecs, dtype=torch.float32)
    return (cache @ torch.as_tensor(user, dtype=torch.float32)).numpy()[candidates].astype(np.float64)  # [C]


def curatornet_scores(
    model: CuratorNet, item_vecs: np.ndarray, profile: np.ndarray, candidates: np.ndarray, precision: str = "auto"
) -> np.ndarray:
    """CuratorNet's score of each candidate for a profile; item_vecs: cached [N, D] float32."""
    return dot_scores(item_vecs, user_vector(model, item_vecs, profile, precision), candidates)


def visrank_scorer(raw_embeddings: np.ndarray) -> Scorer:
    unit_catalogue = unit_rows(np.asarray(raw_embeddings, dtype=np.float64))  # normalised once, not per user
    return lambda u: _visrank_unit_scores(unit_catalogue, u.profile, u.candidates)


def random_scorer(seed: int) -> Scorer:
    return lambda u: random_scores(seed, u.user_id, u.candidates)


def most_popular_scorer(popularity: np.ndarray) -> Scorer:
    """Most-Popular: every user gets the candidates ranked by training purchases (ties count 1/2 in AUC)."""
    return lambda u: popularity[u.candidates]


def oracle_scorer() -> Scorer:
    return lambda u: oracle_scores(u.candidates, u.relevant)


def user_vector_scorer(item_vecs: np.ndarray, user_vecs: Mapping[str, np.ndarray]) -> Scorer:
    """CuratorNet scores from user vectors computed beforehand (the ``user_vectors`` asset)."""
    return lambda u: dot_scores(item_vecs, user_vecs[u.user_id], u.candidates)


def vbpr_scorer(vbpr_model: VBPRModel, user_index: Mapping[str, int]) -> Scorer:
    """VBPR scores; user_index maps user_id to the user_idx used in the training triplets."""
    return lambda u: vbpr_model.score(user_index[u.user_id], u.candidates)


# --------------------------------------------------------------------------------------------------
# Running methods and tables


def metric_columns(ks: Sequence[int] = (20, 100)) -> list[str]:
    cols = ["auc"]
    for k in ks:
        cols += [f"precision_at_{k}", f"recall_at_{k}", f"ndcg_at_{k}"]
    return cols + [f"ndcg_authors_at_{k}" for k in ks]


def evaluate_methods(
    scorers: Mapping[str, Scorer],
    users: Sequence[EvaluationUser],
    ks: Sequence[int] = (20, 100),
    top_n: int = 100,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score every user with every method.

    Returns (per_user, recommendations):
    per_user: method, user_id, auc, precision/recall/ndcg at each k, ndcg_authors at each k,
              n_candidates, n_relevant — one row per (method, user).
    recommendations: method, user_id, rank (1-based), artwork_idx, score, is_hit — the top ``top_n``.
    """
    metric_rows = []
    rec_columns = ("method", "user_id", "rank", "artwork_idx", "score", "is_hit")
    recs: dict[str, list[np.ndarray]] = {c: [] for c in rec_columns}
    for method, scorer in scorers.items():
        for user in users:
            scores = np.asarray(scorer(user), dtype=np.float64)
            if scores.shape != user.candidates.shape:
                raise ValueError(f"{method} returned {scores.shape} scores for {len(user.candidates)} candidates")
            row = {"method": method, "user_id": user.user_id}
            row.update(user_metrics(scores, user.candidates, user.relevant, tuple(ks)))
            row.update(n_candidates=len(user.candidates), n_relevant=len(user.relevant))
            metric_rows.append(row)

            top = top_k_order(scores, user.candidates, top_n)
            items = user.candidates[top]
            recs["method"].append(np.full(len(top), method, dtype=object))
            recs["user_id"].append(np.full(len(top), user.user_id, dtype=object))
            recs["rank"].append(np.arange(1, len(top) + 1))
            recs["artwork_idx"].append(items)
            recs["score"].append(scores[top])
            recs["is_hit"].append(np.isin(items, user.relevant))
    per_user = pd.DataFrame(
        metric_rows, columns=["method", "user_id", *metric_columns(ks), "n_candidates", "n_relevant"]
    )
    recommendations = pd.DataFrame(
        {c: (np.concatenate(v) if v else np.array([], dtype=object)) for c, v in recs.items()}
    ).astype({"rank": np.int64, "artwork_idx": np.int64, "score": np.float64, "is_hit": bool})
    return per_user, recommendations


TABLE_2_COLUMNS = [
    "auc",
    "recall_at_20",
    "precision_at_20",
    "ndcg_at_20",
    "recall_at_100",
    "precision_at_100",
    "ndcg_at_100",
]


def aggregate_table(per_user: pd.DataFrame) -> pd.DataFrame:
    """Mean of every metric per method, in the paper's Table 2 column order, plus n_users; best AUC first.

    AUC means skip users whose AUC is undefined (every candidate relevant).
    """
    metrics = [c for c in TABLE_2_COLUMNS if c in per_user.columns]
    metrics += [c for c in per_user.columns if c.startswith("ndcg_authors_at_")]
    grouped = per_user.groupby("method", sort=False)
    table = grouped[metrics].mean()
    table["n_users"] = grouped["user_id"].nunique()
    return table.reset_index().sort_values("auc", ascending=False, kind="stable").reset_index(drop=True)


def format_lambda(l2_lambda: float) -> str:
    """0 -> '0', 0.0001 -> '1e-4', 0.00025 -> '2.5e-4' (the paper's notation)."""
    if l2_lambda == 0:
        return "0"
    mantissa, exponent = f"{l2_lambda:e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def method_label(method: str, l2_lambda: float | None = None) -> str:
    """The label used in metric tables, e.g. 'CuratorNet (lambda=1e-4)', 'VisRank'."""
    return method if l2_lambda is None else f"{method} (lambda={format_lambda(l2_lambda)})"


def _paper_row(method: str, l2_lambda: float | None, *values: float) -> dict[str, object]:
    row: dict[str, object] = {"method": method_label(method, l2_lambda), "lambda": l2_lambda}
    row.update(zip(TABLE_2_COLUMNS, values))
    return row


# The paper's Table 2 (UGallery), values as published: AUC, R@20, P@20, nDCG@20, R@100, P@100, nDCG@100.
PAPER_TABLE_2 = pd.DataFrame(
    [
        _paper_row("Oracle", None, 1.0, 1.0, 0.0655, 1.0, 1.0, 0.0131, 1.0),
        _paper_row("CuratorNet", 1e-4, 0.7204, 0.1683, 0.0106, 0.0966, 0.3200, 0.0040, 0.1246),
        _paper_row("CuratorNet", 1e-3, 0.7177, 0.1566, 0.0094, 0.0895, 0.2937, 0.0037, 0.1160),
        _paper_row("VisRank", None, 0.7151, 0.1521, 0.0093, 0.0956, 0.2765, 0.0034, 0.1195),
        _paper_row("CuratorNet", 0.0, 0.7131, 0.1689, 0.0100, 0.0977, 0.3048, 0.0038, 0.1239),
        _paper_row("CuratorNet", 1e-2, 0.7125, 0.1235, 0.0075, 0.0635, 0.2548, 0.0032, 0.0904),
        _paper_row("VBPR", 1e-4, 0.6641, 0.1368, 0.0081, 0.0728, 0.2399, 0.0030, 0.0923),
        _paper_row("Random", None, 0.4973, 0.0103, 0.0006, 0.0041, 0.0322, 0.0005, 0.0098),
    ]
)

MOST_POPULAR_METHOD = "Most-Popular"
RANDOM_SAMPLING_METHOD = "CuratorNet random sampling"
VBPR_RANDOM_SAMPLING_METHOD = "VBPR random sampling"
# Paper Figure 3: AUC with guided sampling (CuratorNet: the six strategies; VBPR: strategies 3 and 4) and with
# "random" sampling, and the p-value of the paper's paired t-test between the two.
PAPER_FIGURE_3 = pd.DataFrame(
    [
        {"model": "CuratorNet", "paper_guided_auc": 0.7204, "paper_random_auc": 0.6602, "paper_p_value": 7.7e-5},
        {"model": "VBPR", "paper_guided_auc": 0.6641, "paper_random_auc": 0.5899, "paper_p_value": 1.6e-6},
    ]
)
# The ablations' AUC joins the side-by-side table (lambda 1e-4, the paper's best setting; only AUC is published).
PAPER_TABLE_2 = pd.concat(
    [
        PAPER_TABLE_2,
        pd.DataFrame(
            [
                _paper_row(RANDOM_SAMPLING_METHOD, 1e-4, 0.6602),
                _paper_row(VBPR_RANDOM_SAMPLING_METHOD, 1e-4, 0.5899),
            ]
        ),
    ],
    ignore_index=True,
)


def figure_3_table(per_user: pd.DataFrame, methods: Mapping[str, tuple[str, str]]) -> pd.DataFrame:
    """Figure 3: per model, mean AUC with guided vs random sampling, their paired t-test, and the paper's values.

    methods: model ("CuratorNet", "VBPR") -> (guided method label, random-sampling method label) as they appear
    in ``per_user``. The t-test pairs the users both methods scored (scipy ``ttest_rel``, two-sided).
    Columns: model, guided_method, random_method, guided_auc, random_auc, auc_difference, t, p_value,
    n_users, paper_guided_auc, paper_random_auc, paper_p_value.
    """
    rows = []
    for model, (guided, random_sampling) in methods.items():
        missing = {guided, random_sampling} - set(per_user["method"])
        if missing:
            raise ValueError(f"per-user metrics lack {sorted(missing)}: re-materialize per_user_metrics")
        pair = per_user[per_user["method"].isin([guided, random_sampling])]
        test = paired_t_tests(pair, "auc").iloc[0]
        sign = 1.0 if test["method_a"] == guided else -1.0
        aucs = pair.groupby("method")["auc"].mean()
        rows.append(
            {
                "model": model,
                "guided_method": guided,
                "random_method": random_sampling,
                "guided_auc": float(aucs[guided]),
                "random_auc": float(aucs[random_sampling]),
                "auc_difference": sign * float(test["mean_diff"]),
                "t": sign * float(test["t"]),
                "p_value": float(test["p_value"]),
                "n_users": int(test["n_users"]),
            }
        )
    return pd.DataFrame(rows).merge(PAPER_FIGURE_3, on="model", how="left")

_HEADERS = {
    "auc": "AUC",
    "recall_at_20": "R@20",
    "precision_at_20": "P@20",
    "ndcg_at_20": "nDCG@20",
    "recall_at_100": "R@100",
    "precision_at_100": "P@100",
    "ndcg_at_100": "nDCG@100",
}


def side_by_side_markdown(ours: pd.DataFrame, paper: pd.DataFrame = PAPER_TABLE_2) -> str:
    """Markdown table with one row per method and 'ours / paper' in each metric cell.

    ours: the output of ``aggregate_table``. Methods are matched by label (see ``method_label``); a
    method present on one side only shows '-' on the other.
    """

    def cell(value: object) -> str:
        return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4f}"

    ours_by = ours.set_index("method")
    paper_by = paper.set_index("method")
    methods = list(ours_by.index) + [m for m in paper_by.index if m not in ours_by.index]
    lines = [
        "| method | n_users | " + " | ".join(f"{_HEADERS[c]} ours / paper" for c in TABLE_2_COLUMNS) + " |",
        "|---|---|" + "---|" * len(TABLE_2_COLUMNS),
    ]
    for m in methods:
        n_users = str(int(ours_by.at[m, "n_users"])) if m in ours_by.index else "-"
        cells = []
        for c in TABLE_2_COLUMNS:
            mine = ours_by.at[m, c] if m in ours_by.index and c in ours_by.columns else None
            theirs = paper_by.at[m, c] if m in paper_by.index else None
            cells.append(f"{cell(mine)} / {cell(theirs)}")
        lines.append(f"| {m} | {n_users} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
