"""Named run configurations for ``curatornet materialize --preset NAME``.

``paper``: the paper's training settings (CuratorNet paper, section 5.1) on whatever data the run reads:
10,000,000 training triplets for the six strategies and for each random-sampling ablation, CuratorNet's
learning rate 1e-4, and the lambda grid [0, 1e-4, 1e-3, 1e-2] for CuratorNet and VBPR, guided and random
sampling alike. VBPR keeps its own learning rate (the paper gives none for it), and every model keeps the
default stopping rule (validation plateau) rather than the authors' fixed 10 epochs.
"""

from __future__ import annotations

import copy

PAPER_LAMBDA_GRID = [0.0, 1e-4, 1e-3, 1e-2]

PRESETS: dict[str, dict[str, dict]] = {
    "paper": {
        "triplets": {"preset": "paper"},
        "random_triplets": {"preset": "paper"},
        "curatornet_model": {"learning_rate": 1e-4, "l2_lambdas": PAPER_LAMBDA_GRID},
        "curatornet_random_sampling_model": {"learning_rate": 1e-4, "l2_lambdas": PAPER_LAMBDA_GRID},
        "vbpr_model": {"l2_lambdas": PAPER_LAMBDA_GRID},
        "vbpr_random_sampling_model": {"l2_lambdas": PAPER_LAMBDA_GRID},
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
