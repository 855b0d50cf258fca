"""Model group: CuratorNet (per lambda, and on the random-sampling ablation), VBPR, item and user vectors."""

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource
from pydantic import Field

from curatornet_pipeline import plots, tables
from curatornet_pipeline.executors import accelerated_step_tags
from curatornet_pipeline.assets.metadata import (
    frame_markdown,
    image_markdown,
    plot_key,
    rounded,
    table_key,
    table_metadata,
)
from curatornet_pipeline.core.device import DeviceSetting
from curatornet_pipeline.core.evaluation import evaluation_users, format_lambda
from curatornet_pipeline.core.model import CuratorNetConfig
from curatornet_pipeline.core.precision import PrecisionSetting
from curatornet_pipeline.core.training import TrainingConfig, model_from_bytes, model_to_bytes, train_curatornet
from curatornet_pipeline.core.vbpr import VBPRConfig, train_vbpr
from curatornet_pipeline.readers import (
    CURATORNET_RANDOM_TRIPLETS,
    SIX_STRATEGY_TRIPLETS,
    VBPR_GUIDED_TRIPLETS,
    VBPR_RANDOM_TRIPLETS,
    TripletSource,
    load_catalogue_and_split,
    load_curatornet_models,
    load_model_features,
)
from curatornet_pipeline.storage import replace_partitions, replace_tables, require_table, vector_column
from curatornet_pipeline.tables import RANDOM_SAMPLING, SIX_STRATEGIES, STRATEGIES_3_AND_4

GROUP = "model"


def check_lambda_grid(l2_lambdas: list[float]) -> None:
    labels = [format_lambda(l2) for l2 in l2_lambdas]
    if not labels or len(set(labels)) != len(labels) or min(l2_lambdas) < 0:
        raise ValueError(f"l2_lambdas must be a non-empty list of distinct values >= 0, got {l2_lambdas}")


class TrainingScheduleConfig(dg.Config):
    """What CuratorNet and VBPR training share: the lambda grid, the schedule, the stopping rule, the device."""

    l2_lambdas: list[float] = Field(
        default=[1e-4],
        description="One model per lambda. The paper's grid is [0, 1e-4, 1e-3, 1e-2] (best for CuratorNet: 1e-4); "
        "the best by validation accuracy is the one Figure 3 shows.",
    )
    learning_rate: float = Field(
        default=1e-3, description="Initial Adam learning rate (the authors' CuratorNet: 1e-4 with 10M triplets)."
    )
    lr_decay: float = Field(
        default=0.6, description="Factor applied after lr_patience epochs without a better validation accuracy."
    )
    lr_patience: int = Field(default=2, description="Epochs without improvement before the learning rate decays.")
    min_learning_rate: float = Field(default=1e-6, description="Floor of the learning rate.")
    max_epochs: int = Field(
        default=25, description="At most this many epochs; the best one by validation accuracy is kept."
    )
    early_stopping_patience: int = Field(
        default=3,
        description="Stop after this many epochs in a row without a better validation accuracy (0 = run max_epochs).",
    )
    early_stopping_min_improvement: float = Field(
        default=0.001,
        description="What counts as a better validation accuracy for stopping: more than this above the last "
        "one that did (0 = any new best). The kept checkpoint is still the best epoch.",
    )
    batch_size: int = Field(default=4096, description="Triplets per batch.")
    seed: int = Field(default=0, description="Seed of initialisation and shuffling.")
    device: DeviceSetting = Field(default="auto", description="'auto' (GPU when present), 'cpu' or 'cuda'.")
    precision: PrecisionSetting = Field(
        default="auto",
        description="Forward-pass precision: 'auto' (bf16 autocast on a GPU or a CPU with native bf16, else fp32; "
        "CURATORNET_PRECISION overrides), 'fp32' or 'bf16'.",
    )


