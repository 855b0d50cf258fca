"""What a shop tells us its customers did (``events.csv``): purchases, likes, unlikes, views and clicks.

A shop posts events to the JSON API (``POST /api/v1/events``); the app checks each one and appends it, as one
CSV line, to ``events.csv`` in the gallery's source folder (fsynced before it answers). The refresh reads the
file like ``likes.csv``: purchases join the purchases of the source files (a one-of-a-kind work bought through
an event is sold at the next refresh), likes and unlikes join the visitors' likes, views and clicks are kept
for online metrics and change no recommendation.

Three trailing columns are optional (views and clicks of recommended works fill them): ``list`` (which list
showed the work: for_you, similar, served), ``position`` (1 = first in that list) and ``model_version`` (what
served it). Files written before they existed (six columns) are read as they are, with the three left empty.

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
# The app's own views and clicks of recommended works, in this format (webapp/impressions.py).
IMPRESSIONS_FILE = "impressions.csv"
BASE_HEADER = ("event_id", "type", "user_id", "artwork_id", "timestamp", "received_at")
LIST_FIELDS = ("list", "position", "model_version")
EVENTS_HEADER = BASE_HEADER + LIST_FIELDS
LIST_KINDS = ("for_you", "similar", "served")
EVENT_TYPES = ("purchase", "like", "unlike", "view", "click")
_MAX_TEXT = 200


@dataclass
class Events:
    """The usable events of one file (columns of EVENTS_HEADER, timestamps as datetime64, position 0 where none
    was given, ``line``) and the rest."""

    rows: pd.DataFrame
    set_aside: list[dict] = field(default_factory=list)  # file, line, reason, text

    def of_type(self, kind: str) -> pd.DataFrame:
        return self.rows.loc[self.rows["type"] == kind].reset_index(drop=True)


def _empty() -> pd.DataFrame:
    frame = pd.DataFrame({name: pd.Series([], dtype=object) for name in EVENTS_HEADER})
    frame["timestamp"] = np.zeros(0, "datetime64[ns]")
    frame["line"] = np.zeros(0, np.int64)
    frame["position"] = np.zeros(0, np.int64)
    return frame


def _position(text: str) -> int | None:
    """A list position: 1 or more; 0 when the event names none (an empty field); None when unusable."""
    if not text:
        return 0
    return int(text) if text.isdigit() and int(text) >= 1 else None


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
            if tuple(fields) not in (BASE_HEADER, EVENTS_HEADER):
                aside(number, f"the header is not {','.join(EVENTS_HEADER)}", text)
            continue
        if len(fields) not in (len(BASE_HEADER), len(EVENTS_HEADER)):
            aside(number, f"expected {len(EVENTS_HEADER)} fields (or {len(BASE_HEADER)}), found {len(fields)}", text)
            continue
        row = dict(zip(EVENTS_HEADER, [f.strip() for f in fields] + [""] * (len(EVENTS_HEADER) - len(fields))))
        stamp = _timestamp(row["timestamp"])
        position = _position(row["position"])
        if row["type"] not in EVENT_TYPES:
            aside(number, f"type {row['type'][:20]!r} is not one of {', '.join(EVENT_TYPES)}", text)
        elif not row["event_id"] or not row["user_id"] or not row["artwork_id"]:
            aside(number, "empty event_id, user_id or artwork_id", text)
        elif stamp is None:
            aside(number, f"cannot parse {row['timestamp'][:40]!r} as a timestamp", text)
        elif row["list"] and row["list"] not in LIST_KINDS:
            aside(number, f"list {row['list'][:20]!r} is not one of {', '.join(LIST_KINDS)}", text)
        elif position is None:
            aside(number, f"position {row['position'][:20]!r} is not a whole number from 1", text)
        elif known_artworks is not None and row["artwork_id"] not in known_artworks:
            aside(number, f"artwork id {row['artwork_id'][:60]!r} is not in the catalogue", text)
        elif row["event_id"] not in seen:  # a repeated id is the same event told twice: not an error
            seen.add(row["event_id"])
            rows.append({**row, "timestamp": stamp, "position": position, "line": number})
    frame = _empty() if not rows else pd.DataFrame(rows).astype({"line": np.int64, "position": np.int64})
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
