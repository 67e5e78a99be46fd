"""Fax calls over real SIP, RTP and UDPTL on loopback, with libspandsp as the calling machine.

The server side is the product as it runs: the SIP front end, the media engine, the "fax"
application, the mailbox service over a real store. The calling side is a small harness:
a SIP user agent (the product's, used as a plain UAC on its own port) that dials the
server, and spandsp (tests.fax.faxpeer) sending the document either as audio through the
call's G.711 RTP session or as T.38 IFPs over its own UDPTL socket, ticked every 20 ms by
the reactor.
"""

from __future__ import annotations

import os
import types

import numpy as np
from twisted.internet import defer, protocol, reactor, task

from portaum_tx.config import load_config
from portaum_tx.fax.call import FAX_JITTER_FRAMES
from portaum_tx.fax.receiver import TICK_SAMPLES
from portaum_tx.ivr.apps import AppContext, load_applications
from portaum_tx.ivr.router import run_application
from portaum_tx.rtp.engine import MediaEngine
from portaum_tx.rtp.jitter import JitterBuffer
from portaum_tx.sip.frontend import SipFrontend
from portaum_tx.sip.transport import SipTransport, UdpEndpoint
from portaum_tx.sip.ua import UserAgent
from tests.fax.faxpeer import AudioSender, T38Sender
from tests.support import free_port


def _free_udp_port() -> int:
    return free_port()


def _port_base(offset: int) -> int:
    return 22000 + (os.getpid() * 64 + offset) % 16000 // 2 * 2


class FaxServer:
    """The product's SIP front end on 127.0.0.1 routing calls to the fax application.

    ``routes`` maps a called number to (mailbox account, application options); a call
    to another number is refused. ``ended(number)`` fires when that call's application
    has returned (after the delivery).
    """

    def __init__(self, store, mailboxes, accounts, routes):
        self.port = _free_udp_port()
        base = _port_base(0)
        self.config = load_config(None, [
            "sip.listen_address=127.0.0.1", f"sip.udp_port={self.port}",
            f"sip.tcp_port={self.port}", "sip.domain=127.0.0.1",
            f"rtp.port_min={base}", f"rtp.port_max={base + 400}"])
        self.node = types.SimpleNamespace(config=self.config, reactor=reactor, store=None,
                                          events=None, mailboxes=mailboxes, accounts=accounts,
                                          name="test", secret="test-secret")
        self.store, self.mailboxes, self.accounts = store, mailboxes, accounts
        self.routes = dict(routes)
        self.applications = load_applications()
        self._ended = {number: defer.Deferred() for number in self.routes}
        self.calls = {}
        self.frontend = SipFrontend(route=self._route)
        self._ports = []

    def ended(self, number) -> defer.Deferred:
        return self._ended[number]

    async def _route(self, call):
        number = call.called
        if number not in self.routes:
            await call.reject(404, "Not Found")
            return
        self.calls[number] = call
        mailbox, options = self.routes[number]
        context = AppContext(store=self.store, mailboxes=self.mailboxes, accounts=self.accounts,
                             clock=reactor, applications=self.applications, mailbox=mailbox)
        try:
            await run_application(self.applications.get("fax"), call, context, dict(options),
                                  "fax")
        finally:
            if not self._ended[number].called:
                self._ended[number].callback(call)

    async def start(self):
        targets = await self.frontend.start(self.node)
        self._ports.append(reactor.listenUDP(self.port, targets["sip-udp"], interface="127.0.0.1"))
        return self

    async def stop(self):
        await self.frontend.stop()
        for port in self._ports:
            await defer.maybeDeferred(port.stopListening)


class _UdptlSocket(protocol.DatagramProtocol):
    def __init__(self):
        self.remote = None
        self.deliver = None
        self.sent = 0

    def datagramReceived(self, data, addr):
        if self.deliver is not None:
            self.deliver(data)

    def send(self, datagram):
        if self.remote is not None and self.transport is not None:
            self.transport.write(datagram, self.remote)
            self.sent += 1


class _AudioMachine:
    """RTP consumer and source running spandsp's calling modem on the caller's session."""

    def __init__(self, sender: AudioSender):
        self.sender = sender
        self.heard = np.zeros(TICK_SAMPLES, dtype=np.int16)

    def inbound_frame(self, session, pcm, status):
        self.heard = np.array(pcm, dtype=np.int16)

    def next_frame(self, session):
        heard, self.heard = self.heard, np.zeros(TICK_SAMPLES, dtype=np.int16)
        return self.sender.step(heard)


