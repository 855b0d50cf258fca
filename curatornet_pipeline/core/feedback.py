"""Visitors' likes (``likes.csv``): read line by line, with bad lines set aside instead of failing the reader.

The visitor app appends one line per like (``visitor_id,artwork_id,timestamp``); people also edit the file by
hand. Unlike the gallery's source files, which are read strictly (a bad row stops the run), feedback is read
leniently: a line that cannot be used is *set aside* with its line number and reason, and the good lines go
on. Nothing is dropped silently: every set-aside line is returned to the caller, who counts, logs and keeps
it (the refresh stores them in a table, the app reports them in /healthz).

A header other than ``visitor_id,artwork_id,timestamp`` makes every line unusable (the columns cannot be
trusted); the whole file is then reported as unreadable, with the reason, and all its lines are set aside.

Unlikes. A visitor who takes a like back gets a line in ``unlikes.csv`` (same columns, read the same way);
the likes file stays append-only. A like counts unless an unlike of the same visitor and artwork is at least
as recent (the app stamps both to the microsecond, so like, unlike, like again ends liked).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Container
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

LIKES_FILE = "likes.csv"
UNLIKES_FILE = "unlikes.csv"
LIKES_HEADER = ("visitor_id", "artwork_id", "timestamp")
LIKE_COLUMNS = ["user_id", "artwork_id", "artwork_idx", "like_timestamp", "source_row"]
SET_ASIDE_COLUMNS = ["file", "line", "reason", "text"]
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_MAX_EPOCH_SECONDS = 9.2e9  # datetime64[ns] covers roughly 1677..2262
_MAX_TEXT = 200  # characters of a set-aside line kept for the reader


@dataclass
class Feedback:
    """The usable likes of one file, and the lines set aside."""

    path: Path
    # visitor_id, artwork_id (str), timestamp (datetime64[ns], UTC, naive), line (1-based physical line)
    rows: pd.DataFrame
    set_aside: list[dict] = field(default_factory=list)  # file, line, reason, text
    unreadable: str | None = None  # why no line could be used at all (bad header); None when the header is good

    def set_aside_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.set_aside, columns=SET_ASIDE_COLUMNS).astype({"line": np.int64})


def _empty_rows() -> pd.DataFrame:
    return pd.DataFrame(
        {"visitor_id": pd.Series([], dtype=object), "artwork_id": pd.Series([], dtype=object),
         "timestamp": np.zeros(0, "datetime64[ns]"), "line": np.zeros(0, np.int64)}
    )


def _timestamp(text: str) -> np.datetime64 | None:
    """Epoch seconds or ISO 8601 (an offset is converted to UTC); None when it is neither."""
    if _NUMBER.match(text):
        seconds = float(text)
        if not np.isfinite(seconds) or abs(seconds) > _MAX_EPOCH_SECONDS:
            return None
        return np.datetime64(pd.Timestamp(int(seconds) if seconds.is_integer() else seconds, unit="s"), "ns")
    try:
        stamp = pd.Timestamp(text)
    except (ValueError, OverflowError):
        return None
    if stamp is pd.NaT:
        return None
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return np.datetime64(stamp, "ns")


def read_feedback(path: Path, known_artworks: Container[str] | None = None) -> Feedback:
    """Read ``path`` (a likes file); a missing file is no likes. Lines of an unknown artwork are set aside too.

    Raises OSError only when the file exists but cannot be opened or read (a folder in its place, no
    permission): the caller decides what that means for it.
    """
    path = Path(path)
    if not path.exists():
        return Feedback(path, _empty_rows())
    data = path.read_bytes()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    found: list[tuple[str, str, np.datetime64, int]] = []
    set_aside: list[dict] = []

    def aside(number: int, reason: str, raw: bytes) -> None:
        text = raw.decode("utf-8", errors="backslashreplace").rstrip("\r")
        set_aside.append({"file": path.name, "line": number, "reason": reason, "text": text[:_MAX_TEXT]})

    header = None
    unreadable = None
    for number, raw in enumerate(lines, start=1):
        try:
            text = raw.decode("utf-8-sig" if number == 1 else "utf-8").rstrip("\r")
        except UnicodeDecodeError as error:
            reason = f"bytes {raw[error.start:error.end]!r} at column {error.start + 1} are not UTF-8 text"
            if header is None:
                header, unreadable = (), f"the header (line 1) is not UTF-8 text ({reason})"
                reason = unreadable
            aside(number, reason, raw)
            continue
        if not text.strip():
            continue  # a blank line carries nothing
        try:
            fields = next(csv.reader([text], strict=True))
        except csv.Error as error:
            fields, parse_error = None, f"malformed CSV ({error})"
        if header is None:
            header = tuple(f.strip() for f in fields) if fields is not None else ()
            if header != LIKES_HEADER:
                unreadable = (
                    f"the header (line 1) is {text[:80]!r}, not {','.join(LIKES_HEADER)}: no line of the file "
                    "can be trusted until the header is fixed"
                )
                aside(number, unreadable, raw)
            continue
        if unreadable:
            aside(number, "the file's header is not visitor_id,artwork_id,timestamp", raw)
            continue
        if fields is None:
            aside(number, parse_error, raw)
            continue
        if len(fields) != len(LIKES_HEADER):
            aside(number, f"expected 3 fields (visitor_id, artwork_id, timestamp), found {len(fields)}", raw)
            continue
        visitor_id, artwork_id, stamp_text = (f.strip() for f in fields)
        if not visitor_id or not artwork_id:
            aside(number, "empty visitor_id or artwork_id", raw)
            continue
        stamp = _timestamp(stamp_text)
        if stamp is None:
            aside(number, f"cannot parse {stamp_text[:40]!r} as a timestamp (ISO 8601 or epoch seconds)", raw)
            continue
        if known_artworks is not None and artwork_id not in known_artworks:
            aside(number, f"artwork id {artwork_id[:60]!r} is not in the catalogue", raw)
            continue
        found.append((visitor_id, artwork_id, stamp, number))
    rows = _empty_rows() if not found else pd.DataFrame(
        {
            "visitor_id": pd.Series([r[0] for r in found], dtype=object),
            "artwork_id": pd.Series([r[1] for r in found], dtype=object),
            "timestamp": np.array([r[2] for r in found], dtype="datetime64[ns]"),
            "line": np.array([r[3] for r in found], dtype=np.int64),
        }
    )
    return Feedback(path, rows, set_aside, unreadable)


def standing(likes: pd.DataFrame, unlikes: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``likes`` not taken back: no unlike of the same visitor and artwork at or after the like."""
    if likes.empty or unlikes.empty:
        return likes
    latest = unlikes.groupby(["visitor_id", "artwork_id"])["timestamp"].max().rename("unliked_at")
    joined = likes.join(latest, on=["visitor_id", "artwork_id"])
    keep = joined["unliked_at"].isna() | (joined["unliked_at"] < joined["timestamp"])
    return likes.loc[keep.to_numpy()].reset_index(drop=True)


