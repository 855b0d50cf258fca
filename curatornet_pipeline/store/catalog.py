"""DuckDB views over the published Parquet files: in a step's in-memory connection and in the catalog file.

Every table of the manifest becomes a view ``schema.table`` that reads its current files (one per partition)
and casts each column to the type it was written with, so ``DESCRIBE`` shows the declared schema and SQL
written for tables (``SELECT ... FROM features.resnet50_embeddings``) works unchanged. The records kept with
each slot (the lineage) become one small table (``RecordTable``).

The catalog file (``curatornet.duckdb``) is what users open. It is rebuilt whole from a manifest into a
temporary file and renamed over the old one, so it needs no DuckDB write lock: a user who has it open keeps
reading the previous one (whose data files are kept, see ``data_root``), and a damaged or missing catalog is
rebuilt from the manifest by :func:`write_catalog`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from curatornet_pipeline.store.data_root import DataRoot, Manifest
from curatornet_pipeline.store.parquet import projection, sql_literal



@dataclass(frozen=True)
class RecordTable:
    """The table that shows the slots' records: (table, partition) then one column per record key."""

    name: str
    columns: tuple[tuple[str, str], ...]  # (name, DuckDB type); the first two hold the table and partition


def view_sql(root: DataRoot, manifest: Manifest, table: str) -> str:
    state = manifest.tables[table]
    files = ", ".join(sql_literal(p) for p in manifest.files(root.path, table))
    casts = dict(state.columns)
    # union_by_name: an empty partition's file may hold a column as another type than the others' files.
    return (
        f"SELECT {projection([c for c, _ in state.columns], casts)} FROM read_parquet([{files}], union_by_name = true)"
    )


def records_frame(manifest: Manifest, records: RecordTable) -> pd.DataFrame:
    """One row per (table, partition): its record's values, nested ones as JSON text."""
    keys = [name for name, _ in records.columns[2:]]
    rows = [
        (table, partition, *(_cell(slot.record.get(key)) for key in keys))
        for table, state in sorted(manifest.tables.items())
        for partition, slot in sorted(state.partitions.items())
    ]
    return pd.DataFrame(rows, columns=[name for name, _ in records.columns], dtype=object)


def _cell(value):
    return json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else value


def attach_views(
    con: duckdb.DuckDBPyConnection, root: DataRoot, manifest: Manifest, records: RecordTable | None = None
) -> None:
    """Create (or re-point) one view per published table, and the table of the slots' ``records``."""
    for table in sorted(manifest.tables):
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {table.split('.')[0]}")
        con.execute(f"CREATE OR REPLACE VIEW {table} AS {view_sql(root, manifest, table)}")
    if records:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {records.name.split('.')[0]}")
        con.register("slot_records", records_frame(manifest, records))
        select = projection([name for name, _ in records.columns], dict(records.columns))
        con.execute(f"CREATE OR REPLACE TABLE {records.name} AS SELECT {select} FROM slot_records")
        con.unregister("slot_records")


def connect(root: DataRoot, records: RecordTable | None = None) -> tuple[duckdb.DuckDBPyConnection, Manifest]:
    """An in-memory connection whose views show the state published now (fixed for the connection's life)."""
    manifest = root.read_manifest()
    con = duckdb.connect(":memory:")
    try:
        attach_views(con, root, manifest, records)
    except BaseException:
        con.close()
        raise
    return con, manifest


def write_catalog(root: DataRoot, manifest: Manifest, target: Path, records: RecordTable | None = None) -> None:
    """Build the catalog file of ``manifest`` under a temporary name and rename it over ``target``."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Next to the target, not under the data root: a rename only stays atomic within one file system.
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)
    try:
        with duckdb.connect(str(temporary)) as con:
            attach_views(con, root, manifest, records)
            con.execute("CHECKPOINT")
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
        # A write-ahead log left by someone who opened the old catalog read-write does not match the new file
        # (DuckDB then refuses to open it); the catalog is views rebuilt from the manifest, so nothing is lost.
        wal = target.with_name(target.name + ".wal")
        wal.unlink(missing_ok=True)
        os.replace(temporary, target)
        wal.unlink(missing_ok=True)
    finally:
        temporary.unlink(missing_ok=True)
        temporary.with_name(temporary.name + ".wal").unlink(missing_ok=True)
