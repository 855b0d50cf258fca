"""The read-only serving snapshot: what the visitor app reads, published atomically beside the DuckDB file.

DuckDB admits one writer per file, and a pipeline run holds the pipeline's file for minutes. The app must
never wait for it or block it, so the serving assets copy the served tables into a separate DuckDB file,
written under a temporary name and renamed over the old one (``os.replace`` is atomic on one file system).
A reader either sees the previous snapshot or the new one, never a half-written file; it loads everything
into memory and closes the file at once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from curatornet_pipeline import tables

SNAPSHOT_NAME = "serving_snapshot.duckdb"
# serving table -> the SELECT that fills the snapshot table of the same name.
SNAPSHOT_TABLES = {
    "catalogue": f"SELECT * FROM {tables.SERVING_CATALOGUE} ORDER BY artwork_idx",
    "interactions": f"SELECT * FROM {tables.SERVED_INTERACTIONS} ORDER BY user_id, timestamp, kind",
    "item_vectors": f"SELECT artwork_id, vector FROM {tables.SERVING_ITEM_VECTORS} ORDER BY artwork_id",
    "model": f"SELECT * FROM {tables.SERVING_MODEL}",
    "user_recommendations": f"SELECT * FROM {tables.USER_RECOMMENDATIONS} ORDER BY user_id, rank",
    "similar_artworks": f"SELECT * FROM {tables.SIMILAR_ARTWORKS} ORDER BY artwork_id, rank",
}


def snapshot_path(database: Path | str) -> Path:
    """Where the snapshot of a pipeline DuckDB file lives: next to it."""
    return Path(database).resolve().with_name(SNAPSHOT_NAME)


def publish_snapshot(con: duckdb.DuckDBPyConnection, target: Path, info: dict) -> None:
    """Copy the served tables from ``con`` into a new file and rename it over ``target``."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    for leftover in (temporary, temporary.with_name(temporary.name + ".wal")):
        leftover.unlink(missing_ok=True)
    con.execute(f"ATTACH '{_sql_path(temporary)}' AS snapshot_out")
    try:
        for table, select in SNAPSHOT_TABLES.items():
            con.execute(f"CREATE TABLE snapshot_out.{table} AS {select}")
        con.register("snapshot_info_frame", pd.DataFrame([info]))
        con.execute("CREATE TABLE snapshot_out.info AS SELECT * FROM snapshot_info_frame")
        con.unregister("snapshot_info_frame")
        con.execute("CHECKPOINT snapshot_out")
    finally:
        con.execute("DETACH snapshot_out")
    os.replace(temporary, target)


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


@dataclass
class Snapshot:
    """The served tables in memory (see SNAPSHOT_TABLES) plus the snapshot's info row."""

    path: Path
    info: dict
    catalogue: pd.DataFrame
    interactions: pd.DataFrame
    item_vectors: np.ndarray  # [N, D] in catalogue order
    model_weights: bytes
    user_recommendations: pd.DataFrame
    similar_artworks: pd.DataFrame


def load_snapshot(path: Path) -> Snapshot:
    """Read the whole snapshot into memory and close the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no serving snapshot at {path}: run `make run` (or `curatornet refresh` after a run) first"
        )
    with duckdb.connect(str(path), read_only=True) as con:
        frames = {table: con.execute(f"SELECT * FROM {table}").df() for table in SNAPSHOT_TABLES if table != "model"}
        model = con.execute("SELECT weights FROM model").fetchone()
        info = con.execute("SELECT * FROM info").df().iloc[0].to_dict()
    catalogue = frames["catalogue"]
    vectors = frames["item_vectors"].set_index("artwork_id")["vector"]
    item_vectors = np.stack(vectors.loc[catalogue["artwork_id"]].to_numpy()).astype(np.float32)
    return Snapshot(
        path,
        info,
        catalogue,
        frames["interactions"],
        item_vectors,
        bytes(model[0]),
        frames["user_recommendations"],
        frames["similar_artworks"],
    )
