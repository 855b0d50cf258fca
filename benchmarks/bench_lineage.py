"""What the lineage bookkeeping costs a table write: ``replace_tables`` with and without its lineage record.

The table is shaped like ``triplets.training_triplets`` (integer columns plus a 64-bit hash); at the paper
preset it holds ~10M rows, the largest write of a run. Both variants run side by side in one process on an
data layer in a temporary folder (Parquet files + manifest); the best of ``--repeats`` is reported. Prints
JSON, then a markdown table.

    python benchmarks/bench_lineage.py [--rows 10000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from curatornet_pipeline import storage
from curatornet_pipeline.store import session
from curatornet_pipeline.store.writes import FrameWrite


def _write_seconds(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame, record: bool) -> float:
    started = time.perf_counter()
    if record:
        storage.replace_tables(con, {"triplets.bench": frame})
    else:  # the same publish without the fingerprints and the inputs' record
        session.publish(con, [FrameWrite("triplets.bench", frame)])
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {name: rng.integers(0, 6040, args.rows, dtype=np.int32) for name in ("profile_id", "positive", "negative")}
    )
    frame["triplet_hash"] = rng.integers(-(2**62), 2**62, args.rows)
    folder = tempfile.TemporaryDirectory()
    con = session.connect(session.Location.of(Path(folder.name) / "bench.duckdb"))
    seconds: dict[str, list[float]] = {"without_lineage": [], "with_lineage": []}
    for _ in range(args.repeats):
        seconds["without_lineage"].append(_write_seconds(con, frame, record=False))
        seconds["with_lineage"].append(_write_seconds(con, frame, record=True))
    best = {name: min(values) for name, values in seconds.items()}
    result = {
        "rows": args.rows,
        **{f"{name}_s": round(value, 3) for name, value in best.items()},
        "overhead_ratio": round(best["with_lineage"] / best["without_lineage"], 3),
    }
    con.close()
    folder.cleanup()
    print(json.dumps(result))
    print("\n| rows | write without lineage s | with lineage s | ratio |\n|---|---|---|---|")
    print(f"| {args.rows:,} | {result['without_lineage_s']} | {result['with_lineage_s']} | {result['overhead_ratio']} |")


if __name__ == "__main__":
    main()
