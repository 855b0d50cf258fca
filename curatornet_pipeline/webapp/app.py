"""The gallery's front: available artworks, live "For you" from a visitor's likes, artwork and customer pages.

Starlette (ASGI routing, responses) + Jinja2 (templates), served by uvicorn. Every artwork, user and image is
looked up in the snapshot's tables by id: request text never becomes a file path. Only POST changes state.
"""

from __future__ import annotations

import io
import mimetypes
import re
import secrets
import time
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from PIL import Image
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from curatornet_pipeline.webapp.state import LikeStore, Served, SnapshotHolder, scores_to_list

HERE = Path(__file__).parent
VISITOR_COOKIE = "curatornet_visitor"
_VISITOR_ID = re.compile(r"^visitor_[0-9a-f]{16}$")
PAGE_SIZE = 48
FOR_YOU = 12
MORE_LIKE_THIS = 12
THUMBNAIL_PIXELS = 320


def _visitor(request: Request) -> tuple[str, bool]:
    """The visitor id from the cookie, or a new one (second value True when it must be set)."""
    given = request.cookies.get(VISITOR_COOKIE, "")
    if _VISITOR_ID.match(given):
        return given, False
    return f"visitor_{secrets.token_hex(8)}", True


def _local_target(referer: str) -> str:
    """The path and query of the referring page, never another site (no open redirect)."""
    parts = urlsplit(referer)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return target if target.startswith("/") and not target.startswith("//") else "/"


def _keep_visitor(response: Response, visitor_id: str, is_new: bool) -> Response:
    if is_new:
        response.set_cookie(VISITOR_COOKIE, visitor_id, max_age=365 * 24 * 3600, httponly=True, samesite="lax")
    return response


@lru_cache(maxsize=4096)
def _thumbnail(path: str, mtime_ns: int) -> tuple[bytes, str]:
    """A small PNG/JPEG of a large image; small images are served as they are. Keyed by file and mtime."""
    with Image.open(path) as image:
        image.load()
        if max(image.size) <= THUMBNAIL_PIXELS:
            return Path(path).read_bytes(), mimetypes.guess_type(path)[0] or "application/octet-stream"
        image.thumbnail((THUMBNAIL_PIXELS, THUMBNAIL_PIXELS))
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="JPEG", quality=85)
        return buffer.getvalue(), "image/jpeg"


class ServerTiming(BaseHTTPMiddleware):
    """``Server-Timing: app;dur=<ms>`` on every response: the time the server spent, for the benchmark."""

    async def dispatch(self, request, call_next):
        started = time.perf_counter()
        response = await call_next(request)
        response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.2f}"
        return response


