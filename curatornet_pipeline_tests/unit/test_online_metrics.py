"""Online metrics (core/online.py) and the list fields of events (core/events.py): counts, attribution, the test."""

from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
import pytest

from curatornet_pipeline.core.events import BASE_HEADER, EVENTS_HEADER, read_events
from curatornet_pipeline.core.online import compare_newest, online_metrics, two_proportion_test

T0 = pd.Timestamp("2026-01-01 12:00:00")


def _events(rows: list[tuple]) -> pd.DataFrame:
    """(user, artwork, minutes after T0, position, model version) rows."""
    return pd.DataFrame(
        [
            {"user_id": u, "artwork_id": a, "timestamp": T0 + pd.Timedelta(minutes=m), "position": p, "model_version": v}
            for u, a, m, p, v in rows
        ]
    )


def _conversions(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame([{"user_id": u, "artwork_id": a, "timestamp": T0 + pd.Timedelta(minutes=m)} for u, a, m in rows])


def test_click_through_and_conversion_per_version_and_position():
    views = _events([("u1", "a", 0, 1, "v1"), ("u1", "b", 0, 2, "v1"), ("u2", "a", 0, 1, "v1"), ("u3", "c", 60, 1, "v2")])
    clicks = _events([("u1", "a", 1, 1, "v1"), ("u3", "c", 61, 1, "")])  # the second names no version: its view's
    conversions = _conversions([("u1", "a", 2), ("u2", "a", -5), ("u1", "b", 60 * 25), ("u3", "c", 70)])
    table = online_metrics(views, clicks, conversions, pd.Timedelta(hours=24))
    rows = {(r.model_version, r.position): r for r in table.itertuples()}
    assert list(table["model_version"]) == ["v1", "v1", "v2"]  # versions by their first view, positions in order
    assert (rows["v1", 1].impressions, rows["v1", 1].clicks, rows["v1", 1].conversions) == (2, 1, 1)
    assert rows["v1", 1].click_through == 0.5 and rows["v1", 1].conversion_rate == 0.5
    # A like before the view (u2) or after the window (u1, b: 25 h) does not convert.
    assert (rows["v1", 2].clicks, rows["v1", 2].conversions) == (0, 0)
    assert (rows["v2", 1].clicks, rows["v2", 1].conversions) == (1, 1)


def test_no_views_give_an_empty_table_with_every_column():
    empty = _events([]).reindex(columns=["user_id", "artwork_id", "timestamp", "position", "model_version"])
    empty["position"] = empty["position"].astype("int64")
    table = online_metrics(empty, empty, _conversions([]))
    assert table.empty and "click_through" in table.columns


def test_two_proportion_test_sees_a_clear_fall_and_not_noise():
    z, p = two_proportion_test((80, 400), (30, 400))
    assert z < -4 and p < 1e-4
    z, p = two_proportion_test((8, 40), (6, 40))
    assert p > 0.2
    assert two_proportion_test((0, 0), (1, 10)) == (0.0, 1.0)


def test_compare_newest_takes_the_two_latest_versions():
    views = _events(
        [("u", "a", 0, 1, "old")] * 10 + [("u", "a", 10, 1, "mid")] * 10 + [("u", "a", 20, 1, "new")] * 10
    )
    clicks = _events([("u", "a", 11, 1, "mid")] * 5 + [("u", "a", 21, 1, "new")])
    comparison = compare_newest(online_metrics(views, clicks, _conversions([])))
    assert (comparison.older, comparison.newer) == ("mid", "new")
    assert comparison.older_rate == 0.5 and comparison.newer_rate == 0.1 and comparison.z < 0
    assert compare_newest(online_metrics(views.iloc[:10], clicks.iloc[:0], _conversions([]))) is None


def test_events_files_of_six_and_nine_columns_are_read_and_bad_list_fields_set_aside(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text(
        ",".join(BASE_HEADER) + "\n"
        "e1,like,u,a,2026-01-01T00:00:00,2026-01-01T00:00:01Z\n"
        "e2,view,u,a,2026-01-01T00:00:00,2026-01-01T00:00:01Z,for_you,3,m@1\n"
        "e3,view,u,a,2026-01-01T00:00:00,2026-01-01T00:00:01Z,sidebar,3,m@1\n"
        "e4,click,u,a,2026-01-01T00:00:00,2026-01-01T00:00:01Z,similar,0,m@1\n"
    )
    events = read_events(path)
    assert list(events.rows["event_id"]) == ["e1", "e2"]
    assert list(events.rows["position"]) == [0, 3] and events.rows["list"].tolist() == ["", "for_you"]
    assert [(s["line"], s["reason"].split()[0]) for s in events.set_aside] == [(4, "list"), (5, "position")]
    path.write_text(",".join(EVENTS_HEADER) + "\n")
    assert read_events(path).rows.empty and not read_events(path).set_aside




def test_an_event_with_list_fields_is_still_a_repeat_after_the_store_is_read_again(tmp_path):
    from curatornet_pipeline.webapp.events import EventConflict, EventStore

    stamp = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
    assert EventStore(tmp_path).add("e1", "view", "c1", "a1", stamp, ("for_you", "2", "m@1"))
    again = EventStore(tmp_path)  # as after an app restart: the store is rebuilt from events.csv
    assert again.add("e1", "view", "c1", "a1", stamp, ("for_you", "2", "m@1")) is False
    with pytest.raises(EventConflict):
        again.add("e1", "view", "c1", "a1", stamp, ("for_you", "3", "m@1"))
    assert read_events(tmp_path / "events.csv").rows[["list", "position", "model_version"]].values.tolist() == [
        ["for_you", 2, "m@1"]
    ]


def test_the_apps_views_are_appended_in_the_events_format_and_a_failed_write_does_not_raise(tmp_path, caplog):
    from curatornet_pipeline.core.events import IMPRESSIONS_FILE
    from curatornet_pipeline.webapp.impressions import ImpressionLog

    ImpressionLog(tmp_path).record("view", "visitor_1", [("a1", 1), ("a2", 2)], "similar", "m@1")
    ImpressionLog(tmp_path).record("click", "visitor_1", [("a2", 2)], "similar", "m@1")
    rows = read_events(tmp_path / IMPRESSIONS_FILE).rows
    assert rows[["type", "artwork_id", "list", "position", "model_version"]].values.tolist() == [
        ["view", "a1", "similar", 1, "m@1"], ["view", "a2", "similar", 2, "m@1"], ["click", "a2", "similar", 2, "m@1"]
    ]
    blocked = tmp_path / "not_a_folder"
    blocked.write_text("")
    ImpressionLog(blocked).record("view", "visitor_1", [("a1", 1)], "for_you", "m@1")  # logged, not raised
    assert "could not be written" in caplog.text
