"""The gallery's front: available artworks, live "For you" from a visitor's likes, artwork pages, the visitor's page.

Starlette (ASGI routing, responses) + Jinja2 (templates), served by uvicorn. Every artwork, user and image is
looked up in the snapshot's tables by id: request text never becomes a file path. Only POST changes state,
and only for a visitor with a signed cookie (``visitors.py``) from this site, within the rate limit
(``guards.py``). Customer pages are operator views, off unless an operator token is configured.
What the app does and does not protect, and what a gallery must put in front of it: docs/security.md.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.background import BackgroundTasks
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from swagger_ui_bundle import swagger_ui_path

from curatornet_pipeline.core.catalogue import DISPLAY_FOLDER
from curatornet_pipeline.core.events import LIST_KINDS
from curatornet_pipeline.webapp.api import API_PREFIX, ApiContext, build_api
from curatornet_pipeline.webapp.events import EventStore
from curatornet_pipeline.webapp.guards import Guard
from curatornet_pipeline.webapp.images import ImageRefused, image_bytes
from curatornet_pipeline.webapp.impressions import ImpressionLog
from curatornet_pipeline.webapp.shop import entry
from curatornet_pipeline.webapp.state import LikeStore, LikesUnavailable, Served, SnapshotHolder, present, profile_of
from curatornet_pipeline.webapp.visitors import Visitors

HERE = Path(__file__).parent
PAGE_SIZE = 48
FOR_YOU = 12
MORE_LIKE_THIS = 12
NOT_SERVING = "the gallery cannot show recommendations right now (its serving data is being repaired); try again later"


def _local_target(referer: str) -> str:
    """The path and query of the referring page, never another site (no open redirect)."""
    parts = urlsplit(referer)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return target if target.startswith("/") and not target.startswith("//") else "/"


def ranks(rows: list[dict]) -> list[tuple[str, int]]:
    """(artwork id, position from 1) of a list as shown."""
    return [(row["artwork_id"], position) for position, row in enumerate(rows, start=1)]


def create_app(
    snapshot_file: Path,
    *,
    secret: str,
    operator_token: str | None = None,
    writes_per_minute: int = 60,
    secure_cookie: bool = False,
    shop_url_template: str | None = None,
    api_key: str | None = None,
    artist_cap: int = 2,
) -> Starlette:
    """The app over ``snapshot_file``; ``secret`` signs visitor cookies (see ``visitors.py``);
    ``shop_url_template`` (``{artwork_id}`` replaced) is the Buy/Enquire link of works without a shop_url;
    ``api_key`` opens the JSON API's customer data and events to server-to-server calls (``api.py``);
    ``artist_cap``: at most that many works of one artist in any list shown (0: no cap; ``core/diversity.py``)."""
    holder = SnapshotHolder(snapshot_file)
    visitors = Visitors(secret, operator_token=operator_token, secure_cookie=secure_cookie)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    like_stores: dict[Path, LikeStore] = {}
    event_stores: dict[Path, EventStore] = {}
    impression_logs: dict[Path, ImpressionLog] = {}

    def served() -> Served:
        current = holder.current()
        if current is None:
            raise HTTPException(503, NOT_SERVING)
        return current

    def likes_for(current: Served) -> LikeStore:
        # One store per source folder: a snapshot of another gallery writes its likes next to that gallery.
        if current.source_folder not in like_stores:
            like_stores[current.source_folder] = LikeStore(current.source_folder)
        return like_stores[current.source_folder]

    def events_for(current: Served) -> EventStore:
        if current.source_folder not in event_stores:
            event_stores[current.source_folder] = EventStore(current.source_folder)
        return event_stores[current.source_folder]

    def shown(
        response: Response, current: Served, visitor_id: str, kind: str, lists: dict[str, list[tuple[str, int]]]
    ) -> Response:
        """Record, after ``response`` is sent, a view (or click) of each (artwork id, position) of ``lists``."""
        if current.source_folder not in impression_logs:
            impression_logs[current.source_folder] = ImpressionLog(current.source_folder)
        log = impression_logs[current.source_folder]
        tasks = BackgroundTasks([response.background] if response.background else [])
        for list_kind, ids in lists.items():
            tasks.add_task(log.record, kind, visitor_id, ids, list_kind, current.model_version)
        response.background = tasks
        return response

    def artwork_or_404(current: Served, artwork_id: str):
        if artwork_id not in current.artworks.index:
            raise HTTPException(404, f"no artwork {artwork_id!r} in the catalogue")
        return current.artworks.loc[artwork_id]

    def for_you(current: Served, liked: list[str]) -> list[dict]:
        # A like of an artwork this snapshot no longer holds (or a hand-typed id) is left out, not an error.
        known = [a for a in liked if a in current.artworks.index]
        if not known:
            return []
        # More candidates than shown, so the per-artist cap still fills the list.
        ranked = current.recommender.recommend(known, k=FOR_YOU * (5 if artist_cap else 1))
        return present(ranked, current, FOR_YOU, artist_cap, [(a, "liked") for a in known])

    def page(request: Request, name: str, context: dict, visitor: tuple[str, bool]) -> Response:
        current = served()
        base = {"info": current.snapshot.info, "n_liked": len(likes_for(current).of(visitor[0]))}
        response = templates.TemplateResponse(request, name, {**base, **context})
        return visitors.keep(response, *visitor)

    async def home(request: Request) -> Response:
        current = served()
        visitor = visitors.visitor_or_new(request)
        try:
            number = max(1, int(request.query_params.get("page", "1")))
        except ValueError:
            raise HTTPException(400, "page must be a whole number") from None
        n_pages = max(1, -(-len(current.available_ids) // PAGE_SIZE))
        if number > n_pages:
            raise HTTPException(404, f"there are {n_pages} pages")
        ids = current.available_ids[(number - 1) * PAGE_SIZE : number * PAGE_SIZE]
        liked = likes_for(current).of(visitor[0])
        recommended = for_you(current, liked)
        response = page(
            request,
            "home.html",
            {
                "artworks": [current.entries[a] for a in ids],
                "page": number,
                "n_pages": n_pages,
                "n_available": len(current.available_ids),
                "liked": set(liked),
                "for_you": recommended,
            },
            visitor,
        )
        return shown(response, current, visitor[0], "view", {"for_you": ranks(recommended)})

    async def artwork(request: Request) -> Response:
        current = served()
        row = artwork_or_404(current, request.path_params["artwork_id"])
        similar = current.similar.get(row["artwork_id"])
        more = [] if similar is None else present(similar, current, MORE_LIKE_THIS, artist_cap)
        visitor = visitors.visitor_or_new(request)
        liked = likes_for(current).of(visitor[0])
        item = entry(row, shop_url_template)
        response = page(request, "artwork.html", {"artwork": item, "more": more, "liked": set(liked)}, visitor)
        response = shown(response, current, visitor[0], "view", {"similar": ranks(more)})
        # A recommended work's link says which list and place it was clicked from (see _card.html).
        source, position = request.query_params.get("from"), request.query_params.get("pos", "")
        if source in LIST_KINDS and position.isdigit() and 1 <= int(position) <= 1000:
            shown(response, current, visitor[0], "click", {source: [(row["artwork_id"], int(position))]})
        return response

    def person_page(
        request: Request, current: Served, user_id: str, visitor: tuple[str, bool], title: str, live_likes: list[str],
        own: bool = True,
    ) -> Response:
        history = current.histories.get(user_id)
        recs = current.recommendations.get(user_id)
        live = for_you(current, live_likes)
        served_list = [] if recs is None else present(recs, current, 24, artist_cap, profile_of(history))
        response = page(
            request,
            "user.html",
            {
                "title": title,
                "live_likes": [current.entries[a] for a in live_likes if a in current.entries],
                "liked": set(live_likes),
                "live": live,
                "history": [] if history is None else [
                    {**current.entries[r["artwork_id"]], "kind": r["kind"], "timestamp": r["timestamp"]}
                    for r in history.to_dict("records") if r["artwork_id"] in current.entries
                ],
                "recommendations": served_list,
                "n_recommendations": 0 if recs is None else len(recs),
            },
            visitor,
        )
        if not own:  # an operator looking at a customer: not a view by the customer
            return response
        return shown(response, current, user_id, "view", {"for_you": ranks(live), "served": ranks(served_list)})

    async def me(request: Request) -> Response:
        """The visitor's own page: their likes now, and what the last refresh served them."""
        current = served()
        visitor = visitors.visitor_or_new(request)
        return person_page(request, current, visitor[0], visitor, "Your page", likes_for(current).of(visitor[0]))

    async def user(request: Request) -> Response:
        """A customer's page: an operator view (history and served list of any customer)."""
        if not visitors.operator_mode:
            raise HTTPException(404, "customer pages are operator views, not served by this app")
        if not visitors.is_operator(request):
            raise HTTPException(
                401, "customer pages need the operator token (Authorization: Bearer ...)", {"WWW-Authenticate": "Bearer"}
            )
        current = served()
        user_id = request.path_params["user_id"]
        if user_id not in current.histories and user_id not in current.recommendations:
            raise HTTPException(404, f"no customer {user_id!r} in the served tables")
        return person_page(request, current, user_id, (user_id, False), user_id, [], own=False)

    def image(request: Request) -> Response:  # sync: Starlette runs it in a thread, file reads stay off the loop
        current = served()
        row = artwork_or_404(current, request.path_params["artwork_id"])
        # The larger page image when the gallery has one (also the sharper thumbnail), else the catalogue image.
        display = row.get("display_file")
        has_display = isinstance(display, str) and display
        file, folder = (display, DISPLAY_FOLDER) if has_display else (row["image_file"], "images")
        if not file or not isinstance(file, str):
            raise HTTPException(404, "this gallery has no image for the artwork")
        thumbnail = request.query_params.get("size", "thumb") != "full"
        try:
            # The file comes from the catalogue table, never from the request.
            body, media_type = image_bytes(file, current.source_folder / folder, thumbnail)
        except ImageRefused as refused:
            raise HTTPException(404, str(refused)) from None
        return Response(body, media_type=media_type, headers={"Cache-Control": "max-age=3600"})

    async def like(request: Request) -> Response:
        return await change_like(request, liking=True)

    async def unlike(request: Request) -> Response:
        return await change_like(request, liking=False)

    async def change_like(request: Request, liking: bool) -> Response:
        current = served()
        row = artwork_or_404(current, request.path_params["artwork_id"])
        visitor_id = visitors.visitor(request)
        if visitor_id is None:
            # No visitor is made by a POST: the page the like button is on sets the signed cookie first.
            raise HTTPException(403, "open the gallery page first (the like button needs the gallery's cookie)")
        store = likes_for(current)
        try:
            # The fsync waits off the event loop.
            await run_in_threadpool(store.add if liking else store.remove, visitor_id, row["artwork_id"])
        except LikesUnavailable as error:
            raise HTTPException(503, f"your like was not saved: {error}; please try again later") from None
        liked = store.of(visitor_id)
        if "application/json" not in request.headers.get("accept", ""):
            # A plain form post (no JavaScript): back to where the visitor was.
            return RedirectResponse(_local_target(request.headers.get("referer", "/")), 303)
        recommended = for_you(current, liked)
        response = JSONResponse({"liked": liked, "for_you": recommended})
        return shown(response, current, visitor_id, "view", {"for_you": ranks(recommended)})

    async def api_for_you(request: Request) -> Response:
        current = served()
        visitor = visitors.visitor_or_new(request)
        liked = likes_for(current).of(visitor[0])
        recommended = for_you(current, liked)
        response = visitors.keep(JSONResponse({"liked": liked, "for_you": recommended}), *visitor)
        return shown(response, current, visitor[0], "view", {"for_you": ranks(recommended)})

    async def health(request: Request) -> Response:
        """ok or degraded, what is served (run, model, when published) and why it is degraded; never a path."""
        current = holder.current()
        reasons = [holder.problem] if holder.problem else []
        body: dict = {}
        if current is not None:
            info = current.snapshot.info
            body.update(run_id=str(info["run_id"]), created_at=str(info["created_at"]))
            if visitors.is_operator(request):  # which model serves is for operators, not for customers
                body["model_id"] = str(info["model_id"])
            likes = likes_for(current)
            body["likes_set_aside"] = likes.n_set_aside
            if likes.unreadable:
                reasons.append(f"likes are not recorded: {likes.unreadable}")
        body = {"status": "degraded" if reasons else "ok", **body}
        if reasons:
            body["reason"] = "; ".join(reasons)
        return JSONResponse(body, status_code=200 if current is not None else 503)

    async def api_docs(request: Request) -> Response:
        """Interactive API docs: Swagger UI from the app's own files (no CDN, no inline script)."""
        return templates.TemplateResponse(request, "api_docs.html", {"info": {}, "n_liked": 0})

    async def http_error(request: Request, error: HTTPException) -> Response:
        if "application/json" in request.headers.get("accept", "") or request.url.path.startswith(("/api", "/images")):
            return JSONResponse({"error": error.detail}, status_code=error.status_code, headers=error.headers)
        return templates.TemplateResponse(
            request,
            "error.html",
            {"status": error.status_code, "detail": error.detail, "info": {}},
            status_code=error.status_code,
            headers=error.headers,
        )

    routes = [
        Route("/", home),
        Route("/me", me),
        Route("/artworks/{artwork_id}", artwork),
        Route("/artworks/{artwork_id}/like", like, methods=["POST"]),
        Route("/artworks/{artwork_id}/unlike", unlike, methods=["POST"]),
        Route("/users/{user_id}", user),
        Route("/images/{artwork_id}", image),
        Route("/api/for-you", api_for_you),
        Route("/healthz", health),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
        Route(f"{API_PREFIX}/docs", api_docs),
        Mount(f"{API_PREFIX}/docs-assets", StaticFiles(directory=swagger_ui_path), name="api-docs-assets"),
        Mount(API_PREFIX, build_api(ApiContext(served, events_for, api_key, shop_url_template, artist_cap))),
    ]
    if holder.current() is not None:
        likes_for(holder.current())  # read likes.csv now, not in the first visitor's request
    app = Starlette(
        routes=routes,
        middleware=[Middleware(Guard, writes_per_minute=writes_per_minute)],
        exception_handlers={HTTPException: http_error},
    )
    app.state.snapshots = holder  # tests and benchmarks watch reloads through it
    return app
