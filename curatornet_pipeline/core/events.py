"""What a shop tells us its customers did (``events.csv``): purchases, likes, unlikes, views and clicks.

A shop posts events to the JSON API (``POST /api/v1/events``); the app checks each one and appends it, as one
CSV line, to ``events.csv`` in the gallery's source folder (fsynced before it answers). The refresh reads the
file like ``likes.csv``: purchases join the purchases of the source files (a one-of-a-kind work bought through
an event is sold at the next refresh), likes and unlikes join the visitors' likes, views and clicks are kept
for online metrics and change no recommendation.

Lines are read leniently, like likes: a line the refresh cannot use (a hand edit) is set aside with its line
number and reason, never dropped silently, and the other lines go on.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Container

import numpy as np
import pandas as pd

from curatornet_pipeline.core.feedback import _timestamp

EVENTS_FILE = "events.csv"
EVENTS_HEADER = ("event_id", "type", "user_id", "artwork_id", "timestamp", "received_at")
EVENT_TYPES = ("purchase", "like", "unlike", "view", "click")
_MAX_TEXT = 200


@dataclass
class Events:
    """The usable events of one file (columns of EVENTS_HEADER, timestamps as datetime64, ``line``) and the rest."""

    rows: pd.DataFrame
    set_aside: list[dict] = field(default_factory=list)  # file, line, reason, text

    def of_type(self, kind: str) -> pd.DataFrame:
        return self.rows.loc[self.rows["type"] == kind].reset_index(drop=True)


def _empty() -> pd.DataFrame:
    frame = pd.DataFrame({name: pd.Series([], dtype=object) for name in EVENTS_HEADER})
    frame["timestamp"] = np.zeros(0, "datetime64[ns]")
    frame["line"] = np.zeros(0, np.int64)
    return frame


def read_events(path: Path, known_artworks: Container[str] | None = None) -> Events:
    """Read ``path`` (missing: no events); repeated event ids keep their first line. OSError when unreadable."""
    path = Path(path)
    if not path.exists():
        return Events(_empty())
    set_aside: list[dict] = []
    rows: list[dict] = []
    seen: set[str] = set()

    def aside(number: int, reason: str, text: str) -> None:
        set_aside.append({"file": path.name, "line": number, "reason": reason, "text": text[:_MAX_TEXT]})

    lines = path.read_bytes().decode("utf-8", errors="replace").split("\n")
    for number, text in enumerate(lines, start=1):
        text = text.rstrip("\r")
        if not text.strip():
            continue
        try:
            fields = next(csv.reader([text], strict=True))
        except csv.Error as error:
            aside(number, f"malformed CSV ({error})", text)
            continue
        if number == 1:
            if tuple(fields) != EVENTS_HEADER:
                aside(number, f"the header is not {','.join(EVENTS_HEADER)}", text)
            continue
        if len(fields) != len(EVENTS_HEADER):
            aside(number, f"expected {len(EVENTS_HEADER)} fields, found {len(fields)}", text)
            continue
        row = dict(zip(EVENTS_HEADER, (f.strip() for f in fields)))
        stamp = _timestamp(row["timestamp"])
        if row["type"] not in EVENT_TYPES:
            aside(number, f"type {row['type'][:20]!r} is not one of {', '.join(EVENT_TYPES)}", text)
        elif not row["event_id"] or not row["user_id"] or not row["artwork_id"]:
            aside(number, "empty event_id, user_id or artwork_id", text)
        elif stamp is None:
            aside(number, f"cannot parse {row['timestamp'][:40]!r} as a timestamp", text)
        elif known_artworks is not None and row["artwork_id"] not in known_artworks:
            aside(number, f"artwork id {row['artwork_id'][:60]!r} is not in the catalogue", text)
        elif row["event_id"] not in seen:  # a repeated id is the same event told twice: not an error
            seen.add(row["event_id"])
            rows.append({**row, "timestamp": stamp, "line": number})
    frame = _empty() if not rows else pd.DataFrame(rows).astype({"line": np.int64})
    frame["timestamp"] = frame["timestamp"].astype("datetime64[ns]")
    return Events(frame, set_aside)


def as_feedback_rows(events: pd.DataFrame) -> pd.DataFrame:
    """Like or unlike events in the row shape of ``core.feedback`` (visitor_id, artwork_id, timestamp, line)."""
    return pd.DataFrame(
        {
            "visitor_id": events["user_id"].astype(object).to_numpy(),
            "artwork_id": events["artwork_id"].astype(object).to_numpy(),
            "timestamp": events["timestamp"].to_numpy("datetime64[ns]"),
            "line": events["line"].to_numpy(np.int64),
        }
    )


def purchase_transactions(purchases: pd.DataFrame, index: dict[str, int], first_basket: int) -> pd.DataFrame:
    """Purchase events as rows of the source files' ``transactions``: one basket per user and timestamp, numbered
    from ``first_basket`` on (after the source files' baskets)."""
    users = purchases["user_id"].astype(str).to_numpy()
    stamps = purchases["timestamp"].to_numpy("datetime64[ns]")
    baskets = purchases.groupby(["user_id", "timestamp"], sort=True).ngroup().to_numpy(np.int64)
    return pd.DataFrame(
        {
            "user_id": users,
            "basket_id": first_basket + baskets,
            "purchase_timestamp": stamps,
            "artwork_id": purchases["artwork_id"].astype(str).to_numpy(),
            "artwork_idx": np.array([index[a] for a in purchases["artwork_id"]], dtype=np.int64),
            "source_row": purchases["line"].to_numpy(np.int64),
        }
    )
