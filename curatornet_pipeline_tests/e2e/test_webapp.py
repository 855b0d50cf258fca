"""The visitor app over a real serving snapshot, through a real uvicorn server on 127.0.0.1 (API level)."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.cookiejar import CookieJar
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from curatornet_pipeline.definitions import build_definitions
from curatornet_pipeline.runner import refresh_serving
from curatornet_pipeline.snapshot import snapshot_path
from curatornet_pipeline_tests.support.tiny import tiny_resources

REPO = Path(__file__).resolve().parents[2]
GALLERY = "demo_gallery_tiny_seed7"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    url: str
    data_dir: Path
    process: subprocess.Popen

    def client(self) -> "Client":
        return Client(self.url)


class Client:
    """A browser-like HTTP client: keeps the visitor cookie."""

    def __init__(self, url: str):
        self.url = url
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))

    def request(self, path: str, method: str = "GET", accept: str = "text/html") -> tuple[int, dict, bytes]:
        req = urllib.request.Request(self.url + path, method=method, headers={"Accept": accept})
        try:
            with self.opener.open(req, timeout=30) as response:
                return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
        except urllib.error.HTTPError as error:
            return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()

    def like(self, artwork_id: str) -> dict:
        status, _, body = self.request(f"/artworks/{artwork_id}/like", "POST", "application/json")
        assert status == 200, body
        return json.loads(body)


def start_server(data_dir: Path) -> Server:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "curatornet_pipeline.webapp", "--port", str(port),
         "--snapshot", str(snapshot_path(data_dir / "curatornet.duckdb"))],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the app exited: {process.stdout.read()}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2):
                return Server(url, data_dir, process)
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError("the app did not answer within 90 s")


@pytest.fixture(scope="module")
def server(materialized, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("webapp") / "data"
    shutil.copytree(materialized.data_dir, data_dir)
    # Publish the copy's own snapshot, which names the copy's gallery as the folder likes go to.
    assert _refresh(data_dir).success
    running = start_server(data_dir)
    yield running
    running.process.terminate()
    running.process.wait(timeout=30)


def _refresh(data_dir: Path) -> dg.ExecuteInProcessResult:
    defs = build_definitions(tiny_resources(data_dir))
    with dg.DagsterInstance.ephemeral() as instance:
        return refresh_serving(defs, instance=instance, run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}})


def _catalogue(data_dir: Path):
    with duckdb.connect(str(data_dir / "curatornet.duckdb"), read_only=True) as con:
        return con.execute("SELECT * FROM serving.catalogue ORDER BY artwork_idx").df()


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
    assert client.request("/users/nobody")[0] == 404
    assert client.request("/?page=abc")[0] == 400
    assert client.request("/?page=9999")[0] == 404
    assert client.request("/artworks/no_such_artwork/like", "POST", "application/json")[0] == 404
    artwork_id = _catalogue(server.data_dir)["artwork_id"].iloc[0]
    assert client.request(f"/artworks/{artwork_id}/like", "GET")[0] == 405  # only POST changes state


def test_images_come_from_the_gallery(server):
    catalogue = _catalogue(server.data_dir)
    row = catalogue.iloc[0]
    status, headers, body = server.client().request(f"/images/{row['artwork_id']}?size=full")
    assert status == 200 and body == Path(row["image_file"]).read_bytes()
    assert headers["content-type"].startswith("image/")


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


def test_artwork_page_shows_the_artist_and_more_like_this(server):
    catalogue = _catalogue(server.data_dir)
    row = catalogue.iloc[0]
    status, _, body = server.client().request(f"/artworks/{row['artwork_id']}")
    html = body.decode()
    assert status == 200 and row["artist_id"] in html and "More like this" in html
    with duckdb.connect(str(server.data_dir / "curatornet.duckdb"), read_only=True) as con:
        similar = con.execute(
            "SELECT similar_artwork_id FROM serving.similar_artworks WHERE artwork_id = ? ORDER BY rank LIMIT 3",
            [row["artwork_id"]],
        ).df()["similar_artwork_id"]
    assert all(f'data-artwork="{s}"' in html for s in similar), (list(similar), re.findall(r"data-artwork=\"(\w+)\"", html[html.find("More like"):]))


def test_customer_page_shows_history_and_served_recommendations(server):
    with duckdb.connect(str(server.data_dir / "curatornet.duckdb"), read_only=True) as con:
        user = con.execute("SELECT min(user_id) FROM serving.user_recommendations").fetchone()[0]
        top = con.execute(
            "SELECT artwork_id FROM serving.user_recommendations WHERE user_id = ? ORDER BY rank LIMIT 3", [user]
        ).df()["artwork_id"]
        bought = con.execute("SELECT artwork_id FROM serving.interactions WHERE user_id = ?", [user]).df()["artwork_id"]
    status, _, body = server.client().request(f"/users/{user}")
    html = body.decode()
    assert status == 200 and "History" in html and "Served recommendations" in html
    assert all(f"/artworks/{a}" in html for a in list(top) + list(bought))


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
    after = json.loads(client.request("/healthz")[2])
    assert after["run_id"] == result.run_id != before["run_id"]
    # The visitor's likes went through likes.csv into the refresh: they now have served recommendations.
    with (server.data_dir / GALLERY / "likes.csv").open() as handle:
        rows = [r for r in csv.DictReader(handle) if r["artwork_id"] in liked]
    visitor_id = rows[-1]["visitor_id"]
    status, _, body = client.request(f"/users/{visitor_id}")
    assert status == 200 and "liked" in body.decode()


# ---------------------------------------------------------------------------------------------- real browser

CHROMIUM = Path("/usr/bin/chromium")


def test_a_visitor_likes_three_artworks_in_chromium(server, tmp_path):
    """Playwright drives Debian's Chromium (.ci/run installs it): likes, live For you, artwork page, screenshots."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.skip("the browser test needs Debian's Chromium: apt-get install -y chromium")
    shots = Path(os.environ.get("CURATORNET_SCREENSHOT_DIR", tmp_path))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(server.url + "/")
            assert page.locator("#for-you-grid .card").count() == 0
            lists = []
            for n in range(1, 4):
                page.locator("#catalogue-grid .like").nth(n * 2).click()
                page.wait_for_function(
                    f"document.getElementById('for-you-hint').textContent.includes('your {n} like')"
                )
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
        finally:
            browser.close()
    assert (shots / "gallery_home.png").stat().st_size > 10_000
