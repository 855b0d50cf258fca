"""The visitor app as an internet-facing service: each probe of issue 17 against a real uvicorn server.

Visitors and operators, cross-site writes, like spam, security headers, images outside the gallery, likes
that cannot be written, hand-edited likes files, damaged snapshots, and load while a snapshot is published.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import stat
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import numpy as np
import pytest

from curatornet_pipeline.snapshot import load_snapshot
from curatornet_pipeline.webapp.state import SnapshotHolder
from curatornet_pipeline_tests.support.webapp import (
    GALLERY,
    Client,
    catalogue,
    moved_copy,
    served_copy,
    start_server,
)

TOKEN = "operator-token-for-tests-0123456789"


@pytest.fixture(scope="module")
def prepared(materialized, tmp_path_factory) -> Path:
    """A served copy of the session's run that no server uses: the source of the other copies."""
    return served_copy(materialized.data_dir, tmp_path_factory.mktemp("hardening") / "prepared")


@pytest.fixture(scope="module")
def server(prepared, tmp_path_factory):
    """The app in operator mode (an operator token is configured)."""
    data_dir = moved_copy(prepared, tmp_path_factory.mktemp("hardening") / "data")
    running = start_server(data_dir, CURATORNET_OPERATOR_TOKEN=TOKEN)
    yield running
    running.stop()


def _available(data_dir: Path) -> list[str]:
    table = catalogue(data_dir)
    return table.loc[table["available"], "artwork_id"].tolist()


def _like_rows(server) -> list[dict]:
    if not server.likes_file.is_file():
        return []
    with server.likes_file.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _publish(snapshot: Path, source: Path, run_id: str | None = None) -> None:
    """Publish ``source`` over ``snapshot`` the way the serving asset does: a new file renamed over the old."""
    temporary = snapshot.with_name(f".{snapshot.name}.test.tmp")
    shutil.copy(source, temporary)
    if run_id is not None:
        with duckdb.connect(str(temporary)) as con:
            con.execute("UPDATE info SET run_id = ?", [run_id])
    os.replace(temporary, snapshot)


def _damaged_copy(snapshot: Path, target: Path) -> Path:
    """The snapshot with its middle half overwritten by random bytes (seeded), as a bad disk or copy leaves it."""
    data = bytearray(snapshot.read_bytes())
    start, end = len(data) // 4, 3 * len(data) // 4
    data[start:end] = np.random.default_rng(17).integers(0, 256, end - start, dtype=np.uint8).tobytes()
    target.write_bytes(bytes(data))
    return target


def _wait_for_health(server, predicate, seconds: float = 60.0) -> dict:
    deadline = time.monotonic() + seconds
    while True:
        status, body = server.health()
        if predicate(status, body):
            return body
        assert time.monotonic() < deadline, (status, body)
        time.sleep(0.2)


# ---------------------------------------------------------------------------------------------- visitors


def test_the_visitor_cookie_is_signed_and_a_forged_one_is_no_visitor(server):
    client = server.client()
    status, headers, body = client.request("/")
    cookie = headers["set-cookie"]
    value = cookie.split("curatornet_visitor=")[1].split(";")[0].strip('"')
    assert status == 200 and "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
    assert value.startswith("visitor_") and "." in value  # id.signature
    visitor_id = value.split(".")[0]
    artwork_id = _available(server.data_dir)[0]
    assert client.like(artwork_id)["liked"] == [artwork_id]
    # The raw id (what the old cookie held and a "Your page" URL showed) is not a cookie anyone can use.
    for forged in (visitor_id, "visitor_00000000000000aa", value[:-2] + "xx"):
        status, headers, body = Client(server.url).request(
            "/api/for-you", accept="application/json", headers={"Cookie": f"curatornet_visitor={forged}"}
        )
        assert status == 200 and json.loads(body)["liked"] == [], forged
        assert forged not in headers.get("set-cookie", "")  # a new visitor instead
        status, _, _ = Client(server.url).request(
            f"/artworks/{artwork_id}/like", "POST", "application/json", {"Cookie": f"curatornet_visitor={forged}"}
        )
        assert status == 403
    assert not any(row["visitor_id"] == "visitor_00000000000000aa" for row in _like_rows(server))
    assert "visitor_" not in body.decode() and "visitor_" not in client.request("/")[2].decode()


