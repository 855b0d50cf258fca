"""Triplets group: one partition per sampling strategy, their deduplicated union, and the random ablation."""

import time
from typing import Literal, Optional

import dagster as dg
import numpy as np
import pandas as pd
from dagster_duckdb import DuckDBResource
from pydantic import Field

from curatornet_pipeline import plots, tables
from curatornet_pipeline.assets.metadata import image_markdown, plot_key, rounded, table_metadata
from curatornet_pipeline.core.sampling import (
    RANDOM_BPR_STRATEGY,
    RANDOM_STRATEGIES,
    RANDOM_STRATEGY,
    STRATEGIES,
    STRATEGY_CODES,
    SamplingBudget,
    StrategySample,
    sample_random,
    sample_strategy,
    triplet_hashes,
    union_deduplicate,
)
from curatornet_pipeline.core.preflight import budget_capped_note, default_train_triplets
from curatornet_pipeline.lineage import recorded_partitions
from curatornet_pipeline.readers import load_sampling_inputs
from curatornet_pipeline.storage import (
    read_frame,
    read_triplet_set,
    replace_partitions,
    replace_tables,
    require_table,
    triplet_frames,
)

GROUP = "triplets"
STRATEGY_PARTITIONS = dg.StaticPartitionsDefinition(list(STRATEGIES))


class SamplingConfig(dg.Config):
    total_train_triplets: Optional[int] = Field(
        default=None,
        description="Training triplets over the six strategies (split evenly); validation adds 5%. Unset: "
        "360,000 for a catalogue of 6,000+ artworks, 60 per artwork below that. Ignored when preset='paper'.",
    )
    preset: Literal["", "paper"] = Field(
        default="", description="'paper' = 10,000,000 training triplets, as in the paper; empty = the budget above."
    )
    validation_fraction: float = Field(default=0.05, description="Validation triplets as a fraction of training.")
    seed: int = Field(default=0, description="Sampling seed.")
    draws: Literal["ours", "authors"] = Field(
        default="ours",
        description="Where the paper is silent: 'ours' (strategies 1-3 negatives uniform over the allowed items, "
        "strategy 3's artist weighted by the user's purchases, quotas per user) or 'authors' (negatives uniform "
        "over never-bought clusters then items, strategy 3's artist uniform over the user's artists, strategies "
        "1 and 2 quotas per basket). See docs/reproducing_the_paper.md.",
    )

    def budget(self, n_artworks: int) -> SamplingBudget:
        if self.preset == "paper":
            return SamplingBudget.paper()
        total = self.total_train_triplets
        if total is None:
            total = default_train_triplets(n_artworks)
        return SamplingBudget(total_train=total, validation_fraction=self.validation_fraction)


def _sample_metadata(stats: dict) -> dict:
    metadata = {}
    for key, value in stats.items():
        if key == "profile_length_histogram":
            metadata[key] = dg.MetadataValue.json({str(k): int(v) for k, v in value.items()})
        elif isinstance(value, (bool, np.bool_)):
            metadata[key] = bool(value)
        elif isinstance(value, (int, np.integer)):
            metadata[key] = int(value)
        elif isinstance(value, (float, np.floating)):
            metadata[key] = rounded(value)
        elif isinstance(value, (dict, list)):
            metadata[key] = dg.MetadataValue.json(value)
        else:
            metadata[key] = str(value)
    histogram = {int(k): int(v) for k, v in stats.get("profile_length_histogram", {}).items()}
    if histogram:
        lengths = sorted(histogram)
        metadata[plot_key("profile lengths")] = image_markdown(
            plots.bar_chart(
                [str(k) for k in lengths], [histogram[k] for k in lengths], "Profile length histogram", "triplets"
            ),
            "profile lengths",
        )
    return metadata


def _log_budget_cap(context: dg.AssetExecutionContext, sample: StrategySample) -> None:
    stats = sample.stats
    note = budget_capped_note(
        sample.strategy, stats["target_train"], stats["actual_train"], stats["actual_validation"]
    )
    if note:
        context.log.warning(note)


