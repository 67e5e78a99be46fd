"""The twisted.web resource that serves the JSON API from a :class:`Router`.

It does, for every request and before any handler runs: route matching,
the access check (subscriber cookie, operator cookie), the CSRF check on
changes, body size limits and validation.  Unexpected failures are logged
and answered with a 500 that says only that something went wrong.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any
from urllib.parse import unquote

from twisted.internet import defer
from twisted.logger import Logger
from twisted.web import resource, server

from ..store import NotFound
from .api import (ADMIN, PUBLIC, USER, ApiError, RangeNotSatisfiable, Response, Route, Router,
                  convert_param, parse_json, parse_range, validate_body)
from .sessions import (ADMIN_COOKIE, CSRF_HEADER, USER_COOKIE, BadSession, Session,
                       SessionSigner, fingerprint)

log = Logger()

MAX_UPLOAD = 40 * 1024 * 1024
_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
API_SECURITY_HEADERS = {
    b"content-security-policy": b"default-src 'none'; frame-ancestors 'none'",
    b"x-content-type-options": b"nosniff",
    b"referrer-policy": b"no-referrer",
    b"cache-control": b"no-store",
}


@dataclasses.dataclass
class RequestContext:
    request: Any
    node: Any
    signer: SessionSigner
    route: Route
    session: Session | None
    body: dict
    raw: bytes
    query: dict[str, str]
    client: str
    cookies_out: list = dataclasses.field(default_factory=list)

    @property
    def account_id(self) -> str:
        assert self.session is not None and self.session.role == USER
        return self.session.subject

    @property
    def now(self) -> int:
        return int(self.node.reactor.seconds())

    @property
    def secure(self) -> bool:
        forwarded = self.request.getHeader(b"x-forwarded-proto") or b""
        return bool(self.request.isSecure()) or forwarded.lower() == b"https"

    def set_cookie(self, name: bytes, value: str, max_age: int) -> None:
        self.cookies_out.append((name, value, max_age))


def client_address(request) -> str:
    peer = request.getClientAddress()
    return getattr(peer, "host", None) or str(peer)


class ApiResource(resource.Resource):
    isLeaf = True

    def __init__(self, node, router: Router, signer: SessionSigner, prefix: bytes = b"/api"):
        super().__init__()
        self.node = node
        self.router = router
        self.signer = signer
        self.prefix = prefix

    def render(self, request):
        d = defer.ensureDeferred(self._serve(request))
        d.addErrback(lambda failure: log.failure("web API response failed", failure))
        return server.NOT_DONE_YET

    async def _serve(self, request) -> None:
        method = request.method.decode("ascii", "replace").upper()
        path = request.path.decode("utf-8", "replace")
        ctx: RequestContext | None = None
        try:
            route, raw_params = self.router.match(method, path)
            ctx = await self._context(request, route, method)
            params = {}
            declared = {p.name: p for p in route.path_params()}
            for name, raw in raw_params.items():
                params[name] = convert_param(declared[name], unquote(raw))
            result = await route.handler(ctx, **params)
            response = result if isinstance(result, Response) else Response(
                json.dumps(result).encode(), status=route.status)
        except ApiError as exc:
            response = Response(json.dumps(exc.body()).encode(), status=exc.status,
                                headers=exc.headers)
        except NotFound as exc:
            response = Response(json.dumps({"error": {"code": "not_found", "message": str(exc)}})
                                .encode(), status=404)
        except Exception:
            log.failure("web API {method} {path} failed", method=method, path=path)
            response = Response(json.dumps({"error": {
                "code": "internal", "message": "the server could not complete the request"}})
                .encode(), status=500)
        self._write(request, response, ctx)

    async def _context(self, request, route: Route, method: str) -> RequestContext:
        client = client_address(request)
        now = int(self.node.reactor.seconds())
        session = None
        if route.access in (USER, ADMIN):
            session = await self._session(request, route.access, now)
            if method in _UNSAFE and not self.signer.check_csrf(
                    session, (request.getHeader(CSRF_HEADER) or b"").decode("ascii", "replace")):
                raise ApiError(403, "csrf", "missing or wrong X-CSRF-Token header; "
                               "read the token from GET /api/v1/session")
        elif route.access == PUBLIC:
            session = None
        content = request.content
        content.seek(0, 2)
        size = content.tell()
        content.seek(0)
        limit = MAX_UPLOAD if route.upload else 256 * 1024
        if size > limit:
            raise ApiError(413, "too_large", f"request body is {size} bytes; the limit is {limit}")
        raw = content.read()
        body: dict = {}
        if route.body is not None:
            kind = (request.getHeader(b"content-type") or b"application/json").decode(
                "latin-1").split(";")[0].strip().lower()
            if raw.strip() and kind != "application/json":
                raise ApiError(415, "unsupported_media_type",
                               f"send the request body as application/json, not {kind}")
            body = validate_body(route.body, parse_json(raw))
        query = {}
        for key, values in request.args.items():
            query[key.decode("utf-8", "replace")] = values[-1].decode("utf-8", "replace")
        for param in route.query_params():
            if param.name in query:
                query[param.name] = convert_param(param, query[param.name])
            elif param.required:
                raise ApiError(400, "invalid", f"query parameter {param.name} is required",
                               param.name)
        return RequestContext(request, self.node, self.signer, route, session, body, raw, query,
                              client)

    async def _session(self, request, role: str, now: int) -> Session:
        cookie = request.getCookie(ADMIN_COOKIE if role == ADMIN else USER_COOKIE)
        if not cookie:
            if role == ADMIN and request.getCookie(USER_COOKIE):
                raise ApiError(403, "forbidden", "this endpoint is for operators only")
            raise ApiError(401, "unauthenticated",
                           "sign in first" if role == USER else "operator sign-in required")
        try:
            session = self.signer.verify(cookie.decode("ascii", "replace"), now)
        except BadSession as exc:
            raise ApiError(401, "unauthenticated", f"sign in again ({exc})") from None
        if session.role != role:
            raise ApiError(403, "forbidden", "this session may not use this endpoint")
        if role == USER:
            try:
                account = await self.node.store.accounts.get_account(session.subject)
            except NotFound:
                raise ApiError(401, "unauthenticated", "the account no longer exists") from None
            if fingerprint(account.password_hash) != session.fingerprint:
                raise ApiError(401, "unauthenticated",
                               "the password was changed; sign in again")
        return session

    def _write(self, request, response: Response, ctx: RequestContext | None) -> None:
        if request._disconnected:
            return
        for name, value in API_SECURITY_HEADERS.items():
            request.setHeader(name, value)
        if ctx is not None:
            for name, value, max_age in ctx.cookies_out:
                request.addCookie(name, value.encode(), path=b"/", httpOnly=True,
                                  secure=ctx.secure, sameSite=b"Strict", max_age=str(max_age).encode())
        for name, value in response.headers.items():
            request.setHeader(name.encode(), value.encode())
        body = response.body
        status = response.status
        if response.ranged:
            request.setHeader(b"accept-ranges", b"bytes")
            try:
                wanted = parse_range((request.getHeader(b"range") or b"").decode("latin-1"), len(body))
            except RangeNotSatisfiable:
                request.setResponseCode(416)
                request.setHeader(b"content-range", f"bytes */{len(body)}".encode())
                request.finish()
                return
            if wanted is not None:
                first, last = wanted
                request.setHeader(b"content-range", f"bytes {first}-{last}/{len(body)}".encode())
                body = body[first:last + 1]
                status = 206
        request.setResponseCode(status)
        request.setHeader(b"content-type", response.content_type.encode())
        request.setHeader(b"content-length", str(len(body)).encode())
        if request.method != b"HEAD":
            request.write(body)
        request.finish()
