"""One fax reception on a call: G.711 over the call's RTP session, or T.38 over UDPTL.

:class:`FaxCallSession` starts as an audio fax on the call's RTP session (spandsp's
modems fed from the media clock's tick, echo-free pass-through: no in-band DTMF or
fax-tone detection on the stream) and, when T.38 is on, asks the signalling to switch
to ``m=image udptl t38``. It also switches when the far end re-INVITEs to T.38 itself.
A far end that refuses T.38 keeps the G.711 fax. ``done`` fires once with the
:class:`~portaum_tx.fax.receiver.FaxResult` of the receiver that ran the fax.

Signalling is duck-typed (see :func:`fax_channel_for`): anything with ``accept(port)``,
``async request() -> bool``, ``listeners`` (called with the negotiated T.38 stream: its
``remote_address``, ``remote_port`` and ``t38`` parameters) and ``close()``;
:class:`portaum_tx.sip.t38.T38Signalling` is the SIP one.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from typing import Any, Callable

import numpy as np
from twisted.internet import defer
from twisted.logger import Logger

from portaum_tx.fax import spandsp
from portaum_tx.fax.receiver import MODE_AUDIO, MODE_T38, TICK_SAMPLES, FaxReceiver, FaxResult
from portaum_tx.rtp.jitter import FRAME_LOST, JitterBuffer
from portaum_tx.fax.t38sdp import (
    EC_FEC, EC_NONE, EC_REDUNDANCY, RATE_LOCAL_TCF, RATE_TRANSFERRED_TCF, T38Params,
)

log = Logger()

# Playout delay of a G.711 fax, in 20 ms frames. Voice keeps a short buffer and drops a
# frame now and then to stay short; a modem loses its lock on any gap, so a fax gets a
# deeper buffer that never drops (T.30 allows well over a second of round trip).
FAX_JITTER_FRAMES = 6
# A UDPTL datagram larger than this is garbage whatever was negotiated.
MAX_UDPTL_DATAGRAM = 2048


class FaxUnavailableOnCall(RuntimeError):
    """The call has no media this server can receive a fax over; the message says why."""


@dataclasses.dataclass(frozen=True)
class FaxSettings:
    """What a fax reception is allowed and asked to do ([fax] plus access-number options)."""

    enabled: bool = True
    local_ident: str = "PORTAUM"
    ecm: bool = True
    t38: bool = True
    # Re-INVITE to T.38 ourselves; off, we only accept the far end's re-INVITE (for
    # gateways that mishandle a receiver's re-INVITE).
    t38_request: bool = True
    max_pages: int = 50
    timeout: float = 900.0
    # How long the far end may take to answer our re-INVITE to T.38 before the
    # G.711 fax simply goes on (the re-INVITE's own transaction still runs out).
    t38_request_delay: float = 0.0

    @classmethod
    def from_config(cls, section) -> "FaxSettings":
        return cls(enabled=section.enabled, local_ident=section.local_ident,
                   ecm=section.ecm, t38=section.t38)


def t38_params_from_sdp(params) -> T38Params:
    """The receiver's T38Params from a negotiated SDP stream's parameters (the SIP
    layer's T38Params: version, max_bit_rate, rate_management, max_buffer,
    max_datagram, udp_ec; what we send is bounded by what the far end receives)."""
    ec = {"t38udpfec": EC_FEC, "t38udpnoec": EC_NONE}.get(
        (getattr(params, "udp_ec", None) or "").lower(), EC_REDUNDANCY)
    rate = getattr(params, "rate_management", RATE_TRANSFERRED_TCF) or RATE_TRANSFERRED_TCF
    rate = RATE_LOCAL_TCF if rate.lower() == RATE_LOCAL_TCF.lower() else RATE_TRANSFERRED_TCF
    max_datagram = getattr(params, "max_datagram", None) or 400
    return T38Params(version=min(max(int(getattr(params, "version", 0) or 0), 0), 3),
                     max_bit_rate=int(getattr(params, "max_bit_rate", 14400) or 14400),
                     rate_management=rate,
                     max_buffer=getattr(params, "max_buffer", None) or 2000,
                     # Below ~100 bytes no HDLC frame fits; spandsp would fail every send.
                     max_datagram=min(max(int(max_datagram), 100), MAX_UDPTL_DATAGRAM),
                     error_correction=ec)


# --- the UDPTL port ----------------------------------------------------------------------

class UdptlPort:
    """One UDP port for a call's UDPTL, taken from the RTP port range.

    Bound through the RTP PortAllocator (which hands out an even/odd pair; the odd
    port stays reserved and unused, so the range's pairing is kept). Datagrams go
    to ``on_datagram(bytes)``; the first datagram from the negotiated host latches
    the far end's address (symmetric UDP: NAT and port-changing gateways).
    """

    def __init__(self, allocator, on_datagram: Callable[[bytes], None] | None = None):
        self.on_datagram = on_datagram
        self.local_port: int | None = None
        self.remote_address: tuple[str, int] | None = None
        self.latched = False
        self.received = 0
        self.dropped = 0
        self.sent = 0
        self.closed = False
        self._transports = ()
        # PortAllocator.bind sets these and calls attach_transports.
        self.rtp_protocol = self.rtcp_protocol = None
        allocator.bind(self)

    def attach_transports(self, rtp_transport, rtcp_transport, local_port: int) -> None:
        self._transports = (rtp_transport, rtcp_transport)
        self.local_port = local_port

    def set_remote(self, host: str, port: int) -> None:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise FaxUnavailableOnCall(f"T.38 peer address {host!r} is not an IP address") from None
        if self.remote_address != (host, port):
            self.latched = False
        self.remote_address = (host, port)

    def rtp_received(self, data: bytes, addr) -> None:
        if self.closed:
            return
        if self.remote_address is None or addr[0] != self.remote_address[0] \
                or len(data) > MAX_UDPTL_DATAGRAM:
            self.dropped += 1
            return
        if self.latched and addr != self.remote_address:
            self.dropped += 1
            return
        if not self.latched:
            self.latched = True
            self.remote_address = addr
        self.received += 1
        if self.on_datagram is not None:
            self.on_datagram(data)

    def rtcp_received(self, data: bytes, addr) -> None:
        """Nothing is expected on the reserved odd port."""

    def send(self, datagram: bytes) -> None:
        if self.closed or self.remote_address is None or not self._transports:
            return
        try:
            self._transports[0].write(datagram, self.remote_address)
            self.sent += 1
        except OSError as e:   # ICMP unreachable and the like: the peer may come back
            log.debug("UDPTL send failed: {error}", error=e)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for transport in self._transports:
            transport.stopListening()
        self._transports = ()


# --- the reception --------------------------------------------------------------------------

class _AudioLeg:
    """The RTP session's consumer and source while the G.711 fax runs."""

    def __init__(self, receiver: FaxReceiver):
        self.receiver = receiver
        self.heard: np.ndarray | None = None
        self.lost = False

    def inbound_frame(self, session, pcm, status) -> None:
        self.lost = status == FRAME_LOST
        self.heard = None if self.lost else np.array(pcm, dtype=np.int16)

    def next_frame(self, session):
        heard, lost = self.heard, self.lost
        self.heard, self.lost = None, False
        if heard is None and not lost:
            heard = np.zeros(TICK_SAMPLES, dtype=np.int16)
        # A lost packet is reported as such: spandsp conceals it better than silence.
        return self.receiver.rx_audio(heard)


class FaxCallSession:
    """Runs one fax reception over ``rtp`` (an RtpSession), switching to T.38 when it can.

    ``allocator``: the RTP PortAllocator (None: T.38 off); ``signalling``: see the module
    docstring (None: T.38 off); ``tiff_directory``: where spandsp writes pages.
    """

    def __init__(self, clock, rtp, settings: FaxSettings, tiff_directory: str, *,
                 allocator=None, signalling=None, lib=None):
        self.clock = clock
        self.rtp = rtp
        self.media_clock = rtp.media_clock
        self.settings = settings
        self.tiff_directory = tiff_directory
        self.allocator = allocator
        self.signalling = signalling
        self.lib = spandsp.load_library() if lib is None else lib
        self.done: defer.Deferred = defer.Deferred()
        self.mode: str | None = None
        self.receiver: FaxReceiver | None = None
        self.udptl: UdptlPort | None = None
        self.t38_refused = False
        self.switches = 0
        self._audio_leg: _AudioLeg | None = None
        self._saved_fax_detection: bool | None = None
        self._voice_jitter = None
        self._request_call = None
        self._finished = False

    # --- life cycle -----------------------------------------------------------------

    def start(self) -> defer.Deferred:
        self._start_audio()
        self.media_clock.add_tick_hook(self._tick)
        if self.settings.t38 and self.signalling is not None and self.allocator is not None:
            try:
                self.udptl = UdptlPort(self.allocator, self._udptl_datagram)
            except Exception as e:   # port range exhausted: the G.711 fax still works
                log.warn("fax: no UDPTL port ({error}); staying on G.711", error=str(e))
            else:
                self.signalling.accept(self.udptl.local_port)
                self.signalling.listeners.append(self._t38_negotiated)
                if self.settings.t38_request:
                    self._request_call = self.clock.callLater(
                        self.settings.t38_request_delay, self._request_t38)
        log.info("fax: receiving over G.711{t38}", t38=(
            f"; T.38 on UDPTL port {self.udptl.local_port}" if self.udptl is not None else
            "; T.38 off" if not self.settings.t38 else
            "; T.38 not possible on this call (no signalling or port range)"))
        return self.done

    def stop(self) -> None:
        """The call ended: deliver what arrived (the receiver marks it incomplete)."""
        if self.receiver is not None:
            self.receiver.stop()

    # --- audio ------------------------------------------------------------------------

    def _tiff(self, mode: str) -> str:
        return os.path.join(self.tiff_directory, f"received-{mode}-{self.switches}.tif")

    def _receiver(self, mode: str, **extra) -> FaxReceiver:
        settings = self.settings
        receiver = FaxReceiver(self.clock, self._tiff(mode), mode=mode,
                               local_ident=settings.local_ident, ecm=settings.ecm,
                               max_pages=settings.max_pages, timeout=settings.timeout,
                               lib=self.lib, **extra)
        receiver.done.addCallback(self._receiver_done, receiver)
        return receiver

    def _start_audio(self) -> None:
        rtp = self.rtp
        # Echo-free pass-through: spandsp hears the line as it is, no detector looks at it.
        self._saved_fax_detection = rtp.fax_detection
        rtp.set_inband_dtmf(False)
        rtp.set_fax_detection(False)
        jitter = getattr(rtp, "jitter", None)
        codec = getattr(rtp, "codec", None)
        if jitter is not None and codec is not None:
            self._voice_jitter = jitter
            rtp.jitter = JitterBuffer(codec.silence_byte, jitter.frame_samples,
                                      depth_frames=FAX_JITTER_FRAMES,
                                      max_packets=max(jitter.max_packets, 4 * FAX_JITTER_FRAMES),
                                      excess_frames=FAX_JITTER_FRAMES, excess_pops=1 << 30)
        self.receiver = self._receiver(MODE_AUDIO)
        self.mode = MODE_AUDIO
        self._audio_leg = _AudioLeg(self.receiver)
        rtp.add_consumer(self._audio_leg)
        rtp.set_source(self._audio_leg)

    def _stop_audio(self) -> None:
        leg, self._audio_leg = self._audio_leg, None
        if leg is None:
            return
        self.rtp.remove_consumer(leg)
        self.rtp.clear_source(leg)

    # --- T.38 --------------------------------------------------------------------------

    def _request_t38(self) -> None:
        self._request_call = None
        if self._finished or self.mode == MODE_T38:
            return
        d = defer.ensureDeferred(self.signalling.request())

        def answered(accepted):
            if not accepted and self.mode != MODE_T38:
                self.t38_refused = True
                log.info("fax: the far end refused T.38; receiving over G.711")

        def failed(failure):
            self.t38_refused = True
            log.failure("fax: the re-INVITE to T.38 failed; receiving over G.711", failure)

        d.addCallbacks(answered, failed)

    def _t38_negotiated(self, stream) -> None:
        """Our re-INVITE was accepted, or the far end re-INVITEd to T.38."""
        if self._finished or self.udptl is None:
            return
        try:
            self.udptl.set_remote(stream.remote_address, stream.remote_port)
            params = t38_params_from_sdp(stream.t38)
        except FaxUnavailableOnCall as e:
            log.warn("fax: {error}; staying on G.711", error=str(e))
            return
        if self.mode == MODE_T38:
            return   # a refresh or a glare repeat of the same switch: the address is updated
        self.switches += 1
        old = self.receiver
        self._stop_audio()
        self.mode = MODE_T38
        self.receiver = self._receiver(MODE_T38, send_datagram=self.udptl.send, t38=params)
        # RTP falls silent under T.38: neither send on it nor count its silence as a dead peer.
        params_now = getattr(self.rtp, "params", None)
        if params_now is not None and not self.rtp.closed:
            self.rtp.configure(dataclasses.replace(params_now, direction="inactive"))
        log.info("fax: switching to T.38 (version {version}, {rate} bit/s, {ec}, {tcf}); the "
                 "G.711 receiver stops and its result is dropped", version=params.version,
                 rate=params.max_bit_rate, ec=params.error_correction, tcf=params.rate_management)
        if old is not None:
            old.stop()

    def _udptl_datagram(self, datagram: bytes) -> None:
        if self.mode == MODE_T38 and self.receiver is not None:
            self.receiver.feed_udptl(datagram)

    # --- the media tick ---------------------------------------------------------------------

    def _tick(self, ticks: int) -> None:
        receiver = self.receiver
        if receiver is not None:
            receiver.tick()

    # --- the end ---------------------------------------------------------------------------

    def _receiver_done(self, result: FaxResult, receiver: FaxReceiver) -> None:
        if receiver is not self.receiver or self._finished:
            # A superseded audio receiver: nothing of the fax went through it.
            if result.tiff_path and os.path.exists(result.tiff_path):
                os.unlink(result.tiff_path)
            return
        self._finished = True
        self._cleanup()
        self.done.callback(result)

    def _cleanup(self) -> None:
        self.media_clock.remove_tick_hook(self._tick)
        self._stop_audio()
        if self._request_call is not None and self._request_call.active():
            self._request_call.cancel()
        self._request_call = None
        if self.signalling is not None:
            if self._t38_negotiated in self.signalling.listeners:
                self.signalling.listeners.remove(self._t38_negotiated)
            self.signalling.close()
        if self.udptl is not None:
            self.udptl.close()
        if self._voice_jitter is not None:
            self._voice_jitter.reset()
            self.rtp.jitter, self._voice_jitter = self._voice_jitter, None
        if self._saved_fax_detection is not None and not self.rtp.closed:
            self.rtp.set_inband_dtmf(None)
            self.rtp.set_fax_detection(self._saved_fax_detection)


def fax_channel_for(call) -> tuple[Any, Any, Any]:
    """(rtp session, port allocator or None, T.38 signalling or None) of an IVR call.

    A SIP call (portaum_tx.sip.call.SipCall, a MediaCall) has its RtpSession as
    ``session``, its InviteSession as ``sip`` and the media engine as ``ua.media``. A call
    may also name them itself as ``fax_rtp``, ``fax_port_allocator`` and ``fax_signalling``.
    """
    rtp = getattr(call, "fax_rtp", None) or getattr(call, "rtp", None)
    if rtp is None:
        session = getattr(call, "session", None)
        if session is not None and hasattr(session, "media_clock"):
            rtp = session
    if rtp is None or not hasattr(rtp, "media_clock"):
        raise FaxUnavailableOnCall("the call has no RTP session")
    allocator = getattr(call, "fax_port_allocator", None)
    if allocator is None:
        allocator = getattr(getattr(getattr(call, "ua", None), "media", None), "allocator", None)
    signalling = getattr(call, "fax_signalling", None)
    if signalling is None:
        for name in ("sip", "session"):
            invite = getattr(call, name, None)
            if hasattr(invite, "reoffer") and hasattr(invite, "t38_port"):
                from portaum_tx.sip.t38 import T38Signalling
                signalling = T38Signalling(invite)
                break
    return rtp, allocator, signalling
