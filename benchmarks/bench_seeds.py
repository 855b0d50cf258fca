"""Results over seeds: the default pipeline run several times, metrics as mean ± standard deviation.

One run's numbers are not a result: the shuffling order alone moves CuratorNet's AUC by about .02. This
benchmark materializes the whole default pipeline (every asset and check, through the real job, in this
process) once per seed, in two separate sweeps:

* training seeds (``--training-seeds``, default 0 1 2): the seeds of the triplet sampling and of every model's
  initialisation and shuffling, on the same demo gallery (``--demo-seed``, default 7);
* demo seeds (``--demo-seeds``, default 7 8 9): the synthetic gallery itself, with training seed 0;

each in fp32 and, where the machine computes bf16 natively (``core.precision``), in bf16. It prints JSON, then a
markdown report: per sweep and precision, mean ± std over the seeds of every metric of every method, and
Figure 3's differences (six strategies minus random sampling, AUC, for CuratorNet and VBPR) with a one-sample
t-test of the per-seed differences against 0 across seeds.

    python benchmarks/bench_seeds.py [--scale paper|small|tiny|<f>x] [--training-seeds 0 1 2] [--demo-seeds 7 8 9]
                                     [--precisions fp32 bf16] [--op-config JSON] [--json out.json] [--markdown out.md]
                                     [--keep DIR]

``--scale tiny`` is the smoke-test size (a few minutes on two cores); the default scale is the paper-sized demo
(``make run``'s), which takes one full ``make run`` per seed and precision: run it on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from curatornet_pipeline.core.evaluation import TABLE_2_COLUMNS  # noqa: E402 - after the path insert

METRICS = (*TABLE_2_COLUMNS, "ndcg_authors_at_20", "ndcg_authors_at_100")
SEEDED_STEPS = (
    "triplets",
    "random_triplets",
    "curatornet_model",
    "curatornet_random_sampling_model",
    "vbpr_model",
    "vbpr_random_sampling_model",
)
PRECISION_STEPS = ("resnet50_embeddings", *SEEDED_STEPS[2:])


def bf16_available() -> bool:
    """Whether this machine runs bf16 natively (a GPU, or a CPU with AVX512-BF16/AMX): the 'auto' rule."""
    import torch

    from curatornet_pipeline.core.device import resolve_device
    from curatornet_pipeline.core.precision import resolve_precision

    os.environ.pop("CURATORNET_PRECISION", None)  # the machine's own answer, not an override
    return resolve_precision("auto", resolve_device("auto")) == "bf16" or torch.cuda.is_available()


def run_config(scale: str, training_seed: int, precision: str, extra: dict | None = None) -> dict:
    """The default run config (the tiny test sizes at ``--scale tiny``), plus ``extra`` ({step: {field: value}}),
    with the seeds and precision set."""
    ops: dict = {}
    if scale == "tiny":
        from curatornet_pipeline_tests.support.tiny import TINY_OPS_CONFIG

        ops = json.loads(json.dumps(TINY_OPS_CONFIG))
    for step, fields in (extra or {}).items():
        ops.setdefault(step, {"config": {}})["config"].update(fields)
    for step in SEEDED_STEPS:
        ops.setdefault(step, {"config": {}})["config"]["seed"] = training_seed
    for step in PRECISION_STEPS:
        ops.setdefault(step, {"config": {}})["config"]["precision"] = precision
    return {"ops": ops, "loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def run_once(
    work: Path, scale: str, demo_seed: int, training_seed: int, precision: str, extra: dict | None = None
) -> dict:
    """Materialize everything once; the metric table and Figure 3 rows of that run."""
    import dagster as dg
    import duckdb

    from curatornet_pipeline import tables
    from curatornet_pipeline.definitions import build_definitions
    from curatornet_pipeline.resources import CuratorDuckDB, GallerySource
    from curatornet_pipeline.runner import materialize_everything

    data = work / f"demo{demo_seed}_train{training_seed}_{precision}"
    data.mkdir(parents=True)
    database = data / "curatornet.duckdb"
    defs = build_definitions(
        {
            "duckdb": CuratorDuckDB(database=str(database)),
            "gallery": GallerySource(source="demo", data_dir=str(data), demo_scale=scale, demo_seed=demo_seed),
        }
    )
    started = time.perf_counter()
    with dg.DagsterInstance.ephemeral() as instance:
        result = materialize_everything(defs, instance=instance, run_config=run_config(scale, training_seed, precision, extra))
    seconds = time.perf_counter() - started
    with duckdb.connect(str(database), read_only=True) as con:
        metrics = con.execute(f"SELECT * FROM {tables.METRIC_TABLE} ORDER BY method").df()
        figure = con.execute(f"SELECT * FROM {tables.FIGURE_3} ORDER BY model").df()
        epochs = con.execute(f"SELECT model_id, best_epoch FROM {tables.CURATORNET_MODELS} ORDER BY model_id").df()
    return {
        "demo_seed": demo_seed,
        "training_seed": training_seed,
        "precision": precision,
        "success": bool(result.success),
        "seconds": round(seconds, 1),
        "metrics": metrics[["method", *METRICS]].to_dict(orient="records"),
        "figure_3": figure[["model", "guided_auc", "random_auc", "auc_difference", "p_value"]].to_dict(orient="records"),
        "curatornet_best_epochs": dict(zip(epochs["model_id"], epochs["best_epoch"].astype(int))),
    }


def summarize(runs: list[dict]) -> dict:
    """Mean, std (ddof=1) and n per method and metric; Figure 3's differences tested across seeds."""
    from scipy import stats

    table: dict[str, dict[str, dict]] = {}
    for method in sorted({row["method"] for run in runs for row in run["metrics"]}):
        table[method] = {}
        for metric in METRICS:
            values = [row[metric] for run in runs for row in run["metrics"] if row["method"] == method]
            values = [v for v in values if v is not None and np.isfinite(v)]
            if values:
                table[method][metric] = {
                    "mean": float(np.mean(values)),
                    "std": float(np.std(values, ddof=1)) if len(values) > 1 else float("nan"),
                    "n": len(values),
                }
    figure: dict[str, dict] = {}
    for model in sorted({row["model"] for run in runs for row in run["figure_3"]}):
        diffs = np.array([row["auc_difference"] for run in runs for row in run["figure_3"] if row["model"] == model])
        test = stats.ttest_1samp(diffs, 0.0) if len(diffs) > 1 else None
        figure[model] = {
            "differences": diffs.round(4).tolist(),
            "mean": float(diffs.mean()),
            "std": float(diffs.std(ddof=1)) if len(diffs) > 1 else float("nan"),
            "seeds_guided_better": int((diffs > 0).sum()),
            "t": float(test.statistic) if test is not None else float("nan"),
            "p_value": float(test.pvalue) if test is not None else float("nan"),
        }
    return {"metrics": table, "figure_3": figure}


