"""What the gallery can sell now, and who has touched what: the inputs of served recommendations.

Availability. An artwork is available when it is in the catalogue and is not a one-of-a-kind work that has
already been sold. UGallery files carry no flag, so the evaluation's rule decides: an artwork bought exactly
once is a one-of-a-kind work (sold); one bought twice or more is a reproducible print (always available);
one never bought is available. A generic ``items.csv`` may state availability explicitly in an optional
``available`` column (1/0, true/false, yes/no); a stated value wins over the rule, an empty cell falls back
to it. Upload times are not consulted: every catalogue row is an uploaded artwork.

Profiles. A user's serving profile is everything they bought (every basket, held-out ones included) plus
everything they liked in the visitor app, each artwork once, in order of first interaction. Purchases and
likes are both positive interactions; only purchases change availability.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

ONE_OF_A_KIND = "one_of_a_kind"
PRINT = "print"
PURCHASE = "purchase"
LIKE = "like"
INTERACTION_COLUMNS = ["user_id", "artwork_id", "artwork_idx", "timestamp", "kind"]


def inventory_table(
    artworks: pd.DataFrame, transactions: pd.DataFrame, stated: pd.Series | None = None
) -> pd.DataFrame:
    """One row per catalogue artwork: purchase count, kind, and whether it can be sold now.

    ``artworks`` has ``artwork_idx, artwork_id, artist_id, upload_timestamp``; ``transactions`` one row per
    purchased artwork; ``stated`` (artwork id -> bool) overrides the inferred availability where given.
    """
    n_items = len(artworks)
    counts = np.bincount(transactions["artwork_idx"].to_numpy(np.int64), minlength=n_items)[
        artworks["artwork_idx"].to_numpy(np.int64)
    ]
    sold = counts == 1
    kind = np.where(counts >= 2, PRINT, ONE_OF_A_KIND)
    available = ~sold
    rule = np.where(counts >= 2, "bought twice or more: a print", np.where(sold, "bought once: sold", "never bought"))
    if stated is not None and len(stated):
        unknown = sorted(set(stated.index) - set(artworks["artwork_id"]))
        if unknown:
            raise ValueError(f"availability stated for artworks outside the catalogue: {unknown[:5]}")
        has = artworks["artwork_id"].isin(stated.index).to_numpy()
        given = artworks["artwork_id"].map(lambda a: bool(stated.get(a, False))).to_numpy(bool)
        available = np.where(has, given, available)
        rule = np.where(has, "stated in items.csv", rule)
    return pd.DataFrame(
        {
            "artwork_idx": artworks["artwork_idx"].to_numpy(np.int64),
            "artwork_id": artworks["artwork_id"].astype(str).to_numpy(),
            "artist_id": artworks["artist_id"].astype(str).to_numpy(),
            "upload_timestamp": artworks["upload_timestamp"].to_numpy("datetime64[ns]"),
            "n_purchases": counts.astype(np.int64),
            "kind": kind,
            "available": available.astype(bool),
            "availability_rule": rule,
        }
    )


def interactions_table(transactions: pd.DataFrame, likes: pd.DataFrame) -> pd.DataFrame:
    """Purchases and likes as one table of positive interactions, ordered by user, time, kind and source row."""
    purchases = pd.DataFrame(
        {
            "user_id": transactions["user_id"].astype(str).to_numpy(),
            "artwork_id": transactions["artwork_id"].astype(str).to_numpy(),
            "artwork_idx": transactions["artwork_idx"].to_numpy(np.int64),
            "timestamp": transactions["purchase_timestamp"].to_numpy("datetime64[ns]"),
            "kind": PURCHASE,
            "source_row": transactions["source_row"].to_numpy(np.int64),
        }
    )
    liked = pd.DataFrame(
        {
            "user_id": likes["user_id"].astype(str).to_numpy(),
            "artwork_id": likes["artwork_id"].astype(str).to_numpy(),
            "artwork_idx": likes["artwork_idx"].to_numpy(np.int64),
            "timestamp": likes["like_timestamp"].to_numpy("datetime64[ns]"),
            "kind": LIKE,
            "source_row": likes["source_row"].to_numpy(np.int64),
        }
    )
    both = pd.concat([purchases, liked], ignore_index=True)
    both = both.sort_values(["user_id", "timestamp", "kind", "source_row"], kind="stable").reset_index(drop=True)
    return both[INTERACTION_COLUMNS]


def user_profiles(interactions: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user ids sorted, profile offsets [U+1], profile items): each user's distinct artworks, first touch first.

    ``interactions`` must be ordered by user then time (as :func:`interactions_table` returns it).
    """
    firsts = interactions.drop_duplicates(["user_id", "artwork_idx"], keep="first")
    users, starts = np.unique(firsts["user_id"].to_numpy().astype(str), return_index=True)
    if len(users) and not np.all(np.diff(starts) > 0):
        raise ValueError("interactions must be grouped by user_id in ascending order")
    offsets = np.append(starts, len(firsts)).astype(np.int64)
    return users.astype(object), offsets, firsts["artwork_idx"].to_numpy(np.int64)
