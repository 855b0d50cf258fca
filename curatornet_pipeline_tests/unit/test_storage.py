"""Writes through the data layer are all-or-nothing, and arrays survive the round trip."""

import duckdb
import numpy as np
import pandas as pd
import pytest

from curatornet_pipeline import tables
from curatornet_pipeline.core.triplet_set import TripletSet
from curatornet_pipeline.store import session
from curatornet_pipeline.storage import (
    read_triplet_set,
    read_vectors,
    replace_partitions,
    replace_table,
    replace_tables,
    triplet_frames,
    vector_column,
)


@pytest.fixture
def con(tmp_path):
    connection = session.connect(session.Location.of(tmp_path / "t.duckdb"))
    yield connection
    connection.close()


def test_failed_multi_table_write_leaves_previous_tables_untouched(con):
    replace_table(con, "s.a", pd.DataFrame({"x": [1, 2, 3]}))
    replace_table(con, "s.b", pd.DataFrame({"y": [1]}))
    broken = pd.DataFrame({"z": [1, 2]})
    with pytest.raises(duckdb.Error):
        replace_tables(
            con,
            {"s.a": pd.DataFrame({"x": [9]}), "s.b": broken},
            {"s.b": {"z": "NOT_A_TYPE"}},
        )
    assert con.execute("SELECT list(x ORDER BY x) FROM s.a").fetchone()[0] == [1, 2, 3]
    assert con.execute("SELECT list(y) FROM s.b").fetchone()[0] == [1]


def test_rejects_unsafe_table_names(con):
    with pytest.raises(ValueError, match="schema-qualified"):
        replace_table(con, "s.a; DROP TABLE x", pd.DataFrame({"x": [1]}))


def test_vectors_round_trip(con):
    matrix = np.random.default_rng(0).normal(size=(5, 7)).astype(np.float32)
    replace_table(con, "f.v", pd.DataFrame({"i": range(5), "v": vector_column(matrix)}), {"v": "FLOAT[7]"})
    back = read_vectors(con, "SELECT v FROM f.v ORDER BY i", "v")
    np.testing.assert_array_equal(back, matrix)


def test_partitions_replace_only_their_rows_and_triplets_round_trip(con):
    ts = TripletSet(
        profile_offsets=np.array([0, 2, 3], dtype=np.int64),
        profile_items=np.array([4, 5, 6], dtype=np.int32),
        profile_id=np.array([0, 1, 1], dtype=np.int32),
        positive=np.array([7, 8, 9], dtype=np.int32),
        negative=np.array([1, 2, 3], dtype=np.int32),
        user_idx=np.array([0, -1, -1], dtype=np.int32),
    )
    hashes = np.array([11, 2**63 + 5, 13], dtype=np.uint64)
    for strategy in ("a", "b"):
        rows, profiles = triplet_frames(ts, hashes, strategy=strategy, split="train")
        # The registered tables bring their partition column (strategy) and casts (items INTEGER[]).
        replace_partitions(con, {tables.TRIPLETS: rows, tables.PROFILES: profiles}, [strategy])
    # Re-writing partition "a" with one triplet leaves "b" whole.
    rows, profiles = triplet_frames(ts.subset(np.array([2])), hashes[[2]], strategy="a", split="train")
    replace_partitions(con, {tables.TRIPLETS: rows, tables.PROFILES: profiles}, ["a"])
    counts = dict(con.execute(f"SELECT strategy, count(*) FROM {tables.TRIPLETS} GROUP BY 1").fetchall())
    assert counts == {"a": 1, "b": 3}
    back, back_hashes = read_triplet_set(
        con, tables.TRIPLETS, tables.PROFILES, "strategy = ?", ["b"], "strategy = ?", ["b"]
    )
    np.testing.assert_array_equal(back.profile_items, ts.profile_items)
    np.testing.assert_array_equal(back.profile_offsets, ts.profile_offsets)
    # Triplets come back in one fixed order (by the stored hash), whatever order they were written in.
    by_hash = np.argsort(hashes.view(np.int64))  # stored as a signed BIGINT
    np.testing.assert_array_equal(back_hashes, hashes[by_hash])
    np.testing.assert_array_equal(back.positive, ts.positive[by_hash])
    np.testing.assert_array_equal(back.user_idx, ts.user_idx[by_hash])


