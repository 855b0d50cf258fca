"""Opening the pipeline's tables for reading, and recognising files that are not whole.

The tables live in the Parquet data layer (``store``) under the data root next to the catalog file
(``curatornet.duckdb``). A reader (``curatornet metrics``, ``curatornet recommend``, ``doctor``) opens them
through the data layer's manifest, not through the catalog file: it never waits for a run, and a damaged or
missing catalog does not stop it (``doctor`` and every run rebuild the catalog). A damaged Parquet file is
found when a query reads it; :func:`damaged_files` reads every file of every table, naming table and file.

A catalog file without a data root next to it (a file of an older release, or any DuckDB file) is opened as
a plain DuckDB file. DuckDB lets one process write a file and refuses every other process while it does, so a reader
(``curatornet metrics``, ``curatornet recommend``) that starts during a run retries with backoff for a
bounded time (``CURATORNET_LOCK_WAIT_SECONDS``, default 30) instead of failing on the first try.

A DuckDB file that lost its tail (a full disk, an interrupted copy) still opens, and even answers queries
whose blocks lie in the surviving half; it fails only when a query reaches a missing block. The file's
header records how many blocks it holds, so comparing that with the file's size finds the damage on open.
Bytes overwritten inside the file (a bad disk sector, a copy that raced a writer) keep its size: DuckDB
notices only when it reads the block and its checksum does not match, so :func:`damaged_tables` reads
every row of every table.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import duckdb

from curatornet_pipeline import settings
from curatornet_pipeline.store import session
from curatornet_pipeline.store.data_root import ManifestError
from curatornet_pipeline.store.parquet import sql_literal

LOCK_WAIT_ENV = "CURATORNET_LOCK_WAIT_SECONDS"
DEFAULT_LOCK_WAIT_SECONDS = 30.0
_LOCK_HOLDER_PID = re.compile(r"\(PID (\d+)\)")


class DatabaseFileError(RuntimeError):
    """The DuckDB file is missing, is not a DuckDB file, or is damaged; the message says how to recover."""


class DatabaseDamagedError(DatabaseFileError):
    """Blocks of the DuckDB file are missing or do not match their checksums."""


class DatabaseBusyError(RuntimeError):
    """Another process kept the DuckDB file locked for longer than the reader waits."""


def lock_wait_seconds() -> float:
    raw = os.environ.get(LOCK_WAIT_ENV)
    if raw is None:
        return DEFAULT_LOCK_WAIT_SECONDS
    try:
        return max(0.0, float(raw))
    except ValueError:
        raise DatabaseFileError(f"{LOCK_WAIT_ENV}={raw!r} is not a number of seconds") from None


def is_lock_conflict(error: BaseException) -> bool:
    return isinstance(error, duckdb.IOException) and mentions_lock_conflict(str(error))


def _recovery_hint(path: Path) -> str:
    return (
        f"move it aside (mv {path} {path}.broken) and run `curatornet materialize` (or `make run`) "
        "to rebuild it from the source data"
    )


def location(path: Path) -> session.Location:
    """The catalog file ``path`` and its data root (CURATORNET_DATA_ROOT for the configured catalog file)."""
    path = Path(path).resolve()
    configured = settings.duckdb_path()
    return session.Location.of(path, settings.data_root() if path == configured else None)


def has_data_root(path: Path) -> bool:
    return location(path).root.manifest_path.exists()


def _first_line(error: BaseException | str) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def check_whole(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Raise DatabaseFileError when the file is shorter than the blocks in use that its header lists."""
    name = con.execute("SELECT current_database()").fetchone()[0]
    row = con.execute(
        "SELECT block_size, used_blocks FROM pragma_database_size() WHERE database_name = ?", [name]
    ).fetchone()
    if row is None:
        return
    # Only blocks in use must be in the file: DuckDB may cut free blocks off its end, so total_blocks (used +
    # free) can exceed a whole file's size. N used blocks need at least N blocks of file whatever their order.
    block_size, used_blocks = int(row[0]), int(row[1])
    expected = block_size * used_blocks
    actual = path.stat().st_size
    if actual < expected:
        raise DatabaseDamagedError(
            f"{path} is damaged: it holds {actual} bytes but its header lists {used_blocks} blocks in use "
            f"({expected} bytes), so it was cut short; {_recovery_hint(path)}"
        )


