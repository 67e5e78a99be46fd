"""Fakes shared by the user agent tests: a datagram socket, RTP sessions, a phone."""

from __future__ import annotations

from twisted.internet import task

from portaum_tx.sip.message import Response, parse_message
from portaum_tx.sip.transport import SipTransport, UdpEndpoint
from portaum_tx.sip.ua import UserAgent

PHONE = ("192.0.2.7", 5062)


class FakeDatagramTransport:
    def __init__(self):
        self.sent: list[tuple[bytes, tuple]] = []

    def write(self, data, addr):
        self.sent.append((data, addr))


class FakeRtp:
    def __init__(self, port):
        self.local_port = port
        self.params = None
        self.started = False
        self.closed = None
        self.info = []
        self.dtmf_listeners = []
        self.dead_peer_listeners = []
        self.fax_listeners = []

    def configure(self, params):
        self.params = params

    def start(self):
        self.started = True

    def close(self, reason="hangup"):
        self.closed = reason

    def receive_info_dtmf(self, content_type, body):
        self.info.append((content_type, body))


class FakeMedia:
    def __init__(self):
        self.sessions = []

    def create_session(self):
        rtp = FakeRtp(40000 + 2 * len(self.sessions))
        self.sessions.append(rtp)
        return rtp


OFFER = (b"v=0\r\no=alice 1 1 IN IP4 192.0.2.7\r\ns=-\r\nc=IN IP4 192.0.2.7\r\nt=0 0\r\n"
         b"m=audio 30000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
         b"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\n")


class Harness:
    """A user agent on a fake UDP socket, driven by a task.Clock."""

    def __init__(self, **options):
        self.clock = task.Clock()
        self.transport = SipTransport(self.clock)
        self.endpoint = UdpEndpoint(self.transport)
        self.socket = FakeDatagramTransport()
        self.endpoint.makeConnection(self.socket)
        self.media = FakeMedia()
        self.incoming = []
        options.setdefault("on_incoming", self.incoming.append)
        self.ua = UserAgent(self.clock, self.transport, host="192.0.2.1", media=self.media,
                            ports={"udp": 5060}, domain="example.com", **options)

    def feed(self, data: bytes, source=PHONE):
        self.endpoint.datagramReceived(data, source)

    def take(self) -> list:
        out = [(parse_message(data), addr) for data, addr in self.socket.sent]
        self.socket.sent.clear()
        return out

    def responses(self) -> list[Response]:
        return [m for m, _ in self.take() if isinstance(m, Response)]


def invite(call_id="call-1", branch="z9hG4bKinv1", cseq=1, body=OFFER, extra="", to_tag=None,
           method="INVITE", uri="sip:800@192.0.2.1", content_type="application/sdp"):
    to = "<sip:800@example.com>" + (";tag=%s" % to_tag if to_tag else "")
    head = (f"{method} {uri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 10.0.0.7:5062;branch={branch};rport\r\n"
            f"Max-Forwards: 70\r\nFrom: \"Alice\" <sip:1001@example.com>;tag=alice1\r\n"
            f"To: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n"
            f"Contact: <sip:1001@10.0.0.7:5062>\r\n{extra}")
    if body:
        head += "Content-Type: %s\r\n" % content_type
    return (head + "Content-Length: %d\r\n\r\n" % len(body)).encode() + body


def in_dialog(method, to_tag, cseq, branch, call_id="call-1", body=b"", extra="",
              content_type="application/sdp"):
    return invite(call_id=call_id, branch=branch, cseq=cseq, body=body, extra=extra,
                  to_tag=to_tag, method=method, uri="sip:1001@10.0.0.7:5062",
                  content_type=content_type)


class MemorySubscriptions:
    """The SubscriptionStore API over a dict (the SQL one is tested in tests/store)."""

    def __init__(self):
        from portaum_tx.store.subscriptions import Subscription
        self.Subscription = Subscription
        self.rows = {}

    async def store_subscription(self, sid, account_id, event, dialog, local_cseq, remote_cseq,
                                 expires):
        old = self.rows.get(sid)
        row = self.Subscription(sid, account_id, event, dict(dialog),
                                max(local_cseq, old.local_cseq if old else 0), remote_cseq,
                                expires, old.last_body if old else "", 0)
        self.rows[sid] = row
        return row

    async def get_subscription(self, sid):
        from portaum_tx.store import NotFound
        if sid not in self.rows:
            raise NotFound(sid)
        return self.rows[sid]

    async def get_subscriptions(self, account_id, event):
        return [r for r in self.rows.values() if r.account_id == account_id and r.event == event]

    async def set_subscription_notified(self, sid, body, only_if_changed):
        import dataclasses
        row = self.rows.get(sid)
        if row is None or (only_if_changed and row.last_body == body):
            return None
        row = dataclasses.replace(row, local_cseq=row.local_cseq + 1, last_body=body)
        self.rows[sid] = row
        return row.local_cseq

    async def delete_subscription(self, sid):
        return self.rows.pop(sid, None)

    async def delete_expired_subscriptions(self, now):
        gone = [r for r in self.rows.values() if r.expires <= now]
        for r in gone:
            del self.rows[r.id]
        return gone


class FakeAccount:
    def __init__(self, account_id, password="secret", realm="portaum", mwi_contact=None):
        from portaum_tx.sip.digest import compute_ha1
        self.id = account_id
        self.digest_realm = realm
        self.ha1_md5 = compute_ha1(account_id, realm, password, "MD5")
        self.ha1_sha256 = compute_ha1(account_id, realm, password, "SHA-256")
        self.mwi_contact = mwi_contact


class FakeMailboxes:
    """Accounts, aliases and MWI counts as MailboxService and AccountStore show them."""

    def __init__(self):
        self.accounts = {}
        self.aliases = {}
        self.counts = {}

    def add(self, account):
        self.accounts[account.id] = account
        self.counts[account.id] = {"voice": {"new": 0, "old": 0, "urgent_new": 0, "urgent_old": 0},
                                   "fax": {"new": 0, "old": 0, "urgent_new": 0, "urgent_old": 0}}

    async def resolve(self, name):
        from portaum_tx.store import NotFound
        name = self.aliases.get(name, name)
        if name not in self.accounts:
            raise NotFound(name)
        return name

    async def message_counts(self, account_id):
        return self.counts[account_id]

    async def get_account(self, account_id):
        return self.accounts[account_id]


class FakeEvents:
    def __init__(self):
        self.subscribers = []

    def subscribe(self, kind, callback):
        entry = (kind, callback)
        self.subscribers.append(entry)
        return lambda: self.subscribers.remove(entry)

    def publish_now(self, event):
        for kind, callback in list(self.subscribers):
            if isinstance(event, kind):
                callback(event)


class FakeStore:
    def __init__(self):
        self.subscriptions = MemorySubscriptions()


class _FakePort:
    def __init__(self):
        self.sent = []

    def write(self, data, addr=None):
        self.sent.append((data, addr))

    def stopListening(self):
        pass

    def loseConnection(self):
        pass


class RtpMedia:
    """Real RTP sessions on a media clock over task.Clock, on fake sockets."""

    def __init__(self, clock):
        from portaum_tx.rtp.clock import MediaClock
        self.media_clock = MediaClock(clock)
        self.sessions = []

    def create_session(self):
        from portaum_tx.rtp.session import RtpSession
        session = RtpSession(self.media_clock, dead_peer_timeout=None)
        session.attach_transports(_FakePort(), _FakePort(), 40000 + 2 * len(self.sessions))
        self.sessions.append(session)
        return session
