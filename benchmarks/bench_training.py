"""Training-step throughput: deduplicated batch loss vs the naive per-slot reference (SPEC 8).

Synthetic data shaped like the paper's default scale: 6,040 artworks, 2,378 users whose purchase
histories follow the UGallery statistics (64% single-session users, ~1.3 items per basket, histories
capped at 30), and triplets drawn like the six strategies draw them: a third with one-item profiles
(strategies 5-6), a third with a user's full history (3-4), a third with a history prefix of a
multi-basket user (1-2). Positives/negatives are uniform (the item mix is what matters for speed).

Both paths take the same batches, same model, same optimizer step. Prints JSON, then a markdown table.

    python benchmarks/bench_training.py [--device cpu|cuda|auto] [--batch-size 4096] [--steps 5]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch

from curatornet_pipeline.core.model import CuratorNet
from curatornet_pipeline.core.device import resolve_device
from curatornet_pipeline.core.training import DeviceTriplets, batch_loss, gather_batch, naive_triplet_loss
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


def time_steps(loss_fn, model, features, ts, batches, device) -> float:
    """Seconds per optimizer step (forward + backward + Adam), after one warm-up step."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step(rows: np.ndarray) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model, features, ts, rows, 1e-4).backward()
        optimizer.step()

    step(batches[0])
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for rows in batches[1:]:
        step(rows)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / (len(batches) - 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per path (plus one warm-up)")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)

    ts = synthetic_triplets(args.batch_size * (args.steps + 1), args.seed)
    rng = np.random.default_rng(args.seed)
    batches = np.array_split(rng.permutation(len(ts)), args.steps + 1)
    features = torch.from_numpy(rng.normal(size=(N_ITEMS, FEATURES)).astype(np.float32)).to(device)

    shape = [gather_batch(ts, rows) for rows in batches]
    slots_per_batch = float(np.mean([len(b.slot_items) for b in shape]))
    naive_rows = float(np.mean([ts.profile_lengths()[ts.profile_id[r]].sum() + 2 * len(r) for r in batches]))
    result = {
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "torch_threads": torch.get_num_threads(),
        "batch_size": args.batch_size,
        "timed_steps": args.steps,
        "mean_profile_length": float(ts.profile_lengths()[ts.profile_id].mean()),
        "item_tower_rows_per_batch_naive": naive_rows,
        "item_tower_rows_per_batch_efficient": float(np.mean([len(b.items) for b in shape])),
        "user_tower_rows_per_batch_naive": args.batch_size,
        "user_tower_rows_per_batch_efficient": float(np.mean([b.n_profiles for b in shape])),
        "pooled_slots_per_batch_efficient": slots_per_batch,
    }
    # The training loop assembles batches on the device when it is a GPU (DeviceTriplets); time that path too.
    on_device = device.type == "cuda"
    dt = DeviceTriplets.from_set(ts, device) if on_device else ts
    device_batches = [torch.from_numpy(r).to(device) for r in batches] if on_device else batches
    paths = [("naive", naive_triplet_loss, ts, batches), ("efficient", batch_loss, ts, batches)]
    if on_device:
        paths.append(("efficient_device_batches", batch_loss, dt, device_batches))
    for name, fn, triplets, rows in paths:
        model = CuratorNet(generator=torch.Generator().manual_seed(args.seed)).to(device)
        seconds = time_steps(fn, model, features, triplets, rows, device)
        result[f"{name}_seconds_per_step"] = seconds
        result[f"{name}_triplets_per_second"] = args.batch_size / seconds
    training_path = "efficient_device_batches" if on_device else "efficient"
    result["training_path"] = training_path
    result["speedup"] = result[f"{training_path}_triplets_per_second"] / result["naive_triplets_per_second"]

    print(json.dumps(result, indent=2))
    print()
    print("| path | item-tower rows/batch | user-tower rows/batch | s/step | triplets/s |")
    print("|---|---|---|---|---|")
    for name, *_ in paths:
        shape = "naive" if name == "naive" else "efficient"
        print(
            f"| {name} | {result[f'item_tower_rows_per_batch_{shape}']:.0f} | "
            f"{result[f'user_tower_rows_per_batch_{shape}']:.0f} | {result[f'{name}_seconds_per_step']:.3f} | "
            f"{result[f'{name}_triplets_per_second']:.0f} |"
        )
    print(f"\nspeedup of the training path ({training_path}) over naive {result['speedup']:.2f}x on {result['device']} ({result['torch_threads']} threads), "
          f"batch {args.batch_size} triplets, mean profile length {result['mean_profile_length']:.2f}")


if __name__ == "__main__":
    main()
