"""Sampling one strategy: per-unit quotas, hash dedup against what is taken, trimming to the budget.

Quotas are per eligible unit, ``ceil(budget / eligible)`` (SPEC 5). Rounds of draws top the quotas up
after duplicates and failures, at most ``MAX_FILL_ROUNDS`` times. When the quotas overshoot the budget a
seeded uniform subset of exactly ``budget`` triplets is kept; a strategy whose space of distinct
triplets is smaller than its quota returns fewer, and the shortfall shows in the stats.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from curatornet_pipeline.core.sampling.arrays import sorted_contains, used_ids
from curatornet_pipeline.core.sampling.budget import SamplingBudget
from curatornet_pipeline.core.sampling.draws import DrawPlan, StrategyDraws
from curatornet_pipeline.core.sampling.hashing import combine_hashes, profile_hashes
from curatornet_pipeline.core.sampling.inputs import SamplingInputs
from curatornet_pipeline.core.sampling.strategy import GUIDED_STRATEGIES, RANDOM_SAMPLINGS, Strategy
from curatornet_pipeline.core.triplet_set import TripletSet, gather_csr_rows

MAX_FILL_ROUNDS = 16  # rounds of topping up quotas after duplicates and failures

_COLUMNS = ("profile_id", "positive", "negative", "user_idx")


@dataclass
class StrategySample:
    """Triplets of one strategy; train and validation share one profile table.

    ``stats`` (plain Python values, for asset metadata): strategy, seed, target_train,
    target_validation, actual_train, actual_validation, eligible_users_or_items,
    quota_per_unit_train / _validation, and over both splits' draws: hash_collisions (valid draws
    rejected as duplicates), near_duplicates_rejected, failed_attempts (draws that found no valid
    candidate within the redraw limit and were skipped); n_profiles; profile_length_histogram
    (profile length -> number of training triplets).
    """

    train: TripletSet
    validation: TripletSet
    stats: dict
    strategy: Strategy

    def __post_init__(self) -> None:
        self.strategy = Strategy.parse(self.strategy)


class _QuotaFill:
    """Fills per-unit quotas from one draw plan, counting failed draws and rejected duplicates."""

    def __init__(self, draws: StrategyDraws, plan: DrawPlan) -> None:
        self.draws = draws
        self.plan = plan
        self.profile_hash = profile_hashes(plan.profile_offsets, plan.profile_items)
        self.failed_attempts = 0
        self.hash_collisions = 0

    def hashes(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        return combine_hashes(self.profile_hash[columns["profile_id"]], columns["positive"], columns["negative"])

    def fill(self, quota: int, taken: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Draw up to ``quota`` distinct valid triplets per unit, avoiding hashes in sorted ``taken``."""
        plan = self.plan
        n_units = len(plan.units)
        deficit = np.full(n_units, quota, dtype=np.int64)
        parts: list[dict[str, np.ndarray]] = []
        for _ in range(MAX_FILL_ROUNDS):
            unit_slot = np.repeat(np.arange(n_units), deficit)
            if len(unit_slot) == 0:
                break
            profile_id, positive, negative, user = plan.draw(plan.units[unit_slot], rng)
            ok = (positive >= 0) & (negative >= 0)
            self.failed_attempts += int((~ok).sum())
            # Strategies 4-6 and the ablation already redraw near-duplicates; this covers the rest.
            ok[ok] = self.draws.not_near_duplicate(positive[ok], negative[ok])
            keep = np.flatnonzero(ok)
            hashes = combine_hashes(self.profile_hash[profile_id[keep]], positive[keep], negative[keep])
            unique_hashes, first = np.unique(hashes, return_index=True)
            fresh = ~sorted_contains(taken, unique_hashes)
            self.hash_collisions += len(keep) - int(fresh.sum())
            accepted = keep[used_ids(len(keep), first[fresh])]
            new_hashes = unique_hashes[fresh]
            taken = np.insert(taken, np.searchsorted(taken, new_hashes), new_hashes)
            parts.append(
                {
                    "profile_id": profile_id[accepted],
                    "positive": positive[accepted],
                    "negative": negative[accepted],
                    "user_idx": user[accepted],
                }
            )
            deficit -= np.bincount(unit_slot[accepted], minlength=n_units)
        return {
            name: (np.concatenate([p[name] for p in parts]) if parts else np.zeros(0, dtype=np.int64)).astype(np.int32)
            for name in _COLUMNS
        }


