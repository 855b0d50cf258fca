"""The visitor app over a real serving snapshot, through a real uvicorn server on 127.0.0.1 (API level)."""

from __future__ import annotations

import csv
import json
import re
import threading
import time
from pathlib import Path

import duckdb
import pytest

from curatornet_pipeline_tests.support.webapp import GALLERY, catalogue as _catalogue, refresh as _refresh
from curatornet_pipeline_tests.support.webapp import capped_similar, chromium, served_copy, start_server


@pytest.fixture(scope="module")
def server(materialized, tmp_path_factory):
    """The app as `make serve` starts it (public mode: no operator token) over a private copy of the run."""
    data_dir = served_copy(materialized.data_dir, tmp_path_factory.mktemp("webapp") / "data")
    running = start_server(data_dir)
    yield running
    running.stop()


def test_home_lists_available_artworks_with_like_controls(server):
    status, headers, body = server.client().request("/")
    html = body.decode()
    assert status == 200
    catalogue = _catalogue(server.data_dir)
    available = catalogue.loc[catalogue["available"], "artwork_id"]
    sold = catalogue.loc[~catalogue["available"], "artwork_id"]
    assert all(f'data-artwork="{a}"' in html for a in available.head(10))
    assert not any(f'data-artwork="{a}"' in html for a in sold)
    assert 'action="/artworks/' in html and 'method="post"' in html
    assert "curatornet_visitor=" in headers.get("set-cookie", "")
    assert "server-timing" in headers


def test_bad_requests_are_refused(server):
    client = server.client()
    assert client.request("/artworks/no_such_artwork")[0] == 404
    assert client.request("/images/no_such_artwork")[0] == 404
    assert client.request("/images/..%2F..%2Fetc%2Fpasswd")[0] == 404
    assert client.request("/images/..%2Fcuratornet.duckdb")[0] == 404
    assert client.request("/users/nobody")[0] == 404  # customer pages are operator views, off by default
    assert client.request("/?page=abc")[0] == 400
    assert client.request("/?page=9999")[0] == 404
    assert client.request("/artworks/no_such_artwork/like", "POST", "application/json")[0] == 404
    artwork_id = _catalogue(server.data_dir)["artwork_id"].iloc[0]
    assert client.request(f"/artworks/{artwork_id}/like", "GET")[0] == 405  # only POST changes state


def test_images_come_from_the_gallery(server):
    catalogue = _catalogue(server.data_dir)
    row = catalogue.iloc[0]
    status, headers, body = server.client().request(f"/images/{row['artwork_id']}?size=full")
    # The demo gallery's larger page image (display/<id>.jpg), not the 64 px picture the embedding reads.
    assert status == 200 and body == Path(row["display_file"]).read_bytes()
    assert headers["content-type"] == "image/jpeg"