def _sample_frames(sample: StrategySample, strategy: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train and validation rows of one strategy, and the one profile table both point at."""
    train_rows, profiles = triplet_frames(sample.train, triplet_hashes(sample.train), strategy=strategy, split="train")
    valid_rows, _ = triplet_frames(
        sample.validation, triplet_hashes(sample.validation), strategy=strategy, split="validation"
    )
    return pd.concat([train_rows, valid_rows], ignore_index=True), profiles


@dg.asset(
    group_name=GROUP,
    kinds={"numpy", "duckdb"},
    deps=["last_basket_split", "visual_clusters"],
    partitions_def=STRATEGY_PARTITIONS,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool="duckdb",
    description=(
        "Training and validation triplets (profile, positive, negative) of one sampling strategy of the paper per "
        f"partition. Stored as integer columns plus a profiles table ({tables.PROFILES})."
    ),
)
def triplets(context: dg.AssetExecutionContext, config: SamplingConfig, duckdb: DuckDBResource) -> dg.MaterializeResult:
    with duckdb.get_connection() as con:
        inputs = load_sampling_inputs(con)
    budget = config.budget(inputs.n_items)
    all_rows, all_profiles = [], []
    for strategy in context.partition_keys:
        started = time.perf_counter()
        context.log.info(
            f"sampling {strategy}: {budget.per_strategy_train()} train + {budget.per_strategy_validation()} validation"
        )
        sample = sample_strategy(strategy, inputs, budget, seed=config.seed, style=config.draws)
        rows, profiles = _sample_frames(sample, strategy)
        all_rows.append(rows)
        all_profiles.append(profiles)
        seconds = time.perf_counter() - started
        context.log.info(
            f"{strategy}: {len(sample.train)} train, {len(sample.validation)} validation in {seconds:.1f}s"
        )
        _log_budget_cap(context, sample)
        context.add_asset_metadata(
            {**_sample_metadata(sample.stats), "dagster/row_count": len(rows), "seconds": rounded(seconds)},
            partition_key=strategy,
        )
    # Every partition of this run is swapped in one transaction: a failure leaves all of them as they were.
    with duckdb.get_connection() as con:
        replace_partitions(
            con,
            {
                tables.TRIPLETS: pd.concat(all_rows, ignore_index=True),
                tables.PROFILES: pd.concat(all_profiles, ignore_index=True),
            },
            key_values=list(context.partition_keys),
        )
        metadata = table_metadata(con, tables.TRIPLETS)
    # dagster/row_count is each partition's own (above); the table's total over all six is said apart.
    return dg.MaterializeResult(
        metadata={
            "dagster/column_schema": metadata["dagster/column_schema"],
            "dagster/table_name": metadata["dagster/table_name"],
            "rows_all_partitions": metadata["dagster/row_count"].value,
        }
    )


@dg.asset(
    group_name=GROUP,
    kinds={"numpy", "duckdb"},
    deps=["triplets"],
    pool="duckdb",
    description=(
        "The six strategies' triplets unioned and deduplicated by a hash of (profile, positive, negative) in one "
        "hash space over strategies and over train/validation: no validation triplet repeats a training one."
    ),
)
def training_triplets(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> dg.MaterializeResult:
    samples = []
    with duckdb.get_connection() as con:
        require_table(con, tables.TRIPLETS)
        present = set(read_frame(con, f"SELECT DISTINCT strategy FROM {tables.TRIPLETS}")["strategy"])
        # A partition that was sampled but found no eligible user or artwork is written with no rows.
        written = recorded_partitions(con, tables.TRIPLETS.name)
        missing = [s for s in STRATEGIES if s not in present and s not in written]
        if missing:
            raise RuntimeError(f"triplets partitions not materialized yet: {', '.join(missing)}")
        for strategy in STRATEGIES:
            if strategy not in present:
                context.log.warning(f"{strategy} yielded no triplets on this gallery (see its partition metadata)")
        for strategy in STRATEGIES:
            parts = {}
            for split in ("train", "validation"):
                ts, _ = read_triplet_set(
                    con,
                    tables.TRIPLETS,
                    tables.PROFILES,
                    where="strategy = ? AND split = ?",
                    params=[strategy, split],
                    profile_where="strategy = ?",
                    profile_params=[strategy],
                )
                parts[split] = ts
            samples.append(
                StrategySample(strategy=strategy, train=parts["train"], validation=parts["validation"], stats={})
            )
    union = union_deduplicate(samples)
    train, validation, stats = union.train, union.validation, union.stats
    names_by_code = {code: name for name, code in STRATEGY_CODES.items()}
    codes = np.array([names_by_code[c] for c in range(max(names_by_code) + 1)])
    train_rows, profiles = triplet_frames(train, triplet_hashes(train), split="train")
    valid_rows, _ = triplet_frames(validation, triplet_hashes(validation), split="validation")
    train_rows.insert(1, "strategy", codes[union.train_strategy_code])
    valid_rows.insert(1, "strategy", codes[union.validation_strategy_code])
    rows = pd.concat([train_rows, valid_rows], ignore_index=True)
    with duckdb.get_connection() as con:
        replace_tables(con, {tables.TRAINING_TRIPLETS: rows, tables.TRAINING_PROFILES: profiles})
        metadata = table_metadata(con, tables.TRAINING_TRIPLETS)
        per_strategy = read_frame(
            con,
            f"SELECT strategy, split, count(*) AS n FROM {tables.TRAINING_TRIPLETS} GROUP BY ALL ORDER BY ALL",
        )
    context.log.info(f"union: {len(train)} train, {len(validation)} validation triplets")
    return dg.MaterializeResult(
        metadata={
            **metadata,
            **_sample_metadata(stats),
            "n_train": int(len(train)),
            "n_validation": int(len(validation)),
            "per_strategy": dg.MetadataValue.json(
                {f"{r.strategy}/{r.split}": int(r.n) for r in per_strategy.itertuples()}
            ),
        }
    )


@dg.asset(
    group_name=GROUP,
    kinds={"numpy", "duckdb"},
    deps=["last_basket_split", "visual_clusters"],
    pool="duckdb",
    description=(
        "The paper's random-sampling ablation (Figure 3), each with the same total budget as the six strategies: "
        "strategy 'random' for CuratorNet, (P_u \\ i, i, j) with i a random training item, P_u \\ i the user's "
        "history without it and j uniform over items the user never bought (users with one training item cannot "
        "form one); strategy 'random_bpr' for VBPR, the same (u, i, j) draw for every user with a training item."
    ),
)
def random_triplets(
    context: dg.AssetExecutionContext, config: SamplingConfig, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    with duckdb.get_connection() as con:
        inputs = load_sampling_inputs(con)
    started = time.perf_counter()
    samples = {
        strategy: sample_random(inputs, config.budget(inputs.n_items), config.seed, strategy)
        for strategy in RANDOM_STRATEGIES
    }
    for sample in samples.values():
        _log_budget_cap(context, sample)
    frames = [_sample_frames(sample, strategy) for strategy, sample in samples.items()]
    with duckdb.get_connection() as con:
        replace_tables(
            con,
            {
                tables.RANDOM_TRIPLETS: pd.concat([rows for rows, _ in frames], ignore_index=True),
                tables.RANDOM_PROFILES: pd.concat([profiles for _, profiles in frames], ignore_index=True),
            },
        )
        metadata = table_metadata(con, tables.RANDOM_TRIPLETS)
    ablation = samples[RANDOM_STRATEGY].stats
    context.log.info(
        f"random sampling: {ablation['eligible_users_or_items']} users with 2+ training items share the budget; "
        f"{ablation['users_skipped_one_training_item']} users with one training item have no P_u \\ i"
    )
    return dg.MaterializeResult(
        metadata={
            **metadata,
            **_sample_metadata(ablation),
            f"{RANDOM_BPR_STRATEGY}_stats": dg.MetadataValue.json(
                {k: v for k, v in samples[RANDOM_BPR_STRATEGY].stats.items() if k != "profile_length_histogram"}
            ),
            "seconds": rounded(time.perf_counter() - started),
        }
    )
