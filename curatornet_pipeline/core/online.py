"""Online metrics: click-through and conversion of recommended works, per model version and list position.

Inputs are the views and clicks of recommended works (the app's ``impressions.csv`` and the shop's view/click
events, both in the ``core/events.py`` row shape) and the likes and purchases customers made.

- An impression is one view of one work at one position of one list. Click-through = clicks / impressions.
- A click counts for the version and position it names; a click that names no version takes the version of
  that customer's latest earlier view of the work (else "unknown").
- An impression converts when the same customer likes or buys the same work after the view and within
  ``window`` (default 24 h). Conversion = converted impressions / impressions.

The comparison of two versions is a one-sided two-proportion z-test (pooled standard error): does the newer
version's click-through fall below the older one's by more than chance explains?
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

DEFAULT_WINDOW = pd.Timedelta(hours=24)
METRIC_COLUMNS = (
    "model_version", "position", "impressions", "clicks", "click_through", "conversions", "conversion_rate",
    "first_view", "last_view",
)


def online_metrics(
    views: pd.DataFrame, clicks: pd.DataFrame, conversions: pd.DataFrame, window: pd.Timedelta = DEFAULT_WINDOW
) -> pd.DataFrame:
    """One row per (model version, list position), positions 1.. in order, versions by their first view.

    ``views``, ``clicks``: user_id, artwork_id, timestamp, position, model_version (events rows);
    ``conversions``: user_id, artwork_id, timestamp (likes and purchases)."""
    views = views.loc[views["position"] >= 1, ["user_id", "artwork_id", "timestamp", "position", "model_version"]]
    views = views.assign(model_version=views["model_version"].replace("", "unknown")).reset_index(drop=True)
    if views.empty:
        return pd.DataFrame({c: pd.Series([], dtype=_dtype(c)) for c in METRIC_COLUMNS})
    clicks = _attributed(clicks, views)
    views["converted"] = _converted(views, conversions, window)
    grouped = views.groupby(["model_version", "position"], sort=False).agg(
        impressions=("user_id", "size"), conversions=("converted", "sum"),
        first_view=("timestamp", "min"), last_view=("timestamp", "max"),
    )
    n_clicks = clicks.groupby(["model_version", "position"]).size().rename("clicks")
    table = grouped.join(n_clicks, how="left").fillna({"clicks": 0}).reset_index()
    table["clicks"] = table["clicks"].astype(np.int64)
    table["conversions"] = table["conversions"].astype(np.int64)
    table["click_through"] = table["clicks"] / table["impressions"]
    table["conversion_rate"] = table["conversions"] / table["impressions"]
    first = views.groupby("model_version")["timestamp"].min()
    table["order"] = table["model_version"].map(first)
    table = table.sort_values(["order", "model_version", "position"]).drop(columns=["order"])
    return table[list(METRIC_COLUMNS)].reset_index(drop=True)


def _dtype(column: str) -> str:
    if column in ("model_version",):
        return "object"
    if column in ("click_through", "conversion_rate"):
        return "float64"
    if column in ("first_view", "last_view"):
        return "datetime64[ns]"
    return "int64"


def _attributed(clicks: pd.DataFrame, views: pd.DataFrame) -> pd.DataFrame:
    """Clicks with a position, their model version filled from the customer's latest earlier view of the work."""
    clicks = clicks.loc[clicks["position"] >= 1, ["user_id", "artwork_id", "timestamp", "position", "model_version"]]
    clicks = clicks.reset_index(drop=True)
    missing = clicks["model_version"] == ""
    if missing.any():
        ordered = views.sort_values("timestamp")
        latest = []
        for row in clicks.loc[missing].itertuples():
            seen = ordered.loc[(ordered["user_id"] == row.user_id) & (ordered["artwork_id"] == row.artwork_id)
                               & (ordered["timestamp"] <= row.timestamp), "model_version"]
            latest.append(seen.iloc[-1] if len(seen) else "unknown")
        clicks.loc[missing, "model_version"] = latest
    return clicks


def _converted(views: pd.DataFrame, conversions: pd.DataFrame, window: pd.Timedelta) -> np.ndarray:
    """Per view: did the same customer like or buy the same work within ``window`` after it?"""
    if conversions.empty:
        return np.zeros(len(views), dtype=bool)
    later = views.reset_index().merge(
        conversions[["user_id", "artwork_id", "timestamp"]].rename(columns={"timestamp": "converted_at"}),
        on=["user_id", "artwork_id"],
    )
    gap = later["converted_at"] - later["timestamp"]
    hit = later.loc[(gap > pd.Timedelta(0)) & (gap <= window), "index"].unique()
    out = np.zeros(len(views), dtype=bool)
    out[hit] = True
    return out


@dataclass(frozen=True)
class Comparison:
    """The newer version's click-through against the older one's."""

    older: str
    newer: str
    older_rate: float
    newer_rate: float
    older_impressions: int
    newer_impressions: int
    z: float  # negative: the newer version is clicked less
    p_value: float  # one-sided: P(a fall at least this large | equal click-through)


def two_proportion_test(older: tuple[int, int], newer: tuple[int, int]) -> tuple[float, float]:
    """(z, one-sided p) that the newer (clicks, impressions) rate is below the older one; (0, 1) when undefined."""
    (c1, n1), (c2, n2) = older, newer
    if n1 == 0 or n2 == 0:
        return 0.0, 1.0
    pooled = (c1 + c2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 0.0, 1.0
    z = (c2 / n2 - c1 / n1) / se
    return z, 0.5 * math.erfc(-z / math.sqrt(2))  # the normal CDF at z


def compare_newest(metrics: pd.DataFrame) -> Comparison | None:
    """The newest model version (latest first view) against the one before it, over all positions; None when
    fewer than two versions were shown."""
    totals = metrics.groupby("model_version", sort=False).agg(
        clicks=("clicks", "sum"), impressions=("impressions", "sum"), first_view=("first_view", "min")
    ).sort_values("first_view")
    totals = totals.loc[totals.index != "unknown"]
    if len(totals) < 2:
        return None
    older, newer = totals.iloc[-2], totals.iloc[-1]
    z, p = two_proportion_test(
        (int(older["clicks"]), int(older["impressions"])), (int(newer["clicks"]), int(newer["impressions"]))
    )
    return Comparison(
        older=str(totals.index[-2]), newer=str(totals.index[-1]),
        older_rate=float(older["clicks"] / older["impressions"]), newer_rate=float(newer["clicks"] / newer["impressions"]),
        older_impressions=int(older["impressions"]), newer_impressions=int(newer["impressions"]), z=z, p_value=p,
    )
