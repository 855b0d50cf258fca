"""Cold-start recommendations from the DuckDB file: the serving model and its cached item vectors.

Nothing is retrained: the model's weights come from ``curatornet_model``, item vectors from the serving
assets (or ``item_embeddings`` for another model), and only available artworks are recommended.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from curatornet_pipeline import tables
from curatornet_pipeline.core.ingest import IMAGE_EXTENSIONS
from curatornet_pipeline.core.recommend import Recommender
from curatornet_pipeline.core.training import model_from_bytes
from curatornet_pipeline.duckdb_file import connect_for_reading
from curatornet_pipeline.lineage import require_consistent
from curatornet_pipeline.serving_model import serving_model
from curatornet_pipeline.readers import load_item_vectors
from curatornet_pipeline.storage import read_frame, table_exists


class ModelLoadError(RuntimeError):
    """A stored model's weights cannot be loaded (tampered or damaged blob)."""


class MissingImagesError(RuntimeError):
    """The gallery folder lacks the images a contact sheet needs."""


def _load_model(blob: bytes, model_id: str, database: Path):
    # torch's own message for a rejected blob suggests weights_only=False, which would run the blob's
    # code; the user is told to rebuild the model instead, and the torch message is kept as the cause.
    try:
        return model_from_bytes(blob)
    except (pickle.UnpicklingError, RuntimeError, ValueError, KeyError, EOFError) as error:
        raise ModelLoadError(
            f"the stored weights of model {model_id} in {database} ({tables.CURATORNET_MODELS}) cannot be loaded "
            "safely (damaged or tampered); rematerialize the model with `curatornet materialize`"
        ) from error


@dataclass
class LoadedRecommender:
    recommender: Recommender
    model_id: str
    trained_at: object


def load_recommender(database: Path, model_id: str | None = None) -> LoadedRecommender:
    """The named model, or else the serving model (see ``serving_model``), recommending available artworks only.

    Item vectors come from serving.item_vectors for the serving model (they cover artworks uploaded since the
    last retrain) and from model.item_embeddings for any other model; availability from
    serving.available_artworks.
    """
    with connect_for_reading(Path(database)) as con:
        for table, how in (
            (tables.CURATORNET_MODELS, ""),
            (tables.ITEM_EMBEDDINGS, ""),
            (tables.AVAILABLE_ARTWORKS, " (curatornet refresh)"),
        ):
            if not table_exists(con, table):
                raise RuntimeError(f"{database} has no {table}: materialize '{table.asset}{how}' first (make run)")
        require_consistent(con, [tables.CURATORNET_MODELS.name, tables.ITEM_EMBEDDINGS.name])
        chosen = serving_model(con)
        model_id = model_id or chosen.model_id
        found = con.execute(
            f"SELECT weights, trained_at, run_id FROM {tables.CURATORNET_MODELS} WHERE model_id = ?", [model_id]
        ).fetchone()
        if found is None:
            known = [r[0] for r in con.execute(f"SELECT model_id FROM {tables.CURATORNET_MODELS}").fetchall()]
            raise ValueError(f"unknown model id {model_id!r}; stored models: {', '.join(known)}")
        if model_id == chosen.model_id and table_exists(con, tables.SERVING_ITEM_VECTORS):
            rows = con.execute(
                "SELECT v.artwork_id, v.vector, v.model_run_id, a.artwork_id IS NOT NULL AS available "
                f"FROM {tables.SERVING_ITEM_VECTORS} v LEFT JOIN {tables.AVAILABLE_ARTWORKS} a USING (artwork_id) "
                "WHERE v.model_id = ? ORDER BY v.artwork_id",
                [model_id],
            ).fetchnumpy()
            if len(rows["artwork_id"]) == 0 or (rows["model_run_id"] != found[2]).any():
                raise RuntimeError(
                    f"{tables.SERVING_ITEM_VECTORS} does not hold vectors of the current weights of {model_id}: "
                    "re-materialize item_embeddings and the serving assets (make run, or curatornet refresh)"
                )
            ids = [str(i) for i in rows["artwork_id"]]
            vectors = np.stack(rows["vector"]).astype(np.float32)
            available = rows["available"].astype(bool)
        else:
            ids = read_frame(
                con,
                f"SELECT artwork_id FROM {tables.ITEM_EMBEDDINGS} WHERE model_id = ? ORDER BY artwork_idx",
                [model_id],
            )["artwork_id"].tolist()
            vectors = load_item_vectors(con, model_id, found[2])
            served = set(read_frame(con, f"SELECT artwork_id FROM {tables.AVAILABLE_ARTWORKS}")["artwork_id"])
            available = np.array([i in served for i in ids], dtype=bool)
    model = _load_model(bytes(found[0]), model_id, Path(database))
    return LoadedRecommender(Recommender(model, vectors, ids, available), model_id, found[1])


def recommend_for_items(
    database: Path, item_ids: list[str], k: int = 20, model_id: str | None = None
) -> tuple[pd.DataFrame, str]:
    """Top-k available artworks for a new user who likes ``item_ids`` (those excluded), and the model id used."""
    loaded = load_recommender(database, model_id)
    return loaded.recommender.recommend(item_ids, k=k), loaded.model_id


def _has_images(folder: Path, artwork_ids: Sequence[str]) -> bool:
    images = folder / "images"
    if not images.is_dir():
        return False
    stems = {p.stem for p in images.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS}
    return set(artwork_ids) <= stems


def gallery_folder_with_images(candidates: Sequence[Path], artwork_ids: Sequence[str]) -> Path:
    """The first candidate folder whose images/ holds a picture of every artwork in ``artwork_ids``."""
    for folder in candidates:
        if _has_images(Path(folder), artwork_ids):
            return Path(folder)
    tried = ", ".join(str(Path(f) / "images") for f in candidates) or "no folder"
    raise MissingImagesError(
        f"no images for these artworks in {tried}: a picture needs images/<artwork_id>.png|jpg|webp, so pass "
        "--gallery FOLDER (the folder holding images/) or leave out --picture"
    )
