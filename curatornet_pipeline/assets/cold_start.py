"""Cold-start group: CuratorNet against retrained baselines for new customers and new artworks (issue 20).

Each asset retrains CuratorNet and VBPR on its protocol's training view (``core.cold_start``) and scores every
method on the newcomers (``core.cold_start_evaluation``). Two extra trainings per protocol would double the
full refresh, so the group is its own job (``jobs.COLD_START_JOB``), run after a full refresh.
"""

from typing import Optional

import dagster as dg
import numpy as np
import pandas as pd
from dagster_duckdb import DuckDBResource
from pydantic import Field

from curatornet_pipeline import plots, tables
from curatornet_pipeline.assets.metadata import frame_markdown, image_markdown, plot_key, rounded, table_key
from curatornet_pipeline.assets.metadata import table_metadata
from curatornet_pipeline.core.cold_start import (
    NEW_ARTWORKS,
    NEW_CUSTOMERS,
    ColdStartSetup,
    new_artwork_setup,
    new_customer_setup,
    setup_summary,
)
from curatornet_pipeline.core.cold_start_evaluation import CURATORNET, ProtocolResult, evaluate_protocol
from curatornet_pipeline.core.cold_start_models import ColdStartTraining, ProtocolModels, train_protocol_models
from curatornet_pipeline.core.device import DeviceSetting
from curatornet_pipeline.core.evaluation import evaluation_users, method_label
from curatornet_pipeline.core.model import CuratorNetConfig
from curatornet_pipeline.core.precision import PrecisionSetting
from curatornet_pipeline.core.preflight import default_train_triplets
from curatornet_pipeline.core.sampling import SamplingBudget
from curatornet_pipeline.core.training import TrainingConfig
from curatornet_pipeline.core.vbpr import VBPRConfig
from curatornet_pipeline.core.vbpr_fold_in import FoldInConfig
from curatornet_pipeline.lineage import require_consistent, table_inputs
from curatornet_pipeline.readers import load_catalogue_and_split, load_model_features, load_visual_clusters
from curatornet_pipeline.storage import read_frame, replace_partitions, table_exists

GROUP = "cold_start"
# Both protocols write these tables, one partition each (tables.py).
SHARED_TABLES = (
    tables.COLD_START_PROTOCOLS,
    tables.COLD_START_USERS,
    tables.COLD_START_TRAINING_PURCHASES,
    tables.COLD_START_TRIPLET_USERS,
    tables.COLD_START_PER_USER_METRICS,
)
METRIC_TABLES = {NEW_CUSTOMERS: tables.NEW_CUSTOMER_METRICS, NEW_ARTWORKS: tables.NEW_ARTWORK_METRICS}
DEPS = ["last_basket_split", "visual_clusters", "resnet50_embeddings", "metric_table"]


class ColdStartConfig(dg.Config):
    """The protocol's knobs; training defaults are the main models' (curatornet_model, vbpr_model)."""

    held_out_fraction: float = Field(
        default=0.2, description="New customers: share of the repeat buyers held out of all training."
    )
    cutoff_quantile: float = Field(
        default=0.8, description="New artworks: the cut-off time is this quantile of the purchase times."
    )
    seed: int = Field(default=0, description="Seed of the held-out draw, sampling, training, fold-in and Random.")
    total_train_triplets: Optional[int] = Field(
        default=None, description="Training triplets over the six strategies; unset: the triplets asset's default."
    )
    l2_lambda: float = Field(default=1e-4, description="L2 lambda of both retrained models and of fold-in.")
    learning_rate: float = Field(default=1e-3, description="Initial Adam learning rate of both models.")
    max_epochs: int = Field(default=25, description="At most this many epochs; the best by validation accuracy is kept.")
    early_stopping_patience: int = Field(default=3, description="Epochs without a better validation accuracy to stop.")
    batch_size: int = Field(default=4096, description="Triplets per batch.")
    fold_in_steps: int = Field(default=100, description="VBPR fold-in: Adam steps for the new customers' vectors.")
    fold_in_pairs_per_step: int = Field(default=32, description="VBPR fold-in: (i, j) pairs per customer and step.")
    fold_in_learning_rate: float = Field(default=0.05, description="VBPR fold-in: Adam learning rate.")
    device: DeviceSetting = Field(default="auto", description="'auto' (GPU when present), 'cpu' or 'cuda'.")
    precision: PrecisionSetting = Field(
        default="auto", description="Forward-pass precision: 'auto', 'fp32' or 'bf16' (as the model assets)."
    )

    def training(self, n_artworks: int, n_features: int) -> ColdStartTraining:
        schedule = dict(
            l2_lambda=self.l2_lambda,
            learning_rate=self.learning_rate,
            min_learning_rate=min(1e-6, self.learning_rate),
            max_epochs=self.max_epochs,
            early_stopping_patience=self.early_stopping_patience,
            early_stopping_min_improvement=0.001,
            batch_size=self.batch_size,
            seed=self.seed,
            device=self.device,
            precision=self.precision,
        )
        total = self.total_train_triplets or default_train_triplets(n_artworks)
        return ColdStartTraining(
            budget=SamplingBudget(total_train=total),
            sampling_seed=self.seed,
            curatornet=TrainingConfig(**schedule),
            curatornet_model=CuratorNetConfig(input_dim=n_features),
            vbpr=VBPRConfig(**schedule),
        )

    def fold_in(self) -> FoldInConfig:
        return FoldInConfig(
            steps=self.fold_in_steps,
            pairs_per_step=self.fold_in_pairs_per_step,
            learning_rate=self.fold_in_learning_rate,
            l2_lambda=self.l2_lambda,
            seed=self.seed,
        )


