"""The JSON API a shop calls, ``/api/v1/``: catalogue entries, recommendations and events, described by OpenAPI.

FastAPI builds the OpenAPI document from the request and response models below and checks every request
against them, so the document a shop reads and the checks the server makes cannot drift apart; it is a
Starlette application itself, so it mounts inside the app with the same middleware (security headers,
cross-site refusal) and no second server. Interactive docs: ``/api/v1/docs``; the document:
``/api/v1/openapi.json``. How a shop integrates: docs/api.md.

Public: catalogue entries, "more like this" and cold-start recommendations for a list of artworks (nothing
about any customer). With the API key only (``X-API-Key``, compared in constant time, never logged): a
customer's recommendations and ``POST /events``. Every error is JSON, ``{"error": "<one sentence>"}``.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import pandas as pd
from fastapi import Depends, FastAPI, Path, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from curatornet_pipeline.core.events import EVENT_TYPES, LIST_KINDS
from curatornet_pipeline.webapp.events import EventConflict, EventStore, EventsUnavailable
from curatornet_pipeline.webapp.shop import entry
from curatornet_pipeline.webapp.state import Served, present, profile_of

API_PREFIX = "/api/v1"
MAX_LIMIT = 100
_ID = r"^[^\x00-\x1f]{1,200}$"  # ids are free text in the source files; no control characters, bounded


class ShopLink(BaseModel):
    url: str = Field(description="The Buy/Enquire link: the artwork's shop_url, else the gallery's URL template.")
    label: Literal["Buy", "Enquire"]


class Artwork(BaseModel):
    """What a customer reads about an artwork."""

    artwork_id: str
    title: str = Field(description='The title, or "Untitled (<short id>)" when the catalogue has none.')
    artist: str | None = Field(description="The artist's name, when the catalogue has one.")
    year: int | None
    medium: str | None
    size: str | None
    price: str | None = Field(description='Formatted price with currency, e.g. "$1,250"; null: price on request.')
    available: bool = Field(description="Whether the gallery can sell it now (a sold one-of-a-kind work: false).")
    kind: Literal["one_of_a_kind", "print"]
    link: ShopLink | None


class Reason(BaseModel):
    artwork_id: str = Field(description="The person's artwork this recommendation is most similar to.")
    title: str
    text: str = Field(description='Ready to show, e.g. "Because you liked Harbour at Dusk".')


class Recommendation(Artwork):
    rank: int = Field(ge=1, description="1 = the best match.")
    score: float = Field(description="The model's score; only the order within one list is meaningful.")
    reason: Reason | None = Field(description="Why it is recommended; null for more-like-this lists.")


class RecommendationList(BaseModel):
    items: list[Recommendation]
    source: Literal["served", "live"] = Field(
        description="served: the list the last refresh computed; live: computed now from the given artworks "
        "(or from a customer's history plus the events posted since the last refresh)."
    )


class ColdStartRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    artwork_ids: list[str] = Field(min_length=1, max_length=200, description="Artworks the person likes or bought.")
    limit: int = Field(default=12, ge=1, le=MAX_LIMIT)


class Event(BaseModel):
    """Something a customer did in the shop: exactly one of customer_id and visitor_id names who."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"oneOf": [{"required": ["customer_id"]}, {"required": ["visitor_id"]}]},
    )
    event_id: str = Field(pattern=_ID, description="The shop's unique id of the event: posting it again is a no-op.")
    type: Literal[EVENT_TYPES]  # type: ignore[valid-type]
    customer_id: str = Field(default=None, pattern=_ID, description="The shop's customer id.")
    visitor_id: str = Field(default=None, pattern=_ID, description="An anonymous visitor's id instead.")
    artwork_id: str = Field(pattern=_ID)
    timestamp: datetime = Field(description="When it happened (ISO 8601; without an offset: UTC).")
    list: Literal[LIST_KINDS] | None = Field(  # type: ignore[valid-type]
        default=None,
        description="Views and clicks of a recommended work: the list it was in (for_you: a customer's "
        "recommendations, similar: more like this, served: the served list). Online metrics count these.",
    )
    position: int | None = Field(default=None, ge=1, le=1000, description="Its place in that list, 1 = first.")
    model_version: str | None = Field(
        default=None, pattern=_ID, description="The model version that served the list, if the shop knows it."
    )


class EventAccepted(BaseModel):
    event_id: str
    recorded: bool = Field(description="true: written now; false: this event id was recorded before (nothing new).")


class ApiError(BaseModel):
    error: str


_ERRORS = {status: {"model": ApiError} for status in (400, 401, 404, 409, 422, 503)}


@dataclass
class ApiContext:
    """What the API needs from the app around it."""

    served: Callable[[], Served]
    events: Callable[[Served], EventStore]
    api_key: str | None
    shop_url_template: str | None
    artist_cap: int


