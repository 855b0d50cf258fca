"""A source that cannot work fails before any table changes; a run that fails half-way is refused by readers.

Every test copies the session's DuckDB file and its tiny gallery, points the ``gallery`` resource at the copy
(as a user's UGallery folder) and runs the real full-refresh job over it.
"""

import csv
import os
from collections import Counter
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pytest

from curatornet_pipeline.readers import load_sampling_inputs
from curatornet_pipeline.cli import main
from curatornet_pipeline.core.sampling import SamplingBudget, sample_strategy, triplet_hashes
from curatornet_pipeline.definitions import build_definitions
from curatornet_pipeline.jobs import ALL_STRATEGIES_TAGS, FULL_REFRESH_JOB
from curatornet_pipeline.lineage import TABLE_INPUTS, require_consistent
from curatornet_pipeline.runner import materialize_everything
from curatornet_pipeline.tables import ALL_TABLES
from curatornet_pipeline_tests.support.processes import make_dagster_home
from curatornet_pipeline_tests.support.tiny import tiny_resources, tiny_run_config
from curatornet_pipeline_tests.support.sources import failure_message
from curatornet_pipeline_tests.support.datastore import copy_database

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def workspace(materialized, tmp_path) -> tuple[Path, Path]:
    """(a copy of the session's gallery as a user folder, a data dir holding a copy of its DuckDB file)."""
    folder = tmp_path / "gallery"
    shutil.copytree(materialized.data_dir / "demo_gallery_tiny_seed7", folder)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    copy_database(materialized.database, data_dir / "curatornet.duckdb")
    return folder, data_dir


def _materialize(data_dir: Path, folder: Path, **overrides) -> dg.ExecuteInProcessResult:
    # The seeded random-init ResNet, as for the demo gallery this folder was copied from (no download).
    overrides.setdefault("resnet50_embeddings", {"weights": "random"})
    defs = build_definitions(tiny_resources(data_dir, source=str(folder)))
    with dg.DagsterInstance.ephemeral() as instance:
        return materialize_everything(
            defs, instance=instance, run_config=tiny_run_config(**overrides), raise_on_error=False
        )


def _table_digests(database: Path) -> dict[str, tuple[int, int]]:
    """Row count and an order-independent hash of every row, for every table in the file."""
    with duckdb.connect(str(database), read_only=True) as con:
        tables = con.execute(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables ORDER BY 1"
        ).fetchall()
        return {
            name: tuple(con.execute(f"SELECT count(*), coalesce(sum(hash(t)), 0) FROM {name} t").fetchone())
            for (name,) in tables
        }


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def _generic_gallery(folder: Path, n_items: int, baskets: list[tuple[str, int, list[int]]]) -> Path:
    """A generic-format folder: items i0..i{n-1}, interactions from (user, timestamp, item numbers)."""
    shutil.rmtree(folder)
    folder.mkdir()
    _write_csv(folder / "items.csv", ["item_id", "artist_id"], [[f"i{i}", f"artist{i % 3}"] for i in range(n_items)])
    _write_csv(
        folder / "interactions.csv",
        ["user_id", "item_id", "timestamp"],
        [[user, f"i{item}", 1_500_000_000 + t] for user, t, items in baskets for item in items],
    )
    return folder


def _path_in_inventory(folder: Path) -> str:
    with open(folder / "inventory.csv", "a", newline="") as handle:
        csv.writer(handle).writerow(["../../etc/passwd", "someone", 1_400_000_000])
    return "../../etc/passwd"


BAD_SOURCES = {
    "id_that_is_a_path": (
        lambda folder: _path_in_inventory(folder),
        ["inventory.csv", "row 61", "'../../etc/passwd'", "path separator"],
    ),
    "three_artworks": (
        lambda folder: _generic_gallery(folder, 3, [("u1", 0, [0]), ("u1", 9, [1]), ("u2", 0, [2]), ("u2", 5, [0])]),
        ["3 artworks", "at least 10"],
    ),
    "one_user": (
        lambda folder: _generic_gallery(folder, 12, [("solo", t, [t, t + 1]) for t in range(4)]),
        ["1 of 1 users have two or more baskets", "at least 2"],
    ),
    "everyone_one_basket": (
        lambda folder: _generic_gallery(folder, 12, [(f"u{u}", u, [u, u + 1]) for u in range(8)]),
        ["0 of 8 users have two or more baskets"],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_SOURCES))