def test_the_secret_is_generated_once_and_kept_owner_only(tmp_path):
    from curatornet_pipeline.webapp.visitors import SECRET_FILE, secret_from_file

    first = secret_from_file(tmp_path)
    assert len(first) >= 32 and secret_from_file(tmp_path) == first
    assert stat.S_IMODE((tmp_path / SECRET_FILE).stat().st_mode) == 0o600


def test_the_server_keeps_its_secret_next_to_the_snapshot(server):
    from curatornet_pipeline.webapp.visitors import SECRET_FILE

    path = server.snapshot.parent / SECRET_FILE
    assert path.is_file() and stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_restarted_app_keeps_its_visitors(prepared, tmp_path):
    """The generated secret is kept in the data folder, so a visitor's cookie still works after a restart."""
    data_dir = moved_copy(prepared, tmp_path / "data")
    artwork_id = _available(data_dir)[0]
    first = start_server(data_dir)
    client = first.client()
    try:
        client.like(artwork_id)
    finally:
        first.stop()
    second = start_server(data_dir)
    try:
        client.url = second.url
        status, _, body = client.request("/api/for-you", accept="application/json")
        assert status == 200 and json.loads(body)["liked"] == [artwork_id]
    finally:
        second.stop()


def test_a_visitor_sees_their_own_page_at_me(server):
    client = server.client()
    artwork_id = _available(server.data_dir)[1]
    client.like(artwork_id)
    status, _, body = client.request("/me")
    html = body.decode()
    assert status == 200 and "Your page" in html and f'data-artwork="{artwork_id}"' in html
    assert 'href="/me"' in client.request("/")[2].decode()
    # Another visitor's /me is their own, not this one's.
    assert f'data-artwork="{artwork_id}"' not in Client(server.url).request("/me")[2].decode()


def test_customer_pages_need_the_operator_token(server):
    with duckdb.connect(str(server.data_dir / "curatornet.duckdb"), read_only=True) as con:
        user = con.execute("SELECT min(user_id) FROM serving.user_recommendations").fetchone()[0]
        top = con.execute(
            "SELECT artwork_id FROM serving.user_recommendations WHERE user_id = ? ORDER BY rank LIMIT 3", [user]
        ).df()["artwork_id"]
        bought = con.execute("SELECT artwork_id FROM serving.interactions WHERE user_id = ?", [user]).df()["artwork_id"]
    for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": f"Basic {TOKEN}"}):
        status, response_headers, body = server.client().request(f"/users/{user}", headers=headers)
        assert status == 401 and user.encode() not in body, headers
        assert response_headers["www-authenticate"] == "Bearer"
    status, _, body = server.client().request(f"/users/{user}", headers={"Authorization": f"Bearer {TOKEN}"})
    html = body.decode()
    assert status == 200 and "History" in html and "Served recommendations" in html
    assert all(f"/artworks/{a}" in html for a in list(top) + list(bought))


# ---------------------------------------------------------------------------------------------- writes


