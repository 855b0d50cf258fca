"""What every request goes through: security headers, the cross-site check and the rate limit on writes.

* Headers on every response: a Content-Security-Policy that allows only the app's own files (the templates
  hold no inline script or style), ``nosniff``, no framing, and a same-origin Referer (the like form's
  redirect back uses it). ``Server-Timing`` tells the benchmark the time the server spent.
* Cross-site requests (CSRF): a state-changing request (anything but GET/HEAD/OPTIONS) is refused with 403
  when the browser says it comes from another site (``Sec-Fetch-Site`` other than same-origin/none) or
  sends an ``Origin`` that is not this host. A request with neither header (curl, scripts; browsers always
  send one of them on a cross-site POST) is let through: it carries no visitor's cookie by accident, and
  the like itself still needs a signed visitor cookie.
* Rate limit: at most ``writes_per_minute`` state-changing requests per client address (sliding window,
  in memory); more get 429 with ``Retry-After``. Behind a proxy every client has the proxy's address, so
  the proxy should rate-limit per client itself (docs/security.md).
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict, deque
from urllib.parse import urlsplit

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self'; script-src 'self'; style-src 'self'; object-src 'none'; "
        b"base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
# The API docs page (Swagger UI, served from the app's own files) sets inline styles and draws data: icons.
DOCS_PATH = "/api/v1/docs"
DOCS_CSP = (
    b"default-src 'self'; img-src 'self' data:; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    b"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# Server-to-server API calls carry the API key and come from the shop's few addresses: no per-address limit on
# writes there (the limit is for visitors' likes); a proxy in front may still limit them (docs/security.md).
API_PATH = "/api/v1/"
_MAX_CLIENTS = 100_000  # addresses remembered by the rate limit; the oldest are forgotten first


class RateLimiter:
    """A sliding one-minute window per client address."""

    def __init__(self, per_minute: int):
        self.per_minute = per_minute
        self._seen: OrderedDict[str, deque] = OrderedDict()
        self._lock = threading.Lock()

    def wait_seconds(self, client: str, now: float | None = None) -> float:
        """0 when the request may go on (and it is counted), else the seconds until it may."""
        now = time.monotonic() if now is None else now
        with self._lock:
            times = self._seen.pop(client, None) or deque()
            while times and now - times[0] >= 60.0:
                times.popleft()
            self._seen[client] = times
            if len(self._seen) > _MAX_CLIENTS:
                self._seen.popitem(last=False)
            if len(times) >= self.per_minute:
                return 60.0 - (now - times[0])
            times.append(now)
            return 0.0


def _header(scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def cross_site_reason(scope) -> str | None:
    """Why a state-changing request must be refused as cross-site, or None."""
    fetch_site = _header(scope, b"sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return f"a {fetch_site} request cannot change anything here"
    origin = _header(scope, b"origin")
    if origin is not None and urlsplit(origin).netloc.lower() != (_header(scope, b"host") or "").lower():
        return "a request from another site cannot change anything here"
    return None


class Guard:
    """ASGI middleware: the headers, the cross-site check and the write rate limit (see the module docstring)."""

    def __init__(self, app, writes_per_minute: int):
        self.app = app
        self.limiter = RateLimiter(writes_per_minute)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k not in dict(SECURITY_HEADERS)]
                headers += SECURITY_HEADERS
                if scope["path"] == DOCS_PATH:
                    headers = [(k, DOCS_CSP if k == b"content-security-policy" else v) for k, v in headers]
                headers.append((b"server-timing", f"app;dur={(time.perf_counter() - started) * 1000:.2f}".encode()))
                message = {**message, "headers": headers}
            await send(message)

        if scope["method"] not in SAFE_METHODS:
            refusal = self._refusal(scope)
            if refusal is not None:
                status, detail, extra = refusal
                body = json.dumps({"error": detail}).encode()
                await send_with_headers(
                    {
                        "type": "http.response.start",
                        "status": status,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                    *extra],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send_with_headers)

    def _refusal(self, scope) -> tuple[int, str, list] | None:
        reason = cross_site_reason(scope)
        if reason is not None:
            return 403, reason, []
        if scope["path"].startswith(API_PATH):
            return None
        client = (scope.get("client") or ("unknown", 0))[0]
        wait = self.limiter.wait_seconds(client)
        if wait > 0:
            seconds = max(1, int(wait + 0.999))
            return (
                429,
                f"too many likes from your address (at most {self.limiter.per_minute} a minute); "
                f"try again in {seconds} s",
                [(b"retry-after", str(seconds).encode())],
            )
        return None