def test_a_source_that_cannot_work_fails_before_any_table_changes(workspace, case):
    folder, data_dir = workspace
    database = data_dir / "curatornet.duckdb"
    before = _table_digests(database)
    spoil, expected = BAD_SOURCES[case]
    spoil(folder)

    result = _materialize(data_dir, folder)

    assert not result.success
    failed = [e.step_key for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failed == ["source_files"]  # the first step: nothing after it ran
    message = failure_message(result)
    for part in expected:
        assert part in message
    assert _table_digests(database) == before


def test_too_many_configured_clusters_names_the_setting_and_the_fix(workspace):
    folder, data_dir = workspace
    before = _table_digests(data_dir / "curatornet.duckdb")
    result = _materialize(data_dir, folder, visual_clusters={"n_clusters": 100})
    assert not result.success
    message = failure_message(result)
    assert "n_clusters=100 cannot be used with 60 artworks" in message
    assert "ops.visual_clusters.config.n_clusters" in message and "curatornet materialize --config" in message
    assert _table_digests(data_dir / "curatornet.duckdb") == before


@pytest.mark.slow
def test_run_that_fails_half_way_is_refused_by_metrics_and_recommend(materialized, workspace, capsys):
    folder, data_dir = workspace
    database = data_dir / "curatornet.duckdb"
    assert main(["metrics", "--database", str(database)]) == 0  # the copied, consistent state prints
    capsys.readouterr()

    # New purchases (one row fewer) pass the preflight; a training setting that the model refuses fails the
    # run at the training step, after the ingest and the split were rewritten (the source itself is fine, so
    # the pre-check has nothing to refuse).
    lines = (folder / "purchases.csv").read_text().splitlines(keepends=True)
    (folder / "purchases.csv").write_text("".join(lines[:-1]))
    result = _materialize(data_dir, folder, curatornet_model={"batch_size": 0})
    assert not result.success
    assert "batch_size must be >= 1" in failure_message(result)

    with duckdb.connect(str(database), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM ingest.raw_transactions").fetchone()[0] > 0
        with pytest.raises(RuntimeError, match="stale") as refused:
            require_consistent(con, ["evaluation.metric_table"])
    assert "split.last_basket_split" in str(refused.value)

    assert main(["metrics", "--database", str(database)]) == 1
    err = capsys.readouterr().err
    assert "evaluation.metric_table" in err and "stale" in err and "rerun `curatornet materialize`" in err
    assert "Traceback" not in err

    with duckdb.connect(str(database), read_only=True) as con:
        some = [r[0] for r in con.execute("SELECT artwork_id FROM ingest.raw_artworks LIMIT 2").fetchall()]
    assert main(["recommend", "--items", ",".join(some), "--database", str(database)]) == 2
    assert "stale" in capsys.readouterr().err

    # Rerunning with a usable setting brings every table back in line.
    assert _materialize(data_dir, folder).success
    assert main(["metrics", "--database", str(database)]) == 0


def test_every_table_records_the_run_that_wrote_it(materialized):
    with duckdb.connect(str(materialized.database), read_only=True) as con:
        tables = {
            name
            for (name,) in con.execute(
                "SELECT table_schema || '.' || table_name FROM information_schema.tables WHERE table_schema <> 'meta'"
            ).fetchall()
        }
        recorded = dict(
            con.execute(
                "SELECT table_name, count(DISTINCT run_id) FROM meta.table_lineage GROUP BY 1"
            ).fetchall()
        )
        writers = dict(con.execute("SELECT DISTINCT table_name, run_id FROM meta.table_lineage").fetchall())
        require_consistent(con, ["evaluation.metric_table", "model.item_embeddings"])
    assert tables == set(recorded)
    assert tables <= {key.split("/")[0] for key in TABLE_INPUTS}
    assert set(recorded.values()) == {1}
    # The full refresh wrote every table but the cold-start job's, which the session ran after it.
    cold_start = {t.name for t in ALL_TABLES if t.asset in ("new_customer_metrics", "new_artwork_metrics")}
    assert cold_start and cold_start <= tables
    assert {writers[t] for t in tables - cold_start} == {materialized.result.run_id}
    assert {writers[t] for t in cold_start} == {materialized.cold_start.run_id}


def test_a_budget_above_what_the_gallery_yields_is_capped_with_validation_kept(materialized):
    with duckdb.connect(str(materialized.database), read_only=True) as con:
        inputs = load_sampling_inputs(con)
    sample = sample_strategy("2_next_basket", inputs, SamplingBudget(total_train=360_000), seed=0)
    assert sample.stats["budget_capped"]
    n_train, n_validation = len(sample.train), len(sample.validation)
    assert 0 < n_train < 60_000
    assert n_validation >= 0.04 * (n_train + n_validation)  # the 5% share of what exists, not nothing
    overlap = np.intersect1d(triplet_hashes(sample.train), triplet_hashes(sample.validation))
    assert len(overlap) == 0


@pytest.mark.slow
def test_plain_tiny_command_runs_end_to_end_with_its_defaults(tmp_path):
    """`CURATORNET_DEMO_SCALE=tiny curatornet materialize` with no config: size-dependent defaults apply."""
    env = {
        **os.environ,
        "CURATORNET_DEMO_SCALE": "tiny",
        "CURATORNET_DATA_DIR": str(tmp_path),
        "CURATORNET_SOURCE": "demo",
    }
    # Its own instance: unset, the CLI would record the run in the checkout's .dagster_home.
    env["DAGSTER_HOME"] = str(make_dagster_home(tmp_path / "home"))
    env.pop("CURATORNET_DUCKDB_PATH", None)
    cli = [sys.executable, "-m", "curatornet_pipeline.cli"]
    run = subprocess.run(
        [*cli, "materialize", "--log-level", "WARNING"], env=env, cwd=REPO, capture_output=True, text=True, timeout=900
    )
    assert run.returncode == 0, run.stderr[-3000:]
    metrics = subprocess.run([*cli, "metrics"], env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert metrics.returncode == 0, metrics.stderr
    assert "CuratorNet (lambda=1e-4)" in metrics.stdout and "Oracle" in metrics.stdout
    with duckdb.connect(str(tmp_path / "curatornet.duckdb"), read_only=True) as con:
        k = con.execute("SELECT max(n_clusters) FROM features.clustering_runs").fetchone()[0]
        n = con.execute("SELECT count(*) FROM ingest.raw_artworks").fetchone()[0]
    assert 2 <= k < n and k < 100


def test_a_strategy_with_no_eligible_user_is_stored_empty_and_the_union_goes_on(workspace):
    """Nobody with three baskets: strategy 2 (next basket after the held-out one) has no eligible user."""
    folder, data_dir = workspace
    with open(folder / "purchases.csv", newline="") as handle:
        header, *rows = list(csv.reader(handle))
    kept, baskets = [], Counter()
    for row in rows:  # one UGallery row is one basket: keep each user's first two
        if baskets[row[0]] < 2:
            kept.append(row)
            baskets[row[0]] += 1
    _write_csv(folder / "purchases.csv", header, kept)
    upstream = ["source_files", "raw_artworks", "raw_transactions", "resnet50_embeddings", "visual_clusters",
                "last_basket_split", "triplets", "training_triplets"]
    defs = build_definitions(tiny_resources(data_dir, source=str(folder)))
    with dg.DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def(FULL_REFRESH_JOB).execute_in_process(
            instance=instance,
            run_config=tiny_run_config(resnet50_embeddings={"weights": "random"}),
            tags=ALL_STRATEGIES_TAGS,
            asset_selection=[dg.AssetKey(k) for k in upstream],
            raise_on_error=False,
        )
    assert result.success
    with duckdb.connect(str(data_dir / "curatornet.duckdb"), read_only=True) as con:
        per_strategy = dict(con.execute("SELECT strategy, count(*) FROM triplets.triplets GROUP BY 1").fetchall())
        union = dict(con.execute("SELECT strategy, count(*) FROM triplets.training_triplets GROUP BY 1").fetchall())
    assert "2_next_basket" not in per_strategy and len(per_strategy) == 5
    assert set(union) == set(per_strategy)
