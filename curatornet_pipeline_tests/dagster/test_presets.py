"""`curatornet materialize --preset paper`: the paper's settings as a run config the real job accepts."""

import dagster as dg
import pytest

from curatornet_pipeline.assets.model import CuratorNetTrainingConfig, VBPRTrainingConfig
from curatornet_pipeline.assets.triplets import SamplingConfig
from curatornet_pipeline.configs import ClusteringConfig, EmbeddingConfig
from curatornet_pipeline.definitions import defs
from curatornet_pipeline.jobs import FULL_REFRESH_JOB
from curatornet_pipeline.presets import apply_preset

MODELS = ("curatornet_model", "curatornet_random_sampling_model", "vbpr_model", "vbpr_random_sampling_model")


def test_paper_preset_is_a_valid_run_config_with_the_papers_settings():
    run_config = apply_preset({}, "paper")
    job = defs.resolve_job_def(FULL_REFRESH_JOB)
    assert dg.validate_run_config(job, run_config)
    ops = run_config["ops"]
    for sampler in ("triplets", "random_triplets"):
        assert SamplingConfig(**ops[sampler]["config"]).budget(n_artworks=6040).total_train == 10_000_000
    for model in MODELS:
        assert ops[model]["config"]["l2_lambdas"] == [0.0, 1e-4, 1e-3, 1e-2]
    for model in MODELS[:2]:
        assert CuratorNetTrainingConfig(**ops[model]["config"]).training_config(0.0).learning_rate == 1e-4
    assert VBPRTrainingConfig(**ops["vbpr_model"]["config"]).vbpr_config(0.0).learning_rate == 1e-3


def test_paper_preset_resolves_to_the_authors_training_in_full():
    ops = apply_preset({}, "paper")["ops"]
    for model in MODELS[:2]:
        resolved = CuratorNetTrainingConfig(**ops[model]["config"]).training_config(1e-4)
        assert (resolved.precision, resolved.learning_rate, resolved.max_epochs) == ("fp32", 1e-4, 10)
        assert (resolved.lr_decay, resolved.lr_patience, resolved.min_learning_rate) == (0.6, 2, 1e-6)
        assert resolved.early_stopping_patience == 0  # their fixed epoch count, no early stop
        assert (resolved.batching, resolved.max_batch_slots) == ("length_grouped", 100_000)
    for model in MODELS[2:]:
        resolved = VBPRTrainingConfig(**ops[model]["config"]).vbpr_config(1e-4)
        assert (resolved.precision, resolved.max_epochs, resolved.early_stopping_patience) == ("fp32", 10, 0)
        assert (resolved.lr_decay, resolved.lr_patience, resolved.min_learning_rate) == (0.6, 2, 1e-6)
    assert EmbeddingConfig(**ops["resnet50_embeddings"]["config"]).precision == "fp32"
    assert ClusteringConfig(**ops["visual_clusters"]["config"]).silhouette_sample_size == 0  # exact silhouette
    # Our improved default stays the default: no preset, no change.
    default = CuratorNetTrainingConfig().training_config(1e-4)
    assert (default.batching, default.precision, default.early_stopping_patience) == ("shuffled", "auto", 3)


def test_values_from_a_config_file_win_over_the_preset():
    mine = {"ops": {"curatornet_model": {"config": {"l2_lambdas": [1e-3], "max_epochs": 2}}}}
    merged = apply_preset(mine, "paper")
    config = merged["ops"]["curatornet_model"]["config"]
    assert (config["l2_lambdas"], config["max_epochs"], config["learning_rate"]) == ([1e-3], 2, 1e-4)
    assert mine == {"ops": {"curatornet_model": {"config": {"l2_lambdas": [1e-3], "max_epochs": 2}}}}  # not mutated
    with pytest.raises(ValueError, match="unknown preset"):
        apply_preset({}, "fast")


@pytest.mark.parametrize("name", ["small_run.yaml", "lambda_grid.yaml"])
def test_example_configs_are_valid_run_configs(name):
    import yaml
    from pathlib import Path

    run_config = yaml.safe_load((Path(__file__).resolve().parents[2] / "examples" / name).read_text())
    assert dg.validate_run_config(defs.resolve_job_def(FULL_REFRESH_JOB), run_config)
