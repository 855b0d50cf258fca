"""Evaluation group: recommendations, per-user metrics, the paper's Table 2 and significance tests."""

import io
import time
from pathlib import Path

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource
from pydantic import Field

from curatornet_pipeline import plots, tables
from curatornet_pipeline.assets.metadata import (
    frame_markdown,
    image_markdown,
    picture_key,
    plot_key,
    rounded,
    table_key,
    table_metadata,
)
from curatornet_pipeline.core.evaluation import (
    MOST_POPULAR_METHOD,
    RANDOM_SAMPLING_METHOD,
    VBPR_RANDOM_SAMPLING_METHOD,
    aggregate_table,
    evaluate_methods,
    evaluation_users,
    figure_3_table,
    method_label,
    most_popular_scorer,
    oracle_scorer,
    random_scorer,
    side_by_side_markdown,
    training_popularity,
    user_vector_scorer,
    vbpr_scorer,
    visrank_scorer,
)
from curatornet_pipeline.core.diversity import beyond_accuracy
from curatornet_pipeline.core.ingest import find_image_files
from curatornet_pipeline.core.metrics import paired_t_tests
from curatornet_pipeline.core.picture import PictureRow, contact_sheet
from curatornet_pipeline.core.vbpr import VBPRModel
from curatornet_pipeline.lineage import require_consistent, table_inputs
from curatornet_pipeline.resources import GallerySource
from curatornet_pipeline.serving_model import serving_model
from curatornet_pipeline.readers import (
    load_catalogue_and_split,
    load_curatornet_models,
    load_item_vectors,
    load_model_features,
    load_user_vectors,
    load_vbpr_models,
)
from curatornet_pipeline.storage import read_frame, replace_tables, require_table
from curatornet_pipeline.tables import RANDOM_SAMPLING, SIX_STRATEGIES, STRATEGIES_3_AND_4

GROUP = "evaluation"
TOP_K = 20  # the list length of the beyond-accuracy columns, as the paper's @20 metrics


class EvaluationConfig(dg.Config):
    random_seed: int = Field(default=0, description="Seed of the Random baseline.")
    top_n: int = Field(default=100, description="Recommendations stored per user and method.")


def model_label(model: str, variant: str, l2_lambda: float) -> str:
    """Metric-table label of a trained model: 'CuratorNet (lambda=1e-4)', 'VBPR random sampling (lambda=0)'..."""
    if variant == RANDOM_SAMPLING:
        model = {"CuratorNet": RANDOM_SAMPLING_METHOD, "VBPR": VBPR_RANDOM_SAMPLING_METHOD}[model]
    return method_label(model, l2_lambda)


