"""One error type for bad user input, so every message names the file, the place and the reason."""

from __future__ import annotations

from pathlib import Path


class InputDataError(ValueError):
    """Raised when an input file is malformed. Never raised for bugs in our own code."""

    def __init__(
        self,
        file: str | Path,
        reason: str,
        *,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        self.file = str(file)
        self.reason = reason
        self.row = row
        self.column = column
        where = [self.file]
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column '{column}'")
        super().__init__(f"{', '.join(where)}: {reason}")
