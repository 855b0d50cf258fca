"""Overwrite the blocks of chosen tables inside a DuckDB file, as a bad disk sector or a racing copy would."""

from __future__ import annotations

import random
from pathlib import Path

import duckdb

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
