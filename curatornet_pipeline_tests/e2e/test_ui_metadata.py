"""What the Dagster UI shows: launchpad config validation, the one-click full refresh, code references, owners,
column descriptions, named pictures, key figures as plain numbers, the assets' own row counts, readable numbers."""

from __future__ import annotations

import re
from pathlib import Path

import dagster as dg
import duckdb
import matplotlib.pyplot as plt
import pytest

from curatornet_pipeline import plots
from curatornet_pipeline.assets.metadata import rounded
from curatornet_pipeline.core.sampling import STRATEGIES
from curatornet_pipeline.definitions import OWNERS, build_definitions, defs
from curatornet_pipeline.jobs import ALL_STRATEGIES_TAGS, FULL_REFRESH_JOB

from curatornet_pipeline_tests.support.tiny import tiny_resources, tiny_run_config

PACKAGE = Path(__file__).resolve().parents[2] / "curatornet_pipeline"


def _latest_metadata(materialized, asset: str, partition: str | None = None) -> dict:
    events = [
        e
        for e in materialized.result.get_asset_materialization_events()
        if e.asset_key.to_user_string() == asset and (partition is None or e.partition == partition)
    ]
    assert events, asset
    return dict(events[-1].materialization.metadata)


def _all_metadata(materialized):
    for event in materialized.result.get_asset_materialization_events():
        yield event.asset_key.to_user_string(), event.partition, event.materialization.metadata


# ------------------------------------------------------------------------------------------- launchpad


@pytest.mark.parametrize(
    ("op", "field", "bad"),
    [
        ("curatornet_model", "device", "gpu"),
        ("vbpr_random_sampling_model", "precision", "fp16"),
        ("resnet50_embeddings", "source", "png"),
        ("resnet50_embeddings", "device", "tpu"),
        ("serving_embeddings", "device", "CUDA"),
        ("triplets", "preset", "fast"),
    ],
)
def test_dagster_rejects_a_fixed_choice_outside_its_choices_before_a_run(op, field, bad):
    job = defs.resolve_job_def(FULL_REFRESH_JOB)
    with pytest.raises(dg.DagsterInvalidConfigError, match=f"{field}.*not in enum"):
        dg.validate_run_config(job, {"ops": {op: {"config": {field: bad}}}})


def test_every_fixed_choice_is_accepted():
    job = defs.resolve_job_def(FULL_REFRESH_JOB)
    for device in ("auto", "cpu", "cuda"):
        for precision in ("auto", "fp32", "bf16"):
            assert dg.validate_run_config(
                job, {"ops": {"curatornet_model": {"config": {"device": device, "precision": precision}}}}
            )
    for source in ("auto", "npy", "images"):
        assert dg.validate_run_config(job, {"ops": {"resnet50_embeddings": {"config": {"source": source}}}})
    assert dg.validate_run_config(job, {"ops": {"triplets": {"config": {"preset": "paper"}}}})


def test_a_weights_path_that_does_not_exist_fails_before_any_table_is_written(tmp_path):
    """Weights take a choice or a path, so Dagster cannot check them: the source step does, in one sentence."""
    data_dir = tmp_path / "data"
    definitions = build_definitions(tiny_resources(data_dir))
    with dg.DagsterInstance.ephemeral() as instance:
        result = definitions.resolve_job_def(FULL_REFRESH_JOB).execute_in_process(
            instance=instance,
            run_config=tiny_run_config(resnet50_embeddings={"weights": str(tmp_path / "missing.pth")}),
            asset_selection=[dg.AssetKey(k) for k in ("source_files", "raw_artworks", "raw_transactions", "resnet50_embeddings")],
            raise_on_error=False,
        )
    assert not result.success
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert [e.step_key for e in failures] == ["source_files"]
    error = failures[0].event_specific_data.error
    messages = []
    while error is not None:
        messages.append(error.message)
        error = error.cause
    assert any(
        "weights must be 'auto', 'imagenet', 'random' or the path of a local ResNet50 state_dict file" in m
        and "missing.pth" in m
        for m in messages
    )
    with duckdb.connect(str(data_dir / "curatornet.duckdb")) as con:
        tables = con.execute("SELECT table_schema || '.' || table_name FROM information_schema.tables").fetchall()
    assert not [t for (t,) in tables if t.startswith("ingest.")]


# ------------------------------------------------------------------------------------------- the full refresh job


def test_the_full_refresh_job_covers_all_six_strategies_with_no_tags_added(materialized):
    job = materialized.defs.resolve_job_def(FULL_REFRESH_JOB)
    assert ALL_STRATEGIES_TAGS.items() <= job.tags.items()
    assert "ALL_STRATEGIES_TAGS" not in job.description and "no tags" in job.description
    # The session run is launched by materialize_everything, which adds no partition tags of its own.
    run_tags = materialized.result.dagster_run.tags
    assert {k: run_tags[k] for k in ALL_STRATEGIES_TAGS} == ALL_STRATEGIES_TAGS
    partitions = {
        e.partition for e in materialized.result.get_asset_materialization_events() if e.asset_key.path == ["triplets"]
    }
    assert partitions == set(STRATEGIES)


# ------------------------------------------------------------------------------------------- definitions


def test_every_asset_links_to_the_code_that_defines_it_and_has_the_owners():
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        spec = graph.get(key)
        assert spec.owners == OWNERS, key
        references = spec.metadata["dagster/code_references"].code_references
        assert references, key
        path = Path(references[0].file_path)
        assert path.is_file() and path.resolve().is_relative_to(PACKAGE / "assets"), (key, path)
        line = path.read_text().splitlines()[references[0].line_number - 1]
        assert line.lstrip().startswith(("@dg.asset", "@dg.multi_asset", "def ")), (key, line)