class CallingFax:
    """A calling fax machine behind a SIP UAC on 127.0.0.1.

    ``t38``: accept the server's re-INVITE to T.38 (and send over UDPTL); otherwise the
    T.38 offer is refused with 488 and the fax goes as audio over the G.711 RTP session.
    ``cut_after_pages``: the machine goes silent during the page after that many pages
    (a sender that stops in phase C), then hangs up after ``cut_hangup_delay`` seconds.
    """

    def __init__(self, document, *, t38=True, ecm=True, cut_after_pages=None,
                 cut_hangup_delay=8.0, reinvite_first=False, garbage=False,
                 reinvite_storm=0):
        self.document = document
        self.t38 = t38
        self.ecm = ecm
        self.cut_after_pages = cut_after_pages
        self.cut_hangup_delay = cut_hangup_delay
        self.reinvite_first = reinvite_first
        self.garbage = garbage
        self.reinvite_storm = reinvite_storm
        self.storm_answers = []
        self.garbage_sent = 0
        self.t38_ticks = 0
        self.reinvite_error = None
        self.port = _free_udp_port()
        base = _port_base(1000)
        self.media = MediaEngine(reactor, (base, base + 200), interface="127.0.0.1",
                                 dead_peer_timeout=None)
        self.transport = SipTransport(reactor, connect=lambda peer, factory: None)
        self.ua = UserAgent(reactor, self.transport, host="127.0.0.1", media=self.media,
                            ports={"udp": self.port}, domain="127.0.0.1")
        self.session = None
        self.t38_sender = None
        self.audio_sender = None
        self.mode = "audio"
        self.udptl = _UdptlSocket()
        self.cut = False
        self._ports = []
        self._loop = None

    async def call(self, server_port: int, number: str) -> None:
        self.media.start()
        self._ports.append(reactor.listenUDP(self.port, UdpEndpoint(self.transport),
                                             interface="127.0.0.1"))
        udptl_port = reactor.listenUDP(0, self.udptl, interface="127.0.0.1")
        self._ports.append(udptl_port)
        session = await self.ua.dial(f"sip:{number}@127.0.0.1:{server_port}",
                                     caller_id="15557654321", timeout=10)
        self.session = session
        if self.t38:
            session.t38_port = udptl_port.getHost().port
        session.on_media.append(self._media)
        self.audio_sender = AudioSender(self.document, ecm=self.ecm)
        self._audio = _AudioMachine(self.audio_sender)
        # The sending machine's line gets the same deep, never-dropping playout buffer
        # as the server gives a G.711 fax.
        rtp = session.rtp
        rtp.jitter = JitterBuffer(rtp.codec.silence_byte, rtp.jitter.frame_samples,
                                  depth_frames=FAX_JITTER_FRAMES, excess_frames=FAX_JITTER_FRAMES,
                                  excess_pops=1 << 30)
        session.rtp.add_consumer(self._audio)
        session.rtp.set_source(self._audio)
        self._loop = task.LoopingCall(self._tick)
        self._loop.start(0.02, now=False)
        if self.reinvite_first:
            # As a gateway does once it hears the answering side's CED/V.21.
            reactor.callLater(1.0, self._reinvite)

    def _reinvite(self):
        if self.session.is_ended or self.t38_sender is not None:
            return
        d = defer.ensureDeferred(self.session.reoffer(t38=True, audio=False))
        d.addErrback(lambda failure: setattr(self, "reinvite_error", failure.value))

    def _media(self, negotiation):
        image = negotiation.image
        if image is None or self.t38_sender is not None:
            return
        self.mode = "t38"
        self.session.rtp.remove_consumer(self._audio)
        self.session.rtp.clear_source(self._audio)
        self.udptl.remote = (image.remote_address, image.remote_port)
        mode = "fec" if (image.t38.udp_ec or "").lower() == "t38udpfec" else "redundancy"
        self.t38_sender = T38Sender(self.document, self.udptl.send, ecm=self.ecm,
                                    udptl_mode=mode)
        self.udptl.deliver = self.t38_sender.feed_udptl

    @property
    def machine(self):
        return self.t38_sender if self.mode == "t38" else self.audio_sender

    @property
    def pages_sent(self) -> int:
        machine = self.machine
        return machine.pages_sent if machine is not None else 0

    @property
    def completion(self):
        machine = self.machine
        return machine.completion if machine is not None else None

    def _send_garbage(self):
        """Bad input on the server's UDPTL port from the negotiated address: random
        bytes, a truncated copy of a real packet, an empty datagram, a huge one."""
        import random
        rng = random.Random(7)
        batch = [bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 60))) for _ in range(20)]
        batch += [b"", b"\x00", b"\x00\x05\x06\xd0", b"\xff" * 1500, b"\x00\x01" * 4000]
        for datagram in batch:
            self.udptl.send(datagram)
        self.garbage_sent += len(batch)

    def _tick(self):
        if self.mode == "audio" and self.audio_sender is not None and self.session.rtp.closed:
            # The line is gone (our BYE came right after the DCN): the machine still
            # finishes its procedure, hearing silence.
            self.audio_sender.step(np.zeros(TICK_SAMPLES, dtype=np.int16))
        if self.t38_sender is not None:
            self.t38_sender.tick()
            self.t38_ticks += 1
            if self.garbage and self.t38_ticks in (100, 400, 700):
                self._send_garbage()
            if self.reinvite_storm and self.t38_ticks == 150:
                defer.ensureDeferred(self._storm())
        if self.cut_after_pages is not None and not self.cut \
                and self.pages_sent >= self.cut_after_pages:
            self.cut = True
            self.machine.stop()
            reactor.callLater(self.cut_hangup_delay, self.hangup)

    async def _storm(self):
        """Re-INVITE to T.38 again and again during the fax, one after the other."""
        for _ in range(self.reinvite_storm):
            if self.session.is_ended:
                return
            try:
                negotiation = await self.session.reoffer(t38=True, audio=False)
                self.storm_answers.append(negotiation.image is not None)
            except Exception as e:   # noqa: BLE001 - recorded for the test to judge
                self.storm_answers.append(e)

    def hangup(self):
        if self.session is not None and not self.session.is_ended:
            self.session.hangup()

    async def close(self):
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self.hangup()
        self.ua.shutdown()
        self.transport.close()
        self.media.stop()
        for port in self._ports:
            await defer.maybeDeferred(port.stopListening)
        for machine in (self.t38_sender, self.audio_sender):
            if machine is not None:
                machine.close()
