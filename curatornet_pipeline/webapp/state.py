"""What the app holds in memory: the current serving snapshot (reloaded when a new one is published) and likes.

The app never opens the pipeline's DuckDB file. It reads the snapshot file the serving assets publish,
keeps everything in memory, and checks the file's identity (inode, size, mtime) on each request: a refresh
renames a new file over the old one, so a changed identity means a new snapshot to load.

A new snapshot is loaded and verified (every table read, the model built, one recommendation computed) in a
background thread while requests keep being answered from the previous one; only a snapshot that passed
replaces it. A damaged one is reported (``status``) and the previous one stays; with none to fall back on,
pages answer 503 until a good snapshot is published.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from curatornet_pipeline.core.diversity import cap_per_artist, closest_in_profile
from curatornet_pipeline.core.feedback import LIKES_FILE, LIKES_HEADER, UNLIKES_FILE, read_feedback, standing
from curatornet_pipeline.core.recommend import Recommender
from curatornet_pipeline.core.training import model_from_bytes
from curatornet_pipeline.snapshot import Snapshot, load_snapshot
from curatornet_pipeline.webapp.shop import entry

log = logging.getLogger("curatornet.webapp")


@dataclass
class Served:
    """One loaded snapshot, indexed for the pages."""

    snapshot: Snapshot
    recommender: Recommender
    artworks: pd.DataFrame  # indexed by artwork_id
    entries: dict[str, dict]  # artwork_id -> what a customer reads about it (shop.entry, without the shop link)
    positions: dict[str, int]  # artwork_id -> its row in the catalogue and in snapshot.item_vectors
    available_ids: list[str]
    recommendations: dict[str, pd.DataFrame]
    similar: dict[str, pd.DataFrame]
    histories: dict[str, pd.DataFrame]
    source_folder: Path

    @classmethod
    def load(cls, path: Path) -> "Served":
        """Read and verify the snapshot at ``path``: any damage raises here, before anything is served from it."""
        snapshot = load_snapshot(path)
        catalogue = snapshot.catalogue
        missing = [key for key in ("run_id", "model_id", "created_at", "source_folder") if key not in snapshot.info]
        if missing or catalogue.empty:
            raise ValueError(f"the snapshot lacks {missing or 'a catalogue'}")
        recommender = Recommender(
            model_from_bytes(snapshot.model_weights),
            snapshot.item_vectors,
            catalogue["artwork_id"].tolist(),
            catalogue["available"].to_numpy(bool),
        )
        recommender.recommend([str(catalogue["artwork_id"].iloc[0])], k=1)  # the model and vectors work together
        return cls(
            snapshot=snapshot,
            recommender=recommender,
            artworks=catalogue.set_index("artwork_id", drop=False),
            entries={row["artwork_id"]: entry(row) for row in catalogue.to_dict("records")},
            positions={a: i for i, a in enumerate(catalogue["artwork_id"])},
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

    @property
    def run_id(self) -> str:
        return str(self.snapshot.info["run_id"])

    @property
    def model_version(self) -> str:
        """The version online metrics count views under (a snapshot from before versions: its model id)."""
        return str(self.snapshot.info.get("model_version") or self.snapshot.info["model_id"])


class SnapshotHolder:
    """The snapshot being served; a replaced file is loaded off the request path, one load at a time."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()  # guards the fields below
        self._loading = False
        self._served: Served | None = None
        self._identity: tuple | None = None  # of the file last tried, good or bad
        self.problem: str | None = None  # why the newest published snapshot is not the one served
        self.loaded = threading.Event()  # set after each finished load attempt (tests and benchmarks wait on it)
        self._load(self._file_identity())

    def _file_identity(self) -> tuple | None:
        try:
            stat = os.stat(self.path)
        except OSError:
            return None
        return stat.st_ino, stat.st_size, stat.st_mtime_ns

    def _describe(self, error: BaseException) -> str:
        # No filesystem path in what /healthz shows: the folder is cut from the message.
        text = str(error).splitlines()[0] if str(error) else type(error).__name__
        text = text.replace(str(self.path.parent) + os.sep, "").replace(str(self.path.parent), "<data folder>")
        return f"{type(error).__name__}: {text[:300]}"

    def _load(self, identity: tuple | None) -> None:
        try:
            if identity is None:
                raise FileNotFoundError("no serving snapshot file: run `make run` or `curatornet refresh`")
            served, problem = Served.load(self.path), None
        except Exception as error:  # any damage at all: keep what is served, say why
            served = None
            problem = f"the newest serving snapshot cannot be served ({self._describe(error)})"
            log.warning("%s", problem)
        with self._lock:
            if served is not None:
                self._served = served
            self._identity = identity
            self.problem = problem
            self._loading = False
        self.loaded.set()

    def current(self) -> Served | None:
        """The snapshot to answer from (None when none could ever be loaded); never waits for a load."""
        identity = self._file_identity()
        with self._lock:
            start = identity != self._identity and not self._loading
            if start:
                self._loading = True
                self.loaded.clear()
            served = self._served
        if start:
            threading.Thread(target=self._load, args=(identity,), name="snapshot-reload", daemon=True).start()
        return served


