"""Foundation costs at the default (paper) scale: demo gallery generation, ResNet50 embedding throughput, clustering.

Generates the default demo gallery (6,040 artworks) into a temporary folder, embeds every image with the
demo's settings (seeded random-init ResNet50, 64 px input) and a sample at the standard 224 px input, then
runs the paper's clustering (z-score, PCA 200, k-means k=100 x 20 seeds, best silhouette) on the
embeddings. Prints JSON, then a markdown table.

    python benchmarks/bench_foundation.py [--sample-224 256] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from curatornet_pipeline.core.clustering import cluster_embeddings
from curatornet_pipeline.core.demo_gallery import DemoGalleryConfig, generate_demo_gallery
from curatornet_pipeline.core.embeddings import build_resnet50_backbone, embed_images
from curatornet_pipeline.core.ingest import find_image_files, read_ugallery


def timed(fn):
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample-224", type=int, default=256, help="images embedded at 224 px (a sample: slow on CPU)")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    results: dict = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}",
                     "torch_threads": torch.get_num_threads()}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "gallery"
        stats, seconds = timed(lambda: generate_demo_gallery(folder, DemoGalleryConfig()))
        results["generation_seconds"] = seconds
        results["n_artworks"] = stats["generated"]["n_artworks"]
        artworks, _ = read_ugallery(folder)
        ids = artworks["artwork_id"].tolist()
        files = find_image_files(folder, ids)
        paths = [files[i] for i in ids]
        model = build_resnet50_backbone("random", seed=0)

        embeddings, seconds = timed(lambda: embed_images(paths, model, image_size=64, batch_size=args.batch_size))
        results["embedding_64px_images"] = len(paths)
        results["embedding_64px_seconds"] = seconds
        results["embedding_64px_images_per_second"] = len(paths) / seconds

        sample = paths[: args.sample_224]
        _, seconds = timed(lambda: embed_images(sample, model, image_size=224, batch_size=args.batch_size))
        results["embedding_224px_images"] = len(sample)
        results["embedding_224px_images_per_second"] = len(sample) / seconds

        clustering, seconds = timed(lambda: cluster_embeddings(embeddings, n_clusters=100, n_runs=20, pca_components=200))
        results["clustering_seconds"] = seconds
        results["best_silhouette"] = float(clustering.silhouettes[clustering.chosen_run])

    print(json.dumps(results, indent=2))
    print()
    print("| measure | value |")
    print("|---|---|")
    print(f"| demo gallery generation ({results['n_artworks']} artworks + PNGs) | {results['generation_seconds']:.1f} s |")
    print(f"| ResNet50 embedding, 64 px (demo default), {results['embedding_64px_images']} images | "
          f"{results['embedding_64px_images_per_second']:.1f} images/s ({results['embedding_64px_seconds']:.0f} s) |")
    print(f"| ResNet50 embedding, 224 px, {results['embedding_224px_images']} images | "
          f"{results['embedding_224px_images_per_second']:.1f} images/s |")
    print(f"| clustering: PCA 200 + k-means k=100 x 20 runs + silhouettes | {results['clustering_seconds']:.1f} s |")
    print(f"| machine | {results['machine']} |")


if __name__ == "__main__":
    main()