class CuratorNetTrainingConfig(TrainingScheduleConfig):
    user_dims: list[int] = Field(default=[300, 300, 200], description="User tower sizes (paper text: [300, 200, 200]).")
    batching: Literal["shuffled", "length_grouped"] = Field(
        default="shuffled",
        description="'shuffled': batch_size triplets of a fresh permutation each epoch. 'length_grouped' (the "
        "authors'): batches of one profile length, up to max_batch_slots profile+item slots each, reshuffled "
        "each epoch; batch_size is then unused.",
    )
    max_batch_slots: int = Field(
        default=100_000, description="With batching='length_grouped': profile+item slots per batch (the authors: ~100,000)."
    )
    max_grad_norm: float = Field(
        default=0.0,
        description="> 0: clip each batch's gradient to this global L2 norm before the Adam step (0 = off). "
        "See docs/reproducing_the_paper.md, 'Loss spikes'.",
    )

    def training_config(self, l2_lambda: float) -> TrainingConfig:
        return TrainingConfig(
            l2_lambda=l2_lambda,
            learning_rate=self.learning_rate,
            lr_decay=self.lr_decay,
            lr_patience=self.lr_patience,
            min_learning_rate=min(self.min_learning_rate, self.learning_rate),
            max_epochs=self.max_epochs,
            early_stopping_patience=self.early_stopping_patience,
            early_stopping_min_improvement=self.early_stopping_min_improvement,
            batch_size=self.batch_size,
            seed=self.seed,
            device=self.device,
            precision=self.precision,
            batching=self.batching,
            max_batch_slots=self.max_batch_slots,
            max_grad_norm=self.max_grad_norm,
        )


def _upstream_lineage(context: dg.AssetExecutionContext, keys: list[str]) -> dict:
    """Run id and time of the materializations this model was trained from."""
    lineage: dict = {"run_id": context.run.run_id}
    for key in keys:
        event = context.instance.get_latest_materialization_event(dg.AssetKey(key))
        if event is not None:
            lineage[key] = {
                "run_id": event.run_id,
                "materialized_at": datetime.fromtimestamp(event.timestamp, tz=timezone.utc).isoformat(),
            }
    return lineage


def _train_curatornet_variant(
    context: dg.AssetExecutionContext,
    config: CuratorNetTrainingConfig,
    duckdb: DuckDBResource,
    variant: str,
    source: TripletSource,
) -> dg.MaterializeResult:
    check_lambda_grid(config.l2_lambdas)
    with duckdb.get_connection() as con:
        require_table(con, source.triplets)
        _, features = load_model_features(con)
        train, validation = source.read(con, "train"), source.read(con, "validation")
    model_config = CuratorNetConfig(input_dim=features.shape[1], user_dims=tuple(config.user_dims))
    lineage = _upstream_lineage(context, [source.asset, "resnet50_embeddings"])
    model_rows, histories = [], []
    for l2_lambda in config.l2_lambdas:
        model_id = f"curatornet_{variant}_lambda_{format_lambda(l2_lambda)}"
        context.log.info(f"training {model_id} on {len(train)} triplets ({len(validation)} validation)")
        training_config = config.training_config(l2_lambda)
        started = time.perf_counter()
        result = train_curatornet(features, train, validation, training_config, context.log.info, model_config)
        seconds = time.perf_counter() - started
        best = result.history.loc[result.history["epoch"] == result.best_epoch].iloc[0]
        model_rows.append(
            {
                "model_id": model_id,
                "variant": variant,
                "run_id": context.run.run_id,
                "l2_lambda": float(l2_lambda),
                "trained_at": datetime.now(timezone.utc).replace(tzinfo=None),
                "best_epoch": int(result.best_epoch),
                "validation_accuracy": float(best["validation_accuracy"]),
                "device": result.device_used,
                "training_seconds": float(seconds),
                "n_train_triplets": int(len(train)),
                "n_validation_triplets": int(len(validation)),
                "config": json.dumps(
                    {
                        **config.model_dump(),
                        "l2_lambda": l2_lambda,
                        "model": model_config.to_dict(),
                        "strategies": list(source.strategies),
                        "precision_used": result.precision_used,
                    }
                ),
                "lineage": json.dumps(lineage),
                "weights": model_to_bytes(result.model, training_config),
            }
        )
        histories.append((model_id, result.history))
    return _store_models(duckdb, CURATORNET_TABLES, variant, source, model_rows, histories, lineage)


