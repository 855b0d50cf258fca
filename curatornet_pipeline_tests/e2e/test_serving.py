"""Served recommendations: the inventory rule, the likes file, and the serving tables the real job writes."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from curatornet_pipeline.core.errors import InputDataError
from curatornet_pipeline.core.feedback import read_likes
from curatornet_pipeline.core.ingest import read_availability
from curatornet_pipeline.core.inventory import interactions_table, inventory_table, user_profiles
from curatornet_pipeline.core.recommend import Recommender
from curatornet_pipeline.core.training import model_from_bytes
from curatornet_pipeline.serving import recommend_for_items
from curatornet_pipeline.serving_model import serving_model
from curatornet_pipeline.snapshot import load_snapshot, snapshot_path
from curatornet_pipeline.storage import read_vectors


def _artworks(ids: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "artwork_idx": np.arange(len(ids)),
            "artwork_id": ids,
            "artist_id": "x",
            "upload_timestamp": pd.Timestamp("2020-01-01"),
        }
    )


def _purchases(rows: list[tuple[str, str, int]], artworks: pd.DataFrame) -> pd.DataFrame:
    index = dict(zip(artworks["artwork_id"], artworks["artwork_idx"]))
    return pd.DataFrame(
        {
            "user_id": [u for u, _, _ in rows],
            "basket_id": range(len(rows)),
            "purchase_timestamp": [pd.Timestamp(t, unit="s") for _, _, t in rows],
            "artwork_id": [a for _, a, _ in rows],
            "artwork_idx": [index[a] for _, a, _ in rows],
            "source_row": range(1, len(rows) + 1),
        }
    )


# ---------------------------------------------------------------------------------------------- inventory rule


def test_bought_once_is_sold_twice_is_a_print_never_is_available():
    artworks = _artworks(["once", "twice", "never"])
    purchases = _purchases([("u1", "once", 10), ("u1", "twice", 10), ("u2", "twice", 20)], artworks)
    table = inventory_table(artworks, purchases).set_index("artwork_id")
    assert table["available"].to_dict() == {"once": False, "twice": True, "never": True}
    assert table.loc["twice", "kind"] == "print" and table.loc["once", "kind"] == "one_of_a_kind"
    assert table["n_purchases"].to_dict() == {"once": 1, "twice": 2, "never": 0}


def test_stated_availability_wins_over_the_rule():
    artworks = _artworks(["once", "never", "unsaid"])
    purchases = _purchases([("u1", "once", 10)], artworks)
    stated = pd.Series({"once": True, "never": False})
    table = inventory_table(artworks, purchases, stated).set_index("artwork_id")
    assert table["available"].to_dict() == {"once": True, "never": False, "unsaid": True}
    assert table.loc["unsaid", "availability_rule"] == "never bought"


def test_generic_items_may_state_availability(tmp_path):
    (tmp_path / "items.csv").write_text("item_id,artist_id,available\na,x,yes\nb,x,0\nc,x,\n")
    (tmp_path / "interactions.csv").write_text("user_id,item_id,timestamp\nu,a,1\n")
    assert read_availability(tmp_path).to_dict() == {"a": True, "b": False}
    (tmp_path / "items.csv").write_text("item_id,artist_id,available\na,x,maybe\n")
    with pytest.raises(InputDataError, match=r"items.csv, row 1, column 'available'.*'maybe'"):
        read_availability(tmp_path)


def test_likes_file_is_read_and_bad_lines_are_set_aside_with_their_reason(tmp_path):
    artworks = _artworks(["a", "b"])
    assert read_likes(tmp_path, artworks)[0].empty  # no file: no likes
    (tmp_path / "likes.csv").write_text("visitor_id,artwork_id,timestamp\n")
    likes, feedback = read_likes(tmp_path, artworks)
    assert likes.empty and not feedback.set_aside  # the app's fresh file: header only
    (tmp_path / "likes.csv").write_bytes(
        b"visitor_id,artwork_id,timestamp\nv1,b,2024-01-01T00:00:00Z\nv1,zzz,2024-01-01T00:00:00Z\n"
        b"v2,caf\xe9,2024-01-01T00:00:00Z\nhello there\n\"v3,a\nv1,a,1704153600\nv4,a,not a time\n"
    )
    likes, feedback = read_likes(tmp_path, artworks)
    assert likes["artwork_id"].tolist() == ["b", "a"] and likes["user_id"].unique().tolist() == ["v1"]
    assert likes["source_row"].tolist() == [2, 7] and likes["like_timestamp"].iloc[1] == pd.Timestamp("2024-01-02")
    aside = feedback.set_aside_frame()
    assert aside["line"].tolist() == [3, 4, 5, 6, 8] and set(aside["file"]) == {"likes.csv"}
    reasons = aside["reason"].tolist()
    assert "'zzz' is not in the catalogue" in reasons[0] and "not UTF-8" in reasons[1]
    assert "expected 3 fields" in reasons[2] and "malformed CSV" in reasons[3] and "timestamp" in reasons[4]
    (tmp_path / "likes.csv").write_text("visitor,artwork\nv1,a,2024-01-01\n")
    likes, feedback = read_likes(tmp_path, artworks)
    assert likes.empty and "header" in feedback.unreadable and len(feedback.set_aside) == 2


def test_profiles_hold_every_basket_and_the_likes_once_in_time_order():
    artworks = _artworks(["a", "b", "c"])
    purchases = _purchases([("u1", "b", 10), ("u1", "a", 30), ("u2", "c", 5)], artworks)
    likes = pd.DataFrame(
        {"user_id": ["u1", "u1"], "artwork_id": ["c", "b"], "artwork_idx": [2, 1],
         "like_timestamp": [pd.Timestamp(20, unit="s"), pd.Timestamp(40, unit="s")], "source_row": [1, 2]}
    )
    users, offsets, items = user_profiles(interactions_table(purchases, likes))
    assert users.tolist() == ["u1", "u2"]
    assert items[offsets[0] : offsets[1]].tolist() == [1, 2, 0]  # b (bought), c (liked), a (bought); b once
    assert items[offsets[1] : offsets[2]].tolist() == [2]


# ---------------------------------------------------------------------------------------------- served tables


@pytest.fixture(scope="module")
def served(materialized):
    with duckdb.connect(str(materialized.database), read_only=True) as con:
        tables = {
            name: con.execute(f"SELECT * FROM serving.{name}").df()
            for name in ("catalogue", "available_artworks", "interactions", "user_recommendations", "similar_artworks")
        }
        tables["serving_model"] = serving_model(con)
    return tables


def test_every_customer_gets_k_available_artworks_they_do_not_own(served):
    recs, interactions, available = served["user_recommendations"], served["interactions"], served["available_artworks"]
    users = set(interactions["user_id"])
    assert set(recs["user_id"]) == users
    assert recs["artwork_id"].isin(available["artwork_id"]).all()
    owned = interactions[["user_id", "artwork_id"]].merge(recs, on=["user_id", "artwork_id"])
    assert owned.empty
    open_counts = {
        u: len(set(available["artwork_id"]) - set(interactions.loc[interactions["user_id"] == u, "artwork_id"]))
        for u in users
    }
    counts = recs.groupby("user_id").size()
    assert all(counts[u] == min(100, open_counts[u]) for u in users)
    assert (recs["model_id"] == served["serving_model"].model_id).all()


def test_sold_one_of_a_kind_works_are_never_served(served):
    catalogue = served["catalogue"]
    sold = set(catalogue.loc[(catalogue["n_purchases"] == 1), "artwork_id"])
    assert sold, "the tiny gallery sells one-of-a-kind works"
    assert not sold & set(served["user_recommendations"]["artwork_id"])
    assert not sold & set(served["similar_artworks"]["similar_artwork_id"])
    assert not sold & set(served["available_artworks"]["artwork_id"])


def test_served_lists_equal_one_cold_start_call_per_user(materialized, served):
    """The batched matrix path gives each user what the one-profile recommender gives for their full history."""
    with duckdb.connect(str(materialized.database), read_only=True) as con:
        weights = con.execute("SELECT weights FROM serving.model").fetchone()[0]
        ids = con.execute("SELECT artwork_id FROM serving.catalogue ORDER BY artwork_idx").df()["artwork_id"]
        vectors = read_vectors(
            con,
            "SELECT v.vector FROM serving.item_vectors v JOIN serving.catalogue c USING (artwork_id) "
            "ORDER BY c.artwork_idx",
            "vector",
        )
    available = ids.isin(served["available_artworks"]["artwork_id"]).to_numpy()
    recommender = Recommender(model_from_bytes(bytes(weights)), vectors, ids.tolist(), available)
    interactions, recs = served["interactions"], served["user_recommendations"]
    for user in sorted(set(interactions["user_id"]))[:5]:
        history = pd.unique(interactions.loc[interactions["user_id"] == user, "artwork_id"]).tolist()
        expected = recommender.recommend(history, k=100)
        got = recs[recs["user_id"] == user].sort_values("rank")
        assert got["artwork_id"].tolist() == expected["artwork_id"].tolist()
        np.testing.assert_allclose(got["score"], expected["score"], rtol=1e-4, atol=1e-5)


def test_serving_item_vectors_reproduce_the_trained_item_embeddings(materialized, served):
    """New artworks are embedded with the training z-scoring: on known artworks that gives the stored vectors."""
    model_id = served["serving_model"].model_id
    with duckdb.connect(str(materialized.database), read_only=True) as con:
        trained = read_vectors(
            con, "SELECT vector FROM model.item_embeddings WHERE model_id = ? ORDER BY artwork_id", "vector", [model_id]
        )
        serving = read_vectors(con, "SELECT vector FROM serving.item_vectors ORDER BY artwork_id", "vector")
    np.testing.assert_allclose(serving, trained, rtol=1e-4, atol=1e-5)


def test_more_like_this_for_every_artwork(served):
    similar = served["similar_artworks"]
    assert set(similar["artwork_id"]) == set(served["catalogue"]["artwork_id"])
    assert (similar["artwork_id"] != similar["similar_artwork_id"]).all()


def test_recommend_for_items_recommends_available_artworks_only(materialized, served):
    catalogue = served["catalogue"]
    liked = catalogue.loc[~catalogue["available"], "artwork_id"].head(2).tolist()
    recommendations, model_id = recommend_for_items(materialized.database, liked, k=500)
    assert model_id == served["serving_model"].model_id
    assert set(recommendations["artwork_id"]) == set(served["available_artworks"]["artwork_id"]) - set(liked)


def test_snapshot_holds_the_served_tables_and_the_checks_passed(materialized, served):
    snapshot = load_snapshot(snapshot_path(materialized.database))
    assert snapshot.info["model_id"] == served["serving_model"].model_id
    pd.testing.assert_frame_equal(
        snapshot.user_recommendations.reset_index(drop=True),
        served["user_recommendations"].sort_values(["user_id", "rank"]).reset_index(drop=True),
    )
    assert snapshot.item_vectors.shape[0] == len(served["catalogue"])
    checks = {
        e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data.passed
        for e in materialized.result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }
    for name in (
        "recommendations_are_available_and_not_owned",
        "every_user_has_a_full_list",
        "snapshot_matches_tables",
        "every_like_line_is_used",
    ):
        assert checks[name] is True, name


def test_batched_top_k_equals_the_one_profile_ranking_ties_included():
    from curatornet_pipeline.core.batch_recommend import top_k_per_profile
    from curatornet_pipeline.core.metrics import top_k_order

    rng = np.random.default_rng(0)
    items = rng.normal(size=(50, 4)).astype(np.float32)
    items[10] = items[3]  # two artworks with equal scores for everyone
    users = rng.normal(size=(7, 4)).astype(np.float32)
    candidates = np.sort(rng.choice(50, 30, replace=False))
    offsets, profiles = np.arange(8), rng.choice(50, 7)
    top = top_k_per_profile(users, items, candidates, offsets, profiles, k=10, chunk=3)
    for p in range(7):
        allowed = candidates[candidates != profiles[p]]
        expected = allowed[top_k_order(items[allowed] @ users[p], allowed, 10)]
        assert top.loc[top["profile"] == p, "artwork_idx"].tolist() == expected.tolist()