def connect_for_reading(path: Path, wait_seconds: float | None = None) -> duckdb.DuckDBPyConnection:
    """A read-only connection to a whole DuckDB file, waiting up to ``wait_seconds`` for a writer to finish.

    Raises DatabaseFileError (missing, not DuckDB, damaged) or DatabaseBusyError (still locked after the wait).
    """
    path = Path(path)
    if has_data_root(path):
        try:
            return session.connect(location(path), rebuild_missing_catalog=False)
        except ManifestError as error:
            raise DatabaseDamagedError(str(error)) from error
    if not path.exists():
        raise DatabaseFileError(f"no DuckDB file at {path}: run `make run` (or `curatornet materialize`) first")
    wait = lock_wait_seconds() if wait_seconds is None else wait_seconds
    deadline = time.monotonic() + wait
    delay = 0.05
    while True:
        try:
            con = duckdb.connect(str(path), read_only=True)
            break
        except duckdb.Error as error:  # IOException for a foreign file, a plain Error for a bad checksum
            if is_damage(error):
                raise damage_error(path, error) from error
            if not is_lock_conflict(error):
                raise DatabaseFileError(
                    f"{path} cannot be opened as a DuckDB database ({_first_line(error)}); {_recovery_hint(path)}"
                ) from error
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                holder = _LOCK_HOLDER_PID.search(str(error))
                who = f"process {holder.group(1)}" if holder else "another process"
                raise DatabaseBusyError(
                    f"{path} is locked by {who} that is writing it (a run in progress?); waited {wait:g} s: "
                    f"try again when it finishes, or wait longer with {LOCK_WAIT_ENV}=120"
                ) from error
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, 1.0)
    try:
        check_whole(con, path)
    except BaseException:
        con.close()
        raise
    return con


def check_database_file(path: Path, wait_seconds: float = 0.0) -> bool:
    """Raise DatabaseFileError if the tables exist but are not whole, reading every table; repair the catalog.

    A catalog file that is missing or cannot be opened is rebuilt from the data layer first (it holds views
    only). Returns False when a plain DuckDB file could not be checked because a writer holds it (a live run),
    True when it was checked or does not exist.
    """
    path = Path(path)
    if has_data_root(path):
        repair_catalog(path)
        damage = find_damage(path)
        if damage:
            raise damage
        return True
    if not path.exists():
        return True
    try:
        con = connect_for_reading(path, wait_seconds)
    except DatabaseBusyError:
        return False
    with con:
        damaged = damaged_tables(con)
    if damaged:
        table, error = damaged[0]
        raise damage_error(path, error, table)
    return True


def damaged_files(path: Path) -> list[tuple[str, Path, duckdb.Error]]:
    """(table, file, error) for every current Parquet file of the data layer that cannot be read to its last row.

    Any error reading a file the pipeline wrote and published whole means the file was damaged since: a cut
    file fails on its footer, overwritten pages fail to decode (often with a message that names no file).
    """
    root = location(path).root
    try:
        manifest = root.read_manifest()
    except ManifestError as error:
        raise DatabaseDamagedError(str(error)) from error
    damaged = []
    with duckdb.connect() as con:
        for table in sorted(manifest.tables):
            for file in manifest.files(root.path, table):
                read = f"SELECT count(*), bit_xor(hash(t)) FROM read_parquet({sql_literal(file)}) AS t"
                try:
                    con.execute(read).fetchall()
                except duckdb.Error as error:
                    damaged.append((table, file, error))
    return damaged


