"""A health endpoint for load balancers and monitoring: ``GET /health``.

Answers 200 with the node name, storage engine and schema version when the
database answers, 503 when it does not; with the SIP front end running, ``media``
says how the media engine keeps time (live sessions, dropped ticks, late batches of
the send pacer) and ``gc`` how long the garbage collector has paused the process
(:mod:`portaum_tx.gcstats`).  The self-care and admin site mount
their resources beside it on the same port.
"""

from __future__ import annotations

import json

from twisted.internet import defer
from twisted.web import resource, server

from ..server import PortSpec


class HealthResource(resource.Resource):
    isLeaf = True

    def __init__(self, node):
        super().__init__()
        self._node = node

    def render_GET(self, request):
        d = defer.ensureDeferred(self._check())

        def respond(result):
            status, body = result
            request.setResponseCode(status)
            request.setHeader(b"content-type", b"application/json")
            request.setHeader(b"cache-control", b"no-store")
            request.write(json.dumps(body).encode())
            request.finish()
        d.addCallback(respond)
        return server.NOT_DONE_YET

    async def _check(self):
        node = self._node
        body = {"node": node.name, "engine": node.store.engine_name,
                "schema": node.store.schema_version}
        media = getattr(node.services.get("sip"), "media", None)
        if media is not None:
            body["media"] = media.status()
        if node.collector is not None:
            body["gc"] = node.collector.status()
            if getattr(node, "freezer", None) is not None:
                body["gc"]["survivor_freeze"] = node.freezer.status()
        try:
            await node.store.settings.get_setting("cluster_secret")
        except Exception as exc:
            return 503, {**body, "status": "unavailable", "error": str(exc)}
        return 200, {**body, "status": "ok"}


class HealthFrontend:
    name = "web"

    def __init__(self):
        self.root = resource.Resource()

    def ports(self, config):
        return [PortSpec("web", "tcp", config.web.listen_address, config.web.port, "[web] port")]

    async def start(self, node):
        self.root.putChild(b"health", HealthResource(node))
        site = server.Site(self.root)
        site.displayTracebacks = False
        return {"web": site}
