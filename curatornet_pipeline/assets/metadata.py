"""Metadata every asset attaches: row counts, described column schemas, rounded key figures, named pictures."""

import base64
import math

import dagster as dg
import duckdb
import pandas as pd

from curatornet_pipeline.column_descriptions import column_description
from curatornet_pipeline.core.reporting import markdown_table
from curatornet_pipeline.tables import VECTOR, Table


def column_schema(con: duckdb.DuckDBPyConnection, table: Table) -> dg.TableSchema:
    """The declared columns of ``table`` (tables.py), a vector column with the width its rows were written at.

    A column's description is its declaration's, else what the column name means (column_descriptions.py).
    """
    stored = dict(
        con.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = ? AND table_name = ?",
            [table.schema, table.short_name],
        ).fetchall()
    )
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                c.name,
                stored.get(c.name, c.type) if c.type == VECTOR else c.type,
                description=c.description or column_description(table.name, c.name),
            )
            for c in table.columns
        ]
    )


def table_metadata(con: duckdb.DuckDBPyConnection, table: Table, row_count: int | None = None) -> dict:
    """Row count, described column schema, and the DuckDB table name of one stored table.

    ``row_count`` is the number of rows the asset itself wrote, where the table holds other assets' or
    partitions' rows too (two model variants share one models table); by default the whole table's count.
    """
    if row_count is None:
        row_count = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    return {
        "dagster/row_count": dg.MetadataValue.int(int(row_count)),
        "dagster/column_schema": column_schema(con, table),
        "dagster/table_name": dg.MetadataValue.text(table.name),
    }


def rounded(value: float, significant: int = 4) -> float:
    """``value`` to a few significant digits: the UI prints floats in full, 0.7204 reads better than 0.72041338."""
    value = float(value)
    if value == 0 or not math.isfinite(value):
        return value
    return round(value, significant - 1 - math.floor(math.log10(abs(value))))


def plot_key(name: str) -> str:
    """The metadata key of a chart, so the UI's list says a chart is behind "[Show Markdown]"."""
    return f"plot: {name}"


def picture_key(name: str) -> str:
    return f"picture: {name}"


def table_key(name: str) -> str:
    return f"table: {name}"


def image_markdown(png: bytes, alt: str) -> dg.MetadataValue:
    """A PNG inlined in markdown, which the Dagster UI renders as a picture."""
    encoded = base64.b64encode(png).decode("ascii")
    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{encoded})")


def frame_markdown(frame: pd.DataFrame, float_format: str = "{:.4g}") -> dg.MetadataValue:
    """A small frame as a markdown table: four significant digits, whole-number columns as integers."""
    return dg.MetadataValue.md(markdown_table(frame, float_format))
