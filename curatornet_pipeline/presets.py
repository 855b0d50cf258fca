"""Named run configurations for ``curatornet materialize --preset NAME``.

``paper``: the authors' training in full (CuratorNet paper, section 5.1, and their released code) on whatever
data the run reads: 10,000,000 training triplets for the six strategies and for each random-sampling ablation;
the lambda grid [0, 1e-4, 1e-3, 1e-2] for CuratorNet and VBPR, guided and random sampling alike; fp32 everywhere
(no bf16 autocast under ``precision: auto``); exactly 10 epochs (no early stopping) with the authors'
learning-rate schedule (x0.6 after two epochs without a better validation accuracy, floor 1e-6), keeping the best
epoch; CuratorNet's learning rate 1e-4 and the authors' batching (triplets grouped by profile length, up to
100,000 profile+item slots per batch); the authors' draws where the paper is silent (``draws: authors``); the
exact silhouette over every artwork when choosing the k-means run.
VBPR keeps its own learning rate and batch size (the paper gives neither). Every remaining difference from the
paper is listed in docs/reproducing_the_paper.md.
"""

from __future__ import annotations

import copy

PAPER_LAMBDA_GRID = [0.0, 1e-4, 1e-3, 1e-2]

# The authors' schedule, shared by every model: their fixed epoch count, the x0.6 plateau decay, fp32.
_PAPER_SCHEDULE = {
    "l2_lambdas": PAPER_LAMBDA_GRID,
    "max_epochs": 10,
    "early_stopping_patience": 0,
    "lr_decay": 0.6,
    "lr_patience": 2,
    "min_learning_rate": 1e-6,
    "precision": "fp32",
}
_PAPER_CURATORNET = {
    **_PAPER_SCHEDULE,
    "learning_rate": 1e-4,
    "batching": "length_grouped",
    "max_batch_slots": 100_000,
}

PRESETS: dict[str, dict[str, dict]] = {
    "paper": {
        "resnet50_embeddings": {"precision": "fp32"},
        "visual_clusters": {"silhouette_sample_size": 0},
        "triplets": {"preset": "paper", "draws": "authors"},
        "random_triplets": {"preset": "paper"},
        "curatornet_model": _PAPER_CURATORNET,
        "curatornet_random_sampling_model": _PAPER_CURATORNET,
        "vbpr_model": _PAPER_SCHEDULE,
        "vbpr_random_sampling_model": _PAPER_SCHEDULE,
    }
}


def apply_preset(run_config: dict, name: str) -> dict:
    """``run_config`` with the preset's op config added; values already in ``run_config`` win."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    merged = copy.deepcopy(run_config)
    for op, fields in PRESETS[name].items():
        config = merged.setdefault("ops", {}).setdefault(op, {}).setdefault("config", {})
        for field, value in fields.items():
            config.setdefault(field, copy.deepcopy(value))
    return merged
