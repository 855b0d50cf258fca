"""Server time of the visitor app's live "For you": a like (POST) and a For-you read, over a real snapshot.

Starts the app (uvicorn, 127.0.0.1, a free port) on the serving snapshot in --data-dir (default: data/, what
`make run` produced; benchmarks/bench_refresh.py --keep DIR makes one too), then for --visitors fresh visitors
likes --likes available artworks each and reads /api/for-you after every like. Reports the server's own time
per request (the app's Server-Timing header: routing, recommendation, JSON), not the client's round trip.
Likes go to the gallery's likes.csv and the For-you views to its impressions.csv as they would from a browser;
the script restores both files afterwards (benchmark visitors are not customers for the online metrics).

    python benchmarks/bench_webapp.py [--data-dir data] [--visitors 40] [--likes 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

import duckdb
import numpy as np

REPO = Path(__file__).resolve().parents[1]
TARGET_MS = 50.0


def _server_ms(opener, url: str, method: str) -> float:
    request = urllib.request.Request(url, method=method, headers={"Accept": "application/json"})
    with opener.open(request, timeout=30) as response:
        response.read()
        return float(response.headers["Server-Timing"].split("dur=")[1])


def start_app(snapshot: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    """The app on a free loopback port over ``snapshot`` (``env`` adds settings), once it answers; and its URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "curatornet_pipeline.webapp", "--port", str(port), "--snapshot", str(snapshot)],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **env},
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(base + "/healthz", timeout=2).read()
            break
        except OSError:
            time.sleep(0.3)
    return server, base


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--visitors", type=int, default=40)
    parser.add_argument("--likes", type=int, default=5)
    args = parser.parse_args()
    data_dir = Path(args.data_dir).resolve()
    snapshot = data_dir / "serving_snapshot.duckdb"
    with duckdb.connect(str(snapshot), read_only=True) as con:
        available = con.execute("SELECT artwork_id FROM catalogue WHERE available ORDER BY artwork_id").df()["artwork_id"]
        folder = Path(con.execute("SELECT source_folder FROM info").fetchone()[0])
    written = [folder / "likes.csv", folder / "impressions.csv"]  # what the benchmark's visitors append to
    kept = [path for path in written if path.exists()]
    for path in kept:
        shutil.copy2(path, path.with_name(path.name + ".bench-backup"))
    # One client address makes every like here: the per-address rate limit would stop the benchmark.
    server, base = start_app(snapshot, {"CURATORNET_LIKES_PER_MINUTE": str(10 * args.visitors * args.likes)})
    try:
        rng = np.random.default_rng(0)
        like_ms, read_ms = [], []
        for _ in range(args.visitors):
            opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
            opener.open(base + "/", timeout=30).read()  # the page gives the signed visitor cookie a like needs
            for artwork_id in rng.choice(available.to_numpy(), args.likes, replace=False):
                like_ms.append(_server_ms(opener, f"{base}/artworks/{artwork_id}/like", "POST"))
                read_ms.append(_server_ms(opener, f"{base}/api/for-you", "GET"))
    finally:
        server.terminate()
        server.wait(timeout=30)
        for path in written:
            if path in kept:
                shutil.move(path.with_name(path.name + ".bench-backup"), path)
            else:
                path.unlink(missing_ok=True)
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}",
        "load_average_1min": round(os.getloadavg()[0], 1),
        "available_artworks": len(available),
        "requests": len(like_ms) + len(read_ms),
        **{
            f"{name}_{q}_ms": round(float(np.percentile(values, int(q[1:]))), 2)
            for name, values in (("like", like_ms), ("for_you", read_ms))
            for q in ("p50", "p95")
        },
        "target_ms": TARGET_MS,
    }
    print(json.dumps(result, indent=2))
    print()
    print("| request | p50 server ms | p95 server ms |")
    print("|---|---|---|")
    print(f"| POST like (+ live For you) | {result['like_p50_ms']} | {result['like_p95_ms']} |")
    print(f"| GET /api/for-you | {result['for_you_p50_ms']} | {result['for_you_p95_ms']} |")


if __name__ == "__main__":
    main()