def markdown(report: dict) -> str:
    lines = [
        f"Seeds benchmark ({report['scale']} scale) on {report['machine']}, {report['date']}; precisions: "
        f"{', '.join(report['precisions'])}; extra step config: {report['op_config'] or 'none'}. "
        "Mean ± std over seeds (ddof 1).",
    ]
    for sweep in report["sweeps"]:
        summary = sweep["summary"]
        lines += [
            "",
            f"### {sweep['varied']} varied ({', '.join(map(str, sweep['seeds']))}), {sweep['precision']}",
            "",
            "| method | " + " | ".join(METRICS) + " |",
            "|---|" + "---:|" * len(METRICS),
        ]
        for method, metrics in summary["metrics"].items():
            cells = [
                f"{metrics[m]['mean']:.4f} ± {metrics[m]['std']:.4f}" if m in metrics else "-" for m in METRICS
            ]
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        lines += [
            "",
            "| Figure 3 | AUC difference per seed (six strategies − random) | mean ± std | guided better | t | p across seeds |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for model, row in summary["figure_3"].items():
            lines.append(
                f"| {model} | {', '.join(f'{d:+.4f}' for d in row['differences'])} | {row['mean']:+.4f} ± "
                f"{row['std']:.4f} | {row['seeds_guided_better']}/{len(row['differences'])} | {row['t']:.2f} | "
                f"{row['p_value']:.3g} |"
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="paper", help="demo gallery scale: paper, small, tiny or <factor>x")
    parser.add_argument("--training-seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--demo-seeds", type=int, nargs="+", default=[7, 8, 9])
    parser.add_argument("--demo-seed", type=int, default=7, help="the gallery of the training-seed sweep")
    parser.add_argument("--precisions", nargs="+", choices=["fp32", "bf16"], help="default: fp32, and bf16 if native")
    parser.add_argument(
        "--op-config",
        type=json.loads,
        default={},
        help='extra step config as JSON, e.g. \'{"curatornet_model": {"max_grad_norm": 10}}\'',
    )
    parser.add_argument("--json", type=Path)
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--keep", type=Path, help="keep every run's data folder under this directory")
    args = parser.parse_args()
    if len(args.training_seeds) < 3 or len(args.demo_seeds) < 3:
        parser.error("use at least 3 training seeds and 3 demo seeds: fewer cannot estimate a spread")
    precisions = args.precisions or (["fp32", "bf16"] if bf16_available() else ["fp32"])

    work = args.keep or Path(tempfile.mkdtemp(prefix="bench_seeds_"))
    sweeps = []
    for precision in precisions:
        plans = [
            ("training seed", args.training_seeds, [(args.demo_seed, s) for s in args.training_seeds]),
            ("demo seed", args.demo_seeds, [(d, 0) for d in args.demo_seeds]),
        ]
        for varied, seeds, pairs in plans:
            runs = []
            for demo_seed, training_seed in pairs:
                print(f"run: demo seed {demo_seed}, training seed {training_seed}, {precision}", file=sys.stderr, flush=True)
                folder = work / varied.replace(" ", "_")
                runs.append(run_once(folder, args.scale, demo_seed, training_seed, precision, args.op_config))
            sweeps.append({"varied": varied, "seeds": seeds, "precision": precision, "runs": runs, "summary": summarize(runs)})
    report = {
        "scale": args.scale,
        "machine": f"{platform.node()} ({platform.machine()}, {os.cpu_count()} CPUs)",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "precisions": precisions,
        "op_config": args.op_config,
        "sweeps": sweeps,
        "all_runs_succeeded": all(run["success"] for sweep in sweeps for run in sweep["runs"]),
    }
    text = json.dumps(report, indent=2, default=float)
    table = markdown(report)
    print(text)
    print()
    print(table)
    if args.json:
        args.json.write_text(text)
    if args.markdown:
        args.markdown.write_text(table + "\n")
    return 0 if report["all_runs_succeeded"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
