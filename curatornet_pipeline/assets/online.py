"""Online group: what customers did with the recommendations they were shown, per model version and position.

Reads files, not tables: the app's views and clicks (impressions.csv), the shop's events (events.csv) and the
visitors' likes (likes.csv), all in the gallery's source folder. With no views yet it writes an empty table
and says so; it never fails for want of events. Method: ``core/online.py``.
"""

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource
from pydantic import Field

from curatornet_pipeline import tables
from curatornet_pipeline.assets.metadata import (
    frame_markdown, image_markdown, plot_key, rounded, table_key, table_metadata,
)
from curatornet_pipeline.core.events import EVENTS_FILE, IMPRESSIONS_FILE, read_events
from curatornet_pipeline.core.feedback import LIKES_FILE, read_feedback
from curatornet_pipeline.core.online import online_metrics as compute_online_metrics
from curatornet_pipeline.plots import line_figure, to_png
from curatornet_pipeline.resources import GallerySource
from curatornet_pipeline.storage import replace_tables

GROUP = "online"


class OnlineMetricsConfig(dg.Config):
    conversion_window_hours: float = Field(
        default=24.0, gt=0, description="A like or purchase counts as a conversion of a view within this many hours."
    )


@dg.asset(
    group_name=GROUP,
    kinds={"duckdb", "pandas"},
    deps=["source_files"],  # the demo gallery exists once source_files ran
    pool="duckdb",
    description=(
        f"Click-through (clicks / impressions) and conversion (a like or purchase of the shown work by the same "
        f"customer within the window after the view) of recommended works, per model version and list position "
        f"({tables.ONLINE_METRICS}), from the app's {IMPRESSIONS_FILE}, the shop's view, click, like and purchase "
        f"events ({EVENTS_FILE}) and the visitors' {LIKES_FILE}. Re-run it from the UI or with the "
        "curatornet_online_metrics job; simulate visitors with benchmarks/simulate_visitors.py."
    ),
)
def online_metrics(
    context: dg.AssetExecutionContext, config: OnlineMetricsConfig, gallery: GallerySource, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    folder = gallery.folder()
    readings = [read_events(folder / name) for name in (IMPRESSIONS_FILE, EVENTS_FILE)]
    events = pd.concat([r.rows for r in readings], ignore_index=True)
    likes = read_feedback(folder / LIKES_FILE)
    set_aside = [line for r in readings for line in r.set_aside] + likes.set_aside
    if set_aside:
        first = set_aside[0]
        context.log.warning(f"{len(set_aside)} line(s) set aside, e.g. {first['file']} line {first['line']}: "
                            f"{first['reason']}; the other lines are counted")
    conversions = pd.concat(
        [
            events.loc[events["type"].isin(["like", "purchase"]), ["user_id", "artwork_id", "timestamp"]],
            likes.rows.rename(columns={"visitor_id": "user_id"})[["user_id", "artwork_id", "timestamp"]],
        ],
        ignore_index=True,
    )
    metrics = compute_online_metrics(
        events.loc[events["type"] == "view"], events.loc[events["type"] == "click"], conversions,
        pd.Timedelta(hours=config.conversion_window_hours),
    )
    with duckdb.get_connection() as con:
        replace_tables(con, {tables.ONLINE_METRICS: metrics})
        meta = table_metadata(con, tables.ONLINE_METRICS)
    totals = metrics.groupby("model_version", sort=False)[["impressions", "clicks", "conversions"]].sum()
    if metrics.empty:
        context.log.info(f"no views of recommended works yet in {IMPRESSIONS_FILE} or {EVENTS_FILE}")
    plots = {}
    positions = list(range(1, int(metrics["position"].max()) + 1)) if len(metrics) else []
    for column, label in (("click_through", "click-through"), ("conversion_rate", "conversion")):
        if not positions:
            break
        # One line per model version over the same positions (NaN: the version never showed that position).
        wide = metrics.pivot(index="position", columns="model_version", values=column).reindex(positions)
        series = {str(version): wide[version].tolist() for version in totals.index}
        plots[plot_key(f"{label} by position")] = image_markdown(
            to_png(line_figure(positions, series, f"{label} by list position", "position", label)), label
        )
    return dg.MaterializeResult(
        metadata={
            **meta,
            "n_impressions": int(metrics["impressions"].sum()),
            "n_clicks": int(metrics["clicks"].sum()),
            "n_conversions": int(metrics["conversions"].sum()),
            "n_lines_set_aside": len(set_aside),
            table_key("by model version"): frame_markdown(
                totals.assign(
                    click_through=[rounded(c / i) for c, i in zip(totals["clicks"], totals["impressions"])],
                    conversion_rate=[rounded(c / i) for c, i in zip(totals["conversions"], totals["impressions"])],
                ).reset_index()
            ),
            **plots,
        }
    )
