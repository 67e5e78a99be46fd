"""SIP dialogs (RFC 3261 sec. 12): identity, route set, CSeq and in-dialog requests.

A :class:`Dialog` is created from the INVITE (or SUBSCRIBE) and our 2xx/1xx when we
are the UAS, or from our request and the peer's response when we are the UAC.  It
builds the requests we send inside it (:meth:`Dialog.make_request`) and checks the
CSeq of those we receive (:meth:`Dialog.accept_remote_cseq`, 500 when out of order).
"""

from __future__ import annotations

import os

from portaum_tx.sip.headers import NameAddr, SipParseError
from portaum_tx.sip.message import Request, Response
from portaum_tx.sip.transaction import new_branch
from portaum_tx.sip.uri import SipURI, URI

__all__ = ["Dialog", "DialogError", "new_tag", "new_call_id"]


class DialogError(Exception):
    """A message cannot start or continue a dialog (no Contact, bad CSeq ...)."""


def new_tag() -> str:
    return os.urandom(6).hex()


def new_call_id(host: str) -> str:
    return "%s@%s" % (os.urandom(10).hex(), host.strip("[]"))


class Dialog:
    """State of one dialog, as seen from our side.

    ``local`` / ``remote`` are the From/To addresses as we use them (with tags);
    ``remote_target`` is the peer's Contact URI; ``route_set`` the Record-Route
    values in the order our requests must carry them.
    """

    def __init__(self, call_id: str, local: NameAddr, remote: NameAddr, remote_target: URI,
                 route_set: list[str], local_cseq: int, remote_cseq: int | None,
                 secure: bool = False):
        self.call_id = call_id
        self.local = local
        self.remote = remote
        self.remote_target = remote_target
        self.route_set = route_set
        self.local_cseq = local_cseq
        self.remote_cseq = remote_cseq
        self.secure = secure
        self.state = "early"

    @property
    def local_tag(self) -> str:
        return self.local.tag

    @property
    def remote_tag(self) -> str | None:
        return self.remote.tag

    @property
    def key(self) -> tuple:
        return (self.call_id, self.local_tag, self.remote_tag)

    @classmethod
    def for_uas(cls, request: Request, local_tag: str) -> "Dialog":
        """The dialog a request creates when we answer it with ``local_tag``."""
        try:
            contacts = request.contact
            if len(contacts) > 1 or (contacts and contacts[0].uri is None):
                raise DialogError("%s needs exactly one Contact to start a dialog" % request.method)
            # An RFC 2543 client may leave Contact out: its From address is the target.
            target = contacts[0].uri if contacts else request.from_.uri
            local = request.to.copy()
            local.tag = local_tag
            route_set = [str(r) for r in request.record_route]
            return cls(request.call_id, local, request.from_.copy(), target,
                       route_set, 0, request.cseq.number,
                       secure=isinstance(request.uri, SipURI) and request.uri.secure)
        except SipParseError as exc:
            raise DialogError(str(exc)) from None

    @classmethod
    def for_uac(cls, request: Request, response: Response) -> "Dialog":
        """The dialog a 1xx-with-tag or 2xx response to our ``request`` creates."""
        try:
            contacts = response.contact
            if not contacts or contacts[0].uri is None:
                raise DialogError("%d response without Contact cannot start a dialog"
                                  % response.status)
            route_set = [str(r) for r in reversed(response.record_route)]
            dialog = cls(request.call_id, request.from_.copy(), response.to.copy(),
                         contacts[0].uri, route_set, request.cseq.number, None,
                         secure=isinstance(request.uri, SipURI) and request.uri.secure)
        except SipParseError as exc:
            raise DialogError(str(exc)) from None
        dialog.state = "confirmed" if 200 <= response.status < 300 else "early"
        return dialog

    def update_target(self, message) -> None:
        """A target refresh (re-INVITE, UPDATE, their 2xx) may bring a new Contact."""
        try:
            contacts = message.contact
        except SipParseError:
            return
        if contacts and contacts[0].uri is not None:
            self.remote_target = contacts[0].uri

    def accept_remote_cseq(self, request: Request) -> bool:
        """False if the request's CSeq is lower than the last one (answer 500)."""
        number = request.cseq.number
        if request.method in ("ACK", "CANCEL"):
            return True
        if self.remote_cseq is not None and number <= self.remote_cseq:
            return False
        self.remote_cseq = number
        return True

    def next_cseq(self) -> int:
        self.local_cseq += 1
        return self.local_cseq

    def make_request(self, method: str, via_host: str, via_transport: str,
                     contact: str | None = None, cseq: int | None = None,
                     headers=(), body: bytes = b"", branch: str | None = None) -> Request:
        """A request inside this dialog (RFC 3261 12.2.1.1), loose routing assumed
        unless the first route lacks ``lr`` (then the strict-routing rewrite)."""
        uri = self.remote_target
        routes = list(self.route_set)
        if routes:
            first = NameAddr.parse(routes[0], "Route")
            if isinstance(first.uri, SipURI) and not first.uri.lr:
                uri = first.uri.without_headers()
                routes = routes[1:] + ["<%s>" % self.remote_target]
        if cseq is None:
            cseq = self.local_cseq if method == "ACK" else self.next_cseq()
        request = Request(method, uri)
        request.add("Via", "SIP/2.0/%s %s;branch=%s;rport"
                    % (via_transport, via_host, branch or new_branch()))
        request.add("Max-Forwards", "70")
        for route in routes:
            request.add("Route", route)
        request.add("From", str(self.local))
        request.add("To", str(self.remote))
        request.add("Call-ID", self.call_id)
        request.add("CSeq", "%d %s" % (cseq, method))
        if contact is not None:
            request.add("Contact", contact)
        for name, value in headers:
            request.add(name, value)
        request.body = body
        return request

    def first_hop(self) -> URI:
        """The URI whose host and port the next request is sent to."""
        if self.route_set:
            return NameAddr.parse(self.route_set[0], "Route").uri
        return self.remote_target
