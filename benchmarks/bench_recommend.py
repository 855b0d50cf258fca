"""Cold-start recommendation latency: a 5-artwork profile over a 6,040-artwork catalogue.

Each call: id lookup, one user-tower pass over the pooled profile, one matrix-vector product over the
cached item vectors, top-k selection, DataFrame construction. The model is freshly initialised (latency
does not depend on the weights). Prints JSON, then a markdown table.

    python benchmarks/bench_recommend.py [--calls 500] [--k 20] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch

from curatornet_pipeline.core.model import CuratorNet
from curatornet_pipeline.core.recommend import Recommender

N_ITEMS, FEATURES, PROFILE = 6040, 2048, 5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    rng = np.random.default_rng(args.seed)
    features = rng.normal(size=(N_ITEMS, FEATURES)).astype(np.float32)
    ids = [f"artwork{i:05d}" for i in range(N_ITEMS)]
    model = CuratorNet(generator=torch.Generator().manual_seed(args.seed))
    start = time.perf_counter()
    recommender = Recommender.from_features(model, features, ids)
    build_seconds = time.perf_counter() - start

    profiles = [
        [ids[i] for i in rng.choice(N_ITEMS, PROFILE, replace=False)] for _ in range(args.warmup + args.calls)
    ]
    for profile in profiles[: args.warmup]:
        recommender.recommend(profile, k=args.k)
    latencies = []
    for profile in profiles[args.warmup :]:
        start = time.perf_counter()
        recommender.recommend(profile, k=args.k)
        latencies.append((time.perf_counter() - start) * 1000)
    ms = np.array(latencies)
    result = {
        "device": "cpu",
        "torch_threads": torch.get_num_threads(),
        "catalogue": N_ITEMS,
        "profile_length": PROFILE,
        "k": args.k,
        "calls": args.calls,
        "item_cache_build_seconds": build_seconds,
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "p99_ms": float(np.percentile(ms, 99)),
        "mean_ms": float(ms.mean()),
        "max_ms": float(ms.max()),
    }
    print(json.dumps(result, indent=2))
    print()
    print("| catalogue | profile | k | calls | p50 ms | p95 ms | p99 ms | item cache build s |")
    print("|---|---|---|---|---|---|---|---|")
    print(
        f"| {N_ITEMS} | {PROFILE} | {args.k} | {args.calls} | {result['p50_ms']:.2f} | {result['p95_ms']:.2f} | "
        f"{result['p99_ms']:.2f} | {build_seconds:.2f} |"
    )


if __name__ == "__main__":
    main()
