"""The storefront: catalogue entries customers can read, Buy/Enquire links, unlike, "Your page" before a refresh,
and the pages at desktop and phone size in Chromium (screenshots)."""

from __future__ import annotations

import csv
import json
from collections import Counter

import duckdb
import pandas as pd
import pytest

from curatornet_pipeline.core.feedback import standing
from curatornet_pipeline_tests.support.webapp import GALLERY, catalogue as _catalogue, refresh as _refresh
from curatornet_pipeline_tests.support.webapp import chromium, served_copy, start_server

TEMPLATE = "https://shop.example/artworks/{artwork_id}?ref=curatornet"


@pytest.fixture(scope="module")
def server(materialized, tmp_path_factory):
    data_dir = served_copy(materialized.data_dir, tmp_path_factory.mktemp("storefront") / "data")
    running = start_server(data_dir, CURATORNET_SHOP_URL_TEMPLATE=TEMPLATE)
    yield running
    running.stop()


def _available(server) -> pd.DataFrame:
    catalogue = _catalogue(server.data_dir)
    return catalogue.loc[catalogue["available"]].reset_index(drop=True)


def test_cards_show_titles_artists_and_prices_and_no_model_id(server):
    status, _, body = server.client().request("/")
    html = body.decode()
    row = _available(server).iloc[0]
    assert status == 200 and f">{row['title']}</a>" in html and row["artist_name"] in html
    assert f"${row['price']:,.0f}" in html
    with duckdb.connect(str(server.snapshot), read_only=True) as con:
        model_id = con.execute("SELECT model_id FROM info").fetchone()[0]
    assert model_id not in html and "model " not in html


def test_buy_link_comes_from_the_template_and_sold_works_say_enquire(server):
    catalogue = _catalogue(server.data_dir)
    on_sale = catalogue.loc[catalogue["available"]].iloc[0]
    html = server.client().request(f"/artworks/{on_sale['artwork_id']}")[2].decode()
    assert f'href="https://shop.example/artworks/{on_sale["artwork_id"]}?ref=curatornet"' in html and ">Buy</a>" in html
    sold = catalogue.loc[~catalogue["available"]]
    if len(sold):
        html = server.client().request(f"/artworks/{sold.iloc[0]['artwork_id']}")[2].decode()
        assert ">Enquire</a>" in html and ">Buy</a>" not in html


def test_your_page_shows_live_recommendations_before_any_refresh(server):
    client = server.client()
    html = client.request("/me")[2].decode()
    assert "You have not liked anything yet" in html
    ids = _available(server)["artwork_id"].tolist()[:2]
    for artwork_id in ids:
        live = client.like(artwork_id)["for_you"]
    html = client.request("/me")[2].decode()
    assert "Recommended for you now" in html and "follow after the gallery's next update" in html
    section = html[html.index('id="live-recommendations"'):]
    assert live and all(f'data-artwork="{r["artwork_id"]}"' in section for r in live[:3])