def create_app(snapshot_file: Path) -> Starlette:
    holder = SnapshotHolder(snapshot_file)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    like_stores: dict[Path, LikeStore] = {}

    def served() -> Served:
        return holder.current()

    def likes_for(current: Served) -> LikeStore:
        # One store per source folder: a snapshot of another gallery writes its likes next to that gallery.
        if current.source_folder not in like_stores:
            like_stores[current.source_folder] = LikeStore(current.source_folder)
        return like_stores[current.source_folder]

    def artwork_or_404(current: Served, artwork_id: str):
        if artwork_id not in current.artworks.index:
            raise HTTPException(404, f"no artwork {artwork_id!r} in the catalogue")
        return current.artworks.loc[artwork_id]

    def for_you(current: Served, liked: list[str]) -> list[dict]:
        if not liked:
            return []
        return scores_to_list(current.recommender.recommend(liked, k=FOR_YOU), current.artworks)

    def page(request: Request, name: str, context: dict, visitor: tuple[str, bool]) -> Response:
        current = served()
        base = {
            "info": current.snapshot.info,
            "visitor_id": visitor[0],
            "n_liked": len(likes_for(current).of(visitor[0])),
        }
        response = templates.TemplateResponse(request, name, {**base, **context})
        return _keep_visitor(response, *visitor)

    async def home(request: Request) -> Response:
        current = served()
        visitor = _visitor(request)
        try:
            number = max(1, int(request.query_params.get("page", "1")))
        except ValueError:
            raise HTTPException(400, "page must be a whole number") from None
        n_pages = max(1, -(-len(current.available_ids) // PAGE_SIZE))
        if number > n_pages:
            raise HTTPException(404, f"there are {n_pages} pages")
        ids = current.available_ids[(number - 1) * PAGE_SIZE : number * PAGE_SIZE]
        liked = likes_for(current).of(visitor[0])
        return page(
            request,
            "home.html",
            {
                "artworks": [current.artworks.loc[a] for a in ids],
                "page": number,
                "n_pages": n_pages,
                "n_available": len(current.available_ids),
                "liked": set(liked),
                "for_you": for_you(current, liked),
            },
            visitor,
        )

    async def artwork(request: Request) -> Response:
        current = served()
        row = artwork_or_404(current, request.path_params["artwork_id"])
        similar = current.similar.get(row["artwork_id"])
        more = [] if similar is None else scores_to_list(similar.head(MORE_LIKE_THIS), current.artworks)
        visitor = _visitor(request)
        liked = likes_for(current).of(visitor[0])
        return page(request, "artwork.html", {"artwork": row, "more": more, "liked": set(liked)}, visitor)

    async def user(request: Request) -> Response:
        current = served()
        user_id = request.path_params["user_id"]
        history = current.histories.get(user_id)
        recs = current.recommendations.get(user_id)
        if history is None and recs is None:
            raise HTTPException(404, f"no customer {user_id!r} in the served tables")
        return page(
            request,
            "user.html",
            {
                "user_id": user_id,
                "history": [] if history is None else history.to_dict("records"),
                "recommendations": [] if recs is None else scores_to_list(recs.head(24), current.artworks),
                "n_recommendations": 0 if recs is None else len(recs),
            },
            _visitor(request),
        )

    async def image(request: Request) -> Response:
        current = served()
        row = artwork_or_404(current, request.path_params["artwork_id"])
        if not row["image_file"] or not isinstance(row["image_file"], str):
            raise HTTPException(404, "this gallery has no image for the artwork")
        path = Path(row["image_file"])  # from the catalogue table, never from the request
        if request.query_params.get("size", "thumb") == "full":
            return FileResponse(path, headers={"Cache-Control": "max-age=3600"})
        body, media_type = _thumbnail(str(path), path.stat().st_mtime_ns)
        return Response(body, media_type=media_type, headers={"Cache-Control": "max-age=3600"})

    async def like(request: Request) -> Response:
        current = served()
        row = artwork_or_404(current, request.path_params["artwork_id"])
        visitor = _visitor(request)
        store = likes_for(current)
        store.add(visitor[0], row["artwork_id"])
        liked = store.of(visitor[0])
        if "application/json" not in request.headers.get("accept", ""):
            # A plain form post (no JavaScript): back to where the visitor was.
            return _keep_visitor(RedirectResponse(_local_target(request.headers.get("referer", "/")), 303), *visitor)
        return _keep_visitor(JSONResponse({"liked": liked, "for_you": for_you(current, liked)}), *visitor)

    async def api_for_you(request: Request) -> Response:
        current = served()
        visitor = _visitor(request)
        liked = likes_for(current).of(visitor[0])
        return _keep_visitor(JSONResponse({"liked": liked, "for_you": for_you(current, liked)}), *visitor)

    async def health(request: Request) -> Response:
        info = served().snapshot.info
        return JSONResponse({k: str(v) for k, v in info.items()})

    async def http_error(request: Request, error: HTTPException) -> Response:
        if "application/json" in request.headers.get("accept", "") or request.url.path.startswith(("/api", "/images")):
            return JSONResponse({"error": error.detail}, status_code=error.status_code)
        return templates.TemplateResponse(
            request,
            "error.html",
            {"status": error.status_code, "detail": error.detail, "info": {}},
            status_code=error.status_code,
        )

    routes = [
        Route("/", home),
        Route("/artworks/{artwork_id}", artwork),
        Route("/artworks/{artwork_id}/like", like, methods=["POST"]),
        Route("/users/{user_id}", user),
        Route("/images/{artwork_id}", image),
        Route("/api/for-you", api_for_you),
        Route("/healthz", health),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    return Starlette(
        routes=routes, middleware=[Middleware(ServerTiming)], exception_handlers={HTTPException: http_error}
    )
