"""Reads of stored tables that several steps share: sampling inputs, training triplets, models and vectors.

Assets, checks and the serving readers take these from here rather than from each other's modules, so no
asset module imports another.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from curatornet_pipeline import tables
from curatornet_pipeline.core.features import zscore_catalogue
from curatornet_pipeline.core.sampling import RANDOM_BPR_STRATEGY, RANDOM_STRATEGY, STRATEGIES, SamplingInputs, Strategy
from curatornet_pipeline.core.split import TRAIN
from curatornet_pipeline.core.triplet_set import TripletSet
from curatornet_pipeline.store.parquet import arrow_table, vectors_from_arrow
from curatornet_pipeline.storage import read_frame, read_triplet_set, read_vectors, require_table

# ------------------------------------------------------------------------------------------ sampling


def sampler_rows(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The split rows the samplers read: the training view only (no test or excluded row)."""
    require_table(con, tables.LAST_BASKET_SPLIT)
    return read_frame(
        con,
        f"SELECT * FROM {tables.LAST_BASKET_SPLIT} WHERE split = ? ORDER BY source_row, artwork_idx",
        [TRAIN],
    )


def load_sampling_inputs(con: duckdb.DuckDBPyConnection) -> SamplingInputs:
    """Artists, clusters, PCA vectors and per-user training baskets, all on the canonical artwork index."""
    require_table(con, tables.VISUAL_CLUSTERS)
    artworks = read_frame(con, f"SELECT * FROM {tables.RAW_ARTWORKS} ORDER BY artwork_idx")
    transactions = sampler_rows(con)
    labels, pca = load_visual_clusters(con, len(artworks))
    users = read_frame(con, f"SELECT user_id FROM {tables.USERS} ORDER BY user_idx")["user_id"].tolist()
    return SamplingInputs.from_frames(artworks, transactions, labels, pca, users)


def load_visual_clusters(con: duckdb.DuckDBPyConnection, n_artworks: int) -> tuple[np.ndarray, np.ndarray]:
    """(cluster label int32 [N], PCA vectors [N, d]) on the canonical artwork index, for ``n_artworks`` artworks."""
    require_table(con, tables.VISUAL_CLUSTERS)
    labels = con.execute(f"SELECT cluster FROM {tables.VISUAL_CLUSTERS} ORDER BY artwork_idx").fetchnumpy()["cluster"]
    pca = read_vectors(con, f"SELECT pca FROM {tables.VISUAL_CLUSTERS} ORDER BY artwork_idx", "pca")
    if len(labels) != n_artworks:
        raise RuntimeError(
            f"{tables.VISUAL_CLUSTERS} has {len(labels)} rows but {tables.RAW_ARTWORKS} has {n_artworks}: "
            "re-materialize resnet50_embeddings and visual_clusters"
        )
    return labels.astype(np.int32), pca


