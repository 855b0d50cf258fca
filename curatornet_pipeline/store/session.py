"""The pipeline's connection to the data layer: an in-memory DuckDB whose ``schema.table`` names are views.

:func:`connect` opens it over the state published now (the manifest under the data root) and remembers,
in DuckDB variables, where the data root and the catalog file are, so ``storage.replace_tables(con, ...)``
can publish through the same connection and re-point its views. Every publish also rebuilds the catalog file
(``curatornet.duckdb``, what users open) under the data root's lock, so catalog and manifest change in the
same order; a missing catalog is rebuilt when a connection opens, a damaged one by :func:`rebuild_catalog`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from curatornet_pipeline import tables
from curatornet_pipeline.store import catalog
from curatornet_pipeline.store.data_root import DataRoot, Manifest, SlotWrite
from curatornet_pipeline.store.writes import FrameWrite, publish_frames

_ROOT_VARIABLE = "curatornet_data_root"
_CATALOG_VARIABLE = "curatornet_catalog"
LINEAGE_RECORDS = catalog.RecordTable(
    tables.TABLE_LINEAGE.name, tuple((c.name, c.type) for c in tables.TABLE_LINEAGE.columns)
)


@dataclass(frozen=True)
class Location:
    """Where the pipeline's data lives: the catalog file users open, and the data root holding the tables."""

    catalog: Path
    root: DataRoot

    @classmethod
    def of(cls, catalog_file: Path | str, data_root: Path | str | None = None) -> Location:
        """The default data root is ``tables/`` next to the catalog file."""
        catalog_file = Path(catalog_file).resolve()
        return cls(catalog_file, DataRoot(data_root or catalog_file.with_name("tables")))


def connect(location: Location, rebuild_missing_catalog: bool = True) -> duckdb.DuckDBPyConnection:
    """An in-memory connection over the tables published now; ``storage`` writes publish through it.

    Readers pass ``rebuild_missing_catalog=False``: they write nothing, not even the catalog.
    """
    location.root.path.mkdir(parents=True, exist_ok=True)
    manifest = location.root.read_manifest()
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"SET VARIABLE {_ROOT_VARIABLE} = ?", [str(location.root.path)])
        con.execute(f"SET VARIABLE {_CATALOG_VARIABLE} = ?", [str(location.catalog)])
        catalog.attach_views(con, location.root, manifest, LINEAGE_RECORDS)
    except BaseException:
        con.close()
        raise
    if rebuild_missing_catalog and not location.catalog.exists():
        rebuild_catalog(location)
    return con


def location_of(con: duckdb.DuckDBPyConnection) -> Location:
    # fetchall, not fetchone: DuckDB refuses the next register() while a result is not read to its end.
    (found,) = con.execute(f"SELECT getvariable('{_ROOT_VARIABLE}'), getvariable('{_CATALOG_VARIABLE}')").fetchall()
    if found[0] is None:
        raise RuntimeError("this DuckDB connection is not a data-layer connection: open it with store.session.connect")
    return Location(Path(found[1]), DataRoot(found[0]))


def _write_catalog(location: Location) -> Callable[[Manifest], None]:
    return lambda manifest: catalog.write_catalog(location.root, manifest, location.catalog, LINEAGE_RECORDS)


def publish(
    con: duckdb.DuckDBPyConnection,
    writes: Sequence[FrameWrite],
    annotate: Callable[[Manifest, SlotWrite], Mapping] | None = None,
    describe: Callable[[FrameWrite, Path], Mapping] | None = None,
) -> Manifest:
    """Publish ``writes`` together, rebuild the catalog, and re-point ``con``'s views at the new state."""
    location = location_of(con)
    manifest = publish_frames(
        location.root, con, writes, annotate=annotate, after=_write_catalog(location), describe=describe
    )
    catalog.attach_views(con, location.root, manifest, LINEAGE_RECORDS)
    return manifest


def rebuild_catalog(location: Location) -> Manifest:
    """Write the catalog file afresh from the published state (a missing or damaged catalog)."""
    with location.root.locked():
        manifest = location.root.read_manifest()
        _write_catalog(location)(manifest)
    return manifest
