"""Serving group: the inventory, every customer's recommendations, "more like this", and the app's snapshot.

These assets are the fast path (job ``curatornet_serving_refresh``): they re-read the source files, embed
only images never embedded before, and recompute vectors and top-k lists with the current serving model.
They never train, never cluster, never sample triplets, and write only the ``serving`` schema (plus the
snapshot file), so the model and evaluation tables of the last full retrain stay exactly as they were.
"""


import json
import time
from datetime import datetime, timezone

import dagster as dg
import numpy as np
import pandas as pd
from dagster_duckdb import DuckDBResource
from pydantic import Field
from sklearn.preprocessing import StandardScaler

from curatornet_pipeline import tables
from curatornet_pipeline.assets.metadata import rounded, table_metadata
from curatornet_pipeline.core.batch_recommend import top_k_per_profile
from curatornet_pipeline.core.catalogue import display_files, read_item_details
from curatornet_pipeline.core.device import DeviceSetting
from curatornet_pipeline.core.embeddings import (
    build_resnet50_backbone,
    embed_images,
    image_content_hashes,
    load_embeddings_npy,
    vector_content_hashes,
)
from curatornet_pipeline.core.events import EVENTS_FILE, as_feedback_rows, purchase_transactions, read_events
from curatornet_pipeline.core.feedback import read_likes
from curatornet_pipeline.core.ingest import find_image_files, read_availability, read_source
from curatornet_pipeline.core.inventory import LIKE, PURCHASE, interactions_table, inventory_table, user_profiles
from curatornet_pipeline.core.training import model_from_bytes
from curatornet_pipeline.resources import GallerySource
from curatornet_pipeline.serving_model import serving_model
from curatornet_pipeline.snapshot import publish_snapshot, snapshot_path
from curatornet_pipeline.storage import read_frame, read_vectors, replace_tables, require_table, table_exists, vector_column

GROUP = "serving"
NPY_NAME = "resnet_embeddings.npy"