def load_catalogue_and_split(con: duckdb.DuckDBPyConnection) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The artworks (canonical index order) and the labelled transactions: what the evaluation users come from."""
    require_table(con, tables.LAST_BASKET_SPLIT)
    artworks = read_frame(con, f"SELECT * FROM {tables.RAW_ARTWORKS} ORDER BY artwork_idx")
    return artworks, read_frame(con, f"SELECT * FROM {tables.LAST_BASKET_SPLIT}")


# ------------------------------------------------------------------------------------------ training


@dataclass(frozen=True)
class TripletSource:
    """The stored triplets a model trains on: which tables, which strategies."""

    triplets: tables.Table
    profiles: tables.Table
    strategies: tuple[str, ...]
    # random_profiles holds one profile table per strategy; training_profiles is one table shared by all.
    profiles_per_strategy: bool

    @property
    def asset(self) -> str:
        return str(self.triplets.asset)

    def read(self, con: duckdb.DuckDBPyConnection, split: str) -> TripletSet:
        require_table(con, self.triplets)
        marks = ", ".join("?" for _ in self.strategies)
        if self.profiles_per_strategy:
            profile_where, profile_params = "strategy = ?", [self.strategies[0]]
        else:
            profile_where, profile_params = "TRUE", []
        ts, _ = read_triplet_set(
            con,
            self.triplets,
            self.profiles,
            f"split = ? AND strategy IN ({marks})",
            [split, *self.strategies],
            profile_where,
            profile_params,
        )
        return ts


SIX_STRATEGY_TRIPLETS = TripletSource(tables.TRAINING_TRIPLETS, tables.TRAINING_PROFILES, STRATEGIES, False)
# Paper 5.1: "in VBPR we only used two sampling guidelines (D3 and D4), since VBPR has no notion of session or
# purchase baskets".
# VBPR has no notion of sessions or baskets, so the paper trains it on strategies 3 and 4 only.
VBPR_GUIDED_TRIPLETS = TripletSource(
    tables.TRAINING_TRIPLETS,
    tables.TRAINING_PROFILES,
    (Strategy.FAVOURITE_ARTIST_SIMILAR.value, Strategy.PROFILE_ITEM.value),
    False,
)
CURATORNET_RANDOM_TRIPLETS = TripletSource(tables.RANDOM_TRIPLETS, tables.RANDOM_PROFILES, (RANDOM_STRATEGY,), True)
VBPR_RANDOM_TRIPLETS = TripletSource(tables.RANDOM_TRIPLETS, tables.RANDOM_PROFILES, (RANDOM_BPR_STRATEGY,), True)


def load_model_features(con: duckdb.DuckDBPyConnection) -> tuple[np.ndarray, np.ndarray]:
    """(raw embeddings, z-scored model features), rows on the canonical artwork index."""
    require_table(con, tables.RESNET50_EMBEDDINGS)
    raw = read_vectors(con, f"SELECT embedding FROM {tables.RESNET50_EMBEDDINGS} ORDER BY artwork_idx", "embedding")
    return raw, zscore_catalogue(raw)


# ------------------------------------------------------------------------------------------ models


def _load_models(con: duckdb.DuckDBPyConnection, table: tables.Table, columns: str) -> pd.DataFrame:
    require_table(con, table)
    models = read_frame(con, f"SELECT {columns} FROM {table} ORDER BY variant, l2_lambda")
    if models.empty:
        raise RuntimeError(f"{table} is empty: materialize {table.asset} first")
    return models


def load_curatornet_models(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    return _load_models(con, tables.CURATORNET_MODELS, "model_id, variant, l2_lambda, run_id, weights")


def load_vbpr_models(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    return _load_models(con, tables.VBPR_MODELS, "model_id, variant, l2_lambda, weights")


def _load_model_vectors(
    con: duckdb.DuckDBPyConnection, table: tables.Table, key: str, model_id: str, model_run_id: str
) -> tuple[np.ndarray, np.ndarray]:
    """(keys, vectors) of one model from ``table``, refusing rows computed from other weights than the stored ones."""
    require_table(con, table)
    stale = con.execute(
        f"SELECT count(*) FROM {table} WHERE model_id = ? AND model_run_id IS DISTINCT FROM ?",
        [model_id, model_run_id],
    ).fetchone()[0]
    rows = arrow_table(con, f"SELECT {key}, vector FROM {table} WHERE model_id = ? ORDER BY {key}", [model_id])
    if stale or rows.num_rows == 0:
        raise RuntimeError(
            f"{table} does not hold vectors of the current weights of {model_id}: re-materialize item_embeddings"
        )
    return rows.column(key).to_numpy(), vectors_from_arrow(rows.column("vector"))


def load_item_vectors(con: duckdb.DuckDBPyConnection, model_id: str, model_run_id: str) -> np.ndarray:
    """One model's cached item vectors [N, D], rows in artwork_idx order."""
    return _load_model_vectors(con, tables.ITEM_EMBEDDINGS, "artwork_idx", model_id, model_run_id)[1]


def load_user_vectors(con: duckdb.DuckDBPyConnection, model_id: str, model_run_id: str) -> dict[str, np.ndarray]:
    """One model's evaluation-user vectors, by user id."""
    users, vectors = _load_model_vectors(con, tables.USER_VECTORS, "user_id", model_id, model_run_id)
    return dict(zip(map(str, users), vectors))
