"""Evaluation protocol: candidate sets, baseline scorers, per-user metrics and tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from curatornet_pipeline.core.evaluation import (
    CATALOGUE_PROTOCOL,
    INVENTORY_PROTOCOL,
    PAPER_TABLE_2,
    EvaluationUser,
    aggregate_table,
    curatornet_scores,
    evaluate_methods,
    evaluation_users,
    figure_3_table,
    method_label,
    most_popular_scorer,
    oracle_scorer,
    random_scorer,
    random_scores,
    side_by_side_markdown,
    training_popularity,
    user_vector,
    user_vector_scorer,
    visrank_scorer,
)
from curatornet_pipeline.core.model import CuratorNet, CuratorNetConfig

DAY = pd.Timestamp("2020-01-01")


def day(d: float) -> pd.Timestamp:
    return DAY + pd.Timedelta(days=d)


def mini_catalogue(upload_days=(0, 0, 0, 0, 0, 0, 10, 30)) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "artwork_idx": np.arange(8),
            "artwork_id": [f"a{i}" for i in range(8)],
            "artist_id": ["x"] * 8,
            "upload_timestamp": pd.to_datetime([day(d) if d is not None else pd.NaT for d in upload_days]),
            "source_row": np.arange(1, 9),
        }
    )


def mini_transactions() -> pd.DataFrame:
    # u1: a0 on day 5, held-out a2 on day 20.  u2: a1+a3 on day 8, held-out a4 on day 25.
    # u3 buys a3 again on day 12 (so a3 is a reproducible print); u4 buys one-of-a-kind a5 on day 22.
    rows = [
        ("u1", 1, 5, 0, "train"),
        ("u2", 2, 8, 1, "train"),
        ("u2", 2, 8, 3, "train"),
        ("u3", 5, 12, 3, "train"),
        ("u1", 3, 20, 2, "test"),
        ("u4", 6, 22, 5, "train"),
        ("u2", 4, 25, 4, "test"),
    ]
    return pd.DataFrame(
        {
            "user_id": [r[0] for r in rows],
            "basket_id": [r[1] for r in rows],
            "purchase_timestamp": [day(r[2]) for r in rows],
            "artwork_id": [f"a{r[3]}" for r in rows],
            "artwork_idx": [r[3] for r in rows],
            "source_row": np.arange(1, len(rows) + 1),
            "split": [r[4] for r in rows],
        }
    )


def _candidates_by_user(artworks: pd.DataFrame, transactions: pd.DataFrame) -> dict[str, EvaluationUser]:
    return {u.user_id: u for u in evaluation_users(artworks, transactions)}


def test_candidates_are_the_inventory_at_the_basket_time():
    sets = _candidates_by_user(mini_catalogue(), mini_transactions())
    assert sorted(sets) == ["u1", "u2"]  # users with a held-out basket only
    u1 = sets["u1"]
    # a0: own profile (and sold). a1: one-of-a-kind sold on day 8. a7: uploaded on day 30, after day 20.
    # a3 is a print (bought twice): still available. a4, a5 are sold only later: still available.
    assert u1.candidates.tolist() == [2, 3, 4, 5, 6]
    assert u1.relevant.tolist() == [2]
    assert u1.protocol == INVENTORY_PROTOCOL
    u2 = sets["u2"]
    # Day 25: a0, a1, a2, a5 sold before; a1, a3 in the profile; a7 not uploaded yet.
    assert u2.candidates.tolist() == [4, 6]
    assert u2.relevant.tolist() == [4]


def test_profiles_are_training_items_in_purchase_order():
    users = {u.user_id: u for u in evaluation_users(mini_catalogue(), mini_transactions())}
    assert users["u2"].profile.tolist() == [1, 3]
    assert users["u1"].profile.tolist() == [0]


def test_without_upload_times_the_candidates_are_the_catalogue_minus_the_profile():
    sets = _candidates_by_user(mini_catalogue(upload_days=[None] * 8), mini_transactions())
    assert sets["u1"].candidates.tolist() == [1, 2, 3, 4, 5, 6, 7]
    assert sets["u2"].candidates.tolist() == [0, 2, 4, 5, 6, 7]
    assert sets["u1"].protocol == CATALOGUE_PROTOCOL


def test_unknown_upload_times_count_as_available_and_late_held_out_items_are_kept_with_a_warning():
    sets = _candidates_by_user(mini_catalogue(upload_days=(0, 0, 0, 0, 0, 0, 10, None)), mini_transactions())
    assert 7 in sets["u1"].candidates
    with pytest.warns(UserWarning, match="1 held-out items"):
        sets = _candidates_by_user(mini_catalogue(upload_days=(0, 0, 21, 0, 0, 0, 10, 30)), mini_transactions())
    assert 2 in sets["u1"].candidates


def test_reproducible_item_bought_again_in_the_held_out_basket_stays_a_candidate():
    tx = mini_transactions()
    tx.loc[tx["user_id"].eq("u2") & tx["split"].eq("test"), ["artwork_idx", "artwork_id"]] = [3, "a3"]
    sets = _candidates_by_user(mini_catalogue(), tx)
    assert sets["u2"].relevant.tolist() == [3]
    assert 3 in sets["u2"].candidates


def test_two_held_out_baskets_are_an_error():
    tx = mini_transactions()
    tx.loc[0, "split"] = "test"
    with pytest.raises(ValueError, match="2 held-out baskets"):
        _candidates_by_user(mini_catalogue(), tx)


def many_users(n_users: int, n_items: int = 300, seed: int = 0) -> list[EvaluationUser]:
    rng = np.random.default_rng(seed)
    users = []
    for u in range(n_users):
        items = rng.permutation(n_items)
        profile, relevant = items[:3], np.sort(items[3 : 3 + int(rng.integers(1, 4))])
        candidates = np.sort(items[3 : 3 + int(rng.integers(50, 200))])
        users.append(EvaluationUser(f"user{u}", profile, candidates, relevant, INVENTORY_PROTOCOL))
    return users


def test_oracle_is_perfect_and_random_is_at_chance():
    users = many_users(400)
    per_user, recs = evaluate_methods({"Oracle": oracle_scorer(), "Random": random_scorer(seed=0)}, users)
    oracle = per_user[per_user["method"] == "Oracle"]
    for col in ("auc", "recall_at_20", "ndcg_at_20", "recall_at_100", "ndcg_at_100"):
        assert (oracle[col] == 1.0).all(), col
    random_auc = per_user.loc[per_user["method"] == "Random", "auc"].mean()
    assert abs(random_auc - 0.5) < 0.03
    assert len(recs) == 2 * sum(min(100, len(u.candidates)) for u in users)
    top = recs[(recs["method"] == "Oracle") & (recs["user_id"] == "user0")]
    assert top["rank"].tolist()[:3] == [1, 2, 3]
    assert top["is_hit"].sum() == len(users[0].relevant)
    assert top["is_hit"].iloc[: len(users[0].relevant)].all()


def test_random_scores_are_seeded_per_user_not_per_call_order():
    candidates = np.arange(50)
    assert np.array_equal(random_scores(3, "u", candidates), random_scores(3, "u", candidates))
    assert not np.array_equal(random_scores(3, "u", candidates), random_scores(3, "v", candidates))
    assert not np.array_equal(random_scores(3, "u", candidates), random_scores(4, "u", candidates))


def test_visrank_is_max_cosine_on_raw_embeddings():
    emb = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0], [-1.0, 0.0], [0.0, 0.0]])
    two_item_profile = EvaluationUser("u", np.array([0, 1]), np.array([2, 3, 4]), np.array([2]), INVENTORY_PROTOCOL)
    assert visrank_scorer(emb)(two_item_profile) == pytest.approx([np.sqrt(0.5), 0.0, 0.0])
    user = EvaluationUser("u", np.array([0]), np.array([1, 2, 3]), np.array([2]), INVENTORY_PROTOCOL)
    assert visrank_scorer(emb)(user) == pytest.approx([0.0, np.sqrt(0.5), -1.0])


def test_curatornet_scores_are_the_model_dot_products():
    config = CuratorNetConfig(input_dim=6, item_dims=(5, 4), user_dims=(4,))
    model = CuratorNet(config, torch.Generator().manual_seed(0))
    features = np.random.default_rng(0).normal(size=(9, 6)).astype(np.float32)
    item_vecs = model.embed_catalogue(features, precision="fp32")  # compared with an fp32 reference below
    profile, candidates = np.array([1, 4]), np.array([0, 2, 3, 8])
    with torch.no_grad():
        x_ui, _ = model.score_triplets(
            torch.from_numpy(features), torch.tensor([1, 4]), torch.tensor([0, 0]), 1,
            torch.zeros(4, dtype=torch.long), torch.from_numpy(candidates), torch.from_numpy(candidates),
        )
    assert curatornet_scores(model, item_vecs, profile, candidates, "fp32") == pytest.approx(x_ui.numpy(), abs=1e-5)
    user = EvaluationUser("u", profile, candidates, np.array([3]), INVENTORY_PROTOCOL)
    stored = {"u": user_vector(model, item_vecs, profile, "fp32")}  # what the user_vectors asset stores
    assert user_vector_scorer(item_vecs, stored)(user) == pytest.approx(x_ui.numpy(), abs=1e-5)


def test_aggregate_table_and_side_by_side_report():
    users = many_users(30)
    per_user, _ = evaluate_methods({"Oracle": oracle_scorer(), "Random": random_scorer(1)}, users)
    assert list(per_user.columns[:11]) == [
        "method", "user_id", "auc", "precision_at_20", "recall_at_20", "ndcg_at_20",
        "precision_at_100", "recall_at_100", "ndcg_at_100", "ndcg_authors_at_20", "ndcg_authors_at_100",
    ]
    table = aggregate_table(per_user)
    assert table["method"].tolist() == ["Oracle", "Random"]
    assert table["n_users"].tolist() == [30, 30]
    random_rows = per_user[per_user["method"] == "Random"]
    assert table.loc[1, "recall_at_20"] == pytest.approx(random_rows["recall_at_20"].mean())
    markdown = side_by_side_markdown(table)
    assert "| Oracle | 30 | 1.0000 / 1.0000 |" in markdown
    assert "| CuratorNet (lambda=1e-4) | - | - / 0.7204 |" in markdown
    assert markdown.count("\n") == 2 + len(PAPER_TABLE_2)  # header, rule, one row per method


def test_method_labels_match_the_paper_table():
    assert method_label("CuratorNet", 1e-4) in set(PAPER_TABLE_2["method"])
    assert method_label("CuratorNet", 0.0) == "CuratorNet (lambda=0)"
    assert method_label("VBPR", 2.5e-4) == "VBPR (lambda=2.5e-4)"
    assert PAPER_TABLE_2.set_index("method").at["VisRank", "auc"] == 0.7151


def test_side_by_side_shows_the_papers_random_sampling_ablation():
    ours = pd.DataFrame([{"method": "CuratorNet random sampling (lambda=1e-4)", "auc": 0.7, "n_users": 3}])
    row = [line for line in side_by_side_markdown(ours).splitlines() if line.startswith("| CuratorNet random sampling")]
    assert len(row) == 1 and "0.7000 / 0.6602" in row[0]


def test_most_popular_ranks_by_training_purchases_only():
    transactions = mini_transactions()
    popularity = training_popularity(transactions, 8)
    # a3 was bought in two training rows; the held-out a2 and a4 do not count, whatever the data says later.
    assert popularity.tolist() == [1, 1, 0, 2, 0, 1, 0, 0]
    user = EvaluationUser("u", np.array([0]), np.array([2, 3, 4, 5]), np.array([3]), INVENTORY_PROTOCOL)
    assert most_popular_scorer(popularity)(user).tolist() == [0, 2, 0, 1]
    per_user, _ = evaluate_methods({"Most-Popular": most_popular_scorer(popularity)}, [user])
    assert per_user["auc"].item() == 1.0  # a3 (2 purchases) above a5 (1) and the unbought a2, a4


def test_figure_3_pairs_guided_and_random_per_user_and_shows_the_paper():
    rng = np.random.default_rng(0)
    users = [f"u{i}" for i in range(50)]
    guided = 0.7 + 0.05 * rng.standard_normal(50)
    rows = []
    for method, values in (
        ("CuratorNet (lambda=1e-4)", guided),
        ("CuratorNet random sampling (lambda=1e-3)", guided - 0.03 + 0.01 * rng.standard_normal(50)),
        ("VBPR (lambda=0)", guided),
        ("VBPR random sampling (lambda=1e-4)", guided + 0.001 * rng.standard_normal(50)),
        ("Random", np.full(50, 0.5)),
    ):
        rows += [{"method": method, "user_id": u, "auc": v} for u, v in zip(users, values)]
    per_user = pd.DataFrame(rows)
    table = figure_3_table(
        per_user,
        {
            "CuratorNet": ("CuratorNet (lambda=1e-4)", "CuratorNet random sampling (lambda=1e-3)"),
            "VBPR": ("VBPR (lambda=0)", "VBPR random sampling (lambda=1e-4)"),
        },
    ).set_index("model")
    curatornet, vbpr = table.loc["CuratorNet"], table.loc["VBPR"]
    assert curatornet["guided_auc"] == pytest.approx(guided.mean())
    assert curatornet["auc_difference"] == pytest.approx(curatornet["guided_auc"] - curatornet["random_auc"])
    assert curatornet["auc_difference"] > 0 and curatornet["t"] > 0 and curatornet["p_value"] < 1e-10
    assert vbpr["p_value"] > 1e-3 and vbpr["n_users"] == 50
    assert (curatornet["paper_guided_auc"], curatornet["paper_random_auc"], curatornet["paper_p_value"]) == (
        0.7204, 0.6602, 7.7e-5
    )
    assert (vbpr["paper_guided_auc"], vbpr["paper_random_auc"], vbpr["paper_p_value"]) == (0.6641, 0.5899, 1.6e-6)
    with pytest.raises(ValueError, match="re-materialize"):
        figure_3_table(per_user, {"VBPR": ("VBPR (lambda=1e-2)", "VBPR random sampling (lambda=1e-4)")})


def test_side_by_side_shows_the_papers_vbpr_random_sampling():
    ours = pd.DataFrame([{"method": "VBPR random sampling (lambda=1e-4)", "auc": 0.6, "n_users": 3}])
    row = [line for line in side_by_side_markdown(ours).splitlines() if line.startswith("| VBPR random sampling")]
    assert len(row) == 1 and "0.6000 / 0.5899" in row[0]