# ------------------------------------------------------------------------------------------- inventory


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "available_artworks",
            group_name=GROUP,
            kinds={"duckdb", "pandas"},
            deps=["source_files"],
            description=(
                f"What the gallery can sell now ({tables.AVAILABLE_ARTWORKS}), re-read from the source files: every "
                "uploaded artwork except one-of-a-kind works already sold (bought once = sold, twice or more = a "
                "reproducible print; a generic items.csv may state it in an 'available' column). "
                f"{tables.SERVING_CATALOGUE} "
                "keeps every artwork with its availability, image files and shop details (title, artist name, year, "
                "medium, size, price, shop URL: optional items.csv columns, or artwork_details.csv beside UGallery "
                "files)."
            ),
        ),
        dg.AssetSpec(
            "served_interactions",
            group_name=GROUP,
            kinds={"duckdb", "pandas"},
            deps=["source_files"],
            description=(
                f"Every positive interaction, re-read from the source files ({tables.SERVED_INTERACTIONS}): "
                "all purchases, "
                "held-out baskets included, the visitor app's likes (likes.csv less unlikes.csv) and the shop's "
                "purchase, like and unlike events (events.csv, from the JSON API). The serving profiles. "
                f"Lines of these files that cannot be used are set aside into {tables.SET_ASIDE_LIKES} "
                "(line, reason, text) with a warning; the good lines go on."
            ),
        ),
    ],
    pool="duckdb",
)
def inventory(context: dg.AssetExecutionContext, gallery: GallerySource, duckdb: DuckDBResource):
    folder = gallery.folder()
    artworks, transactions = read_source(folder)
    index = dict(zip(artworks["artwork_id"].astype(str), artworks["artwork_idx"].astype(np.int64)))
    # The shop's events (JSON API): likes and unlikes join the app's, purchases join the source files'.
    events = read_events(folder / EVENTS_FILE, index)
    likes, feedback = read_likes(
        folder, artworks, as_feedback_rows(events.of_type("like")), as_feedback_rows(events.of_type("unlike"))
    )
    feedback.set_aside.extend(events.set_aside)
    bought = events.of_type("purchase")
    if len(bought):
        first_basket = int(transactions["basket_id"].max()) + 1 if len(transactions) else 0
        transactions = pd.concat([transactions, purchase_transactions(bought, index, first_basket)], ignore_index=True)
    set_aside = feedback.set_aside_frame()
    if len(set_aside):
        first = set_aside.iloc[0]
        context.log.warning(
            f"{len(set_aside)} line(s) of {' and '.join(sorted(set(set_aside['file'])))} set aside into "
            f"{tables.SET_ASIDE_LIKES}, e.g. {first['file']} line "
            f"{first['line']}: {first['reason']}; the {len(likes)} good like(s) are served"
        )
    catalogue = inventory_table(artworks, transactions, read_availability(folder))
    if (folder / "images").is_dir():
        files = find_image_files(folder, catalogue["artwork_id"].tolist())
        catalogue["image_file"] = [str(files[a]) for a in catalogue["artwork_id"]]
    else:
        catalogue["image_file"] = None
    displays = display_files(folder, catalogue["artwork_id"].tolist())
    catalogue["display_file"] = [displays.get(a) for a in catalogue["artwork_id"]]
    details = read_item_details(folder, catalogue["artwork_id"].tolist())
    catalogue = pd.concat([catalogue, details.drop(columns=["artwork_id"])], axis=1)
    interactions = interactions_table(transactions, likes)
    available = catalogue.loc[catalogue["available"]].drop(columns=["available"])
    with duckdb.get_connection() as con:
        replace_tables(
            con,
            {
                tables.SERVING_CATALOGUE: catalogue,
                tables.AVAILABLE_ARTWORKS: available,
                tables.SERVED_INTERACTIONS: interactions,
                tables.SET_ASIDE_LIKES: set_aside,
            },
        )
        available_meta = table_metadata(con, tables.AVAILABLE_ARTWORKS)
        interaction_meta = table_metadata(con, tables.SERVED_INTERACTIONS)
    context.log.info(f"{len(available)} of {len(catalogue)} artworks available; {len(likes)} likes")
    yield dg.MaterializeResult(
        asset_key="available_artworks",
        metadata={
            **available_meta,
            "n_catalogue": len(catalogue),
            "n_sold_one_of_a_kind": int((~catalogue["available"]).sum()),
            "n_prints": int((catalogue["kind"] == "print").sum()),
            "n_with_title": int(catalogue["title"].notna().sum()),
            "n_with_price": int(catalogue["price"].notna().sum()),
            "availability_rules": dg.MetadataValue.json(
                {str(k): int(v) for k, v in catalogue["availability_rule"].value_counts().items()}
            ),
        },
    )
    yield dg.MaterializeResult(
        asset_key="served_interactions",
        metadata={
            **interaction_meta,
            "n_users": int(interactions["user_id"].nunique()),
            "n_purchases": int((interactions["kind"] == PURCHASE).sum()),
            "n_likes": int((interactions["kind"] == LIKE).sum()),
            "n_likes_set_aside": len(set_aside),
            **({"likes_set_aside": dg.MetadataValue.md(_set_aside_markdown(set_aside))} if len(set_aside) else {}),
        },
    )