def test_cross_site_posts_are_refused_and_write_nothing(server):
    client = server.client()
    client.request("/")
    artwork_id = _available(server.data_dir)[2]
    before = server.likes_file.read_bytes() if server.likes_file.exists() else b""
    for headers in (
        {"Origin": "https://evil.example"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
        {"Origin": "null"},
    ):
        status, _, body = client.request(f"/artworks/{artwork_id}/like", "POST", "application/json", headers)
        assert status == 403 and b"cannot change anything here" in body, headers
    assert (server.likes_file.read_bytes() if server.likes_file.exists() else b"") == before
    same = {"Origin": server.url, "Sec-Fetch-Site": "same-origin"}
    status, _, body = client.request(f"/artworks/{artwork_id}/like", "POST", "application/json", same)
    assert status == 200 and json.loads(body)["liked"][-1] == artwork_id


def test_a_cookieless_post_creates_no_visitor_and_writes_nothing(server):
    artwork_id = _available(server.data_dir)[3]
    before = server.likes_file.read_bytes() if server.likes_file.exists() else b""
    for _ in range(5):
        status, headers, body = Client(server.url).request(f"/artworks/{artwork_id}/like", "POST", "application/json")
        assert status == 403 and b"open the gallery page first" in body
        assert "set-cookie" not in headers
    assert (server.likes_file.read_bytes() if server.likes_file.exists() else b"") == before


def test_likes_are_rate_limited_per_client(prepared, tmp_path):
    data_dir = moved_copy(prepared, tmp_path / "data")
    running = start_server(data_dir, CURATORNET_LIKES_PER_MINUTE="3")
    try:
        client = running.client()
        available = _available(data_dir)
        for artwork_id in available[:3]:
            client.like(artwork_id)
        status, headers, body = client.request(f"/artworks/{available[3]}/like", "POST", "application/json")
        assert status == 429 and "too many likes" in json.loads(body)["error"] and int(headers["retry-after"]) >= 1
        # Another visitor from the same address is held back too: the limit is per client address.
        other = running.client()
        other.request("/")
        assert other.request(f"/artworks/{available[4]}/like", "POST", "application/json")[0] == 429
        assert len(_like_rows(running)) == 3
        _a_browser_shows_the_refusal(running.url)
        assert len(_like_rows(running)) == 3
    finally:
        running.stop()


def _a_browser_shows_the_refusal(url: str) -> None:
    """In Chromium, a refused like shows the server's sentence on the page (and is not posted again)."""
    if not Path("/usr/bin/chromium").exists():
        return  # the Chromium tests are in test_webapp.py, which says how to install it
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(url + "/")
            page.locator("#catalogue-grid .like").first.click()
            expect(page.locator("#notice")).to_contain_text("too many likes")
            assert page.url == url + "/"
        finally:
            browser.close()


# ---------------------------------------------------------------------------------------------- headers, health


def test_security_headers_are_on_every_response(server):
    client = server.client()
    artwork_id = _available(server.data_dir)[0]
    responses = [
        client.request("/"),
        client.request(f"/artworks/{artwork_id}"),
        client.request(f"/images/{artwork_id}"),
        client.request("/static/app.js"),
        client.request("/no/such/page"),
        client.request("/healthz", accept="application/json"),
        client.request(f"/artworks/{artwork_id}/like", "POST", "application/json", {"Origin": "https://evil.example"}),
    ]
    for status, headers, _ in responses:
        csp = headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp, status
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "same-origin"
        assert "server" not in headers
    assert "<script>" not in responses[0][2].decode()  # the CSP allows no inline script, and none is needed


def test_health_says_ok_and_what_is_served_without_any_path(server):
    status, body = server.health()
    snapshot = load_snapshot(server.snapshot)
    assert status == 200 and body["status"] == "ok" and "reason" not in body
    assert body["run_id"] == str(snapshot.info["run_id"]) and "model_id" not in body  # not for customers
    status, _, text = server.client().request("/healthz", headers={"Authorization": f"Bearer {TOKEN}"})
    assert json.loads(text)["model_id"] == str(snapshot.info["model_id"])  # operators see which model serves
    text = json.dumps(body)
    assert str(server.data_dir) not in text and "source_folder" not in text and "/" not in text.replace("\\/", "")


# ---------------------------------------------------------------------------------------------- images


def test_images_are_served_only_from_the_gallery_and_only_as_images(server, tmp_path):
    # The file the app serves for an artwork: the gallery's display/ image (the demo has one per artwork).
    table = catalogue(server.data_dir).set_index("artwork_id")
    served = table["display_file"]
    assert served.notna().all()
    ids = _available(server.data_dir)
    outside = tmp_path / "secret.txt"
    outside.write_text("not an image, and not the gallery's\n")
    outside_jpg = tmp_path / "outside.jpg"
    shutil.copy(served[ids[8]], outside_jpg)
    client = server.client()
    status, headers, body = client.request(f"/images/{ids[5]}?size=full")
    assert status == 200 and headers["content-type"] == "image/jpeg" and body == Path(served[ids[5]]).read_bytes()
    changed = {ids[5]: "link out", ids[6]: "link out jpg", ids[7]: "missing", ids[8]: "text"}
    backups = {a: tmp_path / f"{a}.bak" for a in changed}
    for artwork_id in changed:
        shutil.copy(served[artwork_id], backups[artwork_id])
    try:
        for artwork_id, how in changed.items():
            path = Path(served[artwork_id])
            path.unlink()
            if how == "link out":
                path.symlink_to(outside)
            elif how == "link out jpg":
                path.symlink_to(outside_jpg)  # a real image, but not the gallery's: refused all the same
            elif how == "text":
                path.write_text("<script>alert(1)</script>")
        for artwork_id, how in changed.items():
            for size in ("full", "thumb"):
                status, headers, body = client.request(f"/images/{artwork_id}?size={size}")
                error = json.loads(body)["error"]
                assert status == 404, (how, status, body)
                assert f"display/{Path(served[artwork_id]).name}" in error and str(tmp_path) not in error
                if how.startswith("link out"):
                    assert "outside the gallery's display folder" in error
        assert client.request(f"/artworks/{ids[5]}")[0] == 200  # the page itself still works
    finally:
        for artwork_id, backup in backups.items():
            path = Path(served[artwork_id])
            path.unlink(missing_ok=True)
            shutil.copy(backup, path)


# ---------------------------------------------------------------------------------------------- likes on disk


@pytest.mark.parametrize("fault", ["full disk", "folder in its place"])
def test_a_like_that_cannot_be_written_is_refused_and_recorded_nowhere(server, tmp_path, fault):
    """Real conditions that stop root too: /dev/full (ENOSPC on write) and a folder where likes.csv was."""
    client = server.client()
    available = _available(server.data_dir)
    client.like(available[9])  # the file exists, with this visitor's first like
    artwork_id = available[10] if fault == "full disk" else available[11]
    kept = tmp_path / "likes.csv.kept"
    shutil.move(server.likes_file, kept)
    if fault == "full disk":
        server.likes_file.symlink_to("/dev/full")
    else:
        server.likes_file.mkdir()
    try:
        for _ in range(2):
            status, _, body = client.request(f"/artworks/{artwork_id}/like", "POST", "application/json")
            assert status == 503 and "your like was not saved" in json.loads(body)["error"]
        liked = json.loads(client.request("/api/for-you", accept="application/json")[2])["liked"]
        assert artwork_id not in liked and available[9] in liked
    finally:
        if server.likes_file.is_dir() and not server.likes_file.is_symlink():
            server.likes_file.rmdir()
        else:
            server.likes_file.unlink()
        shutil.move(kept, server.likes_file)
    # The retry after the disk is fixed writes the like: it was never half-recorded.
    assert artwork_id in client.like(artwork_id)["liked"]
    assert [r["artwork_id"] for r in _like_rows(server)].count(artwork_id) == 1


def test_a_hand_edited_likes_file_never_breaks_the_pages(prepared, tmp_path):
    """A non-UTF-8 byte and garbage lines are set aside at start; a bad header stops new likes, not the pages."""
    available = _available(prepared)
    for case in ("bad bytes", "bad header"):
        data_dir = moved_copy(prepared, tmp_path / case.replace(" ", "_"))
        likes = data_dir / GALLERY / "likes.csv"
        if case == "bad bytes":
            likes.write_bytes(
                b"visitor_id,artwork_id,timestamp\n"
                + f"visitor_00000000000000a1,{available[0]},2024-01-01T00:00:00Z\n".encode()
                + b"visitor_00000000000000a2,caf\xe9,2024-01-01T00:00:00Z\n"
                + b"typed by hand\n"
            )
        else:
            likes.write_bytes(f"who,what\nvisitor_00000000000000a1,{available[0]},2024\n".encode())
        running = start_server(data_dir)
        try:
            client = running.client()
            assert client.request("/")[0] == 200
            assert client.request("/api/for-you", accept="application/json")[0] == 200
            status, body = running.health()
            assert status == 200
            artwork_id = available[1]
            if case == "bad bytes":
                assert body["status"] == "ok" and body["likes_set_aside"] == 2
                assert client.like(artwork_id)["liked"] == [artwork_id]
            else:
                assert body["status"] == "degraded" and "header" in body["reason"] and "likes.csv" in body["reason"]
                client.request("/")
                status, _, response = client.request(f"/artworks/{artwork_id}/like", "POST", "application/json")
                assert status == 503 and b"header" in response
        finally:
            running.stop()


# ---------------------------------------------------------------------------------------------- snapshots


def test_a_reload_never_makes_a_request_wait(prepared, tmp_path):
    """The replaced file is loaded in the background: current() answers from the previous snapshot at once."""
    snapshot = tmp_path / "serving_snapshot.duckdb"
    shutil.copy(prepared / "serving_snapshot.duckdb", snapshot)
    holder = SnapshotHolder(snapshot)
    first = holder.current()
    assert first is not None
    _publish(snapshot, prepared / "serving_snapshot.duckdb", run_id="next-run")
    started = time.perf_counter()
    assert holder.current() is first  # not the new one yet, and no waiting for it
    assert time.perf_counter() - started < 0.05
    assert holder.loaded.wait(60)
    assert holder.current().run_id == "next-run"


def test_a_damaged_snapshot_is_not_served_and_health_says_why(server, tmp_path):
    good = tmp_path / "good.duckdb"
    shutil.copy(server.snapshot, good)
    served_run = server.health()[1]["run_id"]
    _publish(server.snapshot, _damaged_copy(good, tmp_path / "damaged.duckdb"))
    body = _wait_for_health(server, lambda status, body: body["status"] == "degraded")
    assert body["run_id"] == served_run and "cannot be served" in body["reason"]
    assert str(server.data_dir) not in json.dumps(body)
    client = server.client()
    assert client.request("/")[0] == 200 and client.request("/api/for-you", accept="application/json")[0] == 200
    # A good snapshot published after it is served again.
    _publish(server.snapshot, good, run_id="repaired-run")
    body = _wait_for_health(server, lambda status, body: body["status"] == "ok")
    assert body["run_id"] == "repaired-run"


def test_an_app_started_on_a_damaged_snapshot_answers_503_with_a_reason(prepared, tmp_path):
    data_dir = moved_copy(prepared, tmp_path / "data")
    snapshot = data_dir / "serving_snapshot.duckdb"
    _damaged_copy(snapshot, tmp_path / "damaged.duckdb")
    shutil.copy(tmp_path / "damaged.duckdb", snapshot)
    running = start_server(data_dir, wait_for_ok=False)
    try:
        status, body = running.health()
        assert status == 503 and body["status"] == "degraded" and "cannot be served" in body["reason"]
        client = running.client()
        status, _, page = client.request("/")
        assert status == 503 and b"cannot show recommendations right now" in page
        status, _, page = client.request("/api/for-you", accept="application/json")
        assert status == 503 and "error" in json.loads(page)
        # Publishing a good snapshot brings it back without a restart.
        _publish(snapshot, prepared / "serving_snapshot.duckdb", run_id="repaired-run")
        assert _wait_for_health(running, lambda status, body: status == 200)["run_id"] == "repaired-run"
    finally:
        running.stop()


def test_no_request_fails_while_new_snapshots_are_published(server, tmp_path):
    """A bounded load test: 4 clients x 60 requests while two new snapshots are published; zero errors."""
    available = _available(server.data_dir)
    good = tmp_path / "good.duckdb"
    shutil.copy(server.snapshot, good)
    errors: list = []

    def browse(number: int) -> int:
        client = server.client()
        client.request("/")
        count = 0
        for i in range(60):
            path = ("/", "/api/for-you", f"/artworks/{available[i % len(available)]}", "/healthz")[i % 4]
            status, _, body = client.request(path, accept="application/json" if "api" in path else "text/html")
            if status != 200:
                errors.append((path, status, body[:200]))
            count += 1
        if number == 0:
            status, _, body = client.request(f"/artworks/{available[-1]}/like", "POST", "application/json")
            if status != 200:
                errors.append(("like", status, body[:200]))
        return count

    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(browse, n) for n in range(4)]
        for run_id in ("load-test-1", "load-test-2"):
            time.sleep(0.5)
            _publish(server.snapshot, good, run_id=run_id)
        total = sum(f.result(timeout=300) for f in futures)
    assert total == 240 and not errors, errors[:5]
    assert time.monotonic() - started < 300
    assert _wait_for_health(server, lambda status, body: body["run_id"] == "load-test-2")["status"] == "ok"
