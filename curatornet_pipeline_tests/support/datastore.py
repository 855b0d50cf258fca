"""Copies of a materialized data layer, and hand edits of its tables, for tests that change stored data.

The catalog file (``curatornet.duckdb``) holds views over Parquet files under the data root next to it, so
a copy takes the data root with it and rebuilds the catalog for the new place. An edit rewrites a table's
files as a run would publish them, but keeps each partition's lineage record as it was: like bytes changed
behind the pipeline's back, which is what these tests simulate.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from curatornet_pipeline import tables
from curatornet_pipeline.store import session
from curatornet_pipeline.store.data_root import WHOLE
from curatornet_pipeline.store.parquet import arrow_table
from curatornet_pipeline.store.writes import FrameWrite

SCRATCH = "edited_rows"


def copy_database(source: Path, target: Path) -> Path:
    """Copy the catalog ``source`` and its data root to ``target`` (a catalog file path); returns ``target``."""
    source_location, target_location = session.Location.of(source), session.Location.of(target)
    shutil.copytree(source_location.root.path, target_location.root.path, dirs_exist_ok=True)
    session.rebuild_catalog(target_location)  # its views must read the copy's files
    return target


def edit_table(database: Path, table: str, *statements: str, params: list | None = None) -> None:
    """Run SQL ``statements`` (UPDATE/DELETE/INSERT naming ``table``) on ``table`` and publish the result."""
    with session.connect(session.Location.of(database)) as con:
        manifest = session.location_of(con).root.read_manifest()
        state = manifest.tables[table]
        # A plain table, not TEMP: arrow_table reads through a cursor, which does not see temporary tables.
        con.execute(f"CREATE TABLE {SCRATCH} AS SELECT * FROM {table}")
        for statement in statements:
            con.execute(statement.replace(table, SCRATCH), params or [])
        key = tables.BY_NAME[table].partition_column if table in tables.BY_NAME else None
        casts = dict(state.columns)
        if key is None or set(state.partitions) == {WHOLE}:
            frame = arrow_table(con, f"SELECT * FROM {SCRATCH}").to_pandas()
            writes = [FrameWrite(table, frame, casts, WHOLE, state.partitions[WHOLE].record)]
        else:
            values = [r[0] for r in con.execute(f'SELECT DISTINCT "{key}" FROM {SCRATCH}').fetchall()]
            writes = [
                FrameWrite(
                    table,
                    arrow_table(con, f'SELECT * FROM {SCRATCH} WHERE "{key}" = ?', [value]).to_pandas(),
                    casts,
                    str(value),
                    state.partitions[str(value)].record if str(value) in state.partitions else {},
                )
                for value in sorted(set(values) | set(state.partitions))
            ]
        session.publish(con, writes)
