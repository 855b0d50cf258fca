"""Benchmark: triplet sampling at the paper's scale on the default-size demo gallery.

Builds the default demo gallery (6,040 artworks, 573 artists, 2,378 users) with the project's
generator, reads it with the UGallery reader, splits it by last basket, clusters artist-structured
random 2048-d embeddings with ``cluster_embeddings`` (k=100, 20 runs; the real ResNet embeddings are
not computed here because they cost minutes and do not change the sampler's work), then samples the
``paper`` preset (10M training + 5% validation) for all six strategies and deduplicates the union.

Prints one JSON object and a markdown table. Usage:
    python benchmarks/bench_sampling.py [--total-train N] [--gallery DIR]
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from curatornet_pipeline.core.clustering import cluster_embeddings
from curatornet_pipeline.core.demo_gallery import DemoGalleryConfig, generate_demo_gallery
from curatornet_pipeline.core.ingest import read_ugallery
from curatornet_pipeline.core.sampling import (
    STRATEGIES,
    SamplingBudget,
    SamplingInputs,
    check_strategy_rules,
    sample_strategy,
    triplet_hashes,
    union_deduplicate,
)
from curatornet_pipeline.core.split import last_basket_split, split_summary
from curatornet_pipeline import tables
from curatornet_pipeline.storage import read_triplet_set, replace_tables, triplet_frames
from curatornet_pipeline.store import session


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # ru_maxrss is KiB on Linux


def _artist_structured_embeddings(artist_codes: np.ndarray, seed: int) -> np.ndarray:
    """Non-negative 2048-d vectors: a per-artist centre plus per-artwork noise (like pooled ResNet features)."""
    rng = np.random.default_rng(seed)
    centres = rng.gamma(1.0, 1.0, size=(int(artist_codes.max()) + 1, 2048)).astype(np.float32)
    noise = rng.standard_normal((len(artist_codes), 2048), dtype=np.float32)
    return np.maximum(centres[artist_codes] + 0.8 * noise, 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--total-train", type=int, default=SamplingBudget.paper().total_train)
    parser.add_argument("--gallery", type=Path, default=None, help="existing demo gallery folder to reuse")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--check-rules", action="store_true", help="also run check_strategy_rules on every strategy")
    args = parser.parse_args()

    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        gallery = args.gallery
        t = time.perf_counter()
        if gallery is None or not (gallery / "purchases.csv").is_file():
            gallery = gallery or Path(tmp) / "gallery"
            generate_demo_gallery(gallery, DemoGalleryConfig())
        timings["generate_gallery_s"] = time.perf_counter() - t
        t = time.perf_counter()
        artworks, transactions = read_ugallery(gallery)
        split = last_basket_split(transactions)
        timings["read_and_split_s"] = time.perf_counter() - t

    artist_codes = np.unique(artworks.sort_values("artwork_idx")["artist_id"].to_numpy(), return_inverse=True)[1]
    embeddings = _artist_structured_embeddings(artist_codes, args.seed)
    t = time.perf_counter()
    clusters = cluster_embeddings(embeddings, n_clusters=100, n_runs=20, pca_components=200, seed=args.seed)
    timings["cluster_embeddings_s"] = time.perf_counter() - t
    del embeddings

    t = time.perf_counter()
    train_rows = split[split["split"] == "train"]  # the samplers read the training view only
    inputs = SamplingInputs.from_frames(artworks, train_rows, clusters.labels, clusters.pca_vectors)
    timings["build_inputs_s"] = time.perf_counter() - t
    rss_before_sampling = _peak_rss_mb()

    budget = SamplingBudget(args.total_train)
    per_strategy = {}
    samples = []
    t_sampling = time.perf_counter()
    for strategy in STRATEGIES:
        t = time.perf_counter()
        sample = sample_strategy(strategy, inputs, budget, seed=args.seed)
        elapsed = time.perf_counter() - t
        samples.append(sample)
        row = {k: v for k, v in sample.stats.items() if k != "profile_length_histogram"}
        row["wall_s"] = round(elapsed, 3)
        row["max_profile_length"] = max(sample.stats["profile_length_histogram"], default=0)
        per_strategy[strategy] = row
    t = time.perf_counter()
    union = union_deduplicate(samples)
    train, validation, union_stats = union.train, union.validation, union.stats
    timings["union_deduplicate_s"] = time.perf_counter() - t
    timings["sampling_and_union_total_s"] = time.perf_counter() - t_sampling

    violations = {}
    if args.check_rules:
        t = time.perf_counter()
        for sample in samples:
            rules = check_strategy_rules(sample.strategy, sample.train, inputs)
            violations[sample.strategy] = sum(rules.values())
        timings["check_rules_train_s"] = time.perf_counter() - t

    peak_rss_sampling = _peak_rss_mb()
    # Round trip through the data layer exactly as the training_triplets and curatornet_model assets do it.
    with tempfile.TemporaryDirectory() as tmp, session.connect(session.Location.of(Path(tmp) / "bench.duckdb")) as con:
        t = time.perf_counter()
        train_rows, profiles = triplet_frames(train, triplet_hashes(train), split="train")
        valid_rows, _ = triplet_frames(validation, triplet_hashes(validation), split="validation")
        # By name: the asset adds a strategy column that this benchmark's union does not track.
        replace_tables(
            con,
            {tables.TRAINING_TRIPLETS.name: pd.concat([train_rows, valid_rows], ignore_index=True),
             tables.TRAINING_PROFILES.name: profiles},
            {tables.TRAINING_PROFILES.name: tables.TRAINING_PROFILES.casts()},
        )
        del train_rows, valid_rows, profiles
        timings["store_duckdb_s"] = time.perf_counter() - t
        t = time.perf_counter()
        loaded, _ = read_triplet_set(con, tables.TRAINING_TRIPLETS, tables.TRAINING_PROFILES, "split = 'train'")
        read_triplet_set(con, tables.TRAINING_TRIPLETS, tables.TRAINING_PROFILES, "split = 'validation'")
        timings["load_for_training_s"] = time.perf_counter() - t
        assert len(loaded) == len(train)

    result = {
        "gallery": {**split_summary(split), "n_artworks": len(artworks), "n_artists": int(artist_codes.max()) + 1},
        "preparation": inputs.preparation,
        "clustering": {
            "chosen_run": clusters.chosen_run,
            "best_silhouette": max(clusters.silhouettes),
            "explained_variance_ratio": clusters.explained_variance_ratio,
        },
        "budget": {"total_train": budget.total_train, "per_strategy_train": budget.per_strategy_train(),
                   "per_strategy_validation": budget.per_strategy_validation()},
        "per_strategy": per_strategy,
        "union": {k: v for k, v in union_stats.items() if k != "per_strategy"},
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
        "peak_rss_mb_before_sampling": round(rss_before_sampling, 1),
        "peak_rss_mb_sampling": round(peak_rss_sampling, 1),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "rule_violations": violations,
    }
    print(json.dumps(result, indent=2))

    print()
    print("| strategy | eligible | train | validation | collisions | near-dup | failed | wall s |")
    print("|---|---|---|---|---|---|---|---|")
    for strategy, row in per_strategy.items():
        print(f"| {strategy} | {row['eligible_users_or_items']} | {row['actual_train']:,} | {row['actual_validation']:,} | "
              f"{row['hash_collisions']:,} | {row['near_duplicates_rejected']:,} | {row['failed_attempts']:,} | {row['wall_s']:.2f} |")
    print(f"| union (dedup) | - | {len(train):,} | {len(validation):,} | - | - | - | {timings['union_deduplicate_s']:.2f} |")
    print(f"| **total sampling + union** | | | | | | | **{timings['sampling_and_union_total_s']:.2f}** |")
    print(f"| store in DuckDB (training_triplets asset) | | | | | | | {timings['store_duckdb_s']:.2f} |")
    print(f"| load for training (curatornet_model asset) | | | | | | | {timings['load_for_training_s']:.2f} |")
    print(f"\npeak RSS: {peak_rss_sampling:.0f} MB through sampling + union (before sampling: {rss_before_sampling:.0f} MB); "
          f"{result['peak_rss_mb']:.0f} MB including the DuckDB round trip")


if __name__ == "__main__":
    main()
