"""The web front end: ``/health``, the self-care site, the admin site, the JSON API
and its OpenAPI document, all on the ``[web]`` port.

Pages are plain HTML, CSS and a little JavaScript from ``static/``; the
pages load no script but their own (Content-Security-Policy), and every
datum they show comes from the JSON API.
"""

from __future__ import annotations

import json
import os

from twisted.web import resource, server

from ..server import PortSpec
from .admin import ROUTES as ADMIN_ROUTES
from .api import Router
from .attendant import ROUTES as ATTENDANT_ROUTES
from .dispatch import ApiResource
from .health import HealthResource
from .openapi import document
from .selfcare import ROUTES as USER_ROUTES
from .sessions import SessionSigner

STATIC_DIR = os.path.join(os.path.dirname(__file__), "static")
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8",
                 ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml",
                 ".png": "image/png", ".ico": "image/x-icon", ".json": "application/json"}
PAGE_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
               "media-src 'self' blob:; frame-src 'self'; connect-src 'self'; object-src 'none'; "
               "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
PAGE_HEADERS = {
    b"content-security-policy": PAGE_POLICY.encode(),
    b"x-content-type-options": b"nosniff",
    b"referrer-policy": b"no-referrer",
    b"x-frame-options": b"DENY",
    b"permissions-policy": b"microphone=(self), camera=(), geolocation=()",
}


def all_routes() -> list:
    return list(USER_ROUTES) + list(ATTENDANT_ROUTES) + list(ADMIN_ROUTES)


class StaticFiles(resource.Resource):
    """Files of ``static/`` by name; ``/`` and ``/admin/`` are the two apps."""
    isLeaf = True
    ALIASES = {"": "index.html", "admin": "admin.html", "admin/": "admin.html"}

    def __init__(self, directory: str = STATIC_DIR):
        super().__init__()
        self.directory = directory
        self._cache: dict[str, bytes] = {}

    def render_GET(self, request):
        name = request.path.decode("utf-8", "replace").lstrip("/")
        if name.startswith("static/"):
            name = name[len("static/"):]
        name = self.ALIASES.get(name, name)
        extension = os.path.splitext(name)[1]
        for header, value in PAGE_HEADERS.items():
            request.setHeader(header, value)
        if "/" in name or name.startswith(".") or extension not in CONTENT_TYPES:
            return self._missing(request)
        if name not in self._cache:
            try:
                with open(os.path.join(self.directory, name), "rb") as source:
                    self._cache[name] = source.read()
            except OSError:
                return self._missing(request)
        request.setHeader(b"content-type", CONTENT_TYPES[extension].encode())
        request.setHeader(b"cache-control", b"no-cache")
        return self._cache[name]

    def render_HEAD(self, request):
        self.render_GET(request)
        return b""

    def _missing(self, request):
        request.setResponseCode(404)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return b"not found\n"


class OpenApiResource(resource.Resource):
    isLeaf = True

    def __init__(self, routes):
        super().__init__()
        self.body = json.dumps(document(routes), indent=1).encode()

    def render_GET(self, request):
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"access-control-allow-origin", b"*")
        return self.body


class Root(resource.Resource):
    def __init__(self, node, signer: SessionSigner):
        super().__init__()
        routes = all_routes()
        self.api = ApiResource(node, Router(routes), signer)
        self.pages = StaticFiles()
        self.putChild(b"health", HealthResource(node))
        self.putChild(b"openapi.json", OpenApiResource(routes))
        self.putChild(b"api", self.api)

    def getChild(self, name, request):
        return self.pages


class WebFrontend:
    name = "web"

    def __init__(self):
        self.root: Root | None = None

    def ports(self, config):
        return [PortSpec("web", "tcp", config.web.listen_address, config.web.port, "[web] port")]

    async def start(self, node):
        self.root = Root(node, SessionSigner(node.secret))
        site = server.Site(self.root)
        site.displayTracebacks = False
        return {"web": site}