@dataclass(frozen=True)
class ModelTables:
    """Where one model family keeps its models (one row per model) and their epoch histories."""

    models: tables.Table
    history: tables.Table


CURATORNET_TABLES = ModelTables(tables.CURATORNET_MODELS, tables.TRAINING_HISTORY)
VBPR_TABLES = ModelTables(tables.VBPR_MODELS, tables.VBPR_TRAINING_HISTORY)


def _store_models(
    duckdb: DuckDBResource,
    family: ModelTables,
    variant: str,
    source: TripletSource,
    model_rows: list[dict],
    histories: list[tuple[str, pd.DataFrame]],
    lineage: dict,
) -> dg.MaterializeResult:
    """Swap this variant's models and histories in, and describe them: the best model's figures, the curves."""
    models = pd.DataFrame(model_rows)
    history = pd.concat([h.assign(model_id=m, variant=variant) for m, h in histories], ignore_index=True)
    with duckdb.get_connection() as con:
        replace_partitions(con, {family.models: models, family.history: history}, key_values=[variant])
        # The models table holds the other variant's models too: the row count is this asset's own.
        metadata = table_metadata(con, family.models, row_count=len(models))
    # The model Figure 3 and serving would pick: best validation accuracy, ties to the smaller lambda.
    best = models.sort_values(["validation_accuracy", "l2_lambda"], ascending=[False, True]).iloc[0]
    return dg.MaterializeResult(
        metadata={
            **metadata,
            "best_model": str(best["model_id"]),
            "best_validation_accuracy": rounded(best["validation_accuracy"]),
            "best_epoch": int(best["best_epoch"]),
            "n_train_triplets": int(best["n_train_triplets"]),
            "training_seconds": rounded(models["training_seconds"].sum()),
            table_key("models"): frame_markdown(models.drop(columns=["weights", "config", "lineage", "run_id"])),
            **_curves_metadata(histories),
            "strategies": list(source.strategies),
            "lineage": dg.MetadataValue.json(lineage),
        }
    )


def _curves_metadata(histories: list[tuple[str, pd.DataFrame]]) -> dict:
    """Loss (log scale) and validation-accuracy curves, one line per model (models may stop at different epochs)."""
    longest = max((h for _, h in histories), key=len)["epoch"].tolist()

    def padded(values: list[float]) -> list[float]:
        return values + [float("nan")] * (len(longest) - len(values))

    losses = plots.line_figure(
        longest,
        {m: padded(h["train_loss"].tolist()) for m, h in histories},
        "Training loss",
        "epoch",
        "BPR loss + L2 (log scale)",
        log_y=True,
    )
    accuracies = plots.line_figure(
        longest,
        {m: padded(h["validation_accuracy"].tolist()) for m, h in histories},
        "Validation triplet accuracy",
        "epoch",
        "fraction x_ui > x_uj",
    )
    return {
        plot_key("loss curve"): image_markdown(plots.to_png(losses), "training loss"),
        plot_key("validation accuracy curve"): image_markdown(plots.to_png(accuracies), "validation accuracy"),
    }


MODEL_KINDS = {"pytorch", "duckdb"}


def model_asset(
    name: str,
    source: TripletSource,
    variant: str,
    description: str,
    config_class: type[TrainingScheduleConfig],
    train: Callable[..., dg.MaterializeResult],
    extra_deps: tuple[str, ...] = (),
) -> dg.AssetsDefinition:
    """A model asset: one model per configured lambda, trained by ``train`` on ``source``'s triplets."""

    def _asset(context: dg.AssetExecutionContext, config, duckdb: DuckDBResource) -> dg.MaterializeResult:
        return train(context, config, duckdb, variant, source)

    # Dagster reads the config schema from the annotation, which differs per model family.
    _asset.__annotations__["config"] = config_class
    return dg.asset(
        name=name,
        group_name=GROUP,
        kinds=MODEL_KINDS,
        deps=[source.asset, "resnet50_embeddings", *extra_deps],
        pool="duckdb",
        op_tags=accelerated_step_tags(),
        description=description,
    )(_asset)