def find_damage(path: Path) -> DatabaseDamagedError | None:
    """The sentence for the first damaged file of the data layer at ``path`` (None: every file reads whole).

    Commands call this when a query failed in a way they do not recognise, to tell damage from a bug.
    """
    if not has_data_root(path):
        return None
    damaged = damaged_files(path)
    if not damaged:
        return None
    table, file, error = damaged[0]
    return damage_error(path, error, table, file)


def repair_catalog(path: Path) -> str | None:
    """Rebuild the catalog file of a data layer when it is missing or cannot be opened; says what was done."""
    where = location(path)
    problem = None
    if not where.catalog.exists():
        problem = "was missing"
    else:
        try:
            with duckdb.connect(str(where.catalog), read_only=True) as con:
                views = con.execute("SELECT sql FROM duckdb_views() WHERE NOT internal").fetchall()
                check_whole(con, where.catalog)
        except (duckdb.Error, DatabaseFileError) as error:
            problem = f"could not be opened ({_first_line(error)})"
        else:
            # A copied data folder brings a catalog whose views still read the files of the original.
            if any(str(where.root.path) not in sql for (sql,) in views):
                problem = "pointed at another data root (a copied folder?)"
    if problem is None:
        return None
    try:
        session.rebuild_catalog(where)
    except ManifestError as error:
        raise DatabaseDamagedError(str(error)) from error
    return f"the catalog file {where.catalog} {problem}: rebuilt it from the tables under {where.root.path}"


def damaged_tables(con: duckdb.DuckDBPyConnection) -> list[tuple[str, duckdb.Error]]:
    """(table, error) for every table of a plain DuckDB file that cannot be read to its last row.

    Hashing each whole row makes DuckDB read every column's blocks (and verify their checksums) without
    bringing any row into Python, so this runs at scan speed in bounded memory.
    """
    names = con.execute(
        "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = current_database() ORDER BY 1, 2"
    ).fetchall()
    damaged = []
    for schema, table in names:
        try:
            con.execute(f'SELECT count(*), bit_xor(hash(t)) FROM "{schema}"."{table}" AS t').fetchall()
        except duckdb.Error as error:
            if not is_damage(error):
                raise
            damaged.append((f"{schema}.{table}", error))
    return damaged


# What DuckDB says when a block is missing (a file cut short) or its bytes changed (checksum mismatch).
_DAMAGE_MARKERS = ("Could not read enough bytes", "Corrupt database file", "does not match stored checksum")
# ... and when a Parquet file of the data layer is cut short, overwritten or gone.
_PARQUET_DAMAGE_MARKERS = (
    "No magic bytes found",
    "too small to be a Parquet file",
    "decompression failure",
    "Failed to read file",
    "No files found that match",
    "Corrupt",
)


def mentions_damage(text: str) -> bool:
    """Whether an error message (e.g. of a failed run's step) says a stored file is missing, cut or corrupt."""
    if any(marker in text for marker in _DAMAGE_MARKERS):
        return True
    return ".parquet" in text and any(marker in text for marker in _PARQUET_DAMAGE_MARKERS)


def is_damage(error: BaseException) -> bool:
    """Whether a DuckDB error raised while reading means a stored file is missing, cut or corrupt."""
    return isinstance(error, duckdb.Error) and mentions_damage(str(error))


def mentions_lock_conflict(text: str) -> bool:
    return "Could not set lock" in text


def damage_error(
    path: Path, error: BaseException | str, table: str | None = None, file: Path | None = None
) -> DatabaseDamagedError:
    """The one-sentence message for damaged data, naming the table (and file) when known, with the recovery."""
    what = f"table {table} cannot be read" if table else "a block cannot be read"
    if file is not None or ".parquet" in str(error):
        root = location(path).root.path
        where = f"its file {file} is damaged: " if file is not None else ""
        return DatabaseDamagedError(
            f"the tables of {path} are damaged: {what} ({where}{_first_line(error)}); {_recovery_hint(root)}"
        )
    return DatabaseDamagedError(f"{path} is damaged: {what} ({_first_line(error)}); {_recovery_hint(path)}")
