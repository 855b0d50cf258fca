"""Visitor app latency while new serving snapshots are published: does any request wait for a reload?

Starts the app (uvicorn, 127.0.0.1, a free port) on a copy of the serving snapshot in --data-dir (default:
data/, what `make run` produced), then --clients threads browse (/, /api/for-you, artwork pages, thumbnails,
/healthz in turn) for --seconds while a new snapshot is published every --every seconds: a copy with a new
run id renamed over the served file, as the serving asset publishes one. With --refresh, a real
`curatornet refresh` runs instead, over the data folder itself (it rewrites its serving tables and snapshot).
Prints the round-trip latency (p50/p95/p99, the worst request and which it was), the errors, and how many
snapshots the app switched to, as JSON. Measured, not asserted: on a shared machine the numbers say so.

    python benchmarks/bench_webapp_under_refresh.py [--data-dir data] [--clients 4] [--seconds 20] [--every 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

import duckdb
import numpy as np
from bench_webapp import start_app  # benchmarks/ is the script's folder, first on sys.path

REPO = Path(__file__).resolve().parents[1]
SNAPSHOT = "serving_snapshot.duckdb"


def _get(opener, url: str) -> tuple[int, bytes]:
    try:
        with opener.open(urllib.request.Request(url, headers={"Accept": "text/html"}), timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _publish_copies(snapshot: Path, good: Path, every: float, stop: threading.Event, published: list) -> None:
    while not stop.wait(every):
        temporary = snapshot.with_name(f".{snapshot.name}.bench.tmp")
        shutil.copy(good, temporary)
        run_id = f"bench-{len(published) + 1}"
        with duckdb.connect(str(temporary)) as con:
            con.execute("UPDATE info SET run_id = ?", [run_id])
        os.replace(temporary, snapshot)
        published.append((time.monotonic(), run_id))


def _run_refreshes(data_dir: Path, stop: threading.Event, published: list) -> None:
    env = {**os.environ, "CURATORNET_DATA_DIR": str(data_dir)}
    while not stop.is_set():
        done = subprocess.run([sys.executable, "-m", "curatornet_pipeline.cli", "refresh"], cwd=REPO, env=env,
                              capture_output=True, text=True)
        published.append((time.monotonic(), "refresh ok" if done.returncode == 0 else done.stderr[-300:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--every", type=float, default=3.0, help="seconds between published snapshots")
    parser.add_argument("--refresh", action="store_true", help="run real `curatornet refresh`es instead")
    args = parser.parse_args()
    data_dir = Path(args.data_dir).resolve()
    with tempfile.TemporaryDirectory() as scratch:
        if args.refresh:
            snapshot = data_dir / SNAPSHOT
        else:
            snapshot = Path(scratch) / SNAPSHOT
            shutil.copy(data_dir / SNAPSHOT, snapshot)
        good = Path(scratch) / "good.duckdb"
        shutil.copy(snapshot, good)
        with duckdb.connect(str(good), read_only=True) as con:
            artworks = con.execute("SELECT artwork_id FROM catalogue WHERE available ORDER BY artwork_id").df()
        ids = artworks["artwork_id"].tolist()
        server, base = start_app(snapshot, {"CURATORNET_VISITOR_SECRET": "benchmark-secret-0123456789abcdef"})
        timings: list[tuple[float, str]] = []
        errors: list[tuple[str, int]] = []
        published: list = []
        stop = threading.Event()
        lock = threading.Lock()

        def browse(number: int) -> None:
            opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
            _get(opener, base + "/")
            i = number
            while not stop.is_set():
                artwork_id = ids[i % len(ids)]
                path = ("/", "/api/for-you", f"/artworks/{artwork_id}", f"/images/{artwork_id}", "/healthz")[i % 5]
                started = time.perf_counter()
                status, _ = _get(opener, base + path)
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    timings.append((elapsed, path))
                    if status != 200:
                        errors.append((path, status))
                i += 1

        try:
            threads = [threading.Thread(target=browse, args=(n,)) for n in range(args.clients)]
            if args.refresh:
                publisher = threading.Thread(target=_run_refreshes, args=(data_dir, stop, published))
            else:
                publisher = threading.Thread(target=_publish_copies, args=(snapshot, good, args.every, stop, published))
            for thread in [*threads, publisher]:
                thread.start()
            time.sleep(args.seconds)
            stop.set()
            for thread in [*threads, publisher]:
                thread.join()
            health = json.loads(urllib.request.urlopen(base + "/healthz", timeout=30).read())
        finally:
            server.terminate()
            server.wait(timeout=30)
    values = np.array([t for t, _ in timings])
    worst = max(timings) if timings else (0.0, "")
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}",
        "load_average_1min": round(os.getloadavg()[0], 1),
        "clients": args.clients,
        "seconds": args.seconds,
        "publisher": "curatornet refresh" if args.refresh else f"atomic rename every {args.every} s",
        "published": len(published),
        "publish_failures": [outcome for _, outcome in published if args.refresh and outcome != "refresh ok"],
        "served_run_id_at_end": health.get("run_id"),
        "health_at_end": health.get("status"),
        "requests": len(timings),
        "errors": len(errors),
        "error_examples": errors[:5],
        **{f"{q}_ms": round(float(np.percentile(values, int(q[1:]))), 1) for q in ("p50", "p95", "p99")},
        "worst_ms": round(worst[0], 1),
        "worst_request": worst[1],
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
