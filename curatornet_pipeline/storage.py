"""Reads and writes used by the assets: atomic table replacement over the Parquet data layer, array round trips.

A write stages Parquet files and publishes them together (``store``), so a failed step never leaves a
half-written table: either every new table (or partition) of the write is there in full, or the previous
ones are untouched. The connection is a data-layer connection (``store.session.connect``, which the
``duckdb`` resource hands to every step): its ``schema.table`` names are views over the published files.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Union

import duckdb
import numpy as np
import pandas as pd

from curatornet_pipeline.core.triplet_set import TripletSet
from curatornet_pipeline.lineage import LineageWrite
from curatornet_pipeline.store import parquet, session
from curatornet_pipeline.store.data_root import WHOLE
from curatornet_pipeline.store.writes import FrameWrite
from curatornet_pipeline.tables import VECTOR, Table

_QUALIFIED_NAME = re.compile(r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$")

TableRef = Union[Table, str]


def _checked(table: TableRef) -> str:
    # Table names are interpolated into SQL, so only plain schema.table identifiers are accepted.
    name = str(table)
    if not _QUALIFIED_NAME.match(name):
        raise ValueError(f"not a schema-qualified table name: {name!r}")
    return name


def _vector_width(frame: pd.DataFrame, table: Table) -> int | None:
    """The width of the frame's VECTOR column(s), read off the first row (None for an empty frame)."""
    vectors = [c.name for c in table.columns if c.type == VECTOR]
    if not vectors or frame.empty:
        return None
    return len(frame[vectors[0]].iloc[0])


def _declared_casts(table: TableRef, frame: pd.DataFrame, casts: Mapping, vector_widths: Mapping) -> Mapping[str, str]:
    """The casts of one write: a registered table's own, after checking the frame has its declared columns."""
    if not isinstance(table, Table):
        return casts.get(table, {})
    if set(frame.columns) != set(table.column_names):
        raise ValueError(
            f"{table}: the frame's columns {sorted(frame.columns)} differ from the declared ones "
            f"{sorted(table.column_names)} (curatornet_pipeline/tables.py)"
        )
    return table.casts(vector_widths.get(table) or _vector_width(frame, table))


def replace_tables(
    con: duckdb.DuckDBPyConnection,
    frames: Mapping[TableRef, pd.DataFrame],
    casts: Mapping[str, Mapping[str, str]] | None = None,
    *,
    vector_widths: Mapping[Table, int] | None = None,
    external_inputs: Mapping[str, str] | None = None,
) -> None:
    """Replace several tables in one publish.

    A registered table (``tables.Table``) is written with its declared casts; a VECTOR column's width comes
    from the frame, or from ``vector_widths`` for a frame that may be empty. ``casts`` (name -> column ->
    SQL type) serves tables outside the registry. The same publish records the write in the lineage
    (see ``curatornet_pipeline.lineage``); ``external_inputs`` are fingerprints of inputs outside the
    data layer (the source files) to record with it.
    """
    casts, vector_widths = casts or {}, vector_widths or {}
    writes = [
        FrameWrite(_checked(table), frame, _declared_casts(table, frame, casts, vector_widths))
        for table, frame in frames.items()
    ]
    lineage = LineageWrite(external_inputs)
    session.publish(con, writes, annotate=lineage.annotate, describe=lineage.describe)


def replace_table(
    con: duckdb.DuckDBPyConnection, name: TableRef, frame: pd.DataFrame, casts: Mapping[str, str] | None = None
) -> None:
    replace_tables(con, {name: frame}, {str(name): dict(casts or {})})