class LikesUnavailable(RuntimeError):
    """A like cannot be recorded durably right now; nothing was recorded."""


@dataclass
class LikeStore:
    """Visitors' likes: appended to ``likes.csv`` in the source folder, mirrored in memory for live recommendations.

    A like is written to the file (flushed and fsynced) before memory changes: a like the visitor was told about
    is on disk, and one that could not be written is nowhere. Lines the app cannot use (hand edits) are set
    aside as the refresh sets them aside (``core.feedback``); a file that cannot be read at all (a folder in
    its place, a bad header) leaves the store ``unreadable``, which stops new likes until it is fixed.
    """

    folder: Path
    likes: dict[str, list[str]] = field(default_factory=dict)
    n_set_aside: int = 0
    unreadable: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._read()

    @property
    def path(self) -> Path:
        return Path(self.folder) / LIKES_FILE

    @property
    def unlikes_path(self) -> Path:
        return Path(self.folder) / UNLIKES_FILE

    def _read(self) -> None:
        likes: dict[str, list[str]] = {}
        readings = []
        for path in (self.path, self.unlikes_path):
            try:
                readings.append(read_feedback(path))
            except OSError as error:
                self.unreadable = f"{path.name} cannot be read ({error.strerror or type(error).__name__})"
                log.warning("%s: likes are not recorded until it is fixed", self.unreadable)
                return
        feedback, unlikes = readings
        rows = standing(feedback.rows, unlikes.rows)
        for visitor_id, artwork_id in zip(rows["visitor_id"], rows["artwork_id"]):
            liked = likes.setdefault(visitor_id, [])
            if artwork_id not in liked:
                liked.append(artwork_id)
        self.likes = likes
        self.n_set_aside = len(feedback.set_aside) + len(unlikes.set_aside)
        bad = [f"{f.path.name}: {f.unreadable}" for f in readings if f.unreadable]
        self.unreadable = "; ".join(bad) or None
        for reading in readings:
            if reading.set_aside:
                log.warning("%s: %d line(s) set aside, e.g. line %d: %s", reading.path.name, len(reading.set_aside),
                            reading.set_aside[0]["line"], reading.set_aside[0]["reason"])

    def of(self, visitor_id: str) -> list[str]:
        return list(self.likes.get(visitor_id, []))

    def _writable(self) -> None:
        if self.unreadable:
            self._read()  # fixed since? then go on without a restart
            if self.unreadable:
                raise LikesUnavailable(self.unreadable)

    def add(self, visitor_id: str, artwork_id: str) -> bool:
        """Record a like (once per visitor and artwork); True when it is new. Raises LikesUnavailable."""
        with self._lock:
            self._writable()
            if artwork_id in self.likes.get(visitor_id, []):
                return False
            self._append(self.path, visitor_id, artwork_id)
            self.likes.setdefault(visitor_id, []).append(artwork_id)
            return True

    def remove(self, visitor_id: str, artwork_id: str) -> bool:
        """Take a like back (a line in unlikes.csv); True when there was one. Raises LikesUnavailable."""
        with self._lock:
            self._writable()
            if artwork_id not in self.likes.get(visitor_id, []):
                return False
            self._append(self.unlikes_path, visitor_id, artwork_id)
            self.likes[visitor_id].remove(artwork_id)
            return True

    def _append(self, path: Path, visitor_id: str, artwork_id: str) -> None:
        # Microseconds: a like, an unlike and a like again within one second must keep their order.
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        try:
            append_line(path, LIKES_HEADER, [visitor_id, artwork_id, stamp])
        except OSError as error:
            reason = error.strerror or type(error).__name__
            log.error("a like could not be written to %s (%s); nothing was recorded", path.name, reason)
            raise LikesUnavailable(f"likes cannot be saved right now ({reason})") from None