def _set_aside_markdown(set_aside: pd.DataFrame, shown: int = 20) -> str:
    lines = ["| file | line | reason |", "|---|---|---|"]
    for row in set_aside.head(shown).itertuples():
        lines.append(f"| {row.file} | {row.line} | {str(row.reason).replace('|', '/')} |")
    if len(set_aside) > shown:
        lines.append(f"\n{len(set_aside) - shown} more in {tables.SET_ASIDE_LIKES}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------- embeddings


class ServingEmbeddingConfig(dg.Config):
    batch_size: int = Field(default=64, description="Images per ResNet50 forward pass (new images only).")
    device: DeviceSetting = Field(default="auto", description="'auto', 'cpu' or 'cuda'.")


def _training_embedder(con) -> dict:
    """How the training catalogue was embedded; new images must be embedded the same way."""
    require_table(con, tables.RESNET50_EMBEDDINGS)
    columns = {r[0] for r in con.execute(f"DESCRIBE {tables.RESNET50_EMBEDDINGS}").fetchall()}
    if not {"content_key", "embedder"} <= columns:
        raise RuntimeError(
            f"{tables.RESNET50_EMBEDDINGS} predates serving (no content_key/embedder columns): "
            "re-materialize resnet50_embeddings with a full run (make run)"
        )
    embedders = [
        r[0] for r in con.execute(f"SELECT DISTINCT embedder FROM {tables.RESNET50_EMBEDDINGS}").fetchall()
    ]
    if len(embedders) != 1:
        raise RuntimeError(f"{tables.RESNET50_EMBEDDINGS} mixes embedders {embedders}: re-materialize it")
    return json.loads(embedders[0])


@dg.asset(
    group_name=GROUP,
    kinds={"pytorch", "duckdb"},
    deps=["available_artworks", "resnet50_embeddings"],
    pool="duckdb",
    description=(
        f"A 2048-d ResNet50 embedding per catalogue artwork ({tables.SERVING_ARTWORK_EMBEDDINGS}), "
        "kept by image content "
        "(SHA-256 of the file): an unchanged image reuses its stored vector, only new or changed images go "
        "through ResNet50, with the same weights and input size as the training catalogue."
    ),
)
def serving_embeddings(
    context: dg.AssetExecutionContext, config: ServingEmbeddingConfig, gallery: GallerySource, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    started = time.perf_counter()
    with duckdb.get_connection() as con:
        embedder = _training_embedder(con)
        catalogue = read_frame(
            con, f"SELECT artwork_id, image_file FROM {tables.SERVING_CATALOGUE} ORDER BY artwork_idx"
        )
        known = read_frame(con, f"SELECT content_key, embedding FROM {tables.RESNET50_EMBEDDINGS}")
        if table_exists(con, tables.SERVING_ARTWORK_EMBEDDINGS):
            previous = read_frame(
                con, f"SELECT content_key, embedding FROM {tables.SERVING_ARTWORK_EMBEDDINGS} WHERE embedder = ?",
                [json.dumps(embedder, sort_keys=True)],
            )
            known = pd.concat([known, previous], ignore_index=True)
    ids = catalogue["artwork_id"].tolist()
    if embedder["source"] == "npy":
        # The file holds every vector already; its rows are checked against the current catalogue.
        embeddings = load_embeddings_npy(gallery.folder() / NPY_NAME, ids)
        keys = vector_content_hashes(embeddings)
        n_new = int((~pd.Series(keys).isin(known["content_key"])).sum())
    else:
        if catalogue["image_file"].isna().any():
            raise RuntimeError(f"the training catalogue was embedded from images, but {gallery.folder()} has none")
        keys = image_content_hashes(catalogue["image_file"].tolist())
        cache = dict(zip(known["content_key"], known["embedding"]))
        missing = [i for i, key in enumerate(keys) if key not in cache]
        embeddings = np.zeros((len(ids), 2048), dtype=np.float32)
        for i, key in enumerate(keys):
            if key in cache:
                embeddings[i] = cache[key]
        if missing:
            context.log.info(f"embedding {len(missing)} new images with ResNet50 ({embedder})")
            backbone = build_resnet50_backbone(embedder["weights"], seed=int(embedder["seed"]))
            embeddings[missing] = embed_images(
                [catalogue["image_file"].iloc[i] for i in missing],
                backbone,
                image_size=int(embedder["image_size"]),
                batch_size=config.batch_size,
                device=config.device,
                # New images are embedded in the precision the training images were (older tables: fp32).
                precision=embedder.get("precision", "fp32"),
            )
        n_new = len(missing)
    frame = pd.DataFrame(
        {
            "artwork_id": ids,
            "content_key": keys,
            "embedder": json.dumps(embedder, sort_keys=True),
            "embedding": vector_column(embeddings),
        }
    )
    with duckdb.get_connection() as con:
        replace_tables(con, {tables.SERVING_ARTWORK_EMBEDDINGS: frame})
        metadata = table_metadata(con, tables.SERVING_ARTWORK_EMBEDDINGS)
    return dg.MaterializeResult(
        metadata={
            **metadata,
            "n_embedded_now": n_new,
            "n_reused": len(ids) - n_new,
            "embedder": dg.MetadataValue.json(embedder),
            "seconds": rounded(time.perf_counter() - started),
        }
    )


# ------------------------------------------------------------------------------------------- item vectors


@dg.asset(
    group_name=GROUP,
    kinds={"pytorch", "duckdb"},
    deps=["serving_embeddings", "curatornet_model", "resnet50_embeddings"],
    pool="duckdb",
    description=(
        f"The serving model's 200-d item vector of every catalogue artwork ({tables.SERVING_ITEM_VECTORS}) "
        "and the model "
        f"itself ({tables.SERVING_MODEL}). The serving model is the six-strategy CuratorNet with the best validation "
        "accuracy of the latest training run. Vectors of unchanged artworks under the same weights are reused; "
        "new ones go through the item tower with the training catalogue's z-scoring."
    ),
)
def serving_item_vectors(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> dg.MaterializeResult:
    with duckdb.get_connection() as con:
        chosen = serving_model(con)
        weights = bytes(
            con.execute(
                f"SELECT weights FROM {tables.CURATORNET_MODELS} WHERE model_id = ?", [chosen.model_id]
            ).fetchone()[0]
        )
        # The scaler the model was trained with: z-scoring over the training catalogue's raw embeddings.
        training_raw = read_vectors(con, f"SELECT embedding FROM {tables.RESNET50_EMBEDDINGS}", "embedding")
        catalogue_join = (
            f"FROM {tables.SERVING_ARTWORK_EMBEDDINGS} e JOIN {tables.SERVING_CATALOGUE} c USING (artwork_id) "
            "ORDER BY c.artwork_idx"
        )
        served = read_frame(con, f"SELECT e.artwork_id, e.content_key {catalogue_join}")
        raw = read_vectors(con, f"SELECT e.embedding {catalogue_join}", "embedding")
        previous = pd.DataFrame({"content_key": [], "vector": []})
        if table_exists(con, tables.SERVING_ITEM_VECTORS):
            previous = read_frame(
                con,
                f"SELECT content_key, vector FROM {tables.SERVING_ITEM_VECTORS} "
                "WHERE model_id = ? AND model_run_id = ?",
                [chosen.model_id, chosen.run_id],
            )
    cache = dict(zip(previous["content_key"], previous["vector"]))
    missing = np.array([key not in cache for key in served["content_key"]], dtype=bool)
    model = model_from_bytes(weights)
    dim = model.config.embedding_dim
    vectors = np.zeros((len(served), dim), dtype=np.float32)
    for i in np.flatnonzero(~missing):
        vectors[i] = cache[served["content_key"].iloc[i]]
    if missing.any():
        scaler = StandardScaler().fit(np.asarray(training_raw, dtype=np.float64))
        features = scaler.transform(np.asarray(raw[missing], dtype=np.float64)).astype(np.float32)
        vectors[missing] = model.embed_catalogue(features)
    frame = pd.DataFrame(
        {
            "artwork_id": served["artwork_id"],
            "content_key": served["content_key"],
            "model_id": chosen.model_id,
            "model_run_id": chosen.run_id,
            "vector": vector_column(vectors),
        }
    )
    model_row = pd.DataFrame(
        [
            {
                "model_id": chosen.model_id,
                "run_id": chosen.run_id,
                "l2_lambda": chosen.l2_lambda,
                "validation_accuracy": chosen.validation_accuracy,
                "weights": weights,
            }
        ]
    )
    with duckdb.get_connection() as con:
        replace_tables(
            con,
            {tables.SERVING_ITEM_VECTORS: frame, tables.SERVING_MODEL: model_row},
            vector_widths={tables.SERVING_ITEM_VECTORS: dim},
        )
        metadata = table_metadata(con, tables.SERVING_ITEM_VECTORS)
    context.log.info(f"serving model {chosen.model_id}: {int(missing.sum())} item vectors computed")
    return dg.MaterializeResult(
        metadata={
            **metadata,
            "serving_model": chosen.model_id,
            "model_run_id": chosen.run_id,
            "validation_accuracy": rounded(chosen.validation_accuracy),
            "n_computed_now": int(missing.sum()),
            "n_reused": int((~missing).sum()),
        }
    )


# ------------------------------------------------------------------------------------------- recommendations


class ServedRecommendationConfig(dg.Config):
    k: int = Field(default=100, description="Recommendations stored per user (fewer when fewer are available).")


class ServingInputs:
    """The catalogue, its item vectors and the serving model, as the recommendation assets need them."""

    def __init__(self, con):
        self.catalogue = read_frame(
            con, f"SELECT artwork_idx, artwork_id, available FROM {tables.SERVING_CATALOGUE} ORDER BY artwork_idx"
        )
        vectors = read_frame(con, f"SELECT artwork_id, vector FROM {tables.SERVING_ITEM_VECTORS}").set_index(
            "artwork_id"
        )
        self.item_vectors = np.stack(vectors["vector"].loc[self.catalogue["artwork_id"]].to_numpy()).astype(np.float32)
        row = con.execute(f"SELECT model_id, weights FROM {tables.SERVING_MODEL}").fetchone()
        self.model_id = str(row[0])
        self.model = model_from_bytes(bytes(row[1]))
        self.available = np.flatnonzero(self.catalogue["available"].to_numpy(bool))
        self.artwork_ids = self.catalogue["artwork_id"].to_numpy(dtype=object)


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "serving_user_vectors",
            group_name=GROUP,
            kinds={"pytorch", "duckdb"},
            deps=["serving_item_vectors", "served_interactions"],
            description="The serving model's user vector of every customer and visitor from their full history "
            f"({tables.SERVING_USER_VECTORS}): all baskets plus likes, one batched user-tower pass per chunk of users.",
        ),
        dg.AssetSpec(
            "user_recommendations",
            group_name=GROUP,
            kinds={"duckdb", "pandas"},
            deps=["serving_item_vectors", "served_interactions", "available_artworks"],
            description="Top-k (default 100) available artworks for every customer and visitor "
            f"({tables.USER_RECOMMENDATIONS}: user_id, rank, artwork_id, score, model_id), never one they own or "
            "liked; one matrix product per chunk of users.",
        ),
    ],
    pool="duckdb",
)
def served_recommendations(
    context: dg.AssetExecutionContext, config: ServedRecommendationConfig, duckdb: DuckDBResource
):
    started = time.perf_counter()
    with duckdb.get_connection() as con:
        inputs = ServingInputs(con)
        interactions = read_frame(con, f"SELECT user_id, artwork_idx FROM {tables.SERVED_INTERACTIONS}")
    # The interactions are stored in (user, time) order; the catalogue index is the one it was written with.
    users, offsets, items = user_profiles(interactions)
    user_vecs = inputs.model.profile_vectors(inputs.item_vectors, np.split(items, offsets[1:-1]))
    top = top_k_per_profile(user_vecs, inputs.item_vectors, inputs.available, offsets, items, config.k)
    recommendations = pd.DataFrame(
        {
            "user_id": users[top["profile"].to_numpy()],
            "rank": top["rank"].to_numpy(np.int32),
            "artwork_id": inputs.artwork_ids[top["artwork_idx"].to_numpy()],
            "score": top["score"].to_numpy(np.float32),
            "model_id": inputs.model_id,
        }
    )
    vectors = pd.DataFrame({"user_id": users, "model_id": inputs.model_id, "vector": vector_column(user_vecs)})
    dim = user_vecs.shape[1] if len(user_vecs) else inputs.item_vectors.shape[1]
    with duckdb.get_connection() as con:
        replace_tables(
            con,
            {tables.SERVING_USER_VECTORS: vectors, tables.USER_RECOMMENDATIONS: recommendations},
            vector_widths={tables.SERVING_USER_VECTORS: dim},
        )
        vector_meta = table_metadata(con, tables.SERVING_USER_VECTORS)
        rec_meta = table_metadata(con, tables.USER_RECOMMENDATIONS)
    seconds = time.perf_counter() - started
    context.log.info(f"{len(recommendations)} recommendations for {len(users)} users in {seconds:.1f} s")
    yield dg.MaterializeResult(asset_key="serving_user_vectors", metadata={**vector_meta, "n_users": len(users)})
    yield dg.MaterializeResult(
        asset_key="user_recommendations",
        metadata={
            **rec_meta,
            "k": config.k,
            "n_users": len(users),
            "n_available": len(inputs.available),
            "model_id": inputs.model_id,
            "seconds": rounded(seconds),
        },
    )