def test_every_column_of_every_table_asset_is_described(materialized):
    undescribed = set()
    for asset, _, metadata in _all_metadata(materialized):
        schema = metadata.get("dagster/column_schema")
        if schema is not None:
            undescribed |= {f"{asset}.{c.name}" for c in schema.schema.columns if not c.description}
    assert not undescribed


# ------------------------------------------------------------------------------------------- metadata values


def test_pictures_and_tables_are_named_and_key_figures_are_plain_numbers(materialized):
    for asset, partition, metadata in _all_metadata(materialized):
        for key, value in metadata.items():
            if isinstance(value, dg.MarkdownMetadataValue):
                names = ("plot: ", "picture: ") if "data:image/png" in value.value else ("table: ",)
                assert key.startswith(names), (asset, partition, key)
    figures = {
        "curatornet_model": {"best_validation_accuracy": float, "best_epoch": int, "n_train_triplets": int},
        "vbpr_model": {"best_validation_accuracy": float, "best_epoch": int},
        "metric_table": {"curatornet_auc": float, "curatornet_ndcg_at_20": float, "n_users": int},
        "figure_3": {"curatornet_guided_auc": float, "curatornet_random_sampling_auc": float, "vbpr_guided_auc": float},
        "visual_clusters": {"best_silhouette": float, "n_clusters": int},
        "training_triplets": {"n_train": int, "n_validation": int},
    }
    kinds = {float: dg.FloatMetadataValue, int: dg.IntMetadataValue}
    for asset, wanted in figures.items():
        metadata = _latest_metadata(materialized, asset)
        for key, kind in wanted.items():
            assert isinstance(metadata[key], kinds[kind]), (asset, key, metadata[key])
    assert 0 <= _latest_metadata(materialized, "metric_table")["curatornet_auc"].value <= 1
    assert "plot: loss curve" in _latest_metadata(materialized, "curatornet_model")
    assert "plot: AUC by method" in _latest_metadata(materialized, "metric_table")
    assert any(k.startswith("picture: user") for k in _latest_metadata(materialized, "recommendation_gallery"))


def test_row_counts_are_the_rows_each_asset_wrote(materialized):
    with duckdb.connect(str(materialized.database), read_only=True) as con:
        guided = con.execute("SELECT count(*) FROM model.curatornet_models WHERE variant = 'six_strategies'").fetchone()
        whole = con.execute("SELECT count(*) FROM model.curatornet_models").fetchone()
        per_strategy = dict(con.execute("SELECT strategy, count(*) FROM triplets.triplets GROUP BY 1").fetchall())
    assert whole[0] > guided[0]  # the random-sampling variant shares the table
    assert _latest_metadata(materialized, "curatornet_model")["dagster/row_count"].value == guided[0]
    for strategy in STRATEGIES:
        metadata = _latest_metadata(materialized, "triplets", strategy)
        assert metadata["dagster/row_count"].value == per_strategy.get(strategy, 0)
        assert metadata["rows_all_partitions"].value == sum(per_strategy.values())


def test_numbers_print_readably(materialized):
    for asset, partition, metadata in _all_metadata(materialized):
        for key, value in metadata.items():
            if isinstance(value, dg.FloatMetadataValue) and value.value is not None:
                assert rounded(value.value) == value.value, (asset, key, value.value)
            if isinstance(value, dg.MarkdownMetadataValue) and "data:image" not in value.value:
                # No count as 2378.0000 (an AUC of 1.0000 beside 0.7204 is a fraction), no float past 4 digits.
                assert not re.search(r"\b[1-9]\d+\.0+\b", value.value), (asset, key)
                assert not re.search(r"\b0\.0*[1-9]\d{4,}\b|\b[1-9]\d*\.\d{5,}\b", value.value), (asset, key)
    models = _latest_metadata(materialized, "curatornet_model")["table: models"].value
    header, _, first = models.splitlines()[:3]
    row = dict(zip([c.strip() for c in header.strip("|").split("|")], [c.strip() for c in first.strip("|").split("|")]))
    assert re.fullmatch(r"\d+", row["n_train_triplets"]) and re.fullmatch(r"\d+", row["best_epoch"])
    metric_table = _latest_metadata(materialized, "metric_table")["table: metric table"].value
    header, _, first = metric_table.splitlines()[:3]
    row = dict(zip([c.strip() for c in header.strip("|").split("|")], [c.strip() for c in first.strip("|").split("|")]))
    assert re.fullmatch(r"\d+", row["n_users"]), row


# ------------------------------------------------------------------------------------------- charts


def test_the_auc_chart_keeps_long_method_names_apart():
    labels = [f"CuratorNet random sampling (lambda={x})" for x in ("0", "1e-4", "1e-3", "1e-2")] + [
        "VBPR random sampling (lambda=1e-4)",
        "Most popular",
        "VisRank",
        "Random",
        "Oracle",
    ]
    fig = plots.horizontal_bar_figure(labels, [0.5 + i / 50 for i in range(len(labels))], "AUC by method", "AUC")
    try:
        fig.canvas.draw()
        boxes = [t.get_window_extent() for t in fig.axes[0].get_yticklabels()]
        assert len(boxes) == len(labels)
        for upper, lower in zip(boxes, boxes[1:]):
            assert not upper.overlaps(lower)
    finally:
        plt.close(fig)


def test_the_loss_curve_uses_a_log_scale():
    fig = plots.line_figure([1, 2, 3], {"m": [2.0, 0.2, 0.1]}, "Training loss", "epoch", "loss", log_y=True)
    try:
        assert fig.axes[0].get_yscale() == "log"
    finally:
        plt.close(fig)