curatornet_model = model_asset(
    "curatornet_model",
    SIX_STRATEGY_TRIPLETS,
    SIX_STRATEGIES,
    "CuratorNet trained on the six strategies' triplets, one model per configured L2 lambda: weights (BLOB, "
    f"loaded with torch.load(weights_only=True)), config and lineage in {tables.CURATORNET_MODELS}, epoch history "
    f"in {tables.TRAINING_HISTORY}.",
    CuratorNetTrainingConfig,
    _train_curatornet_variant,
)

curatornet_random_sampling_model = model_asset(
    "curatornet_random_sampling_model",
    CURATORNET_RANDOM_TRIPLETS,
    RANDOM_SAMPLING,
    "The ablation of the paper's Figure 3: CuratorNet trained on random_triplets' (P_u \\ i, i, j) triplets "
    "instead of the six strategies.",
    CuratorNetTrainingConfig,
    _train_curatornet_variant,
)


class VBPRTrainingConfig(TrainingScheduleConfig):
    latent_dim: int = Field(default=100, description="Latent user/item factors (the authors: 200 dims in total).")
    visual_dim: int = Field(default=100, description="Visual user factors on the learned projection of the features.")

    def vbpr_config(self, l2_lambda: float) -> VBPRConfig:
        fields = self.model_dump(exclude={"l2_lambdas"})
        fields["min_learning_rate"] = min(self.min_learning_rate, self.learning_rate)
        return VBPRConfig(**fields, l2_lambda=l2_lambda)


def _train_vbpr_variant(
    context: dg.AssetExecutionContext,
    config: VBPRTrainingConfig,
    duckdb: DuckDBResource,
    variant: str,
    source: TripletSource,
) -> dg.MaterializeResult:
    check_lambda_grid(config.l2_lambdas)
    with duckdb.get_connection() as con:
        require_table(con, source.triplets)
        _, features = load_model_features(con)
        train, validation = source.read(con, "train"), source.read(con, "validation")
        n_users = int(con.execute(f"SELECT count(*) FROM {tables.USERS}").fetchone()[0])
    lineage = _upstream_lineage(context, [source.asset, "resnet50_embeddings"])
    model_rows, histories = [], []
    for l2_lambda in config.l2_lambdas:
        model_id = f"vbpr_{variant}_lambda_{format_lambda(l2_lambda)}"
        context.log.info(f"training {model_id} on {len(train)} triplets of {', '.join(source.strategies)}")
        started = time.perf_counter()
        result = train_vbpr(features, train, validation, n_users, config.vbpr_config(l2_lambda), context.log.info)
        model_rows.append(
            {
                "model_id": model_id,
                "variant": variant,
                "run_id": context.run.run_id,
                "l2_lambda": float(l2_lambda),
                "trained_at": datetime.now(timezone.utc).replace(tzinfo=None),
                "best_epoch": int(result.best_epoch),
                "validation_accuracy": result.validation_accuracy,
                "device": result.device_used,
                "training_seconds": float(time.perf_counter() - started),
                "n_train_triplets": int(len(train)),
                "n_validation_triplets": int(len(validation)),
                "skipped_one_item_triplets": int(result.model.skipped_triplets),
                "config": json.dumps(
                    {
                        **config.model_dump(),
                        "l2_lambda": l2_lambda,
                        "strategies": list(source.strategies),
                        "precision_used": result.precision_used,
                    }
                ),
                "lineage": json.dumps(lineage),
                "weights": result.model.to_bytes(),
            }
        )
        histories.append((model_id, result.history))
    return _store_models(duckdb, VBPR_TABLES, variant, source, model_rows, histories, lineage)