_PANDAS_TYPES = {"BIGINT": "Int64", "DOUBLE": "float64", "TIMESTAMP_NS": "datetime64[ns]", "VARCHAR": object}


def _typed(table: tables.Table, frame: pd.DataFrame) -> pd.DataFrame:
    """The frame in the declared column order and types (nullable integers stay BIGINT in DuckDB)."""
    return frame[table.column_names].astype({c.name: _PANDAS_TYPES[c.type] for c in table.columns})


def _frames(
    protocol: str,
    config: ColdStartConfig,
    setup: ColdStartSetup,
    users,
    models: ProtocolModels,
    result: ProtocolResult,
    summary: dict,
) -> dict[tables.Table, pd.DataFrame]:
    fold = result.fold_in
    protocol_row = {
        "protocol": protocol,
        "held_out_fraction": config.held_out_fraction if protocol == NEW_CUSTOMERS else np.nan,
        "cutoff_quantile": config.cutoff_quantile if protocol == NEW_ARTWORKS else np.nan,
        "cutoff": setup.cutoff if setup.cutoff is not None else pd.NaT,
        "seed": config.seed,
        **summary,
        "n_train_triplets": models.summary["n_train_triplets"],
        "n_validation_triplets": models.summary["n_validation_triplets"],
        "curatornet_validation_accuracy": models.summary["curatornet_validation_accuracy"],
        "vbpr_validation_accuracy": models.summary["vbpr_validation_accuracy"],
        "fold_in_steps": fold.steps if fold else pd.NA,
        "fold_in_loss_before": fold.loss_before if fold else np.nan,
        "fold_in_loss_after": fold.loss_after if fold else np.nan,
    }
    user_rows = pd.DataFrame(
        {
            "protocol": protocol,
            "user_id": [u.user_id for u in users],
            "n_profile_items": [len(u.profile) for u in users],
            "n_candidates": [len(u.candidates) for u in users],
            "n_relevant": [len(u.relevant) for u in users],
            "n_relevant_new": [int((~setup.known_items[u.relevant]).sum()) for u in users],
        }
    )
    frames = {
        tables.COLD_START_PROTOCOLS: pd.DataFrame([protocol_row]),
        tables.COLD_START_USERS: user_rows,
        tables.COLD_START_TRAINING_PURCHASES: setup.training.assign(protocol=protocol),
        tables.COLD_START_TRIPLET_USERS: models.triplet_users.assign(protocol=protocol),
        tables.COLD_START_PER_USER_METRICS: result.per_user.assign(protocol=protocol),
        METRIC_TABLES[protocol]: result.table.assign(protocol=protocol),
    }
    return {table: _typed(table, frame) for table, frame in frames.items()}


def _main_table_auc(con, l2_lambda: float) -> dict[str, float]:
    """This protocol's method -> the same method's AUC in the main protocol's Table 2 (repeat buyers)."""
    if not table_exists(con, tables.METRIC_TABLE):
        return {}
    main = dict(read_frame(con, f"SELECT method, auc FROM {tables.METRIC_TABLE}").itertuples(index=False))
    labels = {CURATORNET: method_label("CuratorNet", l2_lambda), "VBPR": method_label("VBPR", l2_lambda)}
    return {method: main[label] for method, label in labels.items() if label in main} | {
        method: main[method] for method in ("VisRank", "Most-Popular", "Random") if method in main
    }


