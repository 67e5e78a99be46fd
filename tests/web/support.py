"""A running web node for the API and browser tests: a store on the test's
engine, two subscribers with messages, and the web front end listening on a
loopback port in the test's reactor."""

from __future__ import annotations

import datetime as dt
import json
from email.message import EmailMessage
from http.cookiejar import CookieJar

import numpy as np
import treq
from PIL import Image, ImageDraw
from twisted.internet import defer, reactor
from twisted.web.client import Agent, HTTPConnectionPool

from portaum_tx.accounts import AccountService
from portaum_tx.convert.audio import pcm16_to_wav
from portaum_tx.fax.document import FaxPage, write_pdf, write_tiff_f
from portaum_tx.mailbox.events import EventBus
from portaum_tx.mailbox.service import MailboxService
from portaum_tx.server import Node
from portaum_tx.web.frontend import WebFrontend
from tests.support import StoreTestCase

CUSTOMER = "Smart Calls, Ltd."
ALICE, ALICE_PASSWORD, ALICE_EMAIL = "12065557777", "alice-pass-1", "alice@example.net"
BOB, BOB_PASSWORD, BOB_EMAIL = "12065558888", "bob-pass-22", "bob@example.net"
ADMIN_PASSWORD = "operator-pass-333"


def tone(seconds: float, frequency: float = 440.0, rate: int = 8000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * frequency * t) * 8000).astype(np.int16)


def fax_pages(count: int = 2) -> list[FaxPage]:
    pages = []
    for number in range(1, count + 1):
        image = Image.new("1", (1728, 1100), 255)
        draw = ImageDraw.Draw(image)
        draw.rectangle((100, 100, 1628, 1000), outline=0, width=8)
        draw.text((200, 200), f"FAX PAGE {number}", fill=0)
        for row in range(300, 900, 60):
            draw.line((200, row, 1500, row), fill=0, width=4)
        pages.append(FaxPage(image, 204.0, 98.0))
    return pages


def html_email(sender: str, to: str, subject: str) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = "Thu, 05 Mar 2026 17:30:00 +0000"
    message["Message-ID"] = "<html-1@example.org>"
    message.set_content("Plain version of the newsletter.\n")
    message.add_alternative(
        "<html><body><h1>Newsletter</h1><p onclick=\"steal()\">Hello <b>friend</b></p>"
        "<script>alert('x')</script><img src=\"https://tracker.example.com/pixel.png\">"
        "<a href=\"javascript:alert(1)\">bad link</a><a href=\"https://example.org/\">good link</a>"
        "</body></html>", subtype="html")
    return message.as_bytes()


class WebNodeTestCase(StoreTestCase):
    """Store, services, the web front end on a loopback port, and data."""

    async def _open(self):
        await super()._open()
        self.config = self.make_config(f"web.admin_password={ADMIN_PASSWORD}", "web.port=0")
        self.events = EventBus(self.store)
        self.addCleanup(self.events.close)
        self.mailboxes = MailboxService(self.store, self.events, reactor, domain="example.net")
        self.accounts = AccountService(self.store, reactor)
        self.node = Node(config=self.config, reactor=reactor, store=self.store, events=self.events,
                         mailboxes=self.mailboxes, accounts=self.accounts, name="test-node",
                         secret="test cluster secret")
        frontend = WebFrontend()
        site = (await frontend.start(self.node))["web"]
        self.node.services["web"] = frontend
        port = reactor.listenTCP(0, site, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.base = f"http://127.0.0.1:{port.getHost().port}"
        await self.store.accounts.add_customer(CUSTOMER)
        await self.accounts.create_account(ALICE, CUSTOMER, password=ALICE_PASSWORD, pin="1234",
                                           email=ALICE_EMAIL, timezone="America/Los_Angeles")
        await self.accounts.create_account(BOB, CUSTOMER, password=BOB_PASSWORD, email=BOB_EMAIL)
        await self.accounts.add_alias("alice", ALICE)

    async def add_messages(self, account_id: str = ALICE) -> dict[str, int]:
        """A voice message, a TIFF fax, a PDF fax and an HTML e-mail; their INBOX UIDs."""
        when = dt.datetime(2026, 3, 5, 17, 30, tzinfo=dt.timezone.utc)
        voice = await self.mailboxes.deliver_voice(
            account_id, audio=pcm16_to_wav(tone(3.0)), audio_format="wav", duration=3,
            caller="12065550101", caller_name="Mark", when=when)
        fax = await self.mailboxes.deliver_fax(
            account_id, document=write_tiff_f(fax_pages(2)), document_format="tiff", pages=2,
            remote_ident="+1 206 555 0199", caller="12065550199", when=when)
        pdf_fax = await self.mailboxes.deliver_fax(
            account_id, document=write_pdf(fax_pages(1)), document_format="pdf", pages=1,
            remote_ident="PDF SENDER", caller="12065550198", when=when)
        mail = await self.mailboxes.deliver(account_id, html_email(
            "News <news@example.org>", ALICE_EMAIL, "Spring newsletter"))
        return {"voice": voice.uid, "fax": fax.uid, "pdf_fax": pdf_fax.uid, "email": mail.uid}

    def client(self) -> "ApiClient":
        client = ApiClient(self.base)
        self.addCleanup(client.close)
        return client


class ApiResult:
    def __init__(self, status: int, headers, body: bytes):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def json(self):
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        values = self.headers.getRawHeaders(name)
        return values[0] if values else None

    def __repr__(self):
        return f"<{self.status} {self.body[:300]!r}>"


class ApiClient:
    """A cookie-keeping HTTP client that sends the CSRF token it was given."""

    def __init__(self, base: str):
        self.base = base
        self.pool = HTTPConnectionPool(reactor, persistent=False)
        self.http = treq.client.HTTPClient(Agent(reactor, pool=self.pool), cookiejar=CookieJar())
        self.csrf: str | None = None

    def close(self):
        return self.pool.closeCachedConnections()

    async def request(self, method: str, path: str, body=None, *, raw: bytes | None = None,
                      headers: dict | None = None, csrf: bool = True) -> ApiResult:
        send = dict(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            send.setdefault("Content-Type", "application/json")
        if raw is not None:
            data = raw
        if csrf and self.csrf:
            send["X-CSRF-Token"] = self.csrf
        response = await self.http.request(method, self.base + path, data=data,
                                           headers={k: [v] for k, v in send.items()})
        content = await treq.content(response)
        return ApiResult(response.code, response.headers, content)

    async def sign_in(self, login: str, password: str) -> ApiResult:
        result = await self.request("POST", "/api/v1/session", {"login": login, "password": password})
        if result.status == 200:
            self.csrf = result.json["csrf_token"]
        return result

    async def admin_sign_in(self, password: str = ADMIN_PASSWORD) -> ApiResult:
        result = await self.request("POST", "/api/v1/admin/session", {"password": password})
        if result.status == 200:
            self.csrf = result.json["csrf_token"]
        return result


def run(coroutine_function):
    """Decorator: an async test method as a trial test returning a Deferred."""
    def test(self):
        return defer.ensureDeferred(coroutine_function(self))
    test.__name__ = coroutine_function.__name__
    test.__doc__ = coroutine_function.__doc__
    return test
