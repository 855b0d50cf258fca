"""What makes a served list readable: at most N works per artist, and a reason for each recommendation.

Per-artist cap. A visual model ranks an artist's works close together (they share a style), so a raw top-k is
often a few artists' series. ``cap_per_artist`` walks a ranked list and keeps at most ``cap`` works of one
artist, in rank order, until ``k`` are kept; ``cap`` 0 keeps the ranking as it is. When the ranking runs out
first, the list is shorter: a cap never brings back a work the model ranked out.

Reasons. For a recommended work, the profile work it is most similar to, by cosine similarity of the model's
item vectors ("because you liked ..."): the item tower's space is the one the ranking was made in.

Beyond accuracy (``beyond_accuracy``), per method over its top-k lists: artist diversity, the mean share of
distinct artists in a list (1: every work by another artist), and catalogue coverage, the share of the catalogue
that appears in at least one list.

Shapes: N catalogue artworks, D item-vector width, R recommendations, P profile artworks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def cap_per_artist(artists: Sequence[str], cap: int, k: int) -> list[int]:
    """Positions (in rank order) of the first ``k`` entries of a ranked list whose ``artists`` keep at most ``cap``
    works each (cap 0: no cap)."""
    if cap < 0:
        raise ValueError(f"the per-artist cap must be 0 (off) or more, got {cap}")
    kept: list[int] = []
    counts: dict[str, int] = {}
    for position, artist in enumerate(artists):
        if len(kept) == k:
            break
        if cap and counts.get(artist, 0) >= cap:
            continue
        counts[artist] = counts.get(artist, 0) + 1
        kept.append(position)
    return kept


def closest_in_profile(item_vectors: np.ndarray, recommended: np.ndarray, profile: np.ndarray) -> np.ndarray:
    """For each recommended row, the position in ``profile`` of the most similar profile artwork (cosine).

    item_vectors: [N, D]; recommended: [R] row indices; profile: [P] row indices (P >= 1). Returns [R] ints.
    """
    if len(profile) == 0:
        raise ValueError("a reason needs at least one profile artwork")
    vectors = item_vectors / np.maximum(np.linalg.norm(item_vectors, axis=1, keepdims=True), 1e-12)  # [N, D]
    similarity = vectors[recommended] @ vectors[profile].T  # [R, P]
    return np.argmax(similarity, axis=1) if len(recommended) else np.zeros(0, np.int64)  # [R]


def beyond_accuracy(recommendations: pd.DataFrame, artist_ids: Sequence[str], k: int = 20) -> pd.DataFrame:
    """Per method: ``artist_diversity_at_{k}`` and ``catalogue_coverage_at_{k}`` of the top-``k`` lists.

    ``recommendations``: method, user_id, rank (1 = best), artwork_idx; ``artist_ids``: the artist of each of
    the N catalogue artworks, by artwork_idx."""
    top = recommendations.loc[recommendations["rank"] <= k, ["method", "user_id", "artwork_idx"]]
    artists = np.asarray(artist_ids, dtype=object)
    top = top.assign(artist=artists[top["artwork_idx"].to_numpy(np.int64)])
    per_list = top.groupby(["method", "user_id"], sort=False).agg(n=("artwork_idx", "size"), n_artists=("artist", "nunique"))
    per_list["share"] = per_list["n_artists"] / per_list["n"]
    diversity = per_list.groupby("method", sort=False)["share"].mean()
    coverage = top.groupby("method", sort=False)["artwork_idx"].nunique() / max(len(artists), 1)
    return pd.DataFrame(
        {"method": diversity.index, f"artist_diversity_at_{k}": diversity.to_numpy(),
         f"catalogue_coverage_at_{k}": coverage.reindex(diversity.index).to_numpy()}
    )
