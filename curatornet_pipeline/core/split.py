"""The paper's "last basket" train/test split.

For every user with two or more baskets, the items of their last basket are held out as the test set;
everything else is training data. Users with a single basket are train-only.

"Last" means the latest basket timestamp. Two baskets of one user with the same timestamp are ordered
by ``basket_id`` (the larger id counts as later): ingestion numbers baskets in source order, so the
basket written later in the source file is the one held out, and the choice is deterministic.
A basket's timestamp is the latest ``purchase_timestamp`` among its rows (all rows of a basket
normally share one timestamp).

A reproducible print can be bought twice by one user. When an item of a user's held-out basket also
appears in one of their earlier baskets, those earlier rows are labelled "excluded": they stay in the
table (nothing is dropped) but are not training data, because training on them would leak the held-out
item into the user's profile. A user whose every earlier row would be excluded that way (they only ever
re-bought the same print) keeps no training data, so nothing is held out for them: they are train-only,
like a one-basket user.

The authors' published test set can replace the last-basket rule: ``split_from_test_tuples`` holds out
exactly the baskets a ``test_baskets.csv`` lists (``read_test_tuples``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from curatornet_pipeline.core.errors import InputDataError

SPLIT_COLUMN = "split"
TRAIN = "train"
TEST = "test"
EXCLUDED = "excluded"
SPLIT_LABELS = (TRAIN, TEST, EXCLUDED)

_REQUIRED_COLUMNS = ("user_id", "basket_id", "purchase_timestamp")


def _check_transactions(transactions: pd.DataFrame) -> None:
    missing = [c for c in _REQUIRED_COLUMNS if c not in transactions.columns]
    if missing:
        raise ValueError(f"transactions frame lacks column(s) {missing}; it has {list(transactions.columns)}")
    missing_time = transactions["purchase_timestamp"].isna().to_numpy()
    if missing_time.any():
        first = int(np.flatnonzero(missing_time)[0])
        raise ValueError(
            f"transactions: {int(missing_time.sum())} row(s) have no purchase_timestamp "
            f"(first at position {first}, basket_id {transactions['basket_id'].iloc[first]}); "
            "the last basket of a user cannot be determined"
        )
    users_per_basket = transactions.groupby("basket_id", sort=False)["user_id"].nunique()
    shared = users_per_basket[users_per_basket > 1]
    if len(shared):
        raise ValueError(
            f"transactions: basket_id {shared.index[0]} belongs to {int(shared.iloc[0])} users; "
            "a basket_id must identify one purchase session of one user"
        )


def order_baskets(transactions: pd.DataFrame) -> pd.DataFrame:
    """One row per basket, in per-user time order.

    Returns columns ``user_id``, ``basket_id``, ``basket_timestamp`` (latest row timestamp),
    ``basket_rank`` (0 = the user's oldest basket; ties on timestamp broken by ``basket_id``) and
    ``n_user_baskets``. Sorted by ``user_id`` then ``basket_rank``.
    """
    _check_transactions(transactions)
    baskets = (
        transactions.groupby("basket_id", sort=False)
        .agg(user_id=("user_id", "first"), basket_timestamp=("purchase_timestamp", "max"))
        .reset_index()
    )
    baskets = baskets.sort_values(["user_id", "basket_timestamp", "basket_id"], kind="stable").reset_index(drop=True)
    baskets["basket_rank"] = baskets.groupby("user_id", sort=False).cumcount().astype(np.int64)
    baskets["n_user_baskets"] = baskets.groupby("user_id", sort=False)["basket_id"].transform("size").astype(np.int64)
    return baskets[["user_id", "basket_id", "basket_timestamp", "basket_rank", "n_user_baskets"]]


def last_basket_split(transactions: pd.DataFrame) -> pd.DataFrame:
    """Add a ``split`` column ("train"/"test"/"excluded") to ``transactions`` by the last-basket rule.

    Every input row is kept exactly once, in its original order and with its original index. All rows
    of a user's last basket are "test" when that user has two or more baskets; earlier rows of the same
    user and artwork as a test row are "excluded" (see the module docstring); all other rows are
    "train". Ties between baskets with equal timestamps are broken by the larger ``basket_id``.
    """
    baskets = order_baskets(transactions)
    is_last = (baskets["basket_rank"] == baskets["n_user_baskets"] - 1) & (baskets["n_user_baskets"] >= 2)
    return _label(transactions, baskets.loc[is_last, "basket_id"].to_numpy())


def _label(transactions: pd.DataFrame, test_basket_ids: np.ndarray) -> pd.DataFrame:
    """``transactions`` with the split column, given the held-out baskets (see ``last_basket_split``)."""
    out = transactions.copy()
    is_test = out["basket_id"].isin(test_basket_ids).to_numpy()
    item_column = "artwork_idx" if "artwork_idx" in out.columns else "artwork_id"
    held_out = pd.MultiIndex.from_frame(out.loc[is_test, ["user_id", item_column]])
    repeats_held_out = ~is_test & pd.MultiIndex.from_frame(out[["user_id", item_column]]).isin(held_out)
    keeps_training = out.loc[~is_test & ~repeats_held_out, "user_id"].unique()
    no_training_left = out["user_id"].isin(out.loc[is_test, "user_id"]) & ~out["user_id"].isin(keeps_training)
    is_test &= ~no_training_left.to_numpy()
    repeats_held_out &= ~no_training_left.to_numpy()
    out[SPLIT_COLUMN] = np.where(is_test, TEST, np.where(repeats_held_out, EXCLUDED, TRAIN)).astype(object)
    return out


# The authors' published test set, as (user, artwork) pairs: one row per held-out item.
TEST_BASKETS_FILE = "test_baskets.csv"
_TUPLE_COLUMNS = {"user_id": ("user_id", "user_id_hash"), "artwork_id": ("artwork_id", "artwork_id_hash")}


def read_test_tuples(path: Path) -> pd.DataFrame:
    """``test_baskets.csv``: columns user_id (or user_id_hash) and artwork_id (or artwork_id_hash), one row per
    held-out item. Returns a frame with columns user_id, artwork_id and ``file_row`` (1-based data row)."""
    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputDataError(path, f"not a readable CSV file ({type(exc).__name__}: {exc})") from exc
    columns = {}
    for name, accepted in _TUPLE_COLUMNS.items():
        found = [c for c in accepted if c in frame.columns]
        if not found:
            raise InputDataError(path, f"needs a column {' or '.join(accepted)}; it has {list(frame.columns)}")
        columns[name] = frame[found[0]].str.strip()
    out = pd.DataFrame(columns)
    out["file_row"] = np.arange(1, len(out) + 1)
    empty = (out["user_id"] == "") | (out["artwork_id"] == "")
    if empty.any():
        row = int(out.loc[empty, "file_row"].iloc[0])
        raise InputDataError(path, f"data row {row}: empty user or artwork id", row=row)
    return out


def split_from_test_tuples(transactions: pd.DataFrame, tuples: pd.DataFrame, source: str) -> pd.DataFrame:
    """Label ``transactions`` so that the held-out items are exactly the ones ``tuples`` lists.

    For each listed user, the held-out basket is their latest basket holding every listed item; it must hold
    no other item (the file lists whole baskets). Users not listed are train-only. The "excluded" rule of the
    last-basket split applies unchanged. Errors (``InputDataError`` naming ``source`` and the data row): a
    listed user or item with no such purchase, a basket that holds only part of the listed items.
    """
    baskets = order_baskets(transactions)
    rank = baskets.set_index("basket_id")["basket_rank"]
    items = transactions[["user_id", "basket_id", "artwork_id"]].astype({"user_id": str, "artwork_id": str})
    test_basket_ids = []
    for user, listed in tuples.groupby("user_id", sort=True):
        wanted = set(listed["artwork_id"])
        bought = items[items["user_id"] == user]
        if bought.empty:
            row = int(listed["file_row"].iloc[0])
            raise InputDataError(source, f"data row {row}: user {user!r} has no purchase", row=row)
        per_basket = bought.groupby("basket_id")["artwork_id"].apply(set)
        holding = [b for b, held in per_basket.items() if wanted <= held]
        if not holding:
            never = sorted(wanted - set(bought["artwork_id"]))
            row = int(listed["file_row"].iloc[0])
            reason = (
                f"user {user!r} never bought {never[:5]}"
                if never
                else f"no single basket of user {user!r} holds all of {sorted(wanted)[:5]}"
            )
            raise InputDataError(source, f"data row {row}: {reason}", row=row)
        chosen = max(holding, key=lambda b: rank[b])
        others = sorted(per_basket[chosen] - wanted)
        if others:
            row = int(listed["file_row"].iloc[0])
            raise InputDataError(
                source,
                f"data row {row}: the held-out basket of user {user!r} also holds {others[:5]}, which the file "
                "does not list (list every item of a held-out basket)",
                row=row,
            )
        test_basket_ids.append(chosen)
    return _label(transactions, np.asarray(test_basket_ids))


def split_summary(split_df: pd.DataFrame) -> dict:
    """Counts describing a split frame (for asset metadata and logs); all values are plain Python numbers."""
    if SPLIT_COLUMN not in split_df.columns:
        raise ValueError("split_summary needs the 'split' column produced by last_basket_split")
    is_test = (split_df[SPLIT_COLUMN] == TEST).to_numpy()
    baskets_per_user = split_df.groupby("user_id")["basket_id"].nunique()
    test = split_df.loc[is_test]
    test_basket_sizes = test.groupby("basket_id").size()
    train_users = split_df.loc[split_df[SPLIT_COLUMN] == TRAIN, "user_id"].nunique()
    n_users = int(len(baskets_per_user))
    n_test_users = int(test["user_id"].nunique())
    return {
        "n_rows": int(len(split_df)),
        "n_train_rows": int((split_df[SPLIT_COLUMN] == TRAIN).sum()),
        "n_excluded_rows": int((split_df[SPLIT_COLUMN] == EXCLUDED).sum()),
        "n_test_rows": int(is_test.sum()),
        "n_users": n_users,
        "n_train_users": int(train_users),
        "n_test_users": n_test_users,
        "n_single_basket_users": int((baskets_per_user == 1).sum()),
        "fraction_single_basket_users": float((baskets_per_user == 1).mean()) if n_users else 0.0,
        "n_baskets": int(split_df["basket_id"].nunique()),
        "n_test_baskets": int(len(test_basket_sizes)),
        "mean_test_basket_size": float(test_basket_sizes.mean()) if len(test_basket_sizes) else 0.0,
        "mean_baskets_per_user": float(baskets_per_user.mean()) if n_users else 0.0,
        "n_test_distinct_artworks": int(test["artwork_idx"].nunique()) if "artwork_idx" in test else 0,
    }
