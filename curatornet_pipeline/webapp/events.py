"""The shop's events as the app receives them: checked, idempotent on their id, appended durably to events.csv.

``POST /api/v1/events`` lands here. An event is written (flushed and fsynced, ``state.append_line``) before the
API answers, so an event the shop was told about is on disk; the refresh reads the file (``core/events.py``).
Posting the same event id again is answered as a repeat and writes nothing; the same id with different content
is a conflict (the shop has two events under one id). The events since the served snapshot are kept in memory,
so a customer's recommendations follow their new events at once, before the refresh serves them.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from curatornet_pipeline.core.events import EVENTS_FILE, EVENTS_HEADER, read_events
from curatornet_pipeline.webapp.state import append_line

log = logging.getLogger("curatornet.webapp")


class EventsUnavailable(RuntimeError):
    """The event cannot be recorded durably right now; nothing was recorded."""


class EventConflict(ValueError):
    """An event id the store already holds with other content."""


class EventStore:
    """events.csv of one source folder, and the events of each customer in memory."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / EVENTS_FILE
        self._lock = threading.Lock()
        self._by_id: dict[str, tuple] = {}
        self._by_user: dict[str, list[tuple[str, str, pd.Timestamp]]] = {}  # user -> (type, artwork, received)
        self.unreadable: str | None = None
        try:
            events = read_events(self.path)
        except OSError as error:
            self.unreadable = f"{EVENTS_FILE} cannot be read ({error.strerror or type(error).__name__})"
            log.warning("%s: events are not recorded until it is fixed", self.unreadable)
            return
        for row in events.rows.to_dict("records"):
            shown = (row["list"], str(row["position"] or ""), row["model_version"])
            self._remember(row["event_id"], row["type"], row["user_id"], row["artwork_id"],
                           pd.Timestamp(row["timestamp"]).isoformat(), row["received_at"], shown)

    def _remember(
        self, event_id: str, kind: str, user: str, artwork: str, stamp: str, received: str, shown: tuple[str, ...]
    ) -> None:
        self._by_id[event_id] = (kind, user, artwork, stamp, *shown)
        self._by_user.setdefault(user, []).append((kind, artwork, pd.Timestamp(received).tz_localize(None)))

    def add(
        self, event_id: str, kind: str, user: str, artwork: str, timestamp: datetime, shown: tuple[str, str, str] = ("", "", "")
    ) -> bool:
        """Record one event; False when this very event was recorded before. Raises EventConflict, EventsUnavailable.

        ``shown``: the list, position and model version of a view or click of a recommended work (empty: none)."""
        stamp = pd.Timestamp(timestamp)
        stamp = (stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo else stamp).isoformat()
        content = (kind, user, artwork, stamp, *shown)
        with self._lock:
            if self.unreadable:
                raise EventsUnavailable(self.unreadable)
            known = self._by_id.get(event_id)
            if known is not None:
                if known != content:
                    raise EventConflict(f"event {event_id!r} was recorded before with other content")
                return False
            received = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            try:
                append_line(self.path, EVENTS_HEADER, [event_id, kind, user, artwork, stamp, received, *shown])
            except OSError as error:
                reason = error.strerror or type(error).__name__
                log.error("an event could not be written to %s (%s); nothing was recorded", EVENTS_FILE, reason)
                raise EventsUnavailable(f"events cannot be saved right now ({reason})") from None
            self._remember(event_id, kind, user, artwork, stamp, received, shown)
            return True

    def since(self, user: str, moment: pd.Timestamp) -> list[tuple[str, str]]:
        """(type, artwork id) of ``user``'s events received after ``moment`` (naive UTC), oldest first."""
        with self._lock:
            return [(kind, artwork) for kind, artwork, received in self._by_user.get(user, []) if received > moment]
