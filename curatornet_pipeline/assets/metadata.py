"""Metadata every asset attaches: row counts, column schemas, and plots as inline images."""

import base64

import dagster as dg
import duckdb
import pandas as pd

from curatornet_pipeline.core.reporting import markdown_table


def table_metadata(con: duckdb.DuckDBPyConnection, table: str) -> dict:
    """Row count, column schema, and the DuckDB table name of one stored table."""
    schema, name = table.split(".")
    columns = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
        [schema, name],
    ).fetchall()
    n_rows = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    return {
        "dagster/row_count": dg.MetadataValue.int(int(n_rows)),
        "dagster/column_schema": dg.TableSchema(columns=[dg.TableColumn(c, t) for c, t in columns]),
        "dagster/table_name": dg.MetadataValue.text(f"{table}"),
    }


def image_markdown(png: bytes, alt: str) -> dg.MetadataValue:
    """A PNG inlined in markdown, which the Dagster UI renders as a picture."""
    encoded = base64.b64encode(png).decode("ascii")
    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{encoded})")


def frame_markdown(frame: pd.DataFrame, float_format: str = "{:.4f}") -> dg.MetadataValue:
    return dg.MetadataValue.md(markdown_table(frame, float_format))
