"""Plain-text tables for the terminal, the README and Dagster metadata."""

from __future__ import annotations

import math
from datetime import datetime

import pandas as pd


def _whole_number_columns(frame: pd.DataFrame) -> set[str]:
    """Float columns whose every value is a whole number (counts stored as floats): printed without decimals."""
    whole = set()
    for column in frame.columns:
        values = frame[column]
        if pd.api.types.is_float_dtype(values):
            finite = values.dropna()
            finite = finite[finite.map(math.isfinite)]
            if len(finite) and bool((finite == finite.round()).all()) and bool((finite.abs() < 1e15).all()):
                whole.add(column)
    return whole


def markdown_table(frame: pd.DataFrame, float_format: str = "{:.4f}") -> str:
    """A GitHub-flavoured markdown table; floats formatted, whole-number columns as integers, missing blank."""
    whole = _whole_number_columns(frame)

    def cell(column: str, value: object) -> str:
        if value is None or (isinstance(value, float) and pd.isna(value)):
            return ""
        if isinstance(value, float):
            return str(int(value)) if column in whole else float_format.format(value)
        if isinstance(value, datetime):  # pandas timestamps too: to the second, microseconds are noise here
            return value.strftime("%Y-%m-%d %H:%M:%S")
        return str(value)

    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = [
        "| " + " | ".join(cell(c, v) for c, v in zip(frame.columns, row)) + " |"
        for row in frame.itertuples(index=False)
    ]
    return "\n".join([header, rule, *rows])