def build_api(context: ApiContext) -> FastAPI:
    api = FastAPI(
        title="CuratorNet gallery API",
        version="1.0.0",
        description="Recommendations, catalogue entries and events for a gallery's shop. Customer data and events "
        "need the API key in the `X-API-Key` header. Errors are `{\"error\": \"...\"}`. Guide: docs/api.md.",
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        responses={503: {"model": ApiError}},
    )
    key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="The gallery's API key.")

    def require_key(given: str | None = Security(key_header)) -> None:
        if context.api_key is None:
            raise HTTPException(401, "server-to-server calls are off: the gallery has set no API key")
        if not given or not hmac.compare_digest(given.encode(), context.api_key.encode()):
            raise HTTPException(401, "a valid API key is needed (X-API-Key header)")

    def artwork_row(current: Served, artwork_id: str) -> pd.Series:
        if artwork_id not in current.artworks.index:
            raise HTTPException(404, f"no artwork {artwork_id!r} in the catalogue")
        return current.artworks.loc[artwork_id]

    def ranked(frame: pd.DataFrame, current: Served, limit: int, profile: list[tuple[str, str]]) -> list[dict]:
        out = []
        for rank, row in enumerate(present(frame, current, limit, context.artist_cap, profile), start=1):
            item = entry(current.artworks.loc[row["artwork_id"]], context.shop_url_template)
            out.append({**item, "rank": rank, "score": row["score"], "reason": row["reason"]})
        return out

    def live(current: Served, profile: list[tuple[str, str]], limit: int) -> list[dict]:
        profile = list({a: (a, verb) for a, verb in profile if a in current.artworks.index}.values())
        if not profile:
            return []
        fetch = limit * (5 if context.artist_cap else 1)  # more candidates, so the per-artist cap still fills it
        frame = current.recommender.recommend([a for a, _ in profile], k=fetch)
        return ranked(frame, current, limit, profile)

    @api.get("/artworks/{artwork_id}", response_model=Artwork, responses=_ERRORS, tags=["catalogue"])
    def artwork(artwork_id: str = Path(pattern=_ID)) -> dict:
        """The catalogue entry of one artwork."""
        current = context.served()
        return entry(artwork_row(current, artwork_id), context.shop_url_template)

    @api.get("/artworks/{artwork_id}/similar", response_model=RecommendationList, responses=_ERRORS,
             tags=["recommendations"])
    def similar(artwork_id: str = Path(pattern=_ID), limit: int = Query(12, ge=1, le=MAX_LIMIT)) -> dict:
        """More like this: available artworks the model ranks closest to this one."""
        current = context.served()
        artwork_row(current, artwork_id)
        rows = current.similar.get(artwork_id)
        items = [] if rows is None else ranked(rows, current, limit, [])
        return {"items": items, "source": "served"}

    @api.post("/recommendations/cold-start", response_model=RecommendationList, responses=_ERRORS,
              tags=["recommendations"])
    def cold_start(request: ColdStartRequest) -> dict:
        """Recommendations for someone known only by a few artworks (no account, no history): live."""
        current = context.served()
        unknown = [a for a in request.artwork_ids if a not in current.artworks.index]
        if unknown:
            raise HTTPException(404, f"{len(unknown)} artwork id(s) are not in the catalogue, e.g. {unknown[0]!r}")
        profile = [(a, "liked") for a in request.artwork_ids]
        return {"items": live(current, profile, request.limit), "source": "live"}

    @api.get("/customers/{customer_id}/recommendations", response_model=RecommendationList, responses=_ERRORS,
             tags=["recommendations"], dependencies=[Depends(require_key)])
    def customer(customer_id: str = Path(pattern=_ID), limit: int = Query(20, ge=1, le=MAX_LIMIT)) -> dict:
        """A customer's recommendations: the served list, or live when they have events since the last refresh."""
        current = context.served()
        published = pd.Timestamp(current.snapshot.info["created_at"])
        newer = context.events(current).since(customer_id, published)
        history = current.histories.get(customer_id)
        profile = profile_of(history)
        if newer:
            for kind, artwork_id in newer:
                if kind in ("purchase", "like"):
                    profile.append((artwork_id, "bought" if kind == "purchase" else "liked"))
                elif kind == "unlike":
                    profile = [(a, verb) for a, verb in profile if a != artwork_id]
            return {"items": live(current, profile, limit), "source": "live"}
        served_rows = current.recommendations.get(customer_id)
        if served_rows is None:
            raise HTTPException(404, f"no customer {customer_id!r} in the served tables and no events from them")
        return {"items": ranked(served_rows, current, limit, profile), "source": "served"}

    @api.post("/events", response_model=EventAccepted, responses=_ERRORS, tags=["events"],
              dependencies=[Depends(require_key)])
    def post_event(event: Event) -> dict:
        """Record a purchase, like, unlike, view or click; written durably before the answer, idempotent on its id."""
        if (event.customer_id is None) == (event.visitor_id is None):
            raise HTTPException(422, "give exactly one of customer_id and visitor_id")
        current = context.served()
        artwork_row(current, event.artwork_id)
        try:
            recorded = context.events(current).add(
                event.event_id, event.type, event.customer_id or event.visitor_id, event.artwork_id, event.timestamp,
                (event.list or "", str(event.position or ""), event.model_version or ""),
            )
        except EventConflict as conflict:
            raise HTTPException(409, str(conflict)) from None
        except EventsUnavailable as error:
            raise HTTPException(503, f"the event was not saved: {error}; please try again later") from None
        return {"event_id": event.event_id, "recorded": recorded}

    @api.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        return JSONResponse({"error": error.detail}, status_code=error.status_code, headers=error.headers)

    @api.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "request"
        return JSONResponse({"error": f"{where}: {first.get('msg', 'invalid')}"}, status_code=422)

    return api
