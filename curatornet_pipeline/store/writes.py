"""Writing a group of frames as one publish: every file is staged first, then all become current at once.

If writing any frame fails, the files already staged for the group are deleted and nothing is published,
so the previous state stays whole. The files of a process killed while staging stay under ``.tmp`` until
the next publish removes them (see ``data_root``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from curatornet_pipeline.store.data_root import WHOLE, DataRoot, Manifest, SlotWrite
from curatornet_pipeline.store.parquet import write_frame


@dataclass(frozen=True)
class FrameWrite:
    """One frame for one table: the whole table (partition ``WHOLE``) or one partition of it."""

    table: str
    frame: pd.DataFrame
    casts: Mapping[str, str] = field(default_factory=dict)
    partition: str = WHOLE
    record: Mapping = field(default_factory=dict)


def publish_frames(
    root: DataRoot,
    con: duckdb.DuckDBPyConnection,
    writes: Sequence[FrameWrite],
    annotate: Callable[[Manifest, SlotWrite], Mapping] | None = None,
    after: Callable[[Manifest], None] | None = None,
    describe: Callable[[FrameWrite, Path], Mapping] | None = None,
) -> Manifest:
    """Stage every frame as a Parquet file, then publish them together (see ``DataRoot.publish``).

    ``describe(write, staged_file)`` adds to a write's record what is read off its staged file (a fingerprint).
    """
    staged: list[SlotWrite] = []
    try:
        for write in writes:
            temporary = root.temporary_file()
            staged.append(SlotWrite(write.table, write.partition, temporary, (), write.record))
            columns = write_frame(con, write.frame, write.casts, temporary)
            record = {**write.record, **(describe(write, temporary) if describe else {})}
            staged[-1] = SlotWrite(
                write.table, write.partition, temporary, columns, record, replaces_all=write.partition == WHOLE
            )
        return root.publish(staged, annotate=annotate, after=after)
    except BaseException:
        for slot in staged:
            slot.temporary.unlink(missing_ok=True)
        raise