def append_line(path: Path, header: tuple[str, ...], fields: list[str]) -> None:
    """Append one CSV line to ``path`` (the header first in a new file), flushed and fsynced; raises OSError.

    A failed write is cut back off, so no half line is left for the next append.
    """
    append_lines(path, header, [fields])


def append_lines(path: Path, header: tuple[str, ...], rows: list[list[str]]) -> None:
    """Append CSV lines to ``path`` in one write and one fsync, as ``append_line``: all of them or none."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    with path.open("a+b") as handle:  # read too: the last byte is checked
        size = os.fstat(handle.fileno()).st_size
        if size == 0:
            writer.writerow(header)
        elif _last_byte(handle.fileno(), size) != b"\n":
            text.write("\n")  # a hand edit left the last line open: never glue a line onto it
        writer.writerows(rows)
        try:
            handle.write(text.getvalue().encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        except OSError:
            _truncate(handle.fileno(), size)
            raise
    if size == 0:
        _fsync_folder(path.parent)  # a new file's name must survive a crash too


def _last_byte(fd: int, size: int) -> bytes:
    return os.pread(fd, 1, size - 1)


def _truncate(fd: int, size: int) -> None:
    try:
        os.ftruncate(fd, size)
    except OSError:
        pass  # a device such as /dev/full has no length to restore


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def profile_of(history: pd.DataFrame | None) -> list[tuple[str, str]]:
    """A served history (``artwork_id, kind``) as (artwork id, "liked"/"bought") pairs, oldest first."""
    if history is None:
        return []
    return [(a, "liked" if kind == "like" else "bought") for a, kind in zip(history["artwork_id"], history["kind"])]


def present(
    frame: pd.DataFrame, served: Served, k: int, cap: int = 0, profile: Sequence[tuple[str, str]] = ()
) -> list[dict]:
    """Ranked rows (``artwork_id, score``) as the list a customer sees: at most ``cap`` works per artist (0: no
    cap), ``k`` at most, each the customer's entry plus artist id, score and, given a ``profile`` of (artwork id,
    "liked"/"bought"), the reason: the profile work it is most similar to."""
    ids = frame["artwork_id"].tolist()
    artists = [str(served.artworks.at[a, "artist_id"]) for a in ids]
    keep = cap_per_artist(artists, cap, k)
    scores = frame["score"].to_numpy(np.float64)
    rows = [
        {**served.entries[ids[i]], "artist_id": artists[i], "score": round(float(scores[i]), 4), "reason": None}
        for i in keep
    ]
    profile = [(a, verb) for a, verb in profile if a in served.positions]
    if rows and profile:
        closest = closest_in_profile(
            served.snapshot.item_vectors,
            np.array([served.positions[r["artwork_id"]] for r in rows], dtype=np.int64),
            np.array([served.positions[a] for a, _ in profile], dtype=np.int64),
        )
        for row, j in zip(rows, closest):
            because, verb = profile[int(j)]
            title = served.entries[because]["title"]
            row["reason"] = {"artwork_id": because, "title": title, "text": f"Because you {verb} {title}"}
    return rows
