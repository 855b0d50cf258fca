"""A big purchases.csv: time and peak memory until the first bad row is reported, and for a full ingest.

Generates, in a temporary folder, a UGallery source with a 6,040-artwork inventory and a purchases.csv of
well-formed rows of about ``--megabytes`` MB (default 200), twice: once where every basket names an artwork
that is not in the inventory (the first error is at row 1), once with valid baskets (a full ingest). Each
read runs `core.ingest.read_ugallery` in a fresh process, so the peak resident memory
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``) is that of the read alone (plus the imports, measured
separately as the baseline).

Prints JSON.

    python benchmarks/bench_big_input.py [--megabytes 200]

On a shared machine the times are contended; the memory figures are not.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
N_ARTWORKS = 6040

# Runs in the child process: read the folder, report seconds, peak RSS and what happened.
READ = """
import json, resource, sys, time
from pathlib import Path
started = time.perf_counter()
from curatornet_pipeline.core.ingest import read_ugallery
from curatornet_pipeline.core.errors import InputDataError
imported = time.perf_counter()
outcome = {}
if sys.argv[1] != "--imports-only":
    try:
        _, transactions = read_ugallery(Path(sys.argv[1]))
        outcome = {"rows": len(transactions)}
    except InputDataError as error:
        outcome = {"error": str(error)[-160:], "error_row": error.row}
outcome.update(
    seconds=round(time.perf_counter() - imported, 3),
    peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
)
print(json.dumps(outcome))
"""


def write_source(folder: Path, megabytes: float, valid: bool) -> dict:
    """inventory.csv (6,040 artworks) and a purchases.csv of about ``megabytes`` MB of well-formed rows."""
    folder.mkdir(parents=True)
    ids = [f"{i:032x}" for i in range(N_ARTWORKS)]
    with open(folder / "inventory.csv", "w") as handle:
        handle.write("artwork_id_hash,artist_id_hash,upload_timestamp\n")
        handle.writelines(f"{a},{i % 573:032x},{1_300_000_000 + i}\n" for i, a in enumerate(ids))
    target = int(megabytes * 1_000_000)
    rows = 0
    with open(folder / "purchases.csv", "w") as handle:
        handle.write("user_id_hash,purchase_timestamp,purchased_artwork_ids_hash\n")
        written = 0
        while written < target:
            block = []
            for _ in range(10_000):
                rows += 1
                artwork = ids[(rows * 7919) % N_ARTWORKS] if valid else f"{rows:032x}unknown"
                block.append(f"{rows % 50_000:032x},{1_400_000_000 + rows},\"['{artwork}']\"\n")
            text = "".join(block)
            handle.write(text)
            written += len(text)
    return {"rows": rows, "megabytes": round((folder / "purchases.csv").stat().st_size / 1e6, 1)}


def read_in_child(folder: Path | None) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    argument = str(folder) if folder else "--imports-only"
    done = subprocess.run([sys.executable, "-c", READ, argument], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=200.0, help="size of purchases.csv (default 200)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_big_input_") as tmp:
        bad = write_source(Path(tmp) / "unknown_ids", args.megabytes, valid=False)
        good = write_source(Path(tmp) / "valid", args.megabytes, valid=True)
        result = {
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
            "imports_only": read_in_child(None),
            "to_first_error": {"file": bad, **read_in_child(Path(tmp) / "unknown_ids")},
            "full_ingest": {"file": good, **read_in_child(Path(tmp) / "valid")},
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
