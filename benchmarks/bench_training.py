"""Training-step throughput: deduplicated batch loss vs the naive per-slot reference.

Synthetic data shaped like the paper's default scale: 6,040 artworks, 2,378 users whose purchase
histories follow the UGallery statistics (64% single-session users, ~1.3 items per basket, histories
capped at 30), and triplets drawn like the six strategies draw them: a third with one-item profiles
(strategies 5-6), a third with a user's full history (3-4), a third with a history prefix of a
multi-basket user (1-2). Positives/negatives are uniform (the item mix is what matters for speed).

Every path takes the same batches, same model, same optimizer step: the naive reference (fp32), and the
training path in fp32 and with bf16 autocast (core.precision), at batch 4,096 and 22,000 triplets.
Each path's floating-point work per step is counted with torch's FlopCounterMode (forward + backward on one
batch), and the machine's own limit is measured beside it: the throughput of a plain matmul of the item tower's
first-layer shape ([distinct items, 2048] x [2048, 200]) on the same threads, fp32 and, where the CPU has native
bf16, bf16. Efficiency = the path's achieved GFLOP/s / that matmul's GFLOP/s, at the path's precision.
Prints JSON, then a markdown table.

    python benchmarks/bench_training.py [--device cpu|cuda|auto] [--batch-sizes 4096 22000] [--steps 5] [--skip-naive]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from curatornet_pipeline.core.model import CuratorNet
from curatornet_pipeline.core.device import resolve_device
from curatornet_pipeline.core.precision import cpu_has_native_bf16, resolve_precision
from curatornet_pipeline.core.training import (
    DeviceTriplets,
    batch_loss,
    gather_batch,
    model_features,
    naive_triplet_loss,
)
from curatornet_pipeline.core.triplet_set import TripletSet

N_ITEMS, N_USERS, FEATURES = 6040, 2378, 2048


def synthetic_triplets(n_triplets: int, seed: int) -> TripletSet:
    rng = np.random.default_rng(seed)
    profiles: list[np.ndarray] = []
    full_history, prefixes = [], []  # profile rows per kind
    for _ in range(N_USERS):
        n_baskets = 1 if rng.random() < 0.64 else 2 + int(rng.geometric(0.35)) - 1
        sizes = 1 + rng.poisson(0.3, n_baskets)
        history = rng.integers(0, N_ITEMS, int(sizes.sum()))[:30]
        ends = np.minimum(np.cumsum(sizes), 30)
        full_history.append(len(profiles))
        profiles.append(history)
        for end in ends[:-1]:  # prefixes up to each basket but the last
            prefixes.append(len(profiles))
            profiles.append(history[:end])
    one_item = np.arange(len(profiles), len(profiles) + N_ITEMS)
    profiles.extend(np.array([i]) for i in range(N_ITEMS))

    kind = rng.integers(0, 3, n_triplets)
    profile_id = np.where(
        kind == 0,
        rng.choice(one_item, n_triplets),
        np.where(kind == 1, rng.choice(full_history, n_triplets), rng.choice(prefixes, n_triplets)),
    )
    lengths = np.array([len(p) for p in profiles])
    return TripletSet(
        profile_offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        profile_items=np.concatenate(profiles).astype(np.int32),
        profile_id=profile_id.astype(np.int32),
        positive=rng.integers(0, N_ITEMS, n_triplets).astype(np.int32),
        negative=rng.integers(0, N_ITEMS, n_triplets).astype(np.int32),
        user_idx=np.where(kind == 0, -1, 0).astype(np.int32),
    )


def make_step(loss_fn, model, features, ts, precision: str):
    """One optimizer step (forward + backward + Adam) of one path, with its own model and optimizer."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step(rows) -> None:
        optimizer.zero_grad(set_to_none=True)
        if loss_fn is batch_loss:
            loss = batch_loss(model, features, ts, rows, 1e-4, precision)
        else:
            loss = loss_fn(model, features, ts, rows, 1e-4)
        loss.backward()
        optimizer.step()

    return step


