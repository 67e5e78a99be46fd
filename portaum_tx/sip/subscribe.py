"""Message waiting indication: RFC 3842 message-summary over RFC 6665 subscriptions.

A phone SUBSCRIBEs to ``message-summary`` for a mailbox (the Request-URI user: an
account ID or alias).  The request is authenticated with Digest against the account's
stored HA1 (MD5 or SHA-256, RFC 8760), unless it comes from a trusted proxy address.
The subscription is kept in the store, so that it survives a restart and any node can
send the NOTIFY for a change it made: every node hears every mailbox event, and the
store lets exactly one of them claim each new summary (see
:meth:`~portaum_tx.store.subscriptions.SubscriptionStore.set_subscription_notified`).

Accounts with an ``mwi_contact`` URI get unsolicited NOTIFYs (no subscription) for
phones that do not subscribe.
"""

from __future__ import annotations

from typing import Iterable

from twisted.internet import defer, task
from twisted.logger import Logger

from portaum_tx.sip.dialog import Dialog, DialogError, new_call_id, new_tag
from portaum_tx.sip.digest import DigestError, DigestServer, VerifyResult, parse_credentials
from portaum_tx.sip.headers import NameAddr, SipParseError
from portaum_tx.sip.message import Request, Response
from portaum_tx.sip.transaction import new_branch
from portaum_tx.sip.transport import Peer
from portaum_tx.sip.uri import SipURI, parse_uri

log = Logger()

__all__ = ["MwiService", "message_summary", "EVENT", "CONTENT_TYPE"]

EVENT = "message-summary"
CONTENT_TYPE = "application/simple-message-summary"
#: Rows for unsolicited NOTIFY state never expire.
_NEVER = 2 ** 62


def message_summary(counts: dict, account_uri: str) -> str:
    """The RFC 3842 body for ``counts`` as MailboxService.message_counts gives them."""
    voice = counts.get("voice", {})
    fax = counts.get("fax", {})
    waiting = voice.get("new", 0) + fax.get("new", 0) > 0
    lines = ["Messages-Waiting: %s" % ("yes" if waiting else "no"),
             "Message-Account: %s" % account_uri,
             "Voice-Message: %d/%d (%d/%d)" % (voice.get("new", 0), voice.get("old", 0),
                                               voice.get("urgent_new", 0),
                                               voice.get("urgent_old", 0))]
    if fax.get("new", 0) or fax.get("old", 0):
        lines.append("Fax-Message: %d/%d (%d/%d)" % (fax.get("new", 0), fax.get("old", 0),
                                                     fax.get("urgent_new", 0),
                                                     fax.get("urgent_old", 0)))
    return "\r\n".join(lines) + "\r\n"


def _dialog_state(dialog: Dialog, peer: Peer) -> dict:
    return {"call_id": dialog.call_id, "local": str(dialog.local), "remote": str(dialog.remote),
            "target": str(dialog.remote_target), "routes": list(dialog.route_set),
            "peer": [peer.transport, peer.host, peer.port]}


def _dialog_from_state(state: dict, local_cseq: int, remote_cseq: int) -> tuple[Dialog, Peer]:
    dialog = Dialog(state["call_id"], NameAddr.parse(state["local"], "From"),
                    NameAddr.parse(state["remote"], "To"), parse_uri(state["target"]),
                    list(state["routes"]), local_cseq, remote_cseq)
    dialog.state = "confirmed"
    transport, host, port = state["peer"]
    return dialog, Peer(transport, host, int(port))


def _subscription_id(call_id: str, local_tag: str, remote_tag: str) -> str:
    return "%s;%s;%s" % (call_id, local_tag, remote_tag)


