"""The visitor app under test: a real uvicorn process on a free loopback port, and a browser-like client."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.cookiejar import CookieJar
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from curatornet_pipeline.core.diversity import cap_per_artist

from curatornet_pipeline.definitions import build_definitions
from curatornet_pipeline.runner import refresh_serving
from curatornet_pipeline.snapshot import snapshot_path
from curatornet_pipeline_tests.support.processes import free_port
from curatornet_pipeline_tests.support.tiny import tiny_resources
from curatornet_pipeline_tests.support.datastore import edit_table

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
GALLERY = "demo_gallery_tiny_seed7"


@dataclass
class Server:
    url: str
    data_dir: Path
    process: subprocess.Popen

    @property
    def snapshot(self) -> Path:
        return snapshot_path(self.data_dir / "curatornet.duckdb")

    @property
    def likes_file(self) -> Path:
        return self.data_dir / GALLERY / "likes.csv"

    def client(self) -> "Client":
        return Client(self.url)

    def health(self) -> tuple[int, dict]:
        status, _, body = self.client().request("/healthz", accept="application/json")
        return status, json.loads(body)

    def stop(self) -> str:
        """Stop the server (by its pid) and return what it printed."""
        self.process.terminate()
        try:
            output, _ = self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            output, _ = self.process.communicate(timeout=30)
        return output


class Client:
    """A browser-like HTTP client: keeps the visitor cookie."""

    def __init__(self, url: str):
        self.url = url
        self.jar = CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def request(
        self, path: str, method: str = "GET", accept: str = "text/html", headers: dict | None = None
    ) -> tuple[int, dict, bytes]:
        req = urllib.request.Request(self.url + path, method=method, headers={"Accept": accept, **(headers or {})})
        try:
            with self.opener.open(req, timeout=60) as response:
                return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
        except urllib.error.HTTPError as error:
            return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()

    def like(self, artwork_id: str, action: str = "like") -> dict:
        if not len(self.jar):
            self.request("/")  # as in a browser, the like button is on a page, which gives the visitor cookie
        status, _, body = self.request(f"/artworks/{artwork_id}/{action}", "POST", "application/json")
        assert status == 200, body
        return json.loads(body)

    def unlike(self, artwork_id: str) -> dict:
        return self.like(artwork_id, "unlike")


def start_server(data_dir: Path, *, wait_for_ok: bool = True, **env: str) -> Server:
    """The app over ``data_dir``'s snapshot; ``env`` adds settings (CURATORNET_OPERATOR_TOKEN=...)."""
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CURATORNET_")}
    environment.update(env)
    process = subprocess.Popen(
        [sys.executable, "-m", "curatornet_pipeline.webapp", "--port", str(port),
         "--snapshot", str(snapshot_path(data_dir / "curatornet.duckdb"))],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the app exited: {process.stdout.read()}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=5):
                return Server(url, data_dir, process)
        except urllib.error.HTTPError:
            if not wait_for_ok:  # it answers, with an error status the test wants to see
                return Server(url, data_dir, process)
            time.sleep(0.3)
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError("the app did not answer within 120 s")


def refresh(data_dir: Path) -> dg.ExecuteInProcessResult:
    """The fast path (curatornet refresh) on the tiny gallery in ``data_dir``, through the real job."""
    defs = build_definitions(tiny_resources(data_dir))
    with dg.DagsterInstance.ephemeral() as instance:
        return refresh_serving(
            defs, instance=instance, run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
        )


def served_copy(materialized_dir: Path, target: Path) -> Path:
    """A private copy of the session's pipeline output whose snapshot names the copy's gallery (likes go there)."""
    shutil.copytree(materialized_dir, target)
    assert refresh(target).success
    return target


def moved_copy(prepared: Path, target: Path) -> Path:
    """A copy of an already served data folder, its snapshot pointed at the copy's gallery (no refresh needed)."""
    shutil.copytree(prepared, target)
    with duckdb.connect(str(snapshot_path(target / "curatornet.duckdb"))) as con:
        con.execute("UPDATE info SET source_folder = ?", [str(target / GALLERY)])
        con.execute("UPDATE catalogue SET image_file = replace(image_file, ?, ?), "
                    "display_file = replace(display_file, ?, ?)", [str(prepared), str(target)] * 2)
    edit_table(  # what tests read the catalogue from
        target / "curatornet.duckdb",
        "serving.catalogue",
        "UPDATE serving.catalogue SET image_file = replace(image_file, ?, ?), display_file = replace(display_file, ?, ?)",
        params=[str(prepared), str(target)] * 2,
    )
    return target


def catalogue(data_dir: Path):
    with duckdb.connect(str(data_dir / "curatornet.duckdb"), read_only=True) as con:
        return con.execute("SELECT * FROM serving.catalogue ORDER BY artwork_idx").df()


def capped_similar(data_dir: Path, artwork_id: str, k: int, cap: int = 2) -> list[str]:
    """The stored "more like this" ranking of ``artwork_id`` as the app serves it: at most ``cap`` per artist."""
    artist = dict(zip(catalogue(data_dir)["artwork_id"], catalogue(data_dir)["artist_id"]))
    with duckdb.connect(str(data_dir / "curatornet.duckdb"), read_only=True) as con:
        ranked = con.execute(
            "SELECT similar_artwork_id FROM serving.similar_artworks WHERE artwork_id = ? ORDER BY rank", [artwork_id]
        ).df()["similar_artwork_id"].tolist()
    return [ranked[i] for i in cap_per_artist([artist[a] for a in ranked], cap, k)]


@contextmanager
def chromium(tmp_path: Path) -> Iterator[tuple[object, Path]]:
    """Playwright driving Debian's Chromium (.ci/run installs it; the test is skipped without it), and the folder
    for screenshots (CURATORNET_SCREENSHOT_DIR, else ``tmp_path``)."""
    if not CHROMIUM.exists():
        pytest.skip("the browser test needs Debian's Chromium: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    shots = Path(os.environ.get("CURATORNET_SCREENSHOT_DIR", tmp_path))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield browser, shots
        finally:
            browser.close()