# VBPR's user factors are indexed by split.users, hence the extra dependency on the split.
vbpr_model = model_asset(
    "vbpr_model",
    VBPR_GUIDED_TRIPLETS,
    STRATEGIES_3_AND_4,
    "VBPR (He & McAuley 2016), our PyTorch implementation, one model per L2 lambda, trained as in the paper on "
    "the triplets of strategies 3 and 4 only (VBPR has no notion of sessions or baskets) until validation "
    f"accuracy stops improving ({tables.VBPR_MODELS}, {tables.VBPR_TRAINING_HISTORY}).",
    VBPRTrainingConfig,
    _train_vbpr_variant,
    ("last_basket_split",),
)

vbpr_random_sampling_model = model_asset(
    "vbpr_random_sampling_model",
    VBPR_RANDOM_TRIPLETS,
    RANDOM_SAMPLING,
    "VBPR with random sampling (paper Figure 3): classic BPR triplets (u, i, j), j uniform over the items u never "
    "bought (random_triplets, strategy random_bpr); same lambda grid and stopping rule as vbpr_model.",
    VBPRTrainingConfig,
    _train_vbpr_variant,
    ("last_basket_split",),
)


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "item_embeddings",
            group_name=GROUP,
            kinds=MODEL_KINDS,
            deps=["curatornet_model", "curatornet_random_sampling_model", "resnet50_embeddings"],
            description="The 200-d CuratorNet item vector of every artwork, per trained model "
            f"({tables.ITEM_EMBEDDINGS}).",
        ),
        dg.AssetSpec(
            "user_vectors",
            group_name=GROUP,
            kinds=MODEL_KINDS,
            deps=["curatornet_model", "curatornet_random_sampling_model", "last_basket_split"],
            description="The 200-d CuratorNet user vector of every evaluation user (training profile), per model.",
        ),
    ],
    pool="duckdb",
)
def item_and_user_vectors(context: dg.AssetExecutionContext, duckdb: DuckDBResource):
    with duckdb.get_connection() as con:
        _, features = load_model_features(con)
        models = load_curatornet_models(con)
        artworks, transactions = load_catalogue_and_split(con)
    users = evaluation_users(artworks, transactions)
    item_frames, user_frames = [], []
    for row in models.itertuples():
        model = model_from_bytes(bytes(row.weights))
        item_vecs = model.embed_catalogue(features)
        item_frames.append(
            pd.DataFrame(
                {
                    "model_id": row.model_id,
                    # Which training run's weights produced these vectors, so readers can refuse stale ones.
                    "model_run_id": row.run_id,
                    "artwork_idx": artworks["artwork_idx"],
                    "artwork_id": artworks["artwork_id"],
                    "vector": vector_column(item_vecs),
                }
            )
        )
        user_vecs = model.profile_vectors(item_vecs, [u.profile for u in users])  # batched, not one pass per user
        user_frames.append(
            pd.DataFrame(
                {
                    "model_id": row.model_id,
                    "model_run_id": row.run_id,
                    "user_id": [u.user_id for u in users],
                    "vector": vector_column(user_vecs),
                }
            )
        )
    dim = len(item_frames[0]["vector"].iloc[0])
    with duckdb.get_connection() as con:
        replace_tables(
            con,
            {
                tables.ITEM_EMBEDDINGS: pd.concat(item_frames, ignore_index=True),
                tables.USER_VECTORS: pd.concat(user_frames, ignore_index=True),
            },
            # A catalogue may have no evaluation user; the user vectors still have the model's width.
            vector_widths={tables.USER_VECTORS: dim},
        )
        item_meta = table_metadata(con, tables.ITEM_EMBEDDINGS)
        user_meta = table_metadata(con, tables.USER_VECTORS)
    yield dg.MaterializeResult(
        asset_key="item_embeddings", metadata={**item_meta, "models": models["model_id"].tolist()}
    )
    yield dg.MaterializeResult(asset_key="user_vectors", metadata={**user_meta, "n_evaluation_users": len(users)})
