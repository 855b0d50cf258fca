"""DuckDB reads and writes used by the assets: atomic table replacement and array round trips.

Every write happens inside one transaction, so a failed step never leaves a half-written table:
either the new table (or partition) is there in full, or the previous one is untouched.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import duckdb
import numpy as np
import pandas as pd

from curatornet_pipeline.core.triplet_set import TripletSet
from curatornet_pipeline.lineage import record_writes

_QUALIFIED_NAME = re.compile(r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$")


def _checked(name: str) -> str:
    # Table names are interpolated into SQL, so only plain schema.table identifiers are accepted.
    if not _QUALIFIED_NAME.match(name):
        raise ValueError(f"not a schema-qualified table name: {name!r}")
    return name


def _create_as(con: duckdb.DuckDBPyConnection, name: str, frame: pd.DataFrame, casts: Mapping[str, str]) -> None:
    schema = name.split(".")[0]
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    columns = ", ".join(f'CAST("{c}" AS {casts[c]}) AS "{c}"' if c in casts else f'"{c}"' for c in frame.columns)
    con.register("incoming_frame", frame)
    con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT {columns} FROM incoming_frame")
    con.unregister("incoming_frame")


@contextmanager
def _transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    con.execute("BEGIN TRANSACTION")
    try:
        yield
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def replace_tables(
    con: duckdb.DuckDBPyConnection,
    frames: Mapping[str, pd.DataFrame],
    casts: Mapping[str, Mapping[str, str]] | None = None,
    *,
    external_inputs: Mapping[str, str] | None = None,
) -> None:
    """Replace several tables in one transaction. ``casts`` maps table -> column -> SQL type.

    The same transaction records the write in ``meta.table_lineage`` (see ``curatornet_pipeline.lineage``);
    ``external_inputs`` are fingerprints of inputs outside DuckDB (the source files) to record with it.
    """
    casts = casts or {}
    with _transaction(con):
        for name, frame in frames.items():
            _create_as(con, _checked(name), frame, casts.get(name, {}))
        record_writes(con, list(frames), external_inputs=external_inputs)


def replace_table(
    con: duckdb.DuckDBPyConnection, name: str, frame: pd.DataFrame, casts: Mapping[str, str] | None = None
) -> None:
    replace_tables(con, {name: frame}, {name: dict(casts or {})})


def replace_partitions(
    con: duckdb.DuckDBPyConnection,
    frames: Mapping[str, pd.DataFrame],
    key_column: str,
    key_values: list[str],
    casts: Mapping[str, Mapping[str, str]] | None = None,
) -> None:
    """Swap the rows of some partitions (``key_column IN key_values``) of several tables, atomically."""
    casts = casts or {}
    with _transaction(con):
        for name, frame in frames.items():
            name = _checked(name)
            if not table_exists(con, name) or key_column not in _column_names(con, name):
                # A table written before it was partitioned by key_column (an older release) is replaced whole.
                _create_as(con, name, frame, casts.get(name, {}))
                continue
            placeholders = ", ".join("?" for _ in key_values)
            con.execute(f'DELETE FROM {name} WHERE "{key_column}" IN ({placeholders})', key_values)
            con.register("incoming_frame", frame)
            con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM incoming_frame")
            con.unregister("incoming_frame")
        record_writes(con, [_checked(name) for name in frames], key_column, key_values)


def _column_names(con: duckdb.DuckDBPyConnection, name: str) -> set[str]:
    schema, table = name.split(".")
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ?", [schema, table]
    ).fetchall()
    return {r[0] for r in rows}


def table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    schema, table = _checked(name).split(".")
    found = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [schema, table],
    ).fetchone()
    return bool(found and found[0])


def read_frame(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> pd.DataFrame:
    return con.execute(sql, params or []).df()


def require_table(con: duckdb.DuckDBPyConnection, name: str, produced_by: str) -> None:
    if not table_exists(con, name):
        raise RuntimeError(f"table {name} is missing from the DuckDB file: materialize the asset '{produced_by}' first")


def read_vectors(con: duckdb.DuckDBPyConnection, sql: str, column: str, params: list | None = None) -> np.ndarray:
    """Stack a fixed-size ARRAY/LIST column into a float32 matrix (rows in the query's order)."""
    values = con.execute(sql, params or []).fetchnumpy()[column]
    if len(values) == 0:
        return np.zeros((0, 0), dtype=np.float32)
    return np.stack(values).astype(np.float32, copy=False)


def vector_column(matrix: np.ndarray) -> list[np.ndarray]:
    """A matrix as a list of row arrays, the form DuckDB's pandas scan turns into a LIST column."""
    return list(np.ascontiguousarray(matrix, dtype=np.float32))


def _load_model_vectors(
    con: duckdb.DuckDBPyConnection, table: str, key: str, model_id: str, model_run_id: str
) -> tuple[np.ndarray, np.ndarray]:
    """(keys, vectors) of one model from ``table``, refusing rows computed from other weights than the stored ones."""
    require_table(con, _checked(table), "item_embeddings")
    stale = con.execute(
        f"SELECT count(*) FROM {table} WHERE model_id = ? AND model_run_id IS DISTINCT FROM ?",
        [model_id, model_run_id],
    ).fetchone()[0]
    rows = con.execute(f"SELECT {key}, vector FROM {table} WHERE model_id = ? ORDER BY {key}", [model_id]).fetchnumpy()
    if stale or len(rows[key]) == 0:
        raise RuntimeError(
            f"{table} does not hold vectors of the current weights of {model_id}: re-materialize item_embeddings"
        )
    return rows[key], np.stack(rows["vector"]).astype(np.float32, copy=False)


def load_item_vectors(con: duckdb.DuckDBPyConnection, model_id: str, model_run_id: str) -> np.ndarray:
    """One model's cached item vectors [N, D], rows in artwork_idx order."""
    return _load_model_vectors(con, "model.item_embeddings", "artwork_idx", model_id, model_run_id)[1]


def load_user_vectors(con: duckdb.DuckDBPyConnection, model_id: str, model_run_id: str) -> dict[str, np.ndarray]:
    """One model's evaluation-user vectors, by user id."""
    users, vectors = _load_model_vectors(con, "model.user_vectors", "user_id", model_id, model_run_id)
    return dict(zip(map(str, users), vectors))


# --- triplets: integer columns plus a shared profiles table -------------------------------------------


def triplet_frames(ts: TripletSet, hashes: np.ndarray, **constant_columns: object) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The two tables that hold a TripletSet: one row per triplet, one row per profile."""
    triplets = pd.DataFrame(
        {
            **constant_columns,
            "profile_id": ts.profile_id.astype(np.int32, copy=False),
            "positive": ts.positive.astype(np.int32, copy=False),
            "negative": ts.negative.astype(np.int32, copy=False),
            "user_idx": ts.user_idx.astype(np.int32, copy=False),
            "triplet_hash": hashes.astype(np.uint64, copy=False).view(np.int64),
        }
    )
    offsets = ts.profile_offsets
    profiles = pd.DataFrame(
        {
            **{k: v for k, v in constant_columns.items() if k != "split"},
            "profile_id": np.arange(ts.n_profiles, dtype=np.int32),
            "items": [ts.profile_items[offsets[p] : offsets[p + 1]].astype(np.int32) for p in range(ts.n_profiles)],
        }
    )
    return triplets, profiles


PROFILE_CASTS = {"items": "INTEGER[]"}


def read_triplet_set(
    con: duckdb.DuckDBPyConnection,
    triplets_table: str,
    profiles_table: str,
    where: str = "TRUE",
    params: list | None = None,
    profile_where: str = "TRUE",
    profile_params: list | None = None,
) -> tuple[TripletSet, np.ndarray]:
    """Load triplets (and their hashes) plus the profiles they point at, back into a TripletSet."""
    rows = con.execute(
        f"SELECT profile_id, positive, negative, user_idx, triplet_hash FROM {_checked(triplets_table)} WHERE {where}",
        params or [],
    ).fetchnumpy()
    profiles = con.execute(
        f"SELECT profile_id, items FROM {_checked(profiles_table)} WHERE {profile_where} ORDER BY profile_id",
        profile_params or [],
    ).fetchnumpy()
    ids = profiles["profile_id"].astype(np.int64)
    if len(ids) and not np.array_equal(ids, np.arange(len(ids))):
        raise RuntimeError(f"{profiles_table}: profile ids are not contiguous from 0")
    lengths = np.fromiter((len(items) for items in profiles["items"]), dtype=np.int64, count=len(ids))
    offsets = np.zeros(len(ids) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    items = (
        np.concatenate([np.asarray(p, dtype=np.int32) for p in profiles["items"]])
        if len(ids)
        else np.zeros(0, dtype=np.int32)
    )
    ts = TripletSet(
        offsets,
        items,
        rows["profile_id"].astype(np.int32),
        rows["positive"].astype(np.int32),
        rows["negative"].astype(np.int32),
        rows["user_idx"].astype(np.int32),
    )
    return ts, rows["triplet_hash"].view(np.uint64)
