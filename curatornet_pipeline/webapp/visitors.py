"""Who a request comes from: the signed visitor cookie, its secret, and the operator token.

A visitor is anonymous: the first page they open gives them a random id in a cookie signed with the app's
secret (``itsdangerous``, as Starlette's own sessions sign theirs), so a cookie that was forged or copied
from a raw id is refused and treated as no visitor. The id never appears in a URL (a visitor's page is
``/me``). The secret comes from ``CURATORNET_VISITOR_SECRET``; when unset, one is generated once and kept in
a file readable by its owner only (0600), next to the serving snapshot, so a restart keeps every visitor.

Customer pages (``/users/<id>``) are operator views: served only when an operator token is configured and
the request carries it (``Authorization: Bearer <token>``), compared in constant time.
"""

from __future__ import annotations

import hmac
import os
import re
import secrets
from pathlib import Path

from itsdangerous import BadSignature, Signer
from starlette.requests import Request
from starlette.responses import Response

VISITOR_COOKIE = "curatornet_visitor"
SECRET_FILE = "visitor_cookie_secret"
_VISITOR_ID = re.compile(r"^visitor_[0-9a-f]{16}$")
_ONE_YEAR = 365 * 24 * 3600


def secret_from_file(folder: Path) -> str:
    """The secret kept in ``folder``, created (0600, written atomically) the first time."""
    path = Path(folder) / SECRET_FILE
    if path.is_file():
        return path.read_text(encoding="ascii").strip()
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(secrets.token_urlsafe(48))
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(temporary, path)  # two apps starting at once: the first secret wins, both use it
    except FileExistsError:
        pass
    finally:
        temporary.unlink(missing_ok=True)
    return path.read_text(encoding="ascii").strip()


class Visitors:
    """Signs and reads visitor cookies; checks the operator token."""

    def __init__(self, secret: str, *, operator_token: str | None = None, secure_cookie: bool = False):
        if len(secret) < 16:
            raise ValueError("the visitor cookie secret (CURATORNET_VISITOR_SECRET) must be at least 16 characters")
        self._signer = Signer(secret, salt="curatornet-visitor")
        self._operator_token = operator_token or None
        self.secure_cookie = secure_cookie

    def visitor(self, request: Request) -> str | None:
        """The visitor id of a validly signed cookie, else None."""
        given = request.cookies.get(VISITOR_COOKIE, "")
        try:
            visitor_id = self._signer.unsign(given).decode("ascii")
        except (BadSignature, UnicodeDecodeError):
            return None
        return visitor_id if _VISITOR_ID.match(visitor_id) else None

    def visitor_or_new(self, request: Request) -> tuple[str, bool]:
        """The visitor id, or a new one (second value True when the cookie must be set)."""
        visitor_id = self.visitor(request)
        if visitor_id is not None:
            return visitor_id, False
        return f"visitor_{secrets.token_hex(8)}", True

    def keep(self, response: Response, visitor_id: str, is_new: bool) -> Response:
        if is_new:
            response.set_cookie(
                VISITOR_COOKIE,
                self._signer.sign(visitor_id).decode("ascii"),
                max_age=_ONE_YEAR,
                httponly=True,
                samesite="lax",
                secure=self.secure_cookie,
            )
        return response

    @property
    def operator_mode(self) -> bool:
        return self._operator_token is not None

    def is_operator(self, request: Request) -> bool:
        if self._operator_token is None:
            return False
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), self._operator_token.encode())