def read_likes(
    folder: Path,
    artworks: pd.DataFrame,
    more_likes: pd.DataFrame | None = None,
    more_unlikes: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, Feedback]:
    """The standing likes of ``folder`` (likes.csv less unlikes.csv) as served interactions, and the reading.

    Returns ``user_id, artwork_id, artwork_idx, like_timestamp, source_row`` (source_row: the line of
    likes.csv) in file order; ``artworks`` (``artwork_id, artwork_idx``) is the catalogue the ids must belong
    to. The returned Feedback holds the set-aside lines of both files. ``more_likes`` / ``more_unlikes`` (rows
    of the same shape, e.g. the shop's like events) join the files' before unlikes are applied.
    """
    index = dict(zip(artworks["artwork_id"].astype(str), artworks["artwork_idx"].astype(np.int64)))
    feedback = read_feedback(Path(folder) / LIKES_FILE, index)
    unlikes = read_feedback(Path(folder) / UNLIKES_FILE, index)
    feedback.set_aside.extend(unlikes.set_aside)
    liked = pd.concat([feedback.rows, more_likes], ignore_index=True) if more_likes is not None else feedback.rows
    unliked = pd.concat([unlikes.rows, more_unlikes], ignore_index=True) if more_unlikes is not None else unlikes.rows
    rows = standing(liked, unliked)
    likes = pd.DataFrame(
        {
            "user_id": rows["visitor_id"].astype(str).to_numpy(dtype=object),
            "artwork_id": rows["artwork_id"].astype(str).to_numpy(dtype=object),
            "artwork_idx": np.array([index[a] for a in rows["artwork_id"]], dtype=np.int64),
            "like_timestamp": rows["timestamp"].to_numpy(dtype="datetime64[ns]"),
            "source_row": rows["line"].to_numpy(np.int64),
        }
    )
    return likes[LIKE_COLUMNS], feedback