def time_paths(steps: dict, rows_by_path: dict, n_batches: int, device) -> dict:
    """Median seconds per step of every path; the paths take turns on each batch after one warm-up step each.

    Interleaving keeps the ratios honest on a machine whose load changes during the run.
    """
    times: dict = {name: [] for name in steps}
    for b in range(n_batches):
        for name, step in steps.items():
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            step(rows_by_path[name][b])
            if device.type == "cuda":
                torch.cuda.synchronize()
            if b > 0:
                times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t)) for name, t in times.items()}


def step_flops(step, rows) -> int:
    """Floating-point operations of one training step (forward + backward; Adam's element-wise update is not
    counted, as FlopCounterMode counts matrix products)."""
    with FlopCounterMode(display=False) as counter:
        step(rows)
    return int(counter.get_total_flops())


def matmul_gflops(rows: int, dtype: torch.dtype, device: torch.device, repeats: int = 20) -> float:
    """This machine's matmul throughput at the item tower's first-layer shape, on the current torch threads."""
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(rows, FEATURES, generator=generator).to(device=device, dtype=dtype)
    b = torch.randn(FEATURES, 200, generator=generator).to(device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return 2 * rows * FEATURES * 200 / float(np.median(times)) / 1e9


def measure(batch_size: int, args: argparse.Namespace, device: torch.device) -> dict:
    """Every path at one batch size, side by side on the same batches and the same initial model."""
    ts = synthetic_triplets(batch_size * (args.steps + 1), args.seed)
    rng = np.random.default_rng(args.seed)
    batches = np.array_split(rng.permutation(len(ts)), args.steps + 1)
    features = torch.from_numpy(rng.normal(size=(N_ITEMS, FEATURES)).astype(np.float32)).to(device)

    shape = [gather_batch(ts, rows) for rows in batches]
    slots_per_batch = float(np.mean([len(b.slot_items) for b in shape]))
    naive_rows = float(np.mean([ts.profile_lengths()[ts.profile_id[r]].sum() + 2 * len(r) for r in batches]))
    result = {
        "batch_size": batch_size,
        "timed_steps": args.steps,
        "mean_profile_length": float(ts.profile_lengths()[ts.profile_id].mean()),
        "item_tower_rows_per_batch_naive": naive_rows,
        "item_tower_rows_per_batch_efficient": float(np.mean([len(b.items) for b in shape])),
        "user_tower_rows_per_batch_naive": batch_size,
        "user_tower_rows_per_batch_efficient": float(np.mean([b.n_profiles for b in shape])),
        "pooled_slots_per_batch_efficient": slots_per_batch,
    }
    # The training loop assembles batches on the device when it is a GPU (DeviceTriplets); time that path too.
    on_device = device.type == "cuda"
    triplets = DeviceTriplets.from_set(ts, device) if on_device else ts
    rows = [torch.from_numpy(r).to(device) for r in batches] if on_device else batches
    efficient = "efficient_device_batches" if on_device else "efficient"
    paths = [
        (f"{efficient}_fp32", batch_loss, triplets, rows, "fp32"),
        (f"{efficient}_bf16", batch_loss, triplets, rows, "bf16"),
    ]
    if not args.skip_naive:
        paths.insert(0, ("naive_fp32", naive_triplet_loss, ts, batches, "fp32"))
    steps, rows_by_path = {}, {}
    for name, fn, path_triplets, path_rows, precision in paths:
        model = CuratorNet(generator=torch.Generator().manual_seed(args.seed)).to(device)
        # As training holds them: bf16 features for the bf16 path (model_features).
        steps[name] = make_step(fn, model, model_features(features, model, precision), path_triplets, precision)
        rows_by_path[name] = path_rows
    for name, seconds in time_paths(steps, rows_by_path, len(batches), device).items():
        result[f"{name}_seconds_per_step"] = seconds
        result[f"{name}_triplets_per_second"] = batch_size / seconds
    distinct_items = int(round(result["item_tower_rows_per_batch_efficient"]))
    limits = {"fp32": matmul_gflops(distinct_items, torch.float32, device)}
    if device.type == "cuda" or cpu_has_native_bf16():
        limits["bf16"] = matmul_gflops(distinct_items, torch.bfloat16, device)
    result["matmul_gflops_limit"] = limits
    for name, _, _, _, precision in paths:
        flops = step_flops(steps[name], rows_by_path[name][0])
        achieved = flops / result[f"{name}_seconds_per_step"] / 1e9
        result[f"{name}_mflop_per_triplet"] = flops / batch_size / 1e6
        result[f"{name}_gflops"] = achieved
        if precision in limits:
            result[f"{name}_efficiency"] = achieved / limits[precision]
    result["paths"] = [p[0] for p in paths]
    result["training_path"] = f"{efficient}_{args.training_precision}"
    result["bf16_speedup_over_fp32"] = (
        result[f"{efficient}_bf16_triplets_per_second"] / result[f"{efficient}_fp32_triplets_per_second"]
    )
    if not args.skip_naive:
        result["dedup_speedup_over_naive_fp32"] = (
            result[f"{efficient}_fp32_triplets_per_second"] / result["naive_fp32_triplets_per_second"]
        )
    return result


def _fraction(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[4096, 22000])
    parser.add_argument(
        "--steps", type=int, default=5, help="timed steps per path after one warm-up; the paths take turns; median"
    )
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-naive", action="store_true", help="time only the training path, fp32 and bf16")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    args.training_precision = resolve_precision("auto", device)

    machine = str(device) if device.type == "cpu" else torch.cuda.get_device_name(device)
    if device.type == "cpu":
        machine = f"{platform.processor() or platform.machine()} cpu, native bf16: {cpu_has_native_bf16()}"
    runs = [measure(batch_size, args, device) for batch_size in args.batch_sizes]
    print(json.dumps({"device": machine, "torch_threads": torch.get_num_threads(),
                      "auto_precision": args.training_precision, "runs": runs}, indent=2))
    print()
    print("| batch | path | item-tower rows/batch | user-tower rows/batch | s/step | triplets/s | MFLOP/triplet "
          "| GFLOP/s | of this machine's matmul |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in runs:
        for name in r["paths"]:
            shape = "naive" if name.startswith("naive") else "efficient"
            print(
                f"| {r['batch_size']} | {name} | {r[f'item_tower_rows_per_batch_{shape}']:.0f} | "
                f"{r[f'user_tower_rows_per_batch_{shape}']:.0f} | {r[f'{name}_seconds_per_step']:.3f} | "
                f"{r[f'{name}_triplets_per_second']:.0f} | {r[f'{name}_mflop_per_triplet']:.2f} | "
                f"{r[f'{name}_gflops']:.1f} | {_fraction(r.get(f'{name}_efficiency'))} |"
            )
    print()
    for r in runs:
        line = f"batch {r['batch_size']}: bf16 {r['bf16_speedup_over_fp32']:.2f}x over fp32"
        if "dedup_speedup_over_naive_fp32" in r:
            line += f", dedup {r['dedup_speedup_over_naive_fp32']:.2f}x over naive"
        print(line + f" (mean profile length {r['mean_profile_length']:.2f})")
    for r in runs:
        limits = ", ".join(f"{p} {v:.1f} GFLOP/s" for p, v in r["matmul_gflops_limit"].items())
        print(f"batch {r['batch_size']}: matmul limit at the item tower's shape: {limits}")
    print(f"on {machine}, {torch.get_num_threads()} threads; training uses {args.training_precision} here (precision auto)")


if __name__ == "__main__":
    main()
