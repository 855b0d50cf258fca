"""Metadata every asset attaches: row counts, column schemas, and plots as inline images."""

import base64

import dagster as dg
import duckdb
import pandas as pd

from curatornet_pipeline.core.reporting import markdown_table
from curatornet_pipeline.tables import VECTOR, Table


def column_schema(con: duckdb.DuckDBPyConnection, table: Table) -> dg.TableSchema:
    """The declared columns of ``table`` (tables.py), a vector column with the width its rows were written at."""
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
                description=c.description or None,
            )
            for c in table.columns
        ]
    )


def table_metadata(con: duckdb.DuckDBPyConnection, table: Table) -> dict:
    """Row count, column schema, and the DuckDB table name of one stored table."""
    n_rows = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    return {
        "dagster/row_count": dg.MetadataValue.int(int(n_rows)),
        "dagster/column_schema": column_schema(con, table),
        "dagster/table_name": dg.MetadataValue.text(table.name),
    }


def image_markdown(png: bytes, alt: str) -> dg.MetadataValue:
    """A PNG inlined in markdown, which the Dagster UI renders as a picture."""
    encoded = base64.b64encode(png).decode("ascii")
    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{encoded})")


def frame_markdown(frame: pd.DataFrame, float_format: str = "{:.4f}") -> dg.MetadataValue:
    return dg.MetadataValue.md(markdown_table(frame, float_format))
