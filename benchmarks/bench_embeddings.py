"""ResNet50 embedding throughput at 224 px: today's plain fp32 path vs the fast path, side by side, with parity.

Variants, all on the same images with the same seeded random-init ResNet50 (ImageNet weights change nothing
about speed):

* ``baseline_fp32`` — the previous path: images decoded inline, contiguous (NCHW) tensors, fp32.
* ``fast_fp32`` — ``embed_images(precision="fp32")``: channels-last layout, the next batch decoded in a
  worker thread while the current one runs.
* ``fast_bf16`` — ``embed_images(precision="bf16")``: the same plus bf16 autocast (what ``precision=auto``
  picks on a CPU with native bf16, see core.precision).

The variants take turns for ``--rounds`` rounds (the best round of each is reported, which keeps ratios honest
on a machine whose load changes). Parity: per-image cosine similarity of each variant's vectors with the
baseline's. Prints JSON, then a markdown table.

    python benchmarks/bench_embeddings.py [--images 64] [--batch-size 32] [--rounds 2] [--image-size 224]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from curatornet_pipeline.core.demo_gallery import DemoGalleryConfig, generate_demo_gallery
from curatornet_pipeline.core.embeddings import build_resnet50_backbone, embed_images, image_transform
from curatornet_pipeline.core.ingest import find_image_files, read_ugallery
from curatornet_pipeline.core.precision import cpu_has_native_bf16


def baseline_embed(paths: list[Path], model: torch.nn.Module, image_size: int, batch_size: int) -> np.ndarray:
    """The path before this change: decode a batch, then run it, NCHW fp32."""
    transform = image_transform(image_size)
    model = model.to(memory_format=torch.contiguous_format)
    out = []
    with torch.inference_mode():
        for start in range(0, len(paths), batch_size):
            tensors = []
            for path in paths[start : start + batch_size]:
                with Image.open(path) as image:
                    tensors.append(transform(image.convert("RGB")))
            out.append(model(torch.stack(tensors)).float().numpy())
    return np.concatenate(out)


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--image-size", type=int, default=224)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "gallery"
        generate_demo_gallery(folder, DemoGalleryConfig.small())
        artworks, _ = read_ugallery(folder)
        ids = artworks["artwork_id"].tolist()[: args.images]
        files = find_image_files(folder, ids)
        paths = [files[i] for i in ids]
        model = build_resnet50_backbone("random", seed=0)
        variants = {
            "baseline_fp32": lambda: baseline_embed(paths, model, args.image_size, args.batch_size),
            "fast_fp32": lambda: embed_images(paths, model, args.image_size, args.batch_size, precision="fp32"),
            "fast_bf16": lambda: embed_images(paths, model, args.image_size, args.batch_size, precision="bf16"),
        }
        embed_images(paths[:2], model, args.image_size, 2, precision="bf16")  # warm up oneDNN kernels
        seconds: dict[str, list[float]] = {name: [] for name in variants}
        vectors: dict[str, np.ndarray] = {}
        for _ in range(args.rounds):
            for name, run in variants.items():
                started = time.perf_counter()
                vectors[name] = run()
                seconds[name].append(time.perf_counter() - started)

    base = vectors["baseline_fp32"]
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, native bf16: {cpu_has_native_bf16()}, "
        f"torch {torch.__version__}",
        "torch_threads": torch.get_num_threads(),
        "images": len(paths),
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "rounds": args.rounds,
        "variants": {},
    }
    for name in variants:
        best = min(seconds[name])
        result["variants"][name] = {
            "images_per_second": len(paths) / best,
            "seconds_per_round": seconds[name],
            "speedup_over_baseline": min(seconds["baseline_fp32"]) / best,
            "min_cosine_to_baseline": float(cosine_rows(base, vectors[name]).min()),
        }
    print(json.dumps(result, indent=2))
    print()
    print(f"| variant ({args.image_size} px, batch {args.batch_size}) | images/s | speed-up | min cosine to baseline |")
    print("|---|---|---|---|")
    for name, v in result["variants"].items():
        print(f"| {name} | {v['images_per_second']:.2f} | {v['speedup_over_baseline']:.2f}x | "
              f"{v['min_cosine_to_baseline']:.4f} |")
    print(f"\n{result['machine']}, {result['torch_threads']} threads, {len(paths)} images, "
          f"best of {args.rounds} rounds")


if __name__ == "__main__":
    main()