EVALUATION_DEPS = [
    "item_embeddings",
    "user_vectors",
    "vbpr_model",
    "vbpr_random_sampling_model",
    "last_basket_split",
    "resnet50_embeddings",
]


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "recommendations",
            group_name=GROUP,
            kinds={"duckdb", "pandas"},
            deps=EVALUATION_DEPS,
            description="Top-100 artworks per evaluation user and method, with scores and hits "
            f"({tables.RECOMMENDATIONS}).",
        ),
        dg.AssetSpec(
            "per_user_metrics",
            group_name=GROUP,
            kinds={"duckdb", "pandas"},
            deps=EVALUATION_DEPS,
            description="AUC, P/R/nDCG at 20 and 100 per (method, evaluation user): each user's last basket is held "
            "out and ranked among the artworks on sale at that time.",
        ),
    ],
    pool="duckdb",
)
def evaluate(context: dg.AssetExecutionContext, config: EvaluationConfig, duckdb: DuckDBResource):
    with duckdb.get_connection() as con:
        # Models, vectors and split must come from one run, not half from a run that failed later.
        require_consistent(con, table_inputs(tables.PER_USER_METRICS.name))
        artworks, transactions = load_catalogue_and_split(con)
        raw, _ = load_model_features(con)
        models = load_curatornet_models(con)
        item_vectors = {row.model_id: load_item_vectors(con, row.model_id, row.run_id) for row in models.itertuples()}
        user_vectors = {row.model_id: load_user_vectors(con, row.model_id, row.run_id) for row in models.itertuples()}
        vbpr_models = load_vbpr_models(con)
        user_index = dict(read_frame(con, f"SELECT user_id, user_idx FROM {tables.USERS}").itertuples(index=False))
    users = evaluation_users(artworks, transactions)
    if not users:
        raise RuntimeError(
            "no evaluation users: nobody has two or more baskets with training items left, so there is no held-out "
            "basket to evaluate on"
        )
    scorers = {}
    for row in models.itertuples():
        missing = {u.user_id for u in users} - set(user_vectors[row.model_id])
        if missing:
            raise RuntimeError(
                f"{tables.USER_VECTORS} lacks {len(missing)} evaluation users of {row.model_id} (the split changed "
                "since it was computed): re-materialize item_embeddings and user_vectors"
            )
        scorers[model_label("CuratorNet", row.variant, row.l2_lambda)] = user_vector_scorer(
            item_vectors[row.model_id], user_vectors[row.model_id]
        )
    scorers["VisRank"] = visrank_scorer(raw)
    for row in vbpr_models.itertuples():
        scorers[model_label("VBPR", row.variant, row.l2_lambda)] = vbpr_scorer(
            VBPRModel.from_bytes(bytes(row.weights)), user_index
        )
    scorers[MOST_POPULAR_METHOD] = most_popular_scorer(training_popularity(transactions, len(artworks)))
    scorers["Random"] = random_scorer(config.random_seed)
    scorers["Oracle"] = oracle_scorer()
    context.log.info(f"evaluating {len(scorers)} methods on {len(users)} users: {', '.join(scorers)}")
    started = time.perf_counter()
    per_user, recommendations = evaluate_methods(scorers, users, top_n=config.top_n)
    recommendations.insert(
        3, "artwork_id", artworks["artwork_id"].to_numpy()[recommendations["artwork_idx"].to_numpy()]
    )
    protocol = users[0].protocol
    per_user["protocol"] = protocol
    with duckdb.get_connection() as con:
        replace_tables(con, {tables.RECOMMENDATIONS: recommendations, tables.PER_USER_METRICS: per_user})
        rec_meta = table_metadata(con, tables.RECOMMENDATIONS)
        metric_meta = table_metadata(con, tables.PER_USER_METRICS)
    seconds = time.perf_counter() - started
    yield dg.MaterializeResult(asset_key="recommendations", metadata={**rec_meta, "methods": list(scorers)})
    yield dg.MaterializeResult(
        asset_key="per_user_metrics",
        metadata={**metric_meta, "n_users": len(users), "protocol": protocol, "seconds": rounded(seconds)},
    )


