"""The one definition of "the serving model", shared by every reader.

The serving model is the six-strategy CuratorNet with the best validation-triplet accuracy among the
models of the latest training run (ties: the smaller model id). Validation accuracy, not a test metric,
picks it: choosing by test AUC would tune on the held-out baskets. Served recommendations, the
``curatornet recommend`` command, the visitor app and the recommendation picture gallery all use it.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from curatornet_pipeline import tables
from curatornet_pipeline.storage import require_table
from curatornet_pipeline.tables import SIX_STRATEGIES


@dataclass(frozen=True)
class ServingModel:
    model_id: str
    run_id: str
    variant: str
    l2_lambda: float
    validation_accuracy: float


def serving_model(con: duckdb.DuckDBPyConnection) -> ServingModel:
    """The serving model as stored in ``model.curatornet_models``; a clear error when there is none."""
    require_table(con, tables.CURATORNET_MODELS)
    row = con.execute(
        f"""
        SELECT model_id, run_id, variant, l2_lambda, validation_accuracy FROM {tables.CURATORNET_MODELS}
        WHERE variant = ?
          AND run_id = (SELECT arg_max(run_id, trained_at) FROM {tables.CURATORNET_MODELS} WHERE variant = ?)
        ORDER BY validation_accuracy DESC, model_id LIMIT 1
        """,
        [SIX_STRATEGIES, SIX_STRATEGIES],
    ).fetchone()
    if row is None:
        raise RuntimeError(
            f"{tables.CURATORNET_MODELS} holds no six-strategy model: "
            f"materialize {tables.CURATORNET_MODELS.asset} first"
        )
    return ServingModel(str(row[0]), str(row[1]), str(row[2]), float(row[3]), float(row[4]))
