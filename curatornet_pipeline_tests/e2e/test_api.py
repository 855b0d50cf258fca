"""The JSON API (/api/v1) through a real server: each endpoint by hand, then contract tests generated from its
OpenAPI document."""

from __future__ import annotations

import csv
import json
import urllib.request

import duckdb
import pytest


from curatornet_pipeline_tests.support.webapp import GALLERY, catalogue as _catalogue, refresh as _refresh
from curatornet_pipeline_tests.support.webapp import capped_similar, served_copy, start_server

KEY = "api-key-for-tests-0123456789abcdef"


@pytest.fixture(scope="module")
def server(materialized, tmp_path_factory):
    data_dir = served_copy(materialized.data_dir, tmp_path_factory.mktemp("api") / "data")
    running = start_server(data_dir, CURATORNET_API_KEY=KEY)
    yield running
    output = running.stop()
    assert KEY not in output  # the key is never logged


def call(server, path: str, body: dict | None = None, key: str | None = KEY, method: str | None = None):
    headers = {"Accept": "application/json"}
    if key:
        headers["X-API-Key"] = key
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(server.url + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _ids(server):
    catalogue = _catalogue(server.data_dir)
    with duckdb.connect(str(server.data_dir / "curatornet.duckdb"), read_only=True) as con:
        user = con.execute("SELECT min(user_id) FROM serving.user_recommendations").fetchone()[0]
    return catalogue, user


def test_catalogue_entry_and_more_like_this_are_public(server):
    catalogue, _ = _ids(server)
    row = catalogue.loc[catalogue["available"]].iloc[0]
    status, body = call(server, f"/api/v1/artworks/{row['artwork_id']}", key=None)
    assert status == 200 and body["title"] == row["title"] and body["artist"] == row["artist_name"]
    assert body["available"] is True and body["price"].startswith("$") and "model_id" not in body
    status, body = call(server, f"/api/v1/artworks/{row['artwork_id']}/similar?limit=3", key=None)
    expected = capped_similar(server.data_dir, row["artwork_id"], 3)  # the served ranking, 2 per artist at most
    assert status == 200 and [i["artwork_id"] for i in body["items"]] == expected
    assert [i["rank"] for i in body["items"]] == [1, 2, 3] and body["source"] == "served"
    assert all(i["reason"] is None for i in body["items"])
    assert call(server, "/api/v1/artworks/no_such_artwork", key=None) == (
        404, {"error": "no artwork 'no_such_artwork' in the catalogue"}
    )


def test_cold_start_recommends_available_works_outside_the_given_ones(server):
    catalogue, _ = _ids(server)
    liked = catalogue.loc[catalogue["available"], "artwork_id"].tolist()[:2]
    status, body = call(server, "/api/v1/recommendations/cold-start", {"artwork_ids": liked, "limit": 5}, key=None)
    ids = [i["artwork_id"] for i in body["items"]]
    available = set(catalogue.loc[catalogue["available"], "artwork_id"])
    assert status == 200 and len(ids) == 5 and set(ids) <= available and not set(ids) & set(liked)
    # Each with its reason: the given artwork it is most similar to.
    assert all(i["reason"]["artwork_id"] in liked and i["reason"]["text"].startswith("Because you liked ")
               for i in body["items"])
    status, body = call(server, "/api/v1/recommendations/cold-start", {"artwork_ids": ["nope"]}, key=None)
    assert status == 404 and "not in the catalogue" in body["error"]
    status, body = call(server, "/api/v1/recommendations/cold-start", {"artwork_ids": []}, key=None)
    assert status == 422 and body["error"].startswith("artwork_ids")


def test_customer_data_needs_the_api_key(server):
    _, user = _ids(server)
    for key in (None, "wrong-key-of-enough-length-000000"):
        status, body = call(server, f"/api/v1/customers/{user}/recommendations", key=key)
        assert status == 401 and user not in json.dumps(body) and "API key" in body["error"]
    status, body = call(server, f"/api/v1/customers/{user}/recommendations?limit=3")
    with duckdb.connect(str(server.data_dir / "curatornet.duckdb"), read_only=True) as con:
        served = con.execute(
            "SELECT artwork_id FROM serving.user_recommendations WHERE user_id = ? ORDER BY rank LIMIT 3", [user]
        ).df()["artwork_id"].tolist()
    assert status == 200 and body["source"] == "served" and [i["artwork_id"] for i in body["items"]] == served
    event = {"event_id": "e-0", "type": "like", "customer_id": user, "artwork_id": served[0],
             "timestamp": "2026-12-03T10:00:00Z"}
    assert call(server, "/api/v1/events", event, key=None)[0] == 401
    assert not (server.data_dir / GALLERY / "events.csv").exists()  # refused: nothing written


def test_events_are_validated_idempotent_durable_and_reach_the_next_refresh(server):
    catalogue, user = _ids(server)
    # A one-of-a-kind work nobody bought yet: a purchase event sells it at the next refresh.
    never = catalogue.loc[catalogue["available"] & (catalogue["n_purchases"] == 0)].iloc[0]["artwork_id"]
    other = catalogue.loc[catalogue["available"], "artwork_id"].tolist()[3]
    purchase = {"event_id": "shop-1", "type": "purchase", "customer_id": "new-customer", "artwork_id": never,
                "timestamp": "2026-12-03T11:00:00+01:00"}
    assert call(server, "/api/v1/events", purchase) == (200, {"event_id": "shop-1", "recorded": True})
    assert call(server, "/api/v1/events", purchase) == (200, {"event_id": "shop-1", "recorded": False})
    status, body = call(server, "/api/v1/events", {**purchase, "artwork_id": other})
    assert status == 409 and "other content" in body["error"]
    like = {"event_id": "shop-2", "type": "like", "visitor_id": "v-77", "artwork_id": other,
            "timestamp": "2026-12-03T10:00:00Z"}
    assert call(server, "/api/v1/events", like)[0] == 200
    for bad, reason in (
        ({**like, "event_id": "x", "type": "buy"}, "type"),
        ({**like, "event_id": "x", "customer_id": "c"}, "exactly one"),
        ({**like, "event_id": "x", "artwork_id": "nope"}, "in the catalogue"),
        ({**like, "event_id": "x", "timestamp": "yesterday"}, "timestamp"),
        ({**like, "event_id": "x", "extra": 1}, "extra"),
    ):
        status, body = call(server, "/api/v1/events", bad)
        assert status in (404, 422) and reason in body["error"], (bad, body)
    with (server.data_dir / GALLERY / "events.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["event_id"], r["type"], r["user_id"]) for r in rows] == [
        ("shop-1", "purchase", "new-customer"), ("shop-2", "like", "v-77")
    ]
    assert rows[0]["timestamp"] == "2026-12-03T10:00:00"  # stored in UTC
    # Before the refresh: live from the new customer's events.
    status, body = call(server, "/api/v1/customers/new-customer/recommendations?limit=5")
    assert status == 200 and body["source"] == "live" and never not in [i["artwork_id"] for i in body["items"]]
    assert _refresh(server.data_dir).success
    with duckdb.connect(str(server.data_dir / "curatornet.duckdb"), read_only=True) as con:
        sold = con.execute("SELECT available FROM serving.catalogue WHERE artwork_id = ?", [never]).fetchone()[0]
        kinds = con.execute("SELECT user_id, kind FROM serving.interactions WHERE user_id IN ('new-customer', 'v-77') "
                            "ORDER BY user_id").fetchall()
        served = con.execute("SELECT count(*) FROM serving.user_recommendations WHERE user_id = 'new-customer'")
        n_served = served.fetchone()[0]
    assert sold is False and kinds == [("new-customer", "purchase"), ("v-77", "like")] and n_served > 0


def test_openapi_document_and_interactive_docs_are_served(server):
    status, document = call(server, "/api/v1/openapi.json", key=None)
    assert status == 200 and document["info"]["title"] == "CuratorNet gallery API"
    assert set(document["paths"]) == {
        "/artworks/{artwork_id}", "/artworks/{artwork_id}/similar", "/recommendations/cold-start",
        "/customers/{customer_id}/recommendations", "/events",
    }
    assert "X-API-Key" in json.dumps(document["components"]["securitySchemes"])
    status, headers, body = server.client().request("/api/v1/docs")
    assert status == 200 and b"swagger-ui-bundle.js" in body and b"<script>" not in body
    assert server.client().request("/api/v1/docs-assets/swagger-ui-bundle.js")[0] == 200


# ------------------------------------------------------------------ contract tests generated from the OpenAPI document


def test_every_operation_keeps_its_documented_contract(server):
    """schemathesis generates requests (valid and invalid) for each operation of the served OpenAPI document: every
    answer must be a status the document declares, with a body of the declared shape, and never a server error.
    Derandomized, so a run is repeatable."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    schema = schemathesis.openapi.from_url(server.url + "/api/v1/openapi.json")
    checked = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=40, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        def keeps_contract(case):
            case.call_and_validate(base_url=server.url + "/api/v1", headers={"X-API-Key": KEY})

        keeps_contract()
        checked.append(operation.label)
    assert len(checked) == 5, checked
