"""Scoring a cold-start protocol: every method on the protocol's users, its table, t-tests and serving cost.

Methods (labels below): CuratorNet reads each profile through its user tower, nothing retrained. VisRank,
Most-Popular (purchases in the protocol's training rows) and Random as in the main table. VBPR:

* new customers: ``VBPR_FOLD_IN`` learns a vector per customer from their profile with the items frozen
  (``core.vbpr_fold_in``); ``VBPR_NO_FOLD_IN`` has no vector for them and falls back to the
  non-personalised part of its score, item bias + visual bias (beta_i + beta' . f_i): a popularity-like
  ranking that every new customer shares.
* new artworks: ``VBPR`` with the vectors it trained for the customers; a new artwork has no latent factors
  and no item bias, only its visual terms (beta' . f_i + theta_u . E^T f_i). A customer with no training
  triplet gets the non-personalised fallback, as above.

Serving cost (``serving_seconds``, wall time over all the protocol's users; ``serving_step`` says what was
timed): new customers: CuratorNet's user-tower pass over the profiles vs VBPR's fold-in; new artworks:
CuratorNet's item-tower pass over the new artworks (VBPR has nothing to compute short of retraining).
``training_seconds`` is the retraining each model would need to learn the newcomers, ``scoring_seconds``
the ranking of every user's candidates.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from curatornet_pipeline.core.cold_start import NEW_CUSTOMERS, ColdStartSetup
from curatornet_pipeline.core.cold_start_models import ProtocolModels
from curatornet_pipeline.core.evaluation import (
    MOST_POPULAR_METHOD,
    TABLE_2_COLUMNS,
    EvaluationUser,
    aggregate_table,
    evaluate_methods,
    most_popular_scorer,
    random_scorer,
    training_popularity,
    user_vector_scorer,
    visrank_scorer,
)
from curatornet_pipeline.core.metrics import paired_t_tests
from curatornet_pipeline.core.vbpr import VBPRModel
from curatornet_pipeline.core.vbpr_fold_in import FoldInConfig, FoldInResult, fold_in, folded_in_model

CURATORNET = "CuratorNet"
VBPR = "VBPR"
VBPR_FOLD_IN = "VBPR fold-in"
VBPR_NO_FOLD_IN = "VBPR no fold-in (item + visual bias)"
TESTED_METRICS = ("auc", "ndcg_at_20", "recall_at_20")


@dataclass
class ProtocolResult:
    """per_user: one row per (method, user); table: one row per method (see ``method_table``)."""

    per_user: pd.DataFrame
    table: pd.DataFrame
    fold_in: FoldInResult | None


def _vbpr_known_users_scorer(model: VBPRModel, users: list[str]):
    """VBPR with its trained vectors; a customer without one gets the non-personalised item + visual bias."""
    index = {user: k for k, user in enumerate(users)}
    return lambda u: model.score(index[u.user_id], u.candidates) if u.user_id in index else model.item_bias[u.candidates]


def method_table(
    per_user: pd.DataFrame, costs: dict[str, dict[str, object]], reference: str = CURATORNET
) -> pd.DataFrame:
    """Mean metrics per method, n_users, the paired t-tests against ``reference`` and the costs.

    For each metric m of TESTED_METRICS: ``m_diff_vs_curatornet`` (method - reference, mean over the users)
    and ``m_p_value_vs_curatornet`` (scipy ttest_rel, two-sided; NaN for the reference itself).
    """
    table = aggregate_table(per_user)[["method", *TABLE_2_COLUMNS, "n_users"]]
    for metric in TESTED_METRICS:
        tests = paired_t_tests(per_user, metric)
        diffs, p_values = {}, {}
        for row in tests.itertuples():
            if reference not in (row.method_a, row.method_b):
                continue
            other, sign = (row.method_b, -1.0) if row.method_a == reference else (row.method_a, 1.0)
            diffs[other], p_values[other] = sign * row.mean_diff, row.p_value
        table[f"{metric}_diff_vs_curatornet"] = table["method"].map(diffs).astype(float)
        table[f"{metric}_p_value_vs_curatornet"] = table["method"].map(p_values).astype(float)
    for column in ("serving_step", "serving_seconds", "training_seconds", "scoring_seconds"):
        default = "" if column == "serving_step" else float("nan")
        table[column] = [costs.get(m, {}).get(column, default) for m in table["method"]]
    return table


def evaluate_protocol(
    setup: ColdStartSetup,
    users: list[EvaluationUser],
    models: ProtocolModels,
    raw_embeddings: np.ndarray,
    features: np.ndarray,
    fold_in_config: FoldInConfig,
    random_seed: int,
) -> ProtocolResult:
    """Every method on ``users`` (the protocol's evaluation users), with the costs described above."""
    if not users:
        raise ValueError(f"{setup.protocol}: no user to evaluate")
    costs: dict[str, dict[str, object]] = {}
    item_vecs = models.curatornet.embed_catalogue(features)  # the cache serving keeps; built once per model
    started = time.perf_counter()
    if setup.protocol == NEW_CUSTOMERS:
        vectors = models.curatornet.profile_vectors(item_vecs, [u.profile for u in users])
        step = "user-tower pass over the new customers' profiles"
    else:
        new_items = np.flatnonzero(~setup.known_items)
        item_vecs[new_items] = models.curatornet.embed_catalogue(features[new_items])
        vectors = models.curatornet.profile_vectors(item_vecs, [u.profile for u in users])
        step = f"item-tower pass over the {len(new_items)} new artworks + user-tower pass over the profiles"
    costs[CURATORNET] = {
        "serving_step": step,
        "serving_seconds": time.perf_counter() - started,
        "training_seconds": models.curatornet_seconds,
    }
    scorers = {CURATORNET: user_vector_scorer(item_vecs, {u.user_id: v for u, v in zip(users, vectors)})}

    folded = None
    if setup.protocol == NEW_CUSTOMERS:
        folded = fold_in(models.vbpr, [u.profile for u in users], fold_in_config)
        fold_model = folded_in_model(models.vbpr, folded)
        row = {u.user_id: k for k, u in enumerate(users)}
        scorers[VBPR_FOLD_IN] = lambda u: fold_model.score(row[u.user_id], u.candidates)
        costs[VBPR_FOLD_IN] = {
            "serving_step": f"fold-in: {folded.steps} Adam steps x {fold_in_config.pairs_per_step} pairs per customer",
            "serving_seconds": folded.seconds,
            "training_seconds": models.vbpr_seconds,
        }
        scorers[VBPR_NO_FOLD_IN] = lambda u: models.vbpr.item_bias[u.candidates]
        costs[VBPR_NO_FOLD_IN] = {"serving_step": "none", "serving_seconds": 0.0, "training_seconds": models.vbpr_seconds}
    else:
        scorers[VBPR] = _vbpr_known_users_scorer(models.vbpr, models.vbpr_users)
        costs[VBPR] = {"serving_step": "none short of retraining", "training_seconds": models.vbpr_seconds}
    scorers["VisRank"] = visrank_scorer(raw_embeddings)
    scorers[MOST_POPULAR_METHOD] = most_popular_scorer(training_popularity(setup.training, len(features)))
    scorers["Random"] = random_scorer(random_seed)

    frames = []
    for method, scorer in scorers.items():
        started = time.perf_counter()
        per_user, _ = evaluate_methods({method: scorer}, users, top_n=0)
        costs.setdefault(method, {})["scoring_seconds"] = time.perf_counter() - started
        frames.append(per_user)
    per_user = pd.concat(frames, ignore_index=True)
    return ProtocolResult(per_user, method_table(per_user, costs), folded)