def _plots(protocol: str, table: pd.DataFrame, main_auc: dict[str, float]) -> dict:
    methods = table["method"].tolist()
    title = {NEW_CUSTOMERS: "new customers", NEW_ARTWORKS: "purchases after the cut-off"}[protocol]
    chart = plots.horizontal_bar_figure(
        methods,
        table["auc"].tolist(),
        f"AUC by method, {title} (CuratorNet in red)",
        "AUC",
        highlight=methods.index(CURATORNET),
    )
    metadata = {plot_key("AUC by method"): image_markdown(plots.to_png(chart), "AUC by method")}
    pairs = []
    for row in table.itertuples():
        main = main_auc.get("VBPR" if row.method.startswith("VBPR") else row.method)
        if main is not None:
            pairs.append((row.method, float(row.auc), float(main)))
    if pairs:
        metadata[plot_key("AUC vs Table 2")] = image_markdown(
            plots.paired_horizontal_bars(
                pairs, (title, "Table 2 (repeat buyers, in training)"), f"AUC: {title} vs the main protocol", "AUC"
            ),
            "AUC vs Table 2",
        )
    return metadata


def run_protocol(
    context: dg.AssetExecutionContext, config: ColdStartConfig, duckdb: DuckDBResource, protocol: str
) -> dg.MaterializeResult:
    table = METRIC_TABLES[protocol]
    with duckdb.get_connection() as con:
        require_consistent(con, table_inputs(table.name))
        artworks, transactions = load_catalogue_and_split(con)
        raw, features = load_model_features(con)
        labels, pca = load_visual_clusters(con, len(artworks))
    if protocol == NEW_CUSTOMERS:
        setup = new_customer_setup(transactions, len(artworks), config.held_out_fraction, config.seed)
    else:
        setup = new_artwork_setup(artworks, transactions, config.cutoff_quantile)
    users = evaluation_users(artworks, setup.evaluation)
    summary = setup_summary(setup, {u.user_id: u.relevant for u in users})
    context.log.info(f"{protocol}: {summary}")
    training = config.training(len(artworks), features.shape[1])
    models = train_protocol_models(setup, artworks, labels, pca, features, training, context.log.info)
    result = evaluate_protocol(setup, users, models, raw, features, config.fold_in(), config.seed)
    frames = _frames(protocol, config, setup, users, models, result, summary)
    with duckdb.get_connection() as con:
        replace_partitions(con, frames, key_values=[protocol])
        metadata = table_metadata(con, table, row_count=len(result.table))
        main_auc = _main_table_auc(con, config.l2_lambda)
    shown = result.table[["method", "auc", "ndcg_at_20", "recall_at_20", "n_users", "auc_p_value_vs_curatornet"]]
    costs = result.table[["method", "serving_step", "serving_seconds", "training_seconds", "scoring_seconds"]]
    context.log.info(f"{protocol}:\n{result.table.to_string()}")
    by_method = result.table.set_index("method")
    figures = {
        f"{method.split(' (')[0].lower().replace(' ', '_').replace('-', '_')}_auc": rounded(by_method.at[method, "auc"])
        for method in by_method.index
    }
    return dg.MaterializeResult(
        metadata={
            **metadata,
            **figures,
            **{k: (rounded(v) if isinstance(v, float) else v) for k, v in summary.items()},
            **({"cutoff": str(setup.cutoff)} if setup.cutoff is not None else {}),
            **{k: rounded(v) if isinstance(v, float) else v for k, v in models.summary.items()},
            table_key("metrics"): frame_markdown(shown),
            table_key("serving cost"): frame_markdown(costs),
            **_plots(protocol, result.table, main_auc),
        }
    )


def protocol_asset(name: str, protocol: str, description: str) -> dg.AssetsDefinition:
    """The asset of one protocol: retrain, evaluate, write its partition of the cold-start tables."""

    def _asset(
        context: dg.AssetExecutionContext, config: ColdStartConfig, duckdb: DuckDBResource
    ) -> dg.MaterializeResult:
        return run_protocol(context, config, duckdb, protocol)

    return dg.asset(
        name=name, group_name=GROUP, kinds={"pytorch", "duckdb"}, deps=DEPS, pool="duckdb", description=description
    )(_asset)


new_customer_metrics = protocol_asset(
    str(tables.NEW_CUSTOMER_METRICS.asset),
    NEW_CUSTOMERS,
    "New customers: a seeded 20% of the repeat buyers is removed from all training data, CuratorNet and VBPR are "
    "retrained without them, and each method ranks their last basket from their earlier ones "
    f"({tables.NEW_CUSTOMER_METRICS}): CuratorNet reads the profile, VBPR folds a vector in (items frozen) or "
    "falls back to item + visual bias. Paired t-tests against CuratorNet and the serving cost of each.",
)

new_artwork_metrics = protocol_asset(
    str(tables.NEW_ARTWORK_METRICS.asset),
    NEW_ARTWORKS,
    "New artworks: CuratorNet and VBPR retrained on the purchases up to a cut-off time (the 80th percentile of "
    "purchase times) and the artworks known then; each customer's first basket after it is ranked "
    f"({tables.NEW_ARTWORK_METRICS}). How many target artworks are new to the models; VBPR scores a new artwork "
    "by its visual terms only.",
)