def test_likes_change_for_you_and_are_appended_to_likes_csv(server):
    client = server.client()
    catalogue = _catalogue(server.data_dir)
    available = set(catalogue.loc[catalogue["available"], "artwork_id"])
    liked, lists = [], []
    for artwork_id in sorted(available)[:3]:
        data = client.like(artwork_id)
        liked.append(artwork_id)
        assert data["liked"] == liked
        recommended = [r["artwork_id"] for r in data["for_you"]]
        assert recommended and set(recommended) <= available and not set(recommended) & set(liked)
        lists.append(recommended)
    assert lists[0] != lists[1] or lists[1] != lists[2]
    with (server.data_dir / GALLERY / "likes.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    visitor = rows[-1]["visitor_id"]
    assert [r["artwork_id"] for r in rows if r["visitor_id"] == visitor] == liked
    assert visitor.startswith("visitor_")
    # A second like of the same artwork is not a second row.
    client.like(liked[0])
    with (server.data_dir / GALLERY / "likes.csv").open() as handle:
        assert len(list(csv.DictReader(handle))) == len(rows)


def test_artwork_page_shows_the_catalogue_entry_and_more_like_this(server):
    catalogue = _catalogue(server.data_dir)
    row = catalogue.iloc[0]
    status, _, body = server.client().request(f"/artworks/{row['artwork_id']}")
    html = body.decode()
    assert status == 200 and "More like this" in html
    # What a customer reads: title, artist name, year, medium, size and price; no hash ids, no model.
    assert f"<h1>{row['title']}</h1>" in html and f"<strong>{row['artist_name']}</strong>, {row['year']}" in html
    assert row["medium"] in html and row["size"] in html and f"${row['price']:,.0f}" in html
    assert row["artist_id"] not in html and "curatornet_" not in html.replace("curatornet_visitor", "")
    similar = capped_similar(server.data_dir, row["artwork_id"], 3)  # the served ranking, 2 per artist at most
    assert all(f'data-artwork="{s}"' in html for s in similar), (list(similar), re.findall(r"data-artwork=\"(\w+)\"", html[html.find("More like"):]))


def test_customer_pages_are_not_served_to_the_public(server):
    with duckdb.connect(str(server.data_dir / "curatornet.duckdb"), read_only=True) as con:
        user = con.execute("SELECT min(user_id) FROM serving.user_recommendations").fetchone()[0]
    status, _, body = server.client().request(f"/users/{user}")
    assert status == 404 and user.encode() not in body
    status, _, body = server.client().request(f"/users/{user}", headers={"Authorization": "Bearer anything"})
    assert status == 404 and user.encode() not in body


def test_a_refresh_runs_while_the_app_serves_and_the_app_picks_up_the_new_snapshot(server):
    """The app never holds the pipeline's DuckDB file: a run succeeds while requests keep being answered."""
    client = server.client()
    catalogue = _catalogue(server.data_dir)
    liked = catalogue.loc[catalogue["available"], "artwork_id"].tolist()[-2:]
    for artwork_id in liked:
        client.like(artwork_id)
    before = json.loads(client.request("/healthz")[2])
    statuses: list[int] = []
    stop = threading.Event()

    def keep_browsing():
        while not stop.is_set():
            statuses.append(client.request("/")[0])

    browser = threading.Thread(target=keep_browsing)
    browser.start()
    try:
        result = _refresh(server.data_dir)
    finally:
        stop.set()
        browser.join()
    assert result.success
    assert statuses and set(statuses) == {200}
    # The new snapshot is loaded in the background while the previous one answers: wait for the switch.
    deadline = time.monotonic() + 60
    while (after := json.loads(client.request("/healthz")[2]))["run_id"] != result.run_id:
        assert time.monotonic() < deadline, after
        time.sleep(0.2)
    assert after["run_id"] == result.run_id != before["run_id"] and after["status"] == "ok"
    # The visitor's likes went through likes.csv into the refresh: their own page shows them served.
    status, _, body = client.request("/me")
    assert status == 200 and body.decode().count('class="badge ok">liked') >= len(liked)
    assert "Served recommendations" in body.decode()


# ---------------------------------------------------------------------------------------------- real browser


def test_a_visitor_likes_three_artworks_in_chromium(server, tmp_path):
    """Playwright drives Debian's Chromium (.ci/run installs it): likes, live For you, artwork page, screenshots."""
    from playwright.sync_api import expect

    with chromium(tmp_path) as (browser, shots):
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        # The app's Content-Security-Policy must not block anything of its own (scripts, styles, images).
        violations = []
        page.on("console", lambda message: violations.append(message.text) if "Content Security Policy" in message.text else None)
        page.goto(server.url + "/")
        assert page.locator("#for-you-grid .card").count() == 0
        lists = []
        for n in range(1, 4):
            page.locator("#catalogue-grid .like").nth(n * 2).click()
            # (a locator, not wait_for_function: the CSP rightly forbids the eval that one needs)
            expect(page.locator("#for-you-hint")).to_contain_text(f"your {n} like")
            lists.append(page.locator("#for-you-grid .card").evaluate_all("cards => cards.map(c => c.dataset.artwork)"))
        assert all(lists) and (lists[0] != lists[1] or lists[1] != lists[2])
        assert page.locator("#catalogue-grid .like.liked").count() >= 3
        page.evaluate("window.scrollTo(0, 0)")  # the clicks scrolled down; show For you
        page.wait_for_load_state("networkidle")  # every thumbnail drawn before the picture is taken
        page.screenshot(path=str(shots / "gallery_home.png"))

        page.locator("#for-you-grid .card a").first.click()
        page.wait_for_selector("#more-like-this .card")
        assert page.locator("#more-like-this .card").count() > 0
        assert page.locator(".artist-line").inner_text().startswith("by ")
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(shots / "gallery_artwork.png"))
        assert not violations, violations
    assert (shots / "gallery_home.png").stat().st_size > 10_000
