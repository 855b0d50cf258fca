"""Views and clicks of recommended works in the app, kept for online metrics (``impressions.csv``).

When a page shows a recommended list (For you, more like this, a served list), the app records one view per
work with its list, position and the model version that served it; a click on one of those works (its link
carries the list and position) is recorded as a click. Lines have the format of the shop's ``events.csv``
(``core/events.py``), so the online-metrics asset reads both with one reader. A separate file, because the
source-files sensor watches events.csv: views on every page must not look like new source data.

A page's views are written as one append (flushed and fsynced, ``state.append_lines``) after the answer is
sent (a background task), so pages do not wait for the disk. A write that fails is logged and the page stays
served: a lost view costs a metric, not a customer's page.
"""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import datetime, timezone
from pathlib import Path

from curatornet_pipeline.core.events import EVENTS_HEADER, IMPRESSIONS_FILE
from curatornet_pipeline.webapp.state import append_lines

log = logging.getLogger("curatornet.webapp")


class ImpressionLog:
    """impressions.csv of one source folder."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / IMPRESSIONS_FILE
        self._lock = threading.Lock()  # one append at a time: lines never interleave

    def record(self, kind: str, visitor: str, shown: list[tuple[str, int]], list_kind: str, model_version: str) -> None:
        """Append one ``kind`` (view or click) line per (artwork id, position) of ``shown``; never raises."""
        if not shown:
            return
        now = datetime.now(timezone.utc)
        stamp, received = now.replace(tzinfo=None).isoformat(), now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        rows = [
            [uuid.uuid4().hex, kind, visitor, artwork, stamp, received, list_kind, str(position), model_version]
            for artwork, position in shown
        ]
        try:
            with self._lock:
                append_lines(self.path, EVENTS_HEADER, rows)
        except OSError as error:
            log.error("%d %s(s) could not be written to %s (%s)", len(rows), kind, IMPRESSIONS_FILE,
                      error.strerror or type(error).__name__)