def replace_partitions(
    con: duckdb.DuckDBPyConnection,
    frames: Mapping[TableRef, pd.DataFrame],
    key_values: list[str],
    *,
    key_column: str | None = None,
    casts: Mapping[str, Mapping[str, str]] | None = None,
) -> None:
    """Swap the rows of some partitions (``key_column IN key_values``) of several tables, in one publish.

    Each partition is its own file; the table's other partitions stay as they are. ``key_column`` defaults to
    the registered tables' declared partition column.
    """
    casts = casts or {}
    declared = {table.partition_column for table in frames if isinstance(table, Table)}
    if key_column is None:
        if len(declared) != 1 or None in declared:
            raise ValueError(f"no single declared partition column for {', '.join(map(str, frames))}")
        key_column = declared.pop()
    elif declared - {key_column}:
        raise ValueError(f"{', '.join(map(str, frames))} are not all partitioned by {key_column}")
    manifest = session.location_of(con).root.read_manifest()
    writes: list[FrameWrite] = []
    for table, frame in frames.items():
        name = _checked(table)
        state = manifest.tables.get(name)
        if state is not None and WHOLE in state.partitions:
            raise ValueError(f"{name} was written whole, so its {key_column} partitions cannot be replaced one by one")
        table_casts = _declared_casts(table, frame, casts, {})
        for key in key_values:
            part = frame[frame[key_column] == key].reset_index(drop=True)
            writes.append(FrameWrite(name, part, table_casts, partition=str(key)))
    lineage = LineageWrite()
    session.publish(con, writes, annotate=lineage.annotate, describe=lineage.describe)


def _column_names(con: duckdb.DuckDBPyConnection, name: str) -> set[str]:
    schema, table = name.split(".")
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ?", [schema, table]
    ).fetchall()
    return {r[0] for r in rows}


def table_exists(con: duckdb.DuckDBPyConnection, table: TableRef) -> bool:
    schema, name = _checked(table).split(".")
    found = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [schema, name],
    ).fetchone()
    return bool(found and found[0])


def read_frame(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> pd.DataFrame:
    return con.execute(sql, params or []).df()


def require_table(con: duckdb.DuckDBPyConnection, table: Table) -> None:
    """Refuse, naming the asset to materialize, when a registered table is not in the file yet."""
    if not table_exists(con, table):
        raise RuntimeError(
            f"table {table} is missing from the DuckDB file: materialize the asset '{table.asset}' first"
        )


def read_vectors(con: duckdb.DuckDBPyConnection, sql: str, column: str, params: list | None = None) -> np.ndarray:
    """Stack a fixed-size ARRAY/LIST column into a float32 matrix (rows in the query's order), through Arrow."""
    return parquet.read_vectors(con, sql, column, params)


def vector_column(matrix: np.ndarray) -> list[np.ndarray]:
    """A matrix as a list of row arrays, the form DuckDB's pandas scan turns into a LIST column."""
    return list(np.ascontiguousarray(matrix, dtype=np.float32))


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


def read_triplet_set(
    con: duckdb.DuckDBPyConnection,
    triplets_table: TableRef,
    profiles_table: TableRef,
    where: str = "TRUE",
    params: list | None = None,
    profile_where: str = "TRUE",
    profile_params: list | None = None,
) -> tuple[TripletSet, np.ndarray]:
    """Load triplets (and their hashes) plus the profiles they point at, back into a TripletSet.

    Rows come back in one fixed order (by strategy, split, hash, then every field): DuckDB's parallel scan does
    not keep a table's insertion order across processes, and training shuffles a permutation of this order, so
    without it the same stored triplets trained differently in two runs.
    """
    rows = con.execute(
        f"SELECT profile_id, positive, negative, user_idx, triplet_hash FROM {_checked(triplets_table)} WHERE {where} "
        "ORDER BY strategy, split, triplet_hash, profile_id, positive, negative, user_idx",
        params or [],
    ).fetchnumpy()
    profiles = parquet.arrow_table(
        con,
        f"SELECT profile_id, items FROM {_checked(profiles_table)} WHERE {profile_where} ORDER BY profile_id",
        profile_params,
    )
    ids = profiles.column("profile_id").to_numpy().astype(np.int64)
    if len(ids) and not np.array_equal(ids, np.arange(len(ids))):
        raise RuntimeError(f"{profiles_table}: profile ids are not contiguous from 0")
    offsets, items = parquet.ragged_from_arrow(profiles.column("items"))
    ts = TripletSet(
        offsets,
        items,
        rows["profile_id"].astype(np.int32),
        rows["positive"].astype(np.int32),
        rows["negative"].astype(np.int32),
        rows["user_idx"].astype(np.int32),
    )
    return ts, rows["triplet_hash"].view(np.uint64)