def test_an_unlike_is_kept_on_disk_and_leaves_the_served_profile_at_the_next_refresh(server):
    client = server.client()
    first, second = _available(server)["artwork_id"].tolist()[5:7]
    client.like(first)
    client.like(second)
    data = client.unlike(first)
    assert data["liked"] == [second]
    with (server.data_dir / GALLERY / "unlikes.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert rows[-1]["artwork_id"] == first and rows[-1]["visitor_id"].startswith("visitor_")
    visitor = rows[-1]["visitor_id"]
    assert client.unlike(first)["liked"] == [second]  # nothing to take back: no second line
    with (server.data_dir / GALLERY / "unlikes.csv").open() as handle:
        assert len(list(csv.DictReader(handle))) == len(rows)
    html = client.request(f"/artworks/{second}")[2].decode()
    assert f'action="/artworks/{second}/unlike"' in html  # a liked work's button takes the like back
    assert _refresh(server.data_dir).success
    with duckdb.connect(str(server.data_dir / "curatornet.duckdb"), read_only=True) as con:
        served = con.execute("SELECT artwork_id FROM serving.interactions WHERE user_id = ?", [visitor]).df()
    assert served["artwork_id"].tolist() == [second]


def test_a_like_after_an_unlike_stands_again():
    stamp = pd.Timestamp("2026-01-01T10:00:00")
    likes = pd.DataFrame({"visitor_id": ["v", "v", "w"], "artwork_id": ["a", "a", "a"],
                          "timestamp": [stamp, stamp + pd.Timedelta("2us"), stamp], "line": [2, 3, 4]})
    unlikes = pd.DataFrame({"visitor_id": ["v"], "artwork_id": ["a"], "timestamp": [stamp + pd.Timedelta("1us")],
                            "line": [2]})
    assert standing(likes, unlikes)["line"].tolist() == [3, 4]  # v's first like withdrawn, the later one stands


def test_health_shows_the_model_only_to_operators(server):
    status, _, body = server.client().request("/healthz", accept="application/json")
    assert status == 200 and "model_id" not in json.loads(body) and "run_id" in json.loads(body)


# ---------------------------------------------------------------------------------------------- real browser


def _no_sideways_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_the_storefront_in_chromium_at_desktop_and_phone_size(server, tmp_path):
    from playwright.sync_api import expect

    with chromium(tmp_path) as (browser, shots):
        for name, viewport in (("desktop", {"width": 1280, "height": 900}), ("phone", {"width": 390, "height": 844})):
            context = browser.new_context(viewport=viewport, device_scale_factor=1)
            page = context.new_page()
            violations = []
            page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
            page.goto(server.url + "/")
            for n in (1, 2):
                page.locator("#catalogue-grid .like").nth(n * 3).click()
                expect(page.locator("#for-you-hint")).to_contain_text(f"your {n} like")
            # Unlike from a card: the heart empties and For you follows.
            page.locator("#catalogue-grid .like.liked").first.click()
            expect(page.locator("#for-you-hint")).to_contain_text("your 1 like")
            assert page.locator("#catalogue-grid .like.liked").count() == 1
            assert _no_sideways_scroll(page), name
            page.evaluate("window.scrollTo(0, 0)")
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(shots / f"storefront_home_{name}.png"))

            page.locator("#for-you-grid .card a.title").first.click()
            page.wait_for_selector("#more-like-this .card")
            expect(page.locator(".facts .price")).not_to_have_text("")
            assert page.locator("a.buy").get_attribute("href").startswith("https://shop.example/artworks/")
            assert _no_sideways_scroll(page), name
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(shots / f"storefront_artwork_{name}.png"), full_page=name == "phone")

            page.goto(server.url + "/me")
            expect(page.locator("#live-recommendations .card").first).to_be_visible()
            assert _no_sideways_scroll(page), name
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(shots / f"storefront_me_{name}.png"))
            assert not violations, violations
            context.close()
    assert (shots / "storefront_home_phone.png").stat().st_size > 10_000


def test_live_lists_hold_at_most_two_works_per_artist_and_say_why(server):
    client = server.client()
    liked = _available(server)["artwork_id"].tolist()[10:13]
    for artwork_id in liked:
        data = client.like(artwork_id)
    artists = Counter(r["artist_id"] for r in data["for_you"])
    # As long as the cap allows: 12, or two works of each artist with unliked works on sale (the tiny gallery).
    rest = _available(server).loc[lambda f: ~f["artwork_id"].isin(liked)]
    possible = sum(min(2, n) for n in rest["artist_id"].value_counts())
    assert len(data["for_you"]) == min(12, possible) and max(artists.values()) <= 2
    assert all(r["reason"]["artwork_id"] in liked for r in data["for_you"])
    html = client.request("/")[2].decode()
    first = data["for_you"][0]
    assert f'>Because you liked {first["reason"]["title"]}</a>' in html
