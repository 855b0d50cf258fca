"""Which run wrote each table, from which inputs, and whether the tables a reader uses belong together.

A run that fails half-way leaves the steps it finished rewritten and the rest as the previous run left
them: new ingest tables next to old embeddings, models and metrics. Each step's write is atomic, so no
table is half-written, but the *set* is mixed. This module makes that visible instead of silently served:

* Every write through ``storage.replace_tables`` / ``replace_partitions`` records, in the same
  publish (the manifest of the data layer, see ``store``), one record per (table, partition): the Dagster
  run id, the time, a fingerprint of the rows written, and the fingerprints that the table's inputs
  (``TABLE_INPUTS``) had at that moment, i.e. the inputs it was computed from. Every connection shows the
  records as the table ``meta.table_lineage``.
* Readers (``curatornet metrics``, ``curatornet recommend``, the evaluation step) call
  :func:`require_consistent` with the tables they read. It walks the inputs upstream and refuses, in one
  sentence, when some table was computed from a version of an input that is no longer the stored one.

Fingerprints hash the rows, not the run, so rerunning a step on unchanged data does not make anything
downstream stale. Fingerprints are only ever compared with other recorded fingerprints.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from curatornet_pipeline import tables
from curatornet_pipeline.store.data_root import Manifest, SlotWrite
from curatornet_pipeline.store.parquet import sql_literal
from curatornet_pipeline.store.writes import FrameWrite

LINEAGE_TABLE = tables.TABLE_LINEAGE.name
UNPARTITIONED = ""


def _inputs_map() -> dict[str, tuple[str, ...]]:
    """table (or "table/partition", which overrides the table's entry for one partition) -> its input tables.

    Declared with each table in ``curatornet_pipeline.tables``. Tables of the ingest group are computed from
    the source files, whose fingerprint the ingest step records as an external input.
    """
    inputs: dict[str, tuple[str, ...]] = {}
    for table in tables.ALL_TABLES:
        if table.asset is None:  # the lineage table itself
            continue
        inputs[table.name] = tuple(t.name for t in table.inputs)
        for partition, partition_inputs in table.partition_inputs.items():
            inputs[f"{table.name}/{partition}"] = tuple(t.name for t in partition_inputs)
    return inputs


TABLE_INPUTS: dict[str, tuple[str, ...]] = _inputs_map()


class StaleTablesError(RuntimeError):
    """The tables a reader needs were not all computed from the stored versions of their inputs."""


def table_inputs(table: str, partition: str = UNPARTITIONED) -> tuple[str, ...]:
    """The tables ``table`` (or one partition of it) is computed from; () for a table not in the map."""
    if partition and f"{table}/{partition}" in TABLE_INPUTS:
        return TABLE_INPUTS[f"{table}/{partition}"]
    return TABLE_INPUTS.get(table, ())


def _current_run_id() -> str:
    """The Dagster run id when called inside a step; "" outside Dagster (scripts, benchmarks)."""
    try:
        import dagster as dg

        return dg.OpExecutionContext.get().run_id
    except Exception:  # no step is executing
        return ""


def _lineage_rows(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, dict]]:
    """table -> partition -> its record, read from meta.table_lineage ({} when there is none)."""
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [tables.TABLE_LINEAGE.schema, tables.TABLE_LINEAGE.short_name],
    ).fetchone()[0]
    if not exists:
        return {}
    records: dict[str, dict[str, dict]] = {}
    for table, partition, run_id, written_at, rows, fingerprint, inputs in con.execute(
        f"SELECT table_name, partition_key, run_id, written_at, row_count, fingerprint, inputs FROM {LINEAGE_TABLE}"
    ).fetchall():
        records.setdefault(table, {})[partition] = {
            "run_id": run_id,
            "written_at": written_at,
            "rows": rows,
            "fingerprint": fingerprint,
            "inputs": json.loads(inputs) if isinstance(inputs, str) else (inputs or {}),
        }
    return records


def _table_fingerprint(partitions: Mapping[str, dict] | None) -> str | None:
    """One fingerprint for a whole table from its partitions' fingerprints (None: never recorded)."""
    if not partitions:
        return None
    if set(partitions) == {UNPARTITIONED}:
        return partitions[UNPARTITIONED]["fingerprint"]
    joined = "\n".join(f"{p}={partitions[p]['fingerprint']}" for p in sorted(partitions))
    return hashlib.sha1(joined.encode()).hexdigest()


def _file_fingerprint(file: Path) -> tuple[int, str]:
    """(rows, fingerprint of the rows) of a staged Parquet file; order-independent (a sum of row hashes)."""
    with duckdb.connect() as con:
        count, total = con.execute(
            f"SELECT count(*), coalesce(sum(hash(t)), 0) FROM read_parquet({sql_literal(file)}) t"
        ).fetchone()
    return int(count), f"{count}:{total}"


@dataclass(frozen=True)
class LineageWrite:
    """The lineage record of each table (partition) of one write, for ``store.session.publish``.

    ``external_inputs`` names inputs outside the data layer (the source files) with their fingerprints; they
    are kept for the record and not checked by readers, who cannot see the files the run saw.
    """

    external_inputs: Mapping[str, str] | None = None

    def describe(self, write: FrameWrite, staged: Path) -> dict:
        rows, fingerprint = _file_fingerprint(staged)
        return {"row_count": rows, "fingerprint": fingerprint}

    def annotate(self, current: Manifest, write: SlotWrite) -> dict:
        """The run, the time, and the fingerprints the inputs have in the state this write is published over."""
        records = {
            table: {partition: dict(slot.record) for partition, slot in state.partitions.items()}
            for table, state in current.tables.items()
        }
        inputs = {name: _table_fingerprint(records.get(name)) for name in table_inputs(write.table, write.partition)}
        inputs.update({f"external:{k}": v for k, v in (self.external_inputs or {}).items()})
        return {"run_id": _current_run_id(), "written_at": datetime.now().isoformat(sep=" "), "inputs": inputs}


@dataclass(frozen=True)
class StaleInput:
    """``table`` (partition) was computed from a version of ``input_table`` that has since been replaced."""

    table: str
    partition: str
    input_table: str
    input_run_id: str | None  # the run that wrote the input's current version (None: no record)

    def describe(self) -> str:
        name = f"{self.table} [{self.partition}]" if self.partition else self.table
        if self.input_run_id is None:
            return f"{name} (no record of {self.input_table})"
        by = f" by run {self.input_run_id[:8]}" if self.input_run_id else ""
        return f"{name} (older than {self.input_table}, rewritten{by})"


def _upstream_closure(targets: Iterable[str]) -> list[str]:
    seen: list[str] = []
    pending = list(targets)
    while pending:
        table = pending.pop()
        if table in seen:
            continue
        seen.append(table)
        pending.extend(
            name for key, inputs in TABLE_INPUTS.items() if key.split("/")[0] == table for name in inputs
        )
    return seen


def stale_inputs(con: duckdb.DuckDBPyConnection, targets: Iterable[str]) -> list[StaleInput]:
    """Every table in ``targets`` or upstream of them whose recorded inputs differ from the stored ones."""
    records = _lineage_rows(con)
    problems: list[StaleInput] = []
    for table in _upstream_closure(targets):
        for partition, record in sorted(records.get(table, {}).items()):
            for input_table, fingerprint in sorted(record["inputs"].items()):
                if input_table.startswith("external:"):
                    continue
                current = records.get(input_table)
                if _table_fingerprint(current) != fingerprint:
                    latest = max(current.values(), key=lambda r: r["written_at"]) if current else None
                    problems.append(StaleInput(table, partition, input_table, latest["run_id"] if latest else None))
    return problems


def require_consistent(con: duckdb.DuckDBPyConnection, targets: Sequence[str]) -> None:
    """Raise :class:`StaleTablesError` (one sentence) unless ``targets`` and everything upstream belong together."""
    records = _lineage_rows(con)
    if not records:
        raise StaleTablesError(
            f"the data layer has no lineage records ({LINEAGE_TABLE}), so which run wrote its tables is unknown; "
            "rerun `curatornet materialize` to rebuild them together"
        )
    unrecorded = [t for t in _upstream_closure(targets) if t not in records]
    problems = stale_inputs(con, targets)
    if not problems and not unrecorded:
        return
    listed = [p.describe() for p in problems] + [f"{t} (no lineage record)" for t in unrecorded]
    shown = "; ".join(listed[:4]) + (f"; and {len(listed) - 4} more" if len(listed) > 4 else "")
    raise StaleTablesError(
        f"{', '.join(targets)} cannot be trusted: some tables it depends on were rewritten by a later run that did "
        f"not finish (or ran only part of the graph), so they no longer come from one run - stale: {shown}; "
        "rerun `curatornet materialize` to bring every table up to date"
    )


def recorded_partitions(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    """The partitions of ``table`` that some run has written (an empty partition counts as written)."""
    return set(_lineage_rows(con).get(table, {})) - {UNPARTITIONED}
