"""Cold-start protocols: recommendations for customers and artworks the models never saw (issue 20).

CuratorNet builds a user from the artworks they bought and an artwork from its image, so it needs no
retraining for a new customer or a new artwork; VBPR learns a vector per user and per item and does. The
paper's last-basket protocol tests neither case: every test user was in training. Two protocols measure it.

New customers (``NEW_CUSTOMERS``): a seeded ``fraction`` of the repeat buyers (the users with a held-out
basket) is removed from all training data: their rows are not in what the sampler reads, so no triplet of
any strategy carries them or their purchases, and VBPR has no vector for them. Everything else is the main
protocol: the other users' last baskets stay held out, the features and visual clusters are the catalogue's.
For the removed users the profile is their earlier baskets, the target their last basket, the candidates the
main protocol's (``core.evaluation.evaluation_users``).

New artworks (``NEW_ARTWORKS``): a cut-off time (default the 80th percentile of purchase times, taken as an
actual purchase time) splits the log. The models train on the purchases at or before it only, and on the
artworks known then: uploaded at or before the cut-off, or bought at or before it (an artwork without an
upload time is known only once bought). Triplets are drawn from the known artworks alone, so a later
artwork is never even a negative. Every customer with a purchase at or before the cut-off and one after it
is evaluated: profile = their purchases up to the cut-off, target = their first basket after it,
candidates = the inventory at that basket's time. Later baskets are not used. Features (the z-scored
embeddings) and visual clusters are computed over the whole catalogue, as in the main pipeline: they use
no purchase, but the z-score statistics do include the later artworks.

Both protocols produce a ``ColdStartSetup``: the frames the sampler reads (``training``), the labelled
frame the evaluation reads (``evaluation``), and which artworks the models may know.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from curatornet_pipeline.core.split import EXCLUDED, SPLIT_COLUMN, TEST, TRAIN, order_baskets

NEW_CUSTOMERS = "new_customers"
NEW_ARTWORKS = "new_artworks"
PROTOCOLS = (NEW_CUSTOMERS, NEW_ARTWORKS)


@dataclass(frozen=True)
class ColdStartSetup:
    """One protocol's data, all on the canonical artwork index.

    training: the training rows the sampler and VBPR read (all labelled "train", as the sampler requires; rows
    of artworks outside ``known_items`` never appear). evaluation: the transactions with a
    split column for ``evaluation_users``: "train" = profile, "test" = target basket, "excluded" = unused.
    known_items: bool [N], the artworks that may appear in a training triplet. held_out_users: the new
    customers (empty for NEW_ARTWORKS). cutoff: the cut-off time (NaT for NEW_CUSTOMERS).
    """

    protocol: str
    training: pd.DataFrame
    evaluation: pd.DataFrame
    known_items: np.ndarray
    held_out_users: tuple[str, ...]
    cutoff: pd.Timestamp | None

    @property
    def known_index(self) -> np.ndarray:
        """artwork_idx of the known artworks, ascending: position k of the sampler's catalogue is known_index[k]."""
        return np.flatnonzero(self.known_items)


def repeat_buyers(split_transactions: pd.DataFrame) -> list[str]:
    """Users with a held-out basket (the main protocol's evaluation users), sorted."""
    return sorted(split_transactions.loc[split_transactions[SPLIT_COLUMN] == TEST, "user_id"].astype(str).unique())