class SimilarArtworksConfig(dg.Config):
    n: int = Field(default=20, description="'More like this' artworks stored per artwork.")


@dg.asset(
    group_name=GROUP,
    kinds={"duckdb", "pandas"},
    deps=["serving_item_vectors", "available_artworks"],
    pool="duckdb",
    description=f"'More like this' for every catalogue artwork ({tables.SIMILAR_ARTWORKS}): the serving model's "
    "recommendations for a one-artwork profile (what sampling strategy 5 trains), among available artworks.",
)
def similar_artworks(
    context: dg.AssetExecutionContext, config: SimilarArtworksConfig, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    with duckdb.get_connection() as con:
        inputs = ServingInputs(con)
    n_items = len(inputs.artwork_ids)
    offsets = np.arange(n_items + 1, dtype=np.int64)
    items = np.arange(n_items, dtype=np.int64)
    single = inputs.model.profile_vectors(inputs.item_vectors, np.split(items, offsets[1:-1]))
    top = top_k_per_profile(single, inputs.item_vectors, inputs.available, offsets, items, config.n)
    frame = pd.DataFrame(
        {
            "artwork_id": inputs.artwork_ids[top["profile"].to_numpy()],
            "rank": top["rank"].to_numpy(np.int32),
            "similar_artwork_id": inputs.artwork_ids[top["artwork_idx"].to_numpy()],
            "score": top["score"].to_numpy(np.float32),
            "model_id": inputs.model_id,
        }
    )
    with duckdb.get_connection() as con:
        replace_tables(con, {tables.SIMILAR_ARTWORKS: frame})
        metadata = table_metadata(con, tables.SIMILAR_ARTWORKS)
    return dg.MaterializeResult(metadata={**metadata, "n": config.n, "model_id": inputs.model_id})


# ------------------------------------------------------------------------------------------- snapshot


@dg.asset(
    group_name=GROUP,
    kinds={"duckdb", "file"},
    deps=["user_recommendations", "similar_artworks", "serving_item_vectors", "available_artworks"],
    pool="duckdb",
    description=(
        "The read-only serving snapshot the visitor app reads (serving_snapshot.duckdb next to the pipeline's "
        "DuckDB file): the served tables copied into a new file that is renamed over the old one, so the app "
        "never opens the pipeline's file and never sees a half-written snapshot."
    ),
)
def serving_snapshot(
    context: dg.AssetExecutionContext, gallery: GallerySource, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    target = snapshot_path(duckdb.database)
    with duckdb.get_connection() as con:
        model_id, model_run_id = con.execute(f"SELECT model_id, run_id FROM {tables.SERVING_MODEL}").fetchone()
        info = {
            "created_at": datetime.now(timezone.utc).replace(tzinfo=None),
            "run_id": context.run.run_id,
            "model_id": model_id,
            # Which training served the lists: online metrics compare versions (a retrain keeps the model id).
            "model_version": f"{model_id}@{str(model_run_id)[:8]}",
            # The visitor app appends its likes.csv here, where the sensor and the next refresh read it.
            "source_folder": str(gallery.folder()),
        }
        publish_snapshot(con, target, info)
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(target)),
            "model_id": model_id,
            "bytes": int(target.stat().st_size),
        }
    )
