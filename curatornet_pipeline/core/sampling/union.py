"""The union of the strategies' samples: one hash space over strategies and over train/validation.

Different strategies can yield identical triplets (a user whose history is one artwork gets the same
(profile, positive, negative) from strategy 4 as strategy 5 does); the union keeps the first, so it is
somewhat smaller than the sum of the strategies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from curatornet_pipeline.core.sampling.arrays import sorted_contains, used_ids
from curatornet_pipeline.core.sampling.hashing import combine_hashes, profile_hashes
from curatornet_pipeline.core.sampling.sampler import StrategySample
from curatornet_pipeline.core.triplet_set import TripletSet, gather_csr_rows

_DTYPES = {"profile": np.int32, "positive": np.int32, "negative": np.int32, "user_idx": np.int32, "code": np.int8}


@dataclass
class TripletUnion:
    """The deduplicated union: training and validation sets sharing one profile table, and per row the
    ``Strategy.code`` (int8) of the strategy that contributed it.

    ``stats``: train_in / train_kept / train_duplicates_removed, validation_in / validation_kept /
    validation_duplicates_removed / validation_repeating_train_removed, n_profiles, n_profile_items, and
    per_strategy (stored name -> train_in, train_kept, validation_in, validation_kept).
    """

    train: TripletSet
    validation: TripletSet
    train_strategy_code: np.ndarray
    validation_strategy_code: np.ndarray
    stats: dict


def union_deduplicate(samples: list[StrategySample]) -> TripletUnion:
    """Merge strategy samples into one training and one validation set without duplicates.

    One hash space covers all strategies and both splits: a training triplet already seen (earlier in
    ``samples`` order) is dropped; a validation triplet is dropped when it repeats any kept training
    triplet (train wins) or an earlier validation triplet. Profiles are merged into one table shared by
    both returned sets (identical profiles from different strategies become one row).
    """
    tables: dict[tuple[int, int], int] = {}
    table_arrays: list[tuple[np.ndarray, np.ndarray]] = []

    def table_of(ts: TripletSet) -> int:
        key = (id(ts.profile_offsets), id(ts.profile_items))
        if key not in tables:
            tables[key] = len(table_arrays)
            table_arrays.append((np.asarray(ts.profile_offsets, dtype=np.int64), ts.profile_items))
        return tables[key]

    parts = {"train": [], "validation": []}
    for sample in samples:
        for split, ts in (("train", sample.train), ("validation", sample.validation)):
            parts[split].append((table_of(ts), ts, sample.strategy.code))

    # One global table of every input profile, then one row per distinct profile content.
    n_rows = [len(offsets) - 1 for offsets, _ in table_arrays]
    row_base = np.concatenate([[0], np.cumsum(n_rows)]).astype(np.int64)
    item_base = np.concatenate([[0], np.cumsum([len(items) for _, items in table_arrays])]).astype(np.int64)
    all_offsets = np.concatenate(
        [[0]] + [offsets[1:] + item_base[t] for t, (offsets, _) in enumerate(table_arrays)]
    ).astype(np.int64)
    all_items = (
        np.concatenate([np.asarray(items, dtype=np.int32) for _, items in table_arrays])
        if table_arrays
        else np.zeros(0, dtype=np.int32)
    )
    all_profile_hash = profile_hashes(all_offsets, all_items)
    distinct_hash, first_row, distinct_of_row = np.unique(all_profile_hash, return_index=True, return_inverse=True)
    distinct_of_row = distinct_of_row.astype(np.int32)

    def gather(split: str) -> dict[str, np.ndarray]:
        cols = {k: [] for k in _DTYPES}
        for t, ts, code in parts[split]:
            cols["profile"].append(distinct_of_row[row_base[t] + ts.profile_id])
            cols["positive"].append(ts.positive)
            cols["negative"].append(ts.negative)
            cols["user_idx"].append(ts.user_idx)
            cols["code"].append(np.full(len(ts), code, dtype=np.int8))
        return {
            k: np.concatenate([np.asarray(x, dtype=_DTYPES[k]) for x in v]) if v else np.zeros(0, dtype=_DTYPES[k])
            for k, v in cols.items()
        }

    train = gather("train")
    validation = gather("validation")
    train_hash = combine_hashes(distinct_hash[train["profile"]], train["positive"], train["negative"])
    validation_hash = combine_hashes(
        distinct_hash[validation["profile"]], validation["positive"], validation["negative"]
    )

    train_unique, train_first = np.unique(train_hash, return_index=True)
    train_keep = used_ids(len(train_hash), train_first)
    validation_unique, validation_first = np.unique(validation_hash, return_index=True)
    not_in_train = ~sorted_contains(train_unique, validation_unique)
    validation_keep = used_ids(len(validation_hash), validation_first[not_in_train])

    train = {k: v[train_keep] for k, v in train.items()}
    validation = {k: v[validation_keep] for k, v in validation.items()}

    used = used_ids(len(distinct_hash), train["profile"], validation["profile"])
    shared_offsets, shared_items = gather_csr_rows(all_offsets, all_items, first_row[used])
    new_profile_id = np.full(len(distinct_hash), -1, dtype=np.int32)
    new_profile_id[used] = np.arange(len(used), dtype=np.int32)

    def to_set(cols: dict[str, np.ndarray]) -> TripletSet:
        return TripletSet(
            profile_offsets=shared_offsets,
            profile_items=shared_items,
            profile_id=new_profile_id[cols["profile"]],
            positive=cols["positive"],
            negative=cols["negative"],
            user_idx=cols["user_idx"],
        )

    per_strategy = {}
    for sample in samples:
        code = sample.strategy.code
        per_strategy[sample.strategy.value] = {
            "train_in": len(sample.train),
            "train_kept": int((train["code"] == code).sum()),
            "validation_in": len(sample.validation),
            "validation_kept": int((validation["code"] == code).sum()),
        }
    n_validation_in = len(validation_hash)
    stats = {
        "train_in": int(len(train_hash)),
        "train_kept": int(len(train_keep)),
        "train_duplicates_removed": int(len(train_hash) - len(train_keep)),
        "validation_in": int(n_validation_in),
        "validation_kept": int(len(validation_keep)),
        "validation_duplicates_removed": int(n_validation_in - len(validation_unique)),
        "validation_repeating_train_removed": int((~not_in_train).sum()),
        "n_profiles": int(len(used)),
        "n_profile_items": int(len(shared_items)),
        "per_strategy": per_strategy,
    }
    return TripletUnion(to_set(train), to_set(validation), train["code"], validation["code"], stats)