def test_triplets_read_back_in_the_same_order_whatever_order_they_were_written_in(con):
    rng = np.random.default_rng(0)
    n = 500
    ts = TripletSet(
        profile_offsets=np.arange(n + 1, dtype=np.int64),
        profile_items=rng.integers(0, 50, n).astype(np.int32),
        profile_id=np.arange(n, dtype=np.int32),
        positive=rng.integers(0, 50, n).astype(np.int32),
        negative=rng.integers(0, 50, n).astype(np.int32),
        user_idx=rng.integers(-1, 20, n).astype(np.int32),
    )
    hashes = rng.integers(0, 2**63, n, dtype=np.uint64)
    read = []
    for order in (np.arange(n), rng.permutation(n)):
        rows, profiles = triplet_frames(ts, hashes, strategy="a", split="train")
        replace_partitions(con, {tables.TRIPLETS: rows.iloc[order], tables.PROFILES: profiles}, ["a"])
        back, _ = read_triplet_set(con, tables.TRIPLETS, tables.PROFILES, "strategy = ?", ["a"], "strategy = ?", ["a"])
        read.append((back.positive, back.negative, back.profile_id))
    for first, second in zip(*read):
        np.testing.assert_array_equal(first, second)


def test_partition_writes_keep_other_partitions_and_a_whole_table_refuses_them(con):
    new = pd.DataFrame({"model_id": ["vbpr_a"], "variant": ["random_sampling"], "l2_lambda": [0.0]})
    replace_partitions(con, {"m.models": new}, ["random_sampling"], key_column="variant")
    assert con.execute("SELECT model_id, variant FROM m.models").fetchall() == [("vbpr_a", "random_sampling")]
    other = pd.DataFrame({"model_id": ["vbpr_b"], "variant": ["strategies_3_and_4"], "l2_lambda": [0.0]})
    replace_partitions(con, {"m.models": other}, ["strategies_3_and_4"], key_column="variant")
    assert con.execute("SELECT count(*) FROM m.models").fetchone()[0] == 2  # later writes keep other partitions
    replace_table(con, "m.whole", pd.DataFrame({"model_id": ["old"], "variant": ["x"]}))
    with pytest.raises(ValueError, match="m.whole was written whole"):
        replace_partitions(con, {"m.whole": other}, ["strategies_3_and_4"], key_column="variant")


def test_a_registered_table_refuses_a_frame_with_other_columns_and_keeps_its_rows(con):
    users = pd.DataFrame({"user_idx": [0, 1], "user_id": ["u1", "u2"]})
    replace_tables(con, {tables.USERS: users})
    with pytest.raises(ValueError, match=r"split\.users.*user_name"):
        replace_tables(con, {tables.USERS: users.rename(columns={"user_id": "user_name"})})
    assert con.execute(f"SELECT list(user_id ORDER BY user_idx) FROM {tables.USERS}").fetchone()[0] == ["u1", "u2"]


def test_a_registered_vector_column_takes_the_width_of_its_rows(con):
    matrix = np.ones((3, 5), dtype=np.float32)
    frame = pd.DataFrame(
        {
            "artwork_idx": range(3),
            "artwork_id": ["a", "b", "c"],
            "cluster": np.zeros(3, np.int32),
            "pca": vector_column(matrix),
        }
    )
    replace_tables(con, {tables.VISUAL_CLUSTERS: frame})
    assert con.execute(f"SELECT typeof(pca) FROM {tables.VISUAL_CLUSTERS} LIMIT 1").fetchone()[0] == "FLOAT[5]"
