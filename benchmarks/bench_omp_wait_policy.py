"""CPU training throughput with OpenMP's default (spinning) wait policy vs PASSIVE, on an idle and a shared machine.

Why: `import curatornet_pipeline` sets OMP_WAIT_POLICY=PASSIVE (unless the user set it) before torch loads.
With the default policy torch's idle OpenMP thread busy-waits between the many small ops of a training step,
which costs nothing on idle cores but steals the cores from the work as soon as anything else runs on them.

Each measurement is a fresh process that times CuratorNet training steps (forward + backward + Adam, the
training path of core.training, batch 4096, on bench_training's UGallery-shaped synthetic triplets):
- ``default``: torch is imported before curatornet_pipeline with OMP_WAIT_POLICY unset (the old behaviour);
- ``passive``: curatornet_pipeline is imported first, as the `curatornet` command and the code location do.
Each is measured on the machine as found and next to ``--competitors`` busy-looping processes (a machine shared with other
work), alternating the two policies ``--repeats`` times. Prints JSON, then a markdown table with the ratio.

    python benchmarks/bench_omp_wait_policy.py [--steps 6] [--competitors 2] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent

CHILD = r"""
import sys, time
sys.path.insert(0, {bench_dir!r})
if {passive}:
    import curatornet_pipeline  # sets OMP_WAIT_POLICY before torch loads, as every entry point does
import numpy as np
import torch
from bench_training import FEATURES, N_ITEMS, synthetic_triplets
from curatornet_pipeline.core.model import CuratorNet
from curatornet_pipeline.core.training import batch_loss

steps = {steps}
ts = synthetic_triplets(4096 * (steps + 1), 0)
rng = np.random.default_rng(0)
batches = np.array_split(rng.permutation(len(ts)), steps + 1)
features = torch.from_numpy(rng.normal(size=(N_ITEMS, FEATURES)).astype(np.float32))
model = CuratorNet(generator=torch.Generator().manual_seed(0))
optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
torch.use_deterministic_algorithms(True)  # as train_curatornet does on the CPU
for i, rows in enumerate(batches):
    if i == 1:
        start, cpu = time.perf_counter(), time.process_time()
    optimizer.zero_grad(set_to_none=True)
    batch_loss(model, features, ts, rows, 1e-4).backward()
    optimizer.step()
wall = time.perf_counter() - start
print(4096 * steps / wall, (time.process_time() - cpu) / steps, torch.get_num_threads())
"""


def measure(policy: str, steps: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    code = CHILD.format(bench_dir=str(BENCH_DIR), passive=policy == "passive", steps=steps)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    triplets_per_s, cpu_s_per_step, threads = done.stdout.split()
    return {"triplets_per_s": float(triplets_per_s), "cpu_s_per_step": float(cpu_s_per_step), "threads": int(threads)}


def start_competitors(n: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6, help="timed training steps per measurement (+1 warm-up)")
    parser.add_argument("--competitors", type=int, default=2, help="busy processes in the 'shared' setting")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    rows = []
    for setting, n_competitors in (("alone", 0), ("shared", args.competitors)):
        competitors = start_competitors(n_competitors)
        try:
            time.sleep(1 if competitors else 0)
            for repeat in range(args.repeats):
                for policy in ("default", "passive"):
                    load = os.getloadavg()[0]
                    rows.append({"setting": setting, "competitors": n_competitors, "policy": policy,
                                 "repeat": repeat, "load_before": load, **measure(policy, args.steps)})
        finally:
            for proc in competitors:
                proc.kill()
                proc.wait()

    summary = []
    for setting in ("alone", "shared"):
        best = {
            policy: max(r["triplets_per_s"] for r in rows if r["setting"] == setting and r["policy"] == policy)
            for policy in ("default", "passive")
        }
        cpu = {
            policy: min(r["cpu_s_per_step"] for r in rows if r["setting"] == setting and r["policy"] == policy)
            for policy in ("default", "passive")
        }
        summary.append({"setting": setting, "default_triplets_per_s": best["default"],
                        "passive_triplets_per_s": best["passive"], "speedup": best["passive"] / best["default"],
                        "default_cpu_s_per_step": cpu["default"], "passive_cpu_s_per_step": cpu["passive"]})
    report = {"cpus": os.cpu_count(), "steps": args.steps, "measurements": rows, "summary": summary}
    print(json.dumps(report, indent=2))
    print()
    print(f"CPU training, batch 4096, {os.cpu_count()} CPUs, best of {args.repeats} (1-min load average before each "
          "run in the JSON):")
    print()
    print("| setting | default triplets/s | PASSIVE triplets/s | speed-up | CPU s/step default | CPU s/step PASSIVE |")
    print("|---|---:|---:|---:|---:|---:|")
    for s in summary:
        label = "as found" if s["setting"] == "alone" else f"plus {args.competitors} busy processes"
        print(f"| {label} | {s['default_triplets_per_s']:.0f} | {s['passive_triplets_per_s']:.0f} | "
              f"{s['speedup']:.2f}x | {s['default_cpu_s_per_step']:.2f} | {s['passive_cpu_s_per_step']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