@dg.asset(
    group_name=GROUP,
    kinds={"duckdb", "pandas"},
    deps=["per_user_metrics", "recommendations"],
    pool="duckdb",
    description=(
        f"The paper's Table 2 for our run (mean metrics per method + n_users, {tables.METRIC_TABLE}), the paper's "
        f"numbers side by side, and paired t-tests between methods ({tables.SIGNIFICANCE_TESTS}). Beyond accuracy, "
        "per method over its top-20 lists: artist diversity (mean share of distinct artists in a list) and "
        "catalogue coverage (share of all artworks in at least one list); the paper reports neither."
    ),
)
def metric_table(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> dg.MaterializeResult:
    with duckdb.get_connection() as con:
        require_table(con, tables.PER_USER_METRICS)
        per_user = read_frame(con, f"SELECT * FROM {tables.PER_USER_METRICS}")
        top = read_frame(
            con, f"SELECT method, user_id, rank, artwork_idx FROM {tables.RECOMMENDATIONS} WHERE rank <= {TOP_K}"
        )
        artist_ids = read_frame(con, f"SELECT artist_id FROM {tables.RAW_ARTWORKS} ORDER BY artwork_idx")["artist_id"]
        chosen_model = serving_model(con)
    table = aggregate_table(per_user).merge(beyond_accuracy(top, artist_ids.tolist(), TOP_K), on="method", how="left")
    tests = pd.concat(
        [paired_t_tests(per_user, metric).assign(metric=metric) for metric in ("auc", "ndcg_at_20", "recall_at_20")],
        ignore_index=True,
    )
    with duckdb.get_connection() as con:
        replace_tables(con, {tables.METRIC_TABLE: table, tables.SIGNIFICANCE_TESTS: tests})
        metadata = table_metadata(con, tables.METRIC_TABLE)
    side_by_side = side_by_side_markdown(table)
    context.log.info("metrics (ours / paper; the demo gallery is synthetic, so numbers differ):\n" + side_by_side)
    auc_tests = tests[tests["metric"] == "auc"]
    methods = table["method"].tolist()
    # The key figures, charted over time by the UI: the CuratorNet that serving uses (best validation accuracy).
    curatornet = model_label("CuratorNet", chosen_model.variant, chosen_model.l2_lambda)
    figures = {}
    if curatornet in methods:
        ours = table.set_index("method").loc[curatornet]
        figures = {
            "curatornet_method": curatornet,
            "curatornet_auc": rounded(ours["auc"]),
            "curatornet_ndcg_at_20": rounded(ours["ndcg_at_20"]),
            "curatornet_recall_at_20": rounded(ours["recall_at_20"]),
        }
    else:
        context.log.warning(f"{curatornet} (the serving model) is not in the metric table: re-materialize evaluate")
    auc_chart = plots.horizontal_bar_figure(
        methods,
        table["auc"].tolist(),
        "AUC by method (the serving CuratorNet in red)",
        "AUC",
        highlight=methods.index(curatornet) if curatornet in methods else None,
    )
    return dg.MaterializeResult(
        metadata={
            **metadata,
            **figures,
            "n_users": int(table["n_users"].max()),
            table_key("metric table"): frame_markdown(table),
            table_key("ours vs paper"): dg.MetadataValue.md(
                "Ours / the paper's Table 2. On the synthetic demo gallery the numbers are not the paper's: "
                "only their ordering is comparable.\n\n" + side_by_side
            ),
            plot_key("AUC by method"): image_markdown(plots.to_png(auc_chart), "AUC by method"),
            table_key("AUC t-tests"): frame_markdown(auc_tests.drop(columns=["metric"])),
        }
    )


# Per model: its models table and the variant trained with guided sampling (the other is RANDOM_SAMPLING).
FIGURE_3_MODELS = {
    "CuratorNet": (tables.CURATORNET_MODELS, SIX_STRATEGIES),
    "VBPR": (tables.VBPR_MODELS, STRATEGIES_3_AND_4),
}


def _figure_3_methods(con) -> tuple[dict[str, tuple[str, str]], pd.DataFrame]:
    """Per model, the (guided, random-sampling) metric labels of the lambdas with the best VALIDATION accuracy.

    Test metrics never choose: the choice is made from the models tables alone. Ties go to the smaller lambda.
    """
    methods, chosen = {}, []
    for model, (table, guided_variant) in FIGURE_3_MODELS.items():
        best = read_frame(
            con,
            f"SELECT model_id, variant, l2_lambda, validation_accuracy FROM {table} "
            "ORDER BY variant, validation_accuracy DESC, l2_lambda",
        ).drop_duplicates("variant")
        lambdas = dict(zip(best["variant"], best["l2_lambda"]))
        if {guided_variant, RANDOM_SAMPLING} - set(lambdas):
            raise RuntimeError(f"{table} needs variants {guided_variant} and {RANDOM_SAMPLING}: materialize both models")
        methods[model] = tuple(model_label(model, v, float(lambdas[v])) for v in (guided_variant, RANDOM_SAMPLING))
        chosen.append(best.assign(model=model))
    return methods, pd.concat(chosen, ignore_index=True)


@dg.asset(
    group_name=GROUP,
    kinds={"duckdb", "pandas"},
    deps=[
        "per_user_metrics",
        "metric_table",
        "curatornet_model",
        "curatornet_random_sampling_model",
        "vbpr_model",
        "vbpr_random_sampling_model",
    ],
    pool="duckdb",
    description=(
        f"The paper's Figure 3 ({tables.FIGURE_3}): AUC of CuratorNet (six strategies) and VBPR (strategies 3 and 4) "
        "against the same models trained on random sampling, each at its lambda with the best validation accuracy; "
        "paired t-tests on per-user AUC; the paper's values beside ours; a bar chart."
    ),
)
def figure_3(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> dg.MaterializeResult:
    with duckdb.get_connection() as con:
        require_table(con, tables.PER_USER_METRICS)
        require_table(con, tables.VBPR_MODELS)
        methods, chosen = _figure_3_methods(con)
        per_user = read_frame(con, f"SELECT method, user_id, auc FROM {tables.PER_USER_METRICS}")
    table = figure_3_table(per_user, methods)
    with duckdb.get_connection() as con:
        replace_tables(con, {tables.FIGURE_3: table})
        metadata = table_metadata(con, tables.FIGURE_3)
    bars = []
    for row in table.itertuples():
        guided_name = "six strategies" if row.model == "CuratorNet" else "strategies 3+4"
        bars.append((f"{row.model}, {guided_name}", row.guided_auc, row.paper_guided_auc))
        bars.append((f"{row.model}, random sampling", row.random_auc, row.paper_random_auc))
    p_values = "; ".join(
        f"{row.model}: p = {row.p_value:.2g} (paper {row.paper_p_value:.2g})" for row in table.itertuples()
    )
    context.log.info(f"Figure 3: {p_values}")
    figures = {}
    for row in table.itertuples():
        prefix = row.model.lower()
        figures[f"{prefix}_guided_auc"] = rounded(row.guided_auc)
        figures[f"{prefix}_random_sampling_auc"] = rounded(row.random_auc)
        figures[f"{prefix}_p_value"] = rounded(row.p_value, 2)
    return dg.MaterializeResult(
        metadata={
            **metadata,
            **figures,
            table_key("Figure 3"): frame_markdown(table),
            plot_key("Figure 3"): image_markdown(
                plots.paired_horizontal_bars(
                    bars, ("ours", "paper"), "Figure 3: guided vs random sampling (AUC)", "AUC", footnote=p_values
                ),
                "Figure 3",
            ),
            table_key("selected by validation accuracy"): frame_markdown(chosen),
        }
    )


class GalleryConfig(dg.Config):
    n_users: int = Field(default=4, description="Evaluation users to draw (users with a hit first, then by id).")
    k: int = Field(default=10, description="Recommendations shown per user.")


@dg.asset(
    group_name=GROUP,
    kinds={"pillow", "duckdb"},
    deps=["recommendations", "metric_table", "last_basket_split", "source_files"],
    pool="duckdb",
    description=(
        "A picture per evaluation user for a few users: purchase history, held-out basket, and the top-k "
        "recommendations of the serving model (the six-strategy CuratorNet with the best validation accuracy of "
        "the latest training run) with hits framed in green. PNGs under "
        "<data_dir>/reports/ and inline in metadata."
    ),
)
def recommendation_gallery(
    context: dg.AssetExecutionContext, config: GalleryConfig, duckdb: DuckDBResource, gallery: GallerySource
) -> dg.MaterializeResult:
    with duckdb.get_connection() as con:
        chosen_model = serving_model(con)
        method = model_label("CuratorNet", chosen_model.variant, chosen_model.l2_lambda)
        recs = read_frame(
            con,
            f"SELECT user_id, rank, artwork_id, is_hit FROM {tables.RECOMMENDATIONS} WHERE method = ? AND rank <= ? "
            "ORDER BY user_id, rank",
            [method, config.k],
        )
        baskets = read_frame(
            con,
            f"SELECT user_id, artwork_id, split FROM {tables.LAST_BASKET_SPLIT} "
            "ORDER BY user_id, purchase_timestamp, basket_id",
        )
    folder = gallery.folder()
    if not (folder / "images").is_dir():
        # The UGallery files ship embeddings without images: there is nothing to draw, and that is said.
        message = f"no images folder in {folder}: add images/<artwork_id>.jpg to get pictures"
        context.log.warning(message)
        return dg.MaterializeResult(metadata={"n_pictures": 0, "skipped": message})
    hit_users = recs.groupby("user_id")["is_hit"].any()
    chosen = sorted(hit_users.index, key=lambda u: (not hit_users[u], u))[: config.n_users]
    wanted = set(recs.loc[recs["user_id"].isin(chosen), "artwork_id"]) | set(
        baskets.loc[baskets["user_id"].isin(chosen), "artwork_id"]
    )
    files = find_image_files(folder, sorted(wanted))
    out_dir = Path(gallery.data_dir).resolve() / "reports"
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("recommendations_user_*.png"):  # a smaller n_users must not leave stale pictures
        old.unlink()
    metadata: dict = {"method": method, "folder": dg.MetadataValue.path(str(out_dir))}
    for n, user_id in enumerate(chosen):
        rows = baskets[baskets["user_id"] == user_id]
        user_recs = recs[recs["user_id"] == user_id]
        sheet = contact_sheet(
            f"user {user_id} - {method}",
            [
                PictureRow(
                    "purchase history (training)", [files[a] for a in rows.loc[rows["split"] == "train", "artwork_id"]]
                ),
                PictureRow("held-out basket", [files[a] for a in rows.loc[rows["split"] == "test", "artwork_id"]]),
                PictureRow(
                    f"top {config.k} recommendations (green = in held-out basket)",
                    [files[a] for a in user_recs["artwork_id"]],
                    user_recs["is_hit"].tolist(),
                ),
            ],
        )
        path = out_dir / f"recommendations_user_{n + 1}.png"
        sheet.save(path)
        buffer = io.BytesIO()
        sheet.save(buffer, format="PNG")
        metadata[picture_key(f"user {n + 1}")] = image_markdown(buffer.getvalue(), f"recommendations for {user_id}")
    context.log.info(f"wrote {len(chosen)} pictures to {out_dir}")
    return dg.MaterializeResult(metadata={**metadata, "n_pictures": len(chosen)})