def _trim(columns: dict[str, np.ndarray], target: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Keep a seeded uniform subset of exactly ``target`` rows (order preserved) when there are more."""
    n = len(columns["profile_id"])
    if n <= target:
        return columns
    keep = np.sort(rng.choice(n, size=target, replace=False))
    return {name: values[keep] for name, values in columns.items()}


def _reserve_validation(
    train: dict[str, np.ndarray],
    validation: dict[str, np.ndarray],
    target_train: int,
    target_validation: int,
    rng: np.random.Generator,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Split what a small gallery yields by the budget's train/validation ratio.

    When the gallery has fewer distinct triplets than the training budget, the training draw takes them
    all and the validation draw finds nothing new; moving a seeded share of the training rows over keeps
    validation at the configured fraction of what exists (rows stay distinct: none is in both).
    """
    n_train, n_validation = len(train["profile_id"]), len(validation["profile_id"])
    wanted = math.ceil((n_train + n_validation) * target_validation / (target_train + target_validation))
    move = min(wanted - n_validation, n_train - 1)
    if move <= 0:
        return train, validation
    moved = np.zeros(n_train, dtype=bool)
    moved[rng.choice(n_train, size=move, replace=False)] = True
    return (
        {name: values[~moved] for name, values in train.items()},
        {name: np.concatenate([validation[name], values[moved]]) for name, values in train.items()},
    )


def _make_triplet_set(offsets: np.ndarray, items: np.ndarray, columns: dict[str, np.ndarray]) -> TripletSet:
    return TripletSet(
        profile_offsets=offsets,
        profile_items=items,
        profile_id=columns["profile_id"],
        positive=columns["positive"],
        negative=columns["negative"],
        user_idx=columns["user_idx"],
    )


def _compact_profiles(
    offsets: np.ndarray, items: np.ndarray, *column_sets: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Keep only the profiles some triplet uses, renumbering ``profile_id`` in place."""
    used = used_ids(len(offsets) - 1, *(c["profile_id"] for c in column_sets))
    new_offsets, new_items = gather_csr_rows(np.asarray(offsets, dtype=np.int64), items, used)
    renumber = np.full(len(offsets) - 1, -1, dtype=np.int32)
    renumber[used] = np.arange(len(used), dtype=np.int32)
    for columns in column_sets:
        columns["profile_id"] = renumber[columns["profile_id"]]
    return new_offsets, new_items.astype(np.int32)


def _sample(
    strategy: Strategy, inputs: SamplingInputs, target_train: int, target_validation: int, seed: int, style: str
) -> StrategySample:
    draws = StrategyDraws(inputs, style)
    plan = draws.plan(strategy)
    filler = _QuotaFill(draws, plan)
    rng_train, rng_validation, rng_trim = (
        np.random.default_rng(np.random.SeedSequence([seed, strategy.code, stream])) for stream in (0, 1, 2)
    )
    n_eligible = len(plan.units)
    quota_train = math.ceil(target_train / n_eligible) if n_eligible else 0
    quota_validation = math.ceil(target_validation / n_eligible) if n_eligible else 0

    train = filler.fill(quota_train, np.zeros(0, dtype=np.uint64), rng_train)
    train = _trim(train, target_train, rng_trim)
    validation = filler.fill(quota_validation, np.sort(filler.hashes(train)), rng_validation)
    validation = _trim(validation, target_validation, rng_trim)
    budget_capped = len(train["profile_id"]) < target_train
    if budget_capped:
        train, validation = _reserve_validation(train, validation, target_train, target_validation, rng_trim)

    offsets, items = _compact_profiles(plan.profile_offsets, plan.profile_items, train, validation)
    train_set = _make_triplet_set(offsets, items, train)
    validation_set = _make_triplet_set(offsets, items, validation)
    length_counts = np.bincount(train_set.profile_lengths()[train_set.profile_id])
    lengths = np.flatnonzero(length_counts)
    counts = length_counts[lengths]
    stats = {
        "strategy": strategy.value,
        "seed": int(seed),
        "draw_style": style,
        "target_train": int(target_train),
        "target_validation": int(target_validation),
        "actual_train": len(train_set),
        "actual_validation": len(validation_set),
        "budget_capped": bool(budget_capped),
        "eligible_users_or_items": int(n_eligible),
        "quota_per_unit_train": int(quota_train),
        "quota_per_unit_validation": int(quota_validation),
        "hash_collisions": int(filler.hash_collisions),
        "near_duplicates_rejected": int(draws.near_duplicates_rejected),
        "failed_attempts": int(filler.failed_attempts),
        "n_profiles": train_set.n_profiles,
        "profile_length_histogram": {int(k): int(v) for k, v in zip(lengths, counts)},
        **plan.notes,
    }
    return StrategySample(train=train_set, validation=validation_set, stats=stats, strategy=strategy)


def sample_strategy(
    strategy: Strategy | str, inputs: SamplingInputs, budget: SamplingBudget, seed: int, style: str = "ours"
) -> StrategySample:
    """Sample one of the six strategies with its share of the budget.

    Training and validation triplets come from separate seed streams; validation triplets never
    repeat a training triplet of this strategy. Same inputs, budget and seed give identical arrays.
    ``style``: "ours" or "authors", how draws go where the paper is silent (``draws.StrategyDraws``).
    """
    chosen = Strategy.parse(strategy, GUIDED_STRATEGIES)
    return _sample(chosen, inputs, budget.per_strategy_train(), budget.per_strategy_validation(), seed, style)


def sample_random(
    inputs: SamplingInputs, budget: SamplingBudget, seed: int, strategy: Strategy | str = Strategy.RANDOM
) -> StrategySample:
    """The paper's random-sampling ablation (Figure 3) with the whole budget.

    ``random`` (CuratorNet's, the paper's section 3.3): a user u with 2+ training items, a positive i
    uniform over their training items, profile = P_u \\ i (their history without i), negative uniform over
    items u never bought in training. Users with one training item cannot form one; their
    share of the budget goes to the others (``users_skipped_one_training_item`` in the stats).
    ``random_bpr`` (VBPR's): the same (u, i, j) draw for every user with a training item; the stored
    profile is the full history, which VBPR does not read.
    """
    chosen = Strategy.parse(strategy, RANDOM_SAMPLINGS, what="random sampling")
    return _sample(chosen, inputs, budget.random_train(), budget.random_validation(), seed, "ours")