class MwiService:
    """Serves message-summary subscriptions on a :class:`~portaum_tx.sip.ua.UserAgent`."""

    def __init__(self, ua, store, events, mailboxes, accounts, clock, *, realm: str,
                 secret: bytes, trusted_proxies: Iterable[str] = (), domain: str = "",
                 default_expires: int = 3600, min_expires: int = 60, max_expires: int = 86400,
                 sweep_interval: float = 30.0, algorithms: Iterable[str] = ("SHA-256", "MD5"),
                 now=None):
        self.ua = ua
        self.store = store
        self.subscriptions = store.subscriptions
        self.events = events
        self.mailboxes = mailboxes
        self.accounts = accounts
        self.clock = clock
        self.realm = realm
        self.secret = secret
        self.trusted = set(trusted_proxies)
        self.domain = domain or ua.domain
        self.default_expires = default_expires
        self.min_expires = min_expires
        self.max_expires = max_expires
        self.sweep_interval = sweep_interval
        self.now = now or clock.seconds
        self.algorithms = tuple(algorithms)
        self._digest: dict[str, DigestServer] = {}
        self._unsubscribe = []
        self._sweeper = None
        self._pending: dict[str, defer.Deferred] = {}
        self._again: set[str] = set()
        self.notifications_sent = 0

    @classmethod
    def for_node(cls, node, ua) -> "MwiService":
        sip = node.config.sip
        secret = node.secret.encode() if isinstance(node.secret, str) else node.secret
        return cls(ua, node.store, node.events, node.mailboxes, node.store.accounts,
                   node.reactor, realm=sip.realm, secret=secret,
                   trusted_proxies=sip.trusted_proxies, domain=sip.domain or ua.domain,
                   default_expires=int(sip.mwi_expires), algorithms=sip.digest_algorithms)

    async def start(self) -> None:
        self.ua.extensions["SUBSCRIBE"] = self._subscribe
        self.ua.extensions["REGISTER"] = self._register
        self.ua.dialog_fallbacks["SUBSCRIBE"] = self._subscribe_unknown_dialog
        if self.events is not None:
            from portaum_tx.mailbox.events import MailboxChanged, NewMessage
            for kind in (NewMessage, MailboxChanged):
                self._unsubscribe.append(self.events.subscribe(kind, self._mailbox_event))
        self._sweeper = task.LoopingCall(lambda: defer.ensureDeferred(self._sweep()))
        self._sweeper.clock = self.clock
        self._sweeper.start(self.sweep_interval, now=False).addErrback(
            lambda f: log.failure("MWI expiry sweep stopped", f))

    async def stop(self) -> None:
        self.ua.extensions.pop("SUBSCRIBE", None)
        self.ua.extensions.pop("REGISTER", None)
        self.ua.dialog_fallbacks.pop("SUBSCRIBE", None)
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        if self._sweeper is not None and self._sweeper.running:
            self._sweeper.stop()

    # --- SUBSCRIBE --------------------------------------------------------------------------

    def _subscribe(self, transaction, request: Request) -> None:
        d = defer.ensureDeferred(self._new_subscription(transaction, request))
        d.addErrback(self._failed, transaction, request)

    def _subscribe_unknown_dialog(self, transaction, request: Request) -> None:
        d = defer.ensureDeferred(self._refresh_from_store(transaction, request))
        d.addErrback(self._failed, transaction, request)

    def _failed(self, failure, transaction, request) -> None:
        log.failure("SUBSCRIBE failed", failure)
        if transaction.state in ("trying", "proceeding"):
            transaction.respond(self.ua.response(request, 500))

    def _check_event(self, transaction, request: Request) -> bool:
        event = (request.get("Event") or "").split(";")[0].strip().lower()
        if event != EVENT:
            transaction.respond(self.ua.response(request, 489, headers=[("Allow-Events", EVENT)]))
            return False
        accept = request.get("Accept")
        if accept is not None:
            try:
                ok = any(item.matches(CONTENT_TYPE) for item in request.parsed("Accept"))
            except SipParseError:
                ok = False
            if not ok:
                transaction.respond(self.ua.response(request, 406, headers=[
                    ("Accept", CONTENT_TYPE)]))
                return False
        return True

    def _expires(self, transaction, request: Request) -> int | None:
        try:
            value = request.first("Expires")
        except SipParseError:
            value = None
        expires = self.default_expires if value is None else int(value)
        if 0 < expires < self.min_expires:
            transaction.respond(self.ua.response(request, 423, headers=[
                ("Min-Expires", str(self.min_expires))]))
            return None
        return min(expires, self.max_expires)

    def _source_host(self, request: Request) -> str:
        via = request.top_via
        return (via.received or via.host).strip("[]")

    async def _authorize(self, transaction, request: Request, account_id: str) -> bool:
        if self._source_host(request) in self.trusted:
            return True
        account = await self.accounts.get_account(account_id)
        realm = account.digest_realm or self.realm
        server = self._digest.get(realm)
        if server is None:
            server = self._digest[realm] = DigestServer(realm, self.secret, now=self.now,
                                                          algorithms=self.algorithms)
        header = request.get("Authorization")
        if header is None:
            self._challenge(transaction, request, server)
            return False
        try:
            credentials = parse_credentials(header)
        except DigestError:
            transaction.respond(self.ua.response(request, 400, "Malformed Authorization"))
            return False
        try:
            user_account = await self.mailboxes.resolve(credentials.username)
        except Exception:
            user_account = None
        ha1 = {name: value for name, value in (("MD5", account.ha1_md5),
                                               ("SHA-256", account.ha1_sha256)) if value}
        if user_account != account_id or not ha1 or credentials.username != account_id:
            transaction.respond(self.ua.response(request, 403))
            return False
        result = server.verify(credentials, request.method, ha1)
        if result is VerifyResult.STALE:
            self._challenge(transaction, request, server, stale=True)
            return False
        if result is not VerifyResult.OK:
            transaction.respond(self.ua.response(request, 403))
            return False
        return True

    def _challenge(self, transaction, request, server: DigestServer, stale=False) -> None:
        transaction.respond(self.ua.response(request, 401, headers=[
            ("WWW-Authenticate", str(value)) for value in server.challenge(stale=stale)]))

    def _register(self, transaction, request: Request) -> None:
        d = defer.ensureDeferred(self._registration(transaction, request))
        d.addErrback(self._failed, transaction, request)

    async def _registration(self, transaction, request: Request) -> None:
        """Phones that subscribe to MWI only once registered (baresip, many desk phones)
        register here: the REGISTER is authenticated like a SUBSCRIBE and answered with
        the bindings it asked for.  Nothing routes calls by these bindings (the server
        only answers calls), so they are not kept."""
        uri = request.to.uri
        user = uri.user_unescaped if isinstance(uri, SipURI) else None
        try:
            account_id = await self.mailboxes.resolve(user or "")
        except Exception:
            transaction.respond(self.ua.response(request, 404))
            return
        if not await self._authorize(transaction, request, account_id):
            return
        try:
            default = request.first("Expires")
        except SipParseError:
            default = None
        default = self.default_expires if default is None else int(default)
        contacts = []
        for contact in request.contact:
            if contact.wildcard:
                contacts = []
                break
            expires = contact.expires if contact.expires is not None else default
            if expires == 0:
                continue
            bound = contact.copy()
            bound.set_param("expires", str(max(min(expires, self.max_expires), self.min_expires)))
            contacts.append(("Contact", str(bound)))
        transaction.respond(self.ua.response(request, 200, headers=contacts))

    async def _new_subscription(self, transaction, request: Request) -> None:
        if not self._check_event(transaction, request):
            return
        expires = self._expires(transaction, request)
        if expires is None:
            return
        uri = request.uri
        user = uri.user_unescaped if isinstance(uri, SipURI) else None
        try:
            account_id = await self.mailboxes.resolve(user or "")
        except Exception:
            transaction.respond(self.ua.response(request, 404))
            return
        if not await self._authorize(transaction, request, account_id):
            return
        local_tag = new_tag()
        try:
            dialog = Dialog.for_uas(request, local_tag)
        except DialogError as exc:
            transaction.respond(self.ua.response(request, 400, str(exc)[:100]))
            return
        peer = self.ua.flow_peer(transaction.source, dialog)
        dialog.state = "confirmed"
        subscription_id = _subscription_id(dialog.call_id, dialog.local_tag, dialog.remote_tag)
        state = _dialog_state(dialog, peer)
        state["account_uri"] = "sip:%s@%s" % (account_id, self.domain)
        transaction.respond(self.ua.response(request, 200, to_tag=local_tag,
                                             headers=[("Expires", str(expires)),
                                                      ("Contact", self.ua.contact(peer))]))
        if expires:
            await self.subscriptions.store_subscription(
                subscription_id, account_id, EVENT, state, 0, request.cseq.number,
                int(self.now()) + expires)
            await self._notify_one(subscription_id, account_id, state, force=True,
                                   expires=expires)
        else:  # a fetch: one NOTIFY with the state, then the subscription is over
            await self._send_notify(dialog, peer, await self._summary(account_id, state),
                                    "terminated;reason=timeout", 1)

    async def _refresh_from_store(self, transaction, request: Request) -> None:
        subscription_id = _subscription_id(request.call_id, request.to.tag, request.from_.tag)
        try:
            subscription = await self.subscriptions.get_subscription(subscription_id)
        except Exception:
            transaction.respond(self.ua.response(request, 481))
            return
        if not self._check_event(transaction, request):
            return
        if request.cseq.number <= subscription.remote_cseq:
            transaction.respond(self.ua.response(request, 500, "CSeq out of order"))
            return
        expires = self._expires(transaction, request)
        if expires is None:
            return
        state = dict(subscription.dialog)
        dialog, peer = _dialog_from_state(state, subscription.local_cseq, request.cseq.number)
        dialog.update_target(request)
        state["target"] = str(dialog.remote_target)
        if request.get("Authorization") is not None or \
                self._source_host(request) not in self.trusted:
            # Refreshes are authenticated like the initial request.
            if not await self._authorize(transaction, request, subscription.account_id):
                return
        transaction.respond(self.ua.response(request, 200, headers=[
            ("Expires", str(expires)), ("Contact", self.ua.contact(peer))]))
        if expires == 0:
            await self.subscriptions.delete_subscription(subscription_id)
            cseq = subscription.local_cseq + 1
            dialog.local_cseq = cseq
            await self._send_notify(dialog, peer,
                                    await self._summary(subscription.account_id, state),
                                    "terminated;reason=timeout", cseq)
            return
        await self.subscriptions.store_subscription(
            subscription_id, subscription.account_id, EVENT, state, subscription.local_cseq,
            request.cseq.number, int(self.now()) + expires)
        await self._notify_one(subscription_id, subscription.account_id, state, force=True,
                               expires=expires)

    # --- NOTIFY ----------------------------------------------------------------------------

    async def _summary(self, account_id: str, state: dict) -> str:
        counts = await self.mailboxes.message_counts(account_id)
        return message_summary(counts, state.get("account_uri")
                               or "sip:%s@%s" % (account_id, self.domain))

    async def _notify_one(self, subscription_id: str, account_id: str, state: dict,
                          force: bool, expires: int) -> bool:
        body = await self._summary(account_id, state)
        cseq = await self.subscriptions.set_subscription_notified(subscription_id, body,
                                                                   only_if_changed=not force)
        if cseq is None:
            return False
        dialog, peer = _dialog_from_state(state, cseq, 0)
        await self._send_notify(dialog, peer, body, "active;expires=%d" % max(expires, 1), cseq)
        return True

    async def _send_notify(self, dialog: Dialog, peer: Peer, body: str, state: str,
                           cseq: int) -> None:
        if peer.reliable and peer not in self.ua.transport.connections:
            # The phone's connection is gone (a restart, another node): reach its Contact.
            try:
                peer = await self.ua.destination(dialog.remote_target)
            except Exception:
                log.info("cannot reach {target} for NOTIFY", target=dialog.remote_target)
                return
        request = dialog.make_request(
            "NOTIFY", self.ua.via_host(peer), peer.via_transport, contact=self.ua.contact(peer),
            cseq=cseq, headers=[("Event", EVENT), ("Subscription-State", state),
                                ("Content-Type", CONTENT_TYPE)] + self.ua.common_headers(),
            body=body.encode())
        return await self._send(request, peer, dialog)

    async def _send(self, request: Request, peer: Peer, dialog: Dialog | None) -> None:
        """Send a NOTIFY; its outcome is handled when it comes, without holding up the
        caller (a slow phone must not delay the others' lights)."""
        self.notifications_sent += 1
        try:
            transaction = self.ua.layer.send_request(request, peer, peer.reliable)
        except Exception as exc:
            log.info("cannot send NOTIFY to {peer}: {why}", peer=peer, why=exc)
            return
        if dialog is None:
            return

        def answered(response: Response):
            if response.status in (408, 481) or (response.status >= 300 and
                                                 getattr(response, "local", False)):
                # RFC 6665 4.2.2: the subscriber is gone; forget the subscription.
                return defer.ensureDeferred(self.subscriptions.delete_subscription(
                    _subscription_id(dialog.call_id, dialog.local_tag, dialog.remote_tag)))
        transaction.final.addCallback(answered).addErrback(
            lambda f: log.failure("NOTIFY outcome", f))

    def _mailbox_event(self, event) -> None:
        self.announce(event.account_id)

    def announce(self, account_id: str) -> defer.Deferred:
        """Send the new summary of ``account_id`` to its subscribers.  Events arriving
        while an announcement runs are folded into one more round after it."""
        pending = self._pending.get(account_id)
        if pending is not None:
            self._again.add(account_id)
            return pending
        d = defer.ensureDeferred(self._announce(account_id))
        self._pending[account_id] = d

        def done(result):
            self._pending.pop(account_id, None)
            if account_id in self._again:
                self._again.discard(account_id)
                self.announce(account_id)
            return result
        d.addErrback(lambda f: log.failure("MWI for {account} failed", f, account=account_id))
        d.addBoth(done)
        return d

    async def _announce(self, account_id: str) -> None:
        # Let the change that caused the event settle before reading the counts.
        await task.deferLater(self.clock, 0, lambda: None)
        now = int(self.now())
        for subscription in await self.subscriptions.get_subscriptions(account_id, EVENT):
            if subscription.expires <= now or subscription.id.startswith("unsolicited:"):
                continue
            await self._notify_one(subscription.id, account_id, subscription.dialog, force=False,
                                   expires=subscription.expires - now)
        await self._unsolicited(account_id)

    async def _unsolicited(self, account_id: str) -> None:
        try:
            account = await self.accounts.get_account(account_id)
        except Exception:
            return
        contact = getattr(account, "mwi_contact", None)
        if not contact:
            return
        subscription_id = "unsolicited:%s" % account_id
        try:
            target = parse_uri(contact)
        except Exception:
            log.warn("account {account}: mwi_contact {contact!r} is not a SIP URI",
                     account=account_id, contact=contact)
            return
        state = {"contact": contact, "account_uri": "sip:%s@%s" % (account_id, self.domain)}
        await self.subscriptions.store_subscription(subscription_id, account_id, EVENT, state,
                                                    0, 0, _NEVER)
        body = await self._summary(account_id, state)
        cseq = await self.subscriptions.set_subscription_notified(subscription_id, body, True)
        if cseq is None:
            return
        try:
            peer = await self.ua.destination(target)
        except Exception:
            log.info("cannot reach mwi_contact {contact}", contact=contact)
            return
        from_addr = NameAddr(SipURI(self.domain, user=account_id))
        from_addr.tag = new_tag()
        request = Request("NOTIFY", target)
        request.add("Via", "SIP/2.0/%s %s;branch=%s;rport" % (peer.via_transport,
                                                              self.ua.via_host(peer), new_branch()))
        request.add("Max-Forwards", "70")
        request.add("From", str(from_addr))
        request.add("To", "<%s>" % target)
        request.add("Call-ID", new_call_id(self.ua.host))
        request.add("CSeq", "%d NOTIFY" % cseq)
        request.add("Contact", self.ua.contact(peer))
        request.add("Event", EVENT)
        request.add("Subscription-State", "active")
        request.add("Content-Type", CONTENT_TYPE)
        for name, value in self.ua.common_headers():
            request.add(name, value)
        request.body = body.encode()
        await self._send(request, peer, None)

    async def _sweep(self) -> None:
        expired = await self.subscriptions.delete_expired_subscriptions(int(self.now()))
        for subscription in expired:
            if subscription.id.startswith("unsolicited:"):
                continue
            try:
                dialog, peer = _dialog_from_state(subscription.dialog,
                                                  subscription.local_cseq + 1, 0)
                body = await self._summary(subscription.account_id, subscription.dialog)
                self.ua.clock.callLater(0, lambda d=dialog, p=peer, b=body, c=subscription.local_cseq + 1:
                                        defer.ensureDeferred(self._send_notify(
                                            d, p, b, "terminated;reason=timeout", c)))
            except Exception:
                log.failure("final NOTIFY for {id} failed", id=subscription.id)
