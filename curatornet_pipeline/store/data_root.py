"""The data root: Parquet files written once under unique names, and a manifest that says which are current.

Layout under the root::

    manifest.json            the current state: table -> partition -> file and record (+ the table's previous files)
    files/<table>/<id>.parquet   immutable data files; a file is written by one step and never rewritten
    .tmp/<host>-<pid>-<id>.parquet   files being written; nothing reads them
    .lock                    taken (fcntl) only while the manifest is replaced

A step writes its Parquet files under ``.tmp`` (the slow part, in parallel with other steps), then
:meth:`DataRoot.publish` takes the lock, moves the files into ``files/``, writes the new manifest to a
temporary file, fsyncs it and renames it over ``manifest.json``. The rename is the commit: every table and
partition of one write becomes visible at once, and a reader that loaded the manifest before it keeps a
consistent earlier state. The lock is held for milliseconds and the OS drops it when its holder dies, so a
killed step never blocks the next one; what a killed step leaves is only unreferenced files, which the
next publish deletes.

Each table keeps the files of its previous version too, so a reader still querying the state before the
table's latest write does not lose its files; anything older is deleted.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

MANIFEST = "manifest.json"
FILES = "files"
TEMPORARY = ".tmp"
LOCK = ".lock"
WHOLE = ""  # the partition key of a table written whole
# A temporary file of another host (a cluster on a shared file system) counts as abandoned after this long.
FOREIGN_TEMP_AGE_SECONDS = 24 * 3600


class ManifestError(RuntimeError):
    """manifest.json cannot be read; the message names the file and how to recover."""


@dataclass(frozen=True)
class SlotWrite:
    """One new file for one table (whole, or one partition of it), ready to publish.

    ``columns`` are (name, DuckDB type) pairs as written; ``record`` is kept with the slot (the lineage);
    ``replaces_all`` drops the table's other partitions (a whole-table write).
    """

    table: str
    partition: str
    temporary: Path
    columns: tuple[tuple[str, str], ...]
    record: Mapping = field(default_factory=dict)
    replaces_all: bool = False


@dataclass(frozen=True)
class Slot:
    file: str  # relative to the data root
    record: Mapping


@dataclass(frozen=True)
class TableState:
    columns: tuple[tuple[str, str], ...]
    partitions: Mapping[str, Slot]
    previous: tuple[str, ...] = ()  # the files of the table's version before the current one

    @property
    def current_files(self) -> tuple[str, ...]:
        return tuple(self.partitions[p].file for p in sorted(self.partitions))


@dataclass(frozen=True)
class Manifest:
    version: int
    tables: Mapping[str, TableState]

    def files(self, root: Path, table: str) -> list[Path]:
        """The current files of ``table``, one per partition, in partition order."""
        return [root / name for name in self.tables[table].current_files]

    def referenced(self) -> set[str]:
        return {name for state in self.tables.values() for name in (*state.current_files, *state.previous)}

    def to_json(self) -> dict:
        return {
            "version": self.version,
            "tables": {
                name: {
                    "columns": [list(c) for c in state.columns],
                    "partitions": {
                        key: {"file": slot.file, "record": dict(slot.record)}
                        for key, slot in sorted(state.partitions.items())
                    },
                    "previous": list(state.previous),
                }
                for name, state in sorted(self.tables.items())
            },
        }

    @classmethod
    def from_json(cls, data: Mapping) -> Manifest:
        return cls(
            int(data["version"]),
            {
                name: TableState(
                    tuple((str(c), str(t)) for c, t in state["columns"]),
                    {
                        key: Slot(str(slot["file"]), dict(slot.get("record") or {}))
                        for key, slot in state["partitions"].items()
                    },
                    tuple(str(name) for name in state.get("previous", ())),
                )
                for name, state in data["tables"].items()
            },
        )


EMPTY = Manifest(0, {})


class DataRoot:
    """One data root folder (see the module docstring)."""

    def __init__(self, path: Path | str):
        self.path = Path(path).resolve()

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    def read_manifest(self) -> Manifest:
        """The published state ({} before the first publish)."""
        try:
            text = self.manifest_path.read_text()
        except FileNotFoundError:
            return EMPTY
        try:
            return Manifest.from_json(json.loads(text))
        except (ValueError, KeyError, TypeError) as error:
            raise ManifestError(
                f"{self.manifest_path} is damaged ({error}): it lists which Parquet file holds each table, so the "
                "tables cannot be found; move it aside and rerun `curatornet materialize` to rebuild them"
            ) from error

    def temporary_file(self, suffix: str = ".parquet") -> Path:
        """A fresh name under .tmp for a file this process is about to write."""
        folder = self.path / TEMPORARY
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex}{suffix}"

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the data root's lock: an fcntl lock, released by the OS if this process dies."""
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / LOCK, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def publish(
        self,
        writes: Sequence[SlotWrite],
        annotate: Callable[[Manifest, SlotWrite], Mapping] | None = None,
        after: Callable[[Manifest], None] | None = None,
    ) -> Manifest:
        """Make ``writes`` current together, in one rename of the manifest; returns the new manifest.

        ``annotate(current, write)`` adds to a write's record what depends on the state at the moment of
        publishing (the inputs' fingerprints, for the lineage); ``after(new)`` runs still under the lock (the
        catalog file is rebuilt there, so catalog and manifest change in the same order).
        """
        with self.locked():
            current = self.read_manifest()
            tables = dict(current.tables)
            # A table written by this publish keeps the files it had before it, for readers of that state.
            previous = {w.table: current.tables[w.table].current_files for w in writes if w.table in current.tables}
            for write in writes:
                record = {**write.record, **(annotate(current, write) if annotate else {})}
                relative = f"{FILES}/{write.table}/{write.temporary.stem}.parquet"
                (self.path / relative).parent.mkdir(parents=True, exist_ok=True)
                os.replace(write.temporary, self.path / relative)
                old = tables.get(write.table)
                partitions = dict(old.partitions) if old and not write.replaces_all else {}
                partitions[write.partition] = Slot(relative, record)
                tables[write.table] = TableState(write.columns, partitions, previous.get(write.table, ()))
            new = Manifest(current.version + 1, tables)
            self._replace_manifest(new)
            _fsync_folder(self.path / FILES)
            if after:
                after(new)
            self.clean(new)
        return new

    def _replace_manifest(self, manifest: Manifest) -> None:
        temporary = self.temporary_file(".json")
        with open(temporary, "w") as handle:
            json.dump(manifest.to_json(), handle, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.manifest_path)
        _fsync_folder(self.path)

    def clean(self, manifest: Manifest) -> list[Path]:
        """Delete data files ``manifest`` does not refer to and abandoned temporary files; returns them.

        Called under the lock: files move into files/ only under it, so an unreferenced one there is garbage.
        """
        removed = []
        referenced = manifest.referenced()
        files = self.path / FILES
        for path in sorted(files.glob("*/*.parquet")) if files.is_dir() else []:
            if path.relative_to(self.path).as_posix() not in referenced:
                path.unlink(missing_ok=True)
                removed.append(path)
        temporary = self.path / TEMPORARY
        for path in sorted(temporary.iterdir()) if temporary.is_dir() else []:
            if _abandoned(path):
                path.unlink(missing_ok=True)
                removed.append(path)
        return removed


def _abandoned(path: Path) -> bool:
    """A temporary file whose writer is gone: a dead process of this host, or an old file of another host."""
    parts = path.name.split("-")
    if len(parts) < 3:
        return True
    host, pid = "-".join(parts[:-2]), parts[-2]
    if host != socket.gethostname():
        try:
            return time.time() - path.stat().st_mtime > FOREIGN_TEMP_AGE_SECONDS
        except FileNotFoundError:
            return False
    if not pid.isdigit():
        return True
    return not _process_alive(int(pid))


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync_folder(folder: Path) -> None:
    """Persist renames in ``folder`` (a rename is durable only once its directory is synced)."""
    if not folder.is_dir():
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
