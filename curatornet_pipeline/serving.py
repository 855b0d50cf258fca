"""Cold-start recommendations from the DuckDB file: the latest trained model and its cached item vectors.

Nothing is retrained: the model's weights and item vectors are read from the tables written by the
``curatornet_model`` and ``item_embeddings`` assets.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from curatornet_pipeline.core.recommend import Recommender
from curatornet_pipeline.core.training import model_from_bytes
from curatornet_pipeline.lineage import require_consistent
from curatornet_pipeline.storage import load_item_vectors, read_frame, table_exists


@dataclass
class LoadedRecommender:
    recommender: Recommender
    model_id: str
    trained_at: object


def load_recommender(database: Path, model_id: str | None = None) -> LoadedRecommender:
    """The named model, or else the best (validation accuracy) six-strategy model of the latest training run."""
    if not Path(database).exists():
        raise FileNotFoundError(f"no DuckDB file at {database}: run `make run` first")
    with duckdb.connect(str(database), read_only=True) as con:
        for table, asset in (
            ("model.curatornet_models", "curatornet_model"),
            ("model.item_embeddings", "item_embeddings"),
        ):
            if not table_exists(con, table):
                raise RuntimeError(f"{database} has no {table}: materialize '{asset}' first (make run)")
        require_consistent(con, ["model.curatornet_models", "model.item_embeddings"])
        if model_id is None:
            row = con.execute(
                """
                SELECT model_id FROM model.curatornet_models
                WHERE variant = 'six_strategies'
                  AND run_id = (SELECT arg_max(run_id, trained_at) FROM model.curatornet_models
                                WHERE variant = 'six_strategies')
                ORDER BY validation_accuracy DESC, model_id LIMIT 1
                """
            ).fetchone()
            if row is None:
                raise RuntimeError("model.curatornet_models holds no six-strategy model")
            model_id = row[0]
        found = con.execute(
            "SELECT weights, trained_at, run_id FROM model.curatornet_models WHERE model_id = ?", [model_id]
        ).fetchone()
        if found is None:
            known = [r[0] for r in con.execute("SELECT model_id FROM model.curatornet_models").fetchall()]
            raise ValueError(f"unknown model id {model_id!r}; stored models: {', '.join(known)}")
        ids = read_frame(
            con, "SELECT artwork_id FROM model.item_embeddings WHERE model_id = ? ORDER BY artwork_idx", [model_id]
        )["artwork_id"].tolist()
        vectors = load_item_vectors(con, model_id, found[2])
    model = model_from_bytes(bytes(found[0]))
    return LoadedRecommender(Recommender(model, vectors, ids), model_id, found[1])


def recommend_for_items(
    database: Path, item_ids: list[str], k: int = 20, model_id: str | None = None
) -> tuple[pd.DataFrame, str]:
    """Top-k artworks for a new user who likes ``item_ids`` (those excluded), and the model id used."""
    loaded = load_recommender(database, model_id)
    return loaded.recommender.recommend(item_ids, k=k), loaded.model_id
