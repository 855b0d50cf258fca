"""Parquet files of the data layer: written with the declared column types, read back into numpy via Arrow.

DuckDB writes the files (``COPY ... TO ... (FORMAT parquet)``), so a column's type is the one the SQL cast
gives it, fixed-size vectors included (``FLOAT[n]``). Vectors come back through Arrow: a fixed-size list is
one contiguous float buffer, reshaped without copying, where DuckDB's ``fetchnumpy`` would build one numpy
object per row (gigabytes at a million 2048-wide rows).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa


def sql_literal(path: Path | str) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def projection(columns: list[str], casts: Mapping[str, str]) -> str:
    """SELECT list that casts the given columns and passes the others through."""
    return ", ".join(f'CAST("{c}" AS {casts[c]}) AS "{c}"' if c in casts else f'"{c}"' for c in columns)


def write_frame(
    con: duckdb.DuckDBPyConnection, frame: pd.DataFrame, casts: Mapping[str, str], target: Path
) -> tuple[tuple[str, str], ...]:
    """Write ``frame`` (with ``casts``) to the Parquet file ``target``, fsynced; returns its (column, type) pairs."""
    view = f"incoming_{os.getpid()}_{id(frame)}"
    con.register(view, frame)
    try:
        select = f"SELECT {projection(list(frame.columns), casts)} FROM {view}"
        columns = tuple((str(r[0]), str(r[1])) for r in con.execute(f"DESCRIBE {select}").fetchall())
        con.execute(f"COPY ({select}) TO {sql_literal(target)} (FORMAT parquet)")
    finally:
        con.unregister(view)
    with open(target, "rb") as handle:
        os.fsync(handle.fileno())
    return columns


def write_query(con: duckdb.DuckDBPyConnection, select: str, target: Path, params: list | None = None) -> None:
    """Write the rows of a query to ``target`` (used to keep the rest of a table when one partition changes)."""
    if params:
        # COPY takes no parameters: materialize the rows first.
        con.execute(f"CREATE OR REPLACE TEMP TABLE copy_rows AS {select}", params)
        con.execute(f"COPY copy_rows TO {sql_literal(target)} (FORMAT parquet)")
        con.execute("DROP TABLE copy_rows")
    else:
        con.execute(f"COPY ({select}) TO {sql_literal(target)} (FORMAT parquet)")
    with open(target, "rb") as handle:
        os.fsync(handle.fileno())


def arrow_table(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> pa.Table:
    # A relation, not execute(): Arrow output of a DB-API result costs an extra copy of the rows. On a cursor
    # (same database), because a relation is refused while the connection has an unread execute() result.
    with con.cursor() as cursor:
        relation = cursor.sql(sql, params=params or None)
        # DuckDB 2 names it to_arrow_table; 1.x arrow.
        fetch = getattr(relation, "to_arrow_table", None) or relation.arrow
        return fetch()


def vectors_from_arrow(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A fixed-size (or equal-length) list column as a float32 matrix [rows, width], without per-row objects."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    rows = len(column)
    if rows == 0:
        return np.zeros((0, 0), dtype=np.float32)
    if column.null_count:
        raise ValueError(f"{column.null_count} of {rows} vectors are missing (NULL)")
    if pa.types.is_fixed_size_list(column.type):
        width = column.type.list_size
        flat = column.flatten()  # honours the array's offset, unlike .values
    elif pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
        flat = column.flatten()
        offsets = np.asarray(column.offsets)
        lengths = np.diff(offsets)
        width = int(lengths[0])
        if not np.all(lengths == width):
            raise ValueError(f"vectors of different lengths ({int(lengths.min())} to {int(lengths.max())})")
    else:
        raise TypeError(f"not a list column: {column.type}")
    # One copy of the float buffer (Arrow's memory is read-only; callers normalise in place).
    return np.array(flat.to_numpy(zero_copy_only=False), dtype=np.float32).reshape(rows, width)


def ragged_from_arrow(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """A list column as (offsets int64 [rows + 1], values int32 [total]): CSR form, without per-row objects."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if array.null_count:
        raise ValueError(f"{array.null_count} of {len(array)} lists are missing (NULL)")
    if len(array) == 0:
        return np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int32)
    offsets = np.asarray(array.offsets, dtype=np.int64)
    values = np.array(array.flatten().to_numpy(zero_copy_only=False), dtype=np.int32)
    return offsets - offsets[0], values


def read_vectors(con: duckdb.DuckDBPyConnection, sql: str, column: str, params: list | None = None) -> np.ndarray:
    """Stack a fixed-size ARRAY/LIST column of a query into a float32 matrix (rows in the query's order)."""
    return vectors_from_arrow(arrow_table(con, sql, params).column(column))