def new_customer_setup(split_transactions: pd.DataFrame, n_items: int, fraction: float, seed: int) -> ColdStartSetup:
    """Hold out a seeded ``fraction`` of the repeat buyers from all training data (see the module docstring).

    At least one customer is held out when there is a repeat buyer and fraction > 0; at least one stays in
    training when there are two or more.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"held_out_fraction must be in (0, 1), got {fraction}")
    buyers = repeat_buyers(split_transactions)
    if not buyers:
        raise ValueError("no repeat buyer (nobody has a held-out basket): there is no new customer to evaluate")
    n_held = min(max(1, int(round(fraction * len(buyers)))), max(1, len(buyers) - 1))
    rng = np.random.default_rng(seed)
    held = sorted(rng.choice(np.array(buyers, dtype=object), size=n_held, replace=False).tolist())
    is_held = split_transactions["user_id"].astype(str).isin(held).to_numpy()
    # The evaluation keeps every row: the inventory at a basket's time depends on what everybody bought before.
    evaluation = split_transactions.reset_index(drop=True)
    evaluation[SPLIT_COLUMN] = np.where(is_held, evaluation[SPLIT_COLUMN], EXCLUDED).astype(object)
    return ColdStartSetup(
        protocol=NEW_CUSTOMERS,
        # The training view only: the other customers' held-out baskets are test labels the models must not see.
        training=split_transactions.loc[~is_held & (split_transactions[SPLIT_COLUMN] == TRAIN).to_numpy()].reset_index(
            drop=True
        ),
        evaluation=evaluation,
        known_items=np.ones(n_items, dtype=bool),
        held_out_users=tuple(held),
        cutoff=None,
    )


def purchase_cutoff(transactions: pd.DataFrame, quantile: float) -> pd.Timestamp:
    """The ``quantile`` of the purchase times, rounded down to an actual purchase time."""
    if not 0 < quantile < 1:
        raise ValueError(f"cutoff_quantile must be in (0, 1), got {quantile}")
    times = pd.to_datetime(transactions["purchase_timestamp"]).to_numpy("datetime64[ns]")
    if len(times) == 0:
        raise ValueError("no purchases: a cut-off time needs purchase times")
    return pd.Timestamp(np.quantile(times.astype(np.int64), quantile, method="lower"))


def new_artwork_setup(artworks: pd.DataFrame, split_transactions: pd.DataFrame, quantile: float) -> ColdStartSetup:
    """Train before a cut-off time, evaluate each customer's first basket after it (see the module docstring)."""
    cutoff = purchase_cutoff(split_transactions, quantile)
    tx = split_transactions.reset_index(drop=True)
    n_items = len(artworks)
    bought_ns = pd.to_datetime(tx["purchase_timestamp"]).to_numpy("datetime64[ns]").astype(np.int64)
    before = bought_ns <= cutoff.value

    known = np.zeros(n_items, dtype=bool)
    upload = pd.to_datetime(artworks["upload_timestamp"])
    uploaded_before = (upload.notna() & (upload <= cutoff)).to_numpy()
    known[artworks["artwork_idx"].to_numpy(np.int64)[uploaded_before]] = True
    known[tx.loc[before, "artwork_idx"].to_numpy(np.int64)] = True

    training = tx.loc[before].copy()
    training[SPLIT_COLUMN] = TRAIN  # everything up to the cut-off trains; validation triplets come from sampling

    # Target: each customer's first basket after the cut-off, when they bought something before it.
    baskets = order_baskets(tx)
    after = baskets[baskets["basket_timestamp"] > cutoff]
    with_history = set(tx.loc[before, "user_id"])
    first_after = after[after["user_id"].isin(with_history)].drop_duplicates("user_id", keep="first")
    evaluation = tx.copy()
    evaluation[SPLIT_COLUMN] = np.where(
        before, TRAIN, np.where(tx["basket_id"].isin(first_after["basket_id"]), TEST, EXCLUDED)
    ).astype(object)
    return ColdStartSetup(
        protocol=NEW_ARTWORKS,
        training=training.reset_index(drop=True),
        evaluation=evaluation,
        known_items=known,
        held_out_users=(),
        cutoff=cutoff,
    )


def setup_summary(setup: ColdStartSetup, targets: dict[str, np.ndarray]) -> dict:
    """Counts for the protocols table: users evaluated, target artworks and how many are new to the models.

    targets: user_id -> the artwork_idx of their target basket.
    """
    target_items = np.unique(np.concatenate(list(targets.values()))) if targets else np.zeros(0, dtype=np.int64)
    new_targets = target_items[~setup.known_items[target_items]]
    rows = sum(len(t) for t in targets.values())
    new_rows = sum(int((~setup.known_items[t]).sum()) for t in targets.values())
    return {
        "n_users": len(targets),
        "n_training_purchases": int(len(setup.training)),
        "n_training_users": int(setup.training["user_id"].nunique()),
        "n_known_artworks": int(setup.known_items.sum()),
        "n_target_artworks": int(len(target_items)),
        "n_target_artworks_new": int(len(new_targets)),
        "fraction_target_purchases_new": float(new_rows / rows) if rows else 0.0,
    }
