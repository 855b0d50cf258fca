"""What the app holds in memory: the current serving snapshot (reloaded when a new one is published) and likes.

The app never opens the pipeline's DuckDB file. It reads the snapshot file the serving assets publish,
keeps everything in memory, and checks the file's identity (inode, size, mtime) on each request: a refresh
renames a new file over the old one, so a changed identity means a new snapshot to load.
"""

from __future__ import annotations

import csv
import os
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from curatornet_pipeline.core.ingest import LIKES_FILE
from curatornet_pipeline.core.recommend import Recommender
from curatornet_pipeline.core.training import model_from_bytes
from curatornet_pipeline.snapshot import Snapshot, load_snapshot


@dataclass
class Served:
    """One loaded snapshot, indexed for the pages."""

    snapshot: Snapshot
    recommender: Recommender
    artworks: pd.DataFrame  # indexed by artwork_id
    available_ids: list[str]
    recommendations: dict[str, pd.DataFrame]
    similar: dict[str, pd.DataFrame]
    histories: dict[str, pd.DataFrame]
    source_folder: Path

    @classmethod
    def load(cls, path: Path) -> "Served":
        snapshot = load_snapshot(path)
        catalogue = snapshot.catalogue
        recommender = Recommender(
            model_from_bytes(snapshot.model_weights),
            snapshot.item_vectors,
            catalogue["artwork_id"].tolist(),
            catalogue["available"].to_numpy(bool),
        )
        return cls(
            snapshot=snapshot,
            recommender=recommender,
            artworks=catalogue.set_index("artwork_id", drop=False),
            available_ids=catalogue.loc[catalogue["available"], "artwork_id"].tolist(),
            recommendations=dict(tuple(snapshot.user_recommendations.groupby("user_id", sort=False))),
            # Keyed by the artwork a page shows; rows name the similar artwork as artwork_id, like recommendations.
            similar={
                source: rows.drop(columns=["artwork_id"]).rename(columns={"similar_artwork_id": "artwork_id"})
                for source, rows in snapshot.similar_artworks.groupby("artwork_id", sort=False)
            },
            histories=dict(tuple(snapshot.interactions.groupby("user_id", sort=False))),
            source_folder=Path(str(snapshot.info["source_folder"])),
        )


class SnapshotHolder:
    """The current snapshot; reloads it when the file on disk is replaced."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._identity: tuple | None = None
        self._served: Served | None = None

    def _file_identity(self) -> tuple:
        stat = os.stat(self.path)
        return stat.st_ino, stat.st_size, stat.st_mtime_ns

    def current(self) -> Served:
        identity = self._file_identity()
        if identity != self._identity:
            with self._lock:
                if identity != self._identity:
                    self._served = Served.load(self.path)
                    self._identity = identity
        assert self._served is not None
        return self._served


@dataclass
class LikeStore:
    """Visitors' likes: appended to ``likes.csv`` in the source folder, mirrored in memory for live recommendations."""

    folder: Path
    likes: dict[str, list[str]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        path = self.path
        if path.is_file():
            with path.open(newline="", encoding="utf-8") as handle:
                for row in csv.DictReader(handle):
                    self._remember(row["visitor_id"], row["artwork_id"])

    @property
    def path(self) -> Path:
        return Path(self.folder) / LIKES_FILE

    def _remember(self, visitor_id: str, artwork_id: str) -> bool:
        liked = self.likes.setdefault(visitor_id, [])
        if artwork_id in liked:
            return False
        liked.append(artwork_id)
        return True

    def of(self, visitor_id: str) -> list[str]:
        return list(self.likes.get(visitor_id, []))

    def add(self, visitor_id: str, artwork_id: str) -> bool:
        """Record a like (once per visitor and artwork); True when it is new."""
        with self._lock:
            if not self._remember(visitor_id, artwork_id):
                return False
            new_file = not self.path.is_file()
            with self.path.open("a", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                if new_file:
                    writer.writerow(["visitor_id", "artwork_id", "timestamp"])
                stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
                writer.writerow([visitor_id, artwork_id, stamp])
                handle.flush()
                os.fsync(handle.fileno())
            return True


def scores_to_list(frame: pd.DataFrame, artworks: pd.DataFrame) -> list[dict]:
    """Recommendation rows as plain dicts for templates and JSON."""
    return [
        {"artwork_id": a, "artist_id": str(artworks.at[a, "artist_id"]), "score": round(float(s), 4)}
        for a, s in zip(frame["artwork_id"], frame["score"].astype(np.float64))
    ]
