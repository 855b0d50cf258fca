"""Source-wide checks that run before the first table of a run is written, and the size-dependent defaults.

Per-row problems (a malformed basket, an unknown id, a bad timestamp) are found while the CSVs are read
(``core.ingest``). What cannot be seen row by row is whether the source as a whole can feed the run that
is about to start: enough artworks for the configured clusters, an image or an embedding row for every
artwork, enough repeat buyers to hold out baskets for evaluation. Checking those here, before ingest
writes anything, means a source that cannot work fails with a message about the data while every table
stays exactly as the previous run left it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import pandas as pd
from PIL import Image, UnidentifiedImageError

from curatornet_pipeline.core.embeddings import (
    EMBEDDING_DIM,
    UNSUPPORTED_IMAGE_MODES,
    check_weights_setting,
    image_content_hashes,
    load_embeddings_npy,
)
from curatornet_pipeline.core.errors import InputDataError
from curatornet_pipeline.core.ingest import find_image_files
from curatornet_pipeline.core.split import TEST, TRAIN, last_basket_split

NPY_NAME = "resnet_embeddings.npy"
PAPER_N_CLUSTERS = 100
# Below ~1,500 artworks the paper's 100 clusters would hold a handful of works each; the automatic k
# keeps about this many artworks per cluster (60 artworks -> 4 clusters, 600 -> 40).
ARTWORKS_PER_CLUSTER = 15
# The default budget of 360,000 training triplets suits the paper's 6,040 artworks; smaller catalogues get
# the same number per artwork, so a small gallery samples what it can yield instead of exhausting it.
DEFAULT_TRAIN_TRIPLETS = 360_000
TRIPLETS_PER_ARTWORK = 60
# Fewer artworks than this leave too few clusters, negatives and candidates to learn or rank anything.
MIN_ARTWORKS = 10
# Paired t-tests and the Random-baseline check need per-user metrics of at least two users.
MIN_EVALUATION_USERS = 2


def config_hint(op: str, key: str, value: object) -> str:
    """How to change one run-config value from the command line (the launchpad takes the same YAML)."""
    return (
        f"set ops.{op}.config.{key} in a run config file, e.g. a file run.yaml holding "
        f"`ops: {{{op}: {{config: {{{key}: {value}}}}}}}` and then `curatornet materialize --config run.yaml`"
    )


def default_n_clusters(n_artworks: int) -> int:
    """The paper's k = 100, lowered for small catalogues to about one cluster per 15 artworks (at least 2)."""
    return min(PAPER_N_CLUSTERS, max(2, n_artworks // ARTWORKS_PER_CLUSTER))


def resolve_n_clusters(configured: int | None, n_artworks: int) -> tuple[int, str | None]:
    """(k to use, a note when the default was lowered). ``None`` means "not configured": use the default."""
    if configured is not None:
        return configured, None
    k = default_n_clusters(n_artworks)
    if k == PAPER_N_CLUSTERS:
        return k, None
    return k, (
        f"n_clusters: the paper's {PAPER_N_CLUSTERS} clusters are too many for {n_artworks} artworks; "
        f"using {k} (about {ARTWORKS_PER_CLUSTER} artworks per cluster). Set it explicitly to override."
    )


def default_train_triplets(n_artworks: int) -> int:
    """The default sampling budget: 360,000 training triplets at the paper's catalogue size, 60 per artwork below."""
    return min(DEFAULT_TRAIN_TRIPLETS, TRIPLETS_PER_ARTWORK * n_artworks)


def pca_note(pca_components: int, n_artworks: int, n_features: int) -> str | None:
    """A note when PCA keeps fewer components than configured (it cannot exceed artworks or features)."""
    kept = min(pca_components, n_artworks, n_features)
    if kept == pca_components:
        return None
    return f"pca_components: {pca_components} configured, {kept} kept (PCA cannot exceed the {n_artworks} artworks)"


# Where resnet50_embeddings reads from; the launchpad offers exactly these.
EmbeddingSourceSetting = Literal["auto", "npy", "images"]


def embedding_source(folder: Path, setting: str) -> str:
    """``"npy"`` or ``"images"``: where embeddings come from for the ``source`` setting of resnet50_embeddings."""
    if setting not in get_args(EmbeddingSourceSetting):
        raise ValueError(f"embedding source must be 'auto', 'npy' or 'images', got {setting!r}")
    if setting == "auto":
        return "npy" if (Path(folder) / NPY_NAME).exists() else "images"
    return setting


@dataclass(frozen=True)
class RunPlan:
    """What the coming run computes, with the settings that decide how much data it needs.

    A field is ``None`` when the asset that needs it is not part of the run.
    """

    cluster: bool = False  # whether visual_clusters runs
    n_clusters: int | None = None  # its configured k; None = the size-dependent default
    pca_components: int | None = None
    embeddings: str | None = None  # "npy" or "images" when resnet50_embeddings runs
    weights: str | None = None  # resnet50_embeddings' weights setting, checked when it embeds images
    evaluate: bool = False  # whether the run evaluates on held-out baskets
    # The fast path (serving_embeddings without resnet50_embeddings): the content hashes of the images that
    # already have an embedding. Only the other images are decoded; None when the run embeds no new images.
    embedded_image_keys: frozenset[str] | None = None


def count_evaluation_users(transactions: pd.DataFrame) -> tuple[int, int]:
    """(users, users who keep training items and a held-out basket after the last-basket split)."""
    labelled = last_basket_split(transactions)
    per_user = labelled.groupby("user_id")["split"].agg(lambda s: {TRAIN, TEST} <= set(s))
    return int(len(per_user)), int(per_user.sum())


def _check_images(folder: Path, artwork_ids: list[str], skip_keys: frozenset[str] = frozenset()) -> None:
    """Every artwork has exactly one image file that decodes in full to a pixel format we can embed.

    Images whose content hash is in ``skip_keys`` were embedded before, so they decoded then; only the others
    are opened (the fast path decodes just the images it will embed).

    A header alone is not enough: a file cut short keeps its header, and would fail at embedding after
    the tables before it were rewritten. ``verify()`` checks the container (PNG chunk checksums), and it
    leaves the image unusable, so the file is opened again and every pixel decoded; this costs a few
    milliseconds per image, little next to ResNet50 on the same image.
    """
    paths = list(find_image_files(folder, artwork_ids).values())
    if skip_keys:
        paths = [p for p, key in zip(paths, image_content_hashes(paths)) if key not in skip_keys]
    for path in paths:
        try:
            with Image.open(path) as image:
                image.verify()
            with Image.open(path) as image:
                image.load()
                mode = image.mode
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            raise InputDataError(path, f"not a readable image ({type(exc).__name__}: {exc})") from exc
        if mode in UNSUPPORTED_IMAGE_MODES:
            raise InputDataError(path, UNSUPPORTED_IMAGE_MODES[mode])


def preflight_source(folder: Path, artworks: pd.DataFrame, transactions: pd.DataFrame, plan: RunPlan) -> list[str]:
    """Raise :class:`InputDataError` when the source cannot feed ``plan``; return notes worth logging.

    ``artworks`` and ``transactions`` are what ``core.ingest.read_source`` returned for ``folder``.
    """
    folder = Path(folder)
    n_artworks = len(artworks)
    notes: list[str] = []
    if (plan.cluster or plan.evaluate) and n_artworks < MIN_ARTWORKS:
        raise InputDataError(
            folder,
            f"the catalogue has {n_artworks} artworks; CuratorNet needs at least {MIN_ARTWORKS} (visual clusters, "
            "negatives for the triplets and candidates to rank all come from the catalogue): add artworks",
        )
    if plan.cluster:
        k, note = resolve_n_clusters(plan.n_clusters, n_artworks)
        if not 2 <= k <= n_artworks - 1:
            suggestion = default_n_clusters(n_artworks)
            raise InputDataError(
                folder,
                f"n_clusters={k} cannot be used with {n_artworks} artworks (k-means with a silhouette needs "
                f"2 <= n_clusters <= {n_artworks - 1}); {config_hint('visual_clusters', 'n_clusters', suggestion)}, "
                "or leave it unset for a size-dependent default",
            )
        pca = pca_note(plan.pca_components, n_artworks, EMBEDDING_DIM) if plan.pca_components else None
        notes += [n for n in (note, pca) if n]
    if plan.evaluate:
        n_users, n_evaluable = count_evaluation_users(transactions)
        if n_evaluable < MIN_EVALUATION_USERS:
            raise InputDataError(
                folder,
                f"{n_evaluable} of {n_users} users have two or more baskets (a held-out last basket plus earlier "
                f"purchases to build a profile from); evaluation needs at least {MIN_EVALUATION_USERS}: add purchase "
                "history of returning customers",
            )
    ids = artworks["artwork_id"].tolist()
    if plan.embeddings == "npy":
        load_embeddings_npy(folder / NPY_NAME, ids)  # validates every row; the vectors are read again later
    elif plan.embeddings == "images":
        if plan.weights is not None:
            check_weights_setting(plan.weights)
        _check_images(folder, ids)
    elif plan.embedded_image_keys is not None:
        _check_images(folder, ids, skip_keys=plan.embedded_image_keys)
    return notes


def budget_capped_note(strategy: str, target_train: int, actual_train: int, actual_validation: int) -> str | None:
    """A note when a strategy yielded fewer distinct triplets than its budget (the budget is capped)."""
    if actual_train >= target_train:
        return None
    return (
        f"{strategy}: this gallery yields only {actual_train + actual_validation} distinct triplets for the strategy, "
        f"fewer than its budget of {target_train} training triplets; capped at {actual_train} training + "
        f"{actual_validation} validation"
    )
