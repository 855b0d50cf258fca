"""Damage stored files as a bad disk sector, a racing copy or a full disk would: the data layer's Parquet files,
or the blocks of chosen tables inside a DuckDB file."""

from __future__ import annotations

import random
from pathlib import Path

import duckdb

from curatornet_pipeline.store import session

# DuckDB files start with a main header and two database headers of 4 KiB each; block N follows them.
_HEADERS_BYTES = 3 * 4096
DAMAGE_BYTES = 64 * 1024


def overwrite_blocks_of(database: Path, tables: list[str], seed: int = 0) -> list[int]:
    """Write 64 KiB of seeded random bytes at the start of every block that holds rows of ``tables``.

    The file keeps its size and opens as before; reading those rows fails the block's checksum.
    Returns the block ids overwritten.
    """
    with duckdb.connect(str(database), read_only=True) as con:
        block_size = con.execute("SELECT block_size FROM pragma_database_size()").fetchone()[0]
        blocks = sorted(
            {
                int(block)
                for table in tables
                for (block,) in con.execute(
                    f"SELECT DISTINCT block_id FROM pragma_storage_info('{table}') WHERE block_id >= 0"
                ).fetchall()
            }
        )
    rng = random.Random(seed)
    with Path(database).open("r+b") as handle:
        for block in blocks:
            handle.seek(_HEADERS_BYTES + block * block_size)
            handle.write(rng.randbytes(min(DAMAGE_BYTES, block_size)))
    return blocks


# --- the Parquet data layer -------------------------------------------------------------------------------


def table_files(database: Path, table: str) -> list[Path]:
    """The current Parquet files of ``table`` in the data layer next to the catalog file ``database``."""
    root = session.Location.of(database).root
    return root.read_manifest().files(root.path, table)


def overwrite_table_files(database: Path, tables: list[str], seed: int = 0) -> list[Path]:
    """Overwrite the data pages of every current file of ``tables`` with seeded random bytes, keeping each size.

    The footer (the file's schema and page index) stays, so the file opens; reading its rows fails.
    """
    rng = random.Random(seed)
    damaged = []
    for table in tables:
        for file in table_files(database, table):
            size = file.stat().st_size
            footer = int.from_bytes(file.read_bytes()[-8:-4], "little") + 8  # metadata length + length + magic
            with file.open("r+b") as handle:
                handle.seek(4)  # after the leading magic bytes
                handle.write(rng.randbytes(min(DAMAGE_BYTES, size - footer - 4)))
            damaged.append(file)
    return damaged


def cut_table_file(database: Path, table: str) -> Path:
    """Cut the first current file of ``table`` to half its size, as a full disk or an interrupted copy would."""
    file = table_files(database, table)[0]
    with file.open("r+b") as handle:
        handle.truncate(file.stat().st_size // 2)
    return file
