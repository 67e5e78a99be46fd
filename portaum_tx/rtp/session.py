"""One RTP/RTCP media stream of a call leg.

A session owns its two datagram ports, the state of what it receives (jitter buffer,
receiver statistics, telephone-events) and of what it sends (SSRC, sequence,
timestamp, outgoing DTMF). It has no timer of its own: the :class:`MediaClock` it is
registered with pulls one inbound frame from it and pushes one outbound frame into
it every 20 ms, and lets it do its RTCP and dead-peer bookkeeping at the same time.

The SIP layer creates a session, binds it with a :class:`PortAllocator` (the port goes
into the SDP), passes what was negotiated as :class:`MediaParams`, and starts it.
Applications attach one source (what is sent: player, bridge, mixer) and any number
of consumers (what is received: recorder, bridge, mixer) and listen for digits.
"""

from __future__ import annotations

import ipaddress
import random
import weakref
from dataclasses import dataclass, replace
from typing import Any, Callable, Protocol

import numpy as np
from twisted.internet.error import CannotListenError
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger

from portaum_tx.rtp import tones
from portaum_tx.rtp._rtpcore import StreamState
from portaum_tx.rtp.codecs import CodecError, G711Codec, codec_for_payload_type, samples_per_packet
from portaum_tx.rtp.dtmf import (
    DtmfDigit, DtmfError, TelephoneEventReceiver, digit_to_event, parse_sip_info_dtmf,
    telephone_event_payloads,
)
from portaum_tx.rtp.jitter import JitterBuffer
from portaum_tx.rtp.packet import (
    RTP_HEADER, Goodbye, ReceiverReport, RtpError, SDES_CNAME, SdesChunk, SenderReport,
    SourceDescription, build_rtcp, ntp_from_seconds, ntp_middle32, parse_rtcp,
    parse_rtp,
)
from portaum_tx.rtp.stats import ReceiverStatistics

FRAME_SAMPLES = 160  # one media tick of 8 kHz audio
COMFORT_NOISE_PT = 13
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
DTMF_GAP_TICKS = 3  # 60 ms of audio between two telephone-events, as a keypad would leave

log = Logger()


class RtpSessionError(Exception):
    """Misuse of a session (bad media parameters, starting twice, no ports left)."""


class PortRangeExhausted(RtpSessionError):
    pass


@dataclass(frozen=True)
class MediaParams:
    """What the SDP negotiation decided for this leg."""

    remote_address: tuple[str, int]  # where to send RTP
    payload_type: int = 0  # 0 PCMU, 8 PCMA
    telephone_event_pt: int | None = 101  # None when the peer did not offer RFC 4733
    ptime: int = 20
    remote_rtcp_address: tuple[str, int] | None = None  # default: RTP port + 1
    direction: str = "sendrecv"  # ours: sendrecv, sendonly, recvonly or inactive (hold)

    def validated(self) -> "MediaParams":
        try:
            codec_for_payload_type(self.payload_type)
            samples_per_packet(self.ptime)
        except CodecError as e:
            raise RtpSessionError(str(e)) from None
        if self.telephone_event_pt is not None and not 96 <= self.telephone_event_pt <= 127:
            raise RtpSessionError(f"telephone-event payload type {self.telephone_event_pt} is not dynamic (96-127)")
        if self.direction not in DIRECTIONS:
            raise RtpSessionError(f"media direction {self.direction!r} is not one of {', '.join(DIRECTIONS)}")
        host, port = self.remote_address
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise RtpSessionError(f"remote RTP port {port!r} is not a port number")
        try:
            ipaddress.ip_address(host)
        except ValueError:
            # sendto() with a name would resolve it on every packet, blocking the reactor
            raise RtpSessionError(f"remote RTP host {host!r} is not an IP address (resolve it first)") from None
        if self.remote_rtcp_address is None:
            return replace(self, remote_rtcp_address=(host, port + 1))
        return self


class MediaSource(Protocol):
    def next_frame(self, session: "RtpSession") -> Any:
        """160 samples to send: int16 PCM, bytes already in the session's codec, or None
        for silence."""


class MediaConsumer(Protocol):
    def inbound_frame(self, session: "RtpSession", pcm: np.ndarray, status: int) -> None:
        """One tick of decoded inbound audio (a view: copy it to keep it) and its
        jitter-buffer status (FRAME_AUDIO, FRAME_LOST or FRAME_IDLE)."""


class _RtpPort(DatagramProtocol):
    # The session holds the port and the port its protocol: a strong reference back
    # would be a cycle keeping every ended call until a full collection.
    def __init__(self, session: "RtpSession"):
        self._session = weakref.ref(session)

    @property
    def session(self):
        return self._session()

    def datagramReceived(self, data, addr):
        session = self._session()
        if session is not None:
            session.rtp_received(data, addr)


class _RtcpPort(_RtpPort):
    def datagramReceived(self, data, addr):
        session = self._session()
        if session is not None:
            session.rtcp_received(data, addr)


@dataclass
class RemoteReport:
    """What the far end last told us about our stream (from its SR/RR report block)."""

    fraction_lost: float
    cumulative_lost: int
    jitter_ms: float
    round_trip_ms: float | None


class RtpSession(StreamState):
    """One RTP/RTCP session. The fields the media tick touches for every packet
    (sequence, timestamp, counters, the far end's address, the jitter buffer ...) live
    in the StreamState base, a C struct, so that the tick's C code reads them without
    a dictionary lookup each; to Python they are plain attributes."""

    def __init__(self, media_clock, params: MediaParams | None = None, *, symmetric: bool = True,
                 dead_peer_timeout: float | None = 30.0, rtcp_interval: float = 5.0,
                 cname: str = "portaum", inband_dtmf: bool | None = None, fax_detection: bool = False,
                 jitter_depth: int = 2, rng: random.Random | None = None):
        self.media_clock = media_clock
        self.clock = media_clock.clock
        self.symmetric = symmetric
        self.dead_peer_timeout = dead_peer_timeout
        self.rtcp_interval = rtcp_interval
        self.cname = cname.encode()
        self._inband_choice = inband_dtmf
        self.fax_detection = fax_detection
        self._rng = rng or random.SystemRandom()
        self.ssrc = self._rng.getrandbits(32)
        self._sequence = self._rng.getrandbits(16)
        self._timestamp = self._rng.getrandbits(32)
        self.rtp_protocol = _RtpPort(self)
        self.rtcp_protocol = _RtcpPort(self)
        self.local_port: int | None = None
        self.params: MediaParams | None = None
        self.codec: G711Codec | None = None
        self.remote_address: tuple[str, int] | None = None
        self.remote_rtcp_address: tuple[str, int] | None = None
        self.latched = False
        self._rtcp_latched = False
        self.jitter = JitterBuffer(0xFF, FRAME_SAMPLES, jitter_depth)
        self._event_receiver = TelephoneEventReceiver()
        self.stats: ReceiverStatistics | None = None
        self.remote_ssrc: int | None = None
        self.remote_report: RemoteReport | None = None
        self.packets_sent = 0
        self.octets_sent = 0
        self.packets_received = 0
        self.packets_dropped = 0
        self.send_errors = 0
        self._sendto = None
        self._rtp_fd = -1  # the RTP socket, for the media clock's sends without Python
        # the media clock's send pacer, when it has one: RTP goes out through it so
        # that every packet of a tick leaves at the tick's instant, in order
        self._pacer = getattr(media_clock, "pacer", None)
        self.rtcp_sent = 0
        self.rtcp_packets_received = 0
        self._sent_since_report = False
        self._last_sr_ntp_mid: int | None = None
        self._last_sr_arrival = 0.0
        self._last_heard = 0.0
        self._next_rtcp = 0.0
        self._dead_reported = False
        self.housekeeping_due = 0.0  # the media clock calls housekeeping() from then on
        self._sending = True
        self._expect_media = True
        self._marker_pending = True
        self._outbound = b""
        self._packet_samples = FRAME_SAMPLES
        self._dtmf_queue: list[tuple[str, int]] = []
        self._dtmf_packets: list[tuple[bool, bytes]] = []
        self._dtmf_gap = 0  # ticks of audio still owed between two key presses
        self._dtmf_timestamp = 0
        self._inband_tone: np.ndarray | None = None
        self._source: MediaSource | None = None
        self.consumers: list[MediaConsumer] = []
        self.dtmf_listeners: list[Callable[[DtmfDigit], None]] = []
        self.fax_listeners: list[Callable[[str], None]] = []
        self.dead_peer_listeners: list[Callable[["RtpSession", str], None]] = []
        self.close_listeners: list[Callable[["RtpSession", str], None]] = []
        self.started = False
        self.closed = False
        self.slot: int | None = None
        self._rtp_transport = None
        self._rtcp_transport = None
        if params is not None:
            self.configure(params)

    # --- wiring --------------------------------------------------------------------

    @property
    def inband_dtmf(self) -> bool:
        """Listen for DTMF tones in the audio: by default only when RFC 4733 was not negotiated."""
        if self._inband_choice is not None:
            return self._inband_choice
        return self.params is None or self.params.telephone_event_pt is None

    def configure(self, params: MediaParams) -> None:
        """Apply negotiated media (initial answer or re-INVITE)."""
        params = params.validated()
        if self.params is not None and params.remote_address != self.params.remote_address:
            # the far end moved (transfer, new media server): learn its address again
            self.latched = self._rtcp_latched = False
        codec = codec_for_payload_type(params.payload_type)
        if self.codec is not codec:
            self.jitter.set_silence_byte(codec.silence_byte)
        self.params = params
        self.codec = codec
        self._packet_samples = samples_per_packet(params.ptime)
        # on hold (or a c=0.0.0.0 address) nothing is sent and silence from the peer is expected
        self._sending = params.direction in ("sendrecv", "sendonly") and params.remote_address[0] != "0.0.0.0"
        self._expect_media = params.direction in ("sendrecv", "recvonly")
        if not self._sending:
            self._marker_pending = True
        self._last_heard = max(self._last_heard, self.clock.seconds())
        self.housekeeping_due = 0.0
        if not self.latched:
            self.remote_address = params.remote_address
        if not self._rtcp_latched:
            self.remote_rtcp_address = params.remote_rtcp_address
        # audio prepared ahead was for the old codec, address or direction
        self.media_clock.withdraw(self)
        self.media_clock.session_changed(self)
        self.media_clock.source_changed(self)

    def set_inband_dtmf(self, enabled: bool | None) -> None:
        """Force in-band DTMF detection on or off; None restores the default."""
        self._inband_choice = enabled
        self.media_clock.session_changed(self)

    def set_fax_detection(self, enabled: bool) -> None:
        """Listen for CNG/CED fax tones in the inbound audio."""
        self.fax_detection = enabled
        self.media_clock.session_changed(self)

    def attach_transports(self, rtp_transport, rtcp_transport, local_port: int) -> None:
        self._rtp_transport = rtp_transport
        self._rtcp_transport = rtcp_transport
        self.local_port = local_port
        # A real UDP port: send with the socket directly. Port.write() re-validates the
        # address on every packet, which is a large share of the per-packet cost; the
        # address was validated once, when it was configured or latched.
        sock = getattr(rtp_transport, "socket", None)
        self._sendto = getattr(sock, "sendto", None)
        fileno = getattr(sock, "fileno", None)
        self._rtp_fd = fileno() if fileno is not None else -1

    def start(self) -> None:
        """Start sending and receiving: register with the media clock."""
        if self.closed:
            raise RtpSessionError("session is closed")
        if self.started:
            raise RtpSessionError("session already started")
        if self.params is None:
            raise RtpSessionError("session has no media parameters: call configure() first")
        if self._rtp_transport is None:
            raise RtpSessionError("session has no ports: bind it with a PortAllocator first")
        now = self.clock.seconds()
        self.started = True
        self._last_heard = now
        self._next_rtcp = now + self.rtcp_interval * self._rng.uniform(0.5, 1.5)
        self.media_clock.register(self)

    def close(self, reason: str = "hangup") -> None:
        """Send RTCP BYE, release the ports, tell source and consumers the call is gone."""
        if self.closed:
            return
        self.closed = True
        if self.started:
            self.media_clock.unregister(self)
            if self.remote_rtcp_address is not None:
                self._send_rtcp(self.clock.seconds(), bye=True)
        for transport in (self._rtp_transport, self._rtcp_transport):
            if transport is not None:
                transport.stopListening()
        self._rtp_fd = -1  # the descriptor number is free for reuse from now on
        for party in [self.source, *self.consumers]:
            closed = getattr(party, "session_closed", None)
            if closed is not None:
                closed(self, reason)
        for listener in list(self.close_listeners):
            listener(self, reason)
        self._source = None
        self.consumers = []
        # Nothing more will be heard; listeners are usually methods of the objects that
        # hold this session, and kept they would be reference cycles.
        self.close_listeners = []
        self.dtmf_listeners = []
        self.fax_listeners = []
        self.dead_peer_listeners = []

    @property
    def source(self) -> MediaSource | None:
        return self._source

    @source.setter
    def source(self, source: MediaSource | None) -> None:
        """Swapping the source by assignment (no withdrawal, no detach callback)."""
        self._source = source
        self.media_clock.source_changed(self)

    def set_source(self, source: MediaSource | None) -> None:
        previous = self._source
        self._source = source
        if previous is not None and previous is not source:
            # the new source is heard from the live lead on, not after what the old
            # one had prepared ahead
            self.media_clock.withdraw(self)
            detached = getattr(previous, "source_detached", None)
            if detached is not None:
                detached(self)
        self.media_clock.source_changed(self)

    def clear_source(self, source: MediaSource) -> None:
        """Detach ``source`` if it is still the one attached. What it prepared ahead
        still goes out (a playback ending); ``withdraw_prepared`` takes it back."""
        if self._source is source:
            self._source = None
            self.media_clock.source_changed(self)

    # --- audio prepared ahead (see MediaClock) ---------------------------------------

    def prefetchable(self) -> bool:
        """Whether this session's frames may be prepared further ahead than the live
        lead, given a source that allows it: one plain audio packet per tick (so a
        withdrawal rewinds exactly), nothing else queued for the stream."""
        return (self._sending and self._packet_samples == FRAME_SAMPLES and self._rtp_fd >= 0
                and not self._dtmf_queue and not self._dtmf_packets and self._inband_tone is None
                and not self._outbound)

    def withdraw_prepared(self) -> int:
        """Take back the audio prepared beyond the live lead (a playback interrupted);
        the ticks of audio withdrawn."""
        return self.media_clock.withdraw(self)

    def when_sent(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when the audio prepared so far reaches the live lead: the
        moment a playback ends as the application sees it."""
        self.media_clock.when_sent(self, callback)

    def rewind(self, frames: int, packets: int) -> None:
        """The media clock withdrew this stream's last ``frames`` ticks (``packets`` of
        them were queued): sequence, timestamp and counts go back to the first, and
        the next packet starts a talk spurt."""
        self._sequence = (self._sequence - packets) & 0xFFFF
        self._timestamp = (self._timestamp - frames * FRAME_SAMPLES) & 0xFFFFFFFF
        self.packets_sent = max(0, self.packets_sent - packets)
        self.octets_sent = max(0, self.octets_sent - packets * FRAME_SAMPLES)
        self._marker_pending = True

    def add_consumer(self, consumer: MediaConsumer) -> None:
        if consumer not in self.consumers:
            self.consumers.append(consumer)

    def remove_consumer(self, consumer: MediaConsumer) -> None:
        if consumer in self.consumers:
            self.consumers.remove(consumer)

    # --- DTMF ----------------------------------------------------------------------

    def send_dtmf(self, digits: str, duration_ms: int = 100) -> None:
        """Queue key presses for the far end: RFC 4733 events when negotiated, tones
        in the audio otherwise."""
        for digit in digits:
            digit_to_event(digit)
        # the keys go out at the live lead, not after prompt audio prepared ahead; the
        # prompt resumes after them
        self.media_clock.withdraw(self)
        for digit in digits:
            self._dtmf_queue.append((digit, duration_ms))
        self.media_clock.source_changed(self)

    def receive_info_dtmf(self, content_type: str, body: bytes | str) -> DtmfDigit:
        """A SIP INFO body from the SIP layer; raises DtmfError when it is not DTMF."""
        digit = parse_sip_info_dtmf(content_type, body)
        self.emit_dtmf(digit)
        return digit

    def emit_dtmf(self, digit: DtmfDigit) -> None:
        for listener in list(self.dtmf_listeners):
            try:
                listener(digit)
            except Exception:
                log.failure("DTMF listener {listener!r} failed", listener=listener)

    def emit_fax_tone(self, tone: str) -> None:
        for listener in list(self.fax_listeners):
            try:
                listener(tone)
            except Exception:
                log.failure("fax tone listener {listener!r} failed", listener=listener)

    # --- receiving -----------------------------------------------------------------

    def rtp_received(self, data: bytes, addr) -> None:
        if self.closed or self.params is None:
            return
        if len(data) < 2:
            self.packets_dropped += 1
            return
        second = data[1]
        if 192 <= second <= 223 and data[0] >> 6 == 2:  # RFC 5761 RTCP on the RTP port
            self.rtcp_received(data, addr)
            return
        if self.latched and addr != self.remote_address:
            self.packets_dropped += 1
            return
        if data[0] == 0x80 and len(data) >= 12:
            # the usual packet: no padding, extension or CSRC; skip the general parser
            _first, second, sequence, timestamp, ssrc = RTP_HEADER.unpack_from(data)
            payload = data[12:]
            marker = second >= 0x80
        else:
            try:
                packet = parse_rtp(data)
            except RtpError:
                self.packets_dropped += 1
                return
            sequence, timestamp, ssrc = packet.sequence, packet.timestamp, packet.ssrc
            payload, marker = packet.payload, packet.marker
        params = self.params
        pt = second & 0x7F
        if pt != params.payload_type and pt != params.telephone_event_pt and pt != COMFORT_NOISE_PT:
            self.packets_dropped += 1
            return
        now = self.clock.seconds()
        if ssrc != self.remote_ssrc:
            self.remote_ssrc = ssrc
            self.stats = ReceiverStatistics(ssrc, sequence, self.codec.clock_rate)
            self.jitter.reset()
            self._event_receiver = TelephoneEventReceiver()
            self.media_clock.receive_changed(self)
        stats = self.stats
        stats.update(sequence, timestamp, now)
        self.packets_received += 1
        self._last_heard = now
        self._dead_reported = False
        if not self.latched and self.symmetric and stats.probation == 0:
            self.latched = True
            self.remote_address = addr
            self.media_clock.receive_changed(self)
        if pt == params.payload_type:
            self.jitter.push(timestamp, payload)
        elif pt == params.telephone_event_pt:
            try:
                digit = self._event_receiver.feed(timestamp, marker, payload)
            except DtmfError:
                self.packets_dropped += 1
                return
            if digit is not None:
                self.emit_dtmf(digit)

    def rtcp_received(self, data: bytes, addr) -> None:
        if self.closed:
            return
        try:
            packets = parse_rtcp(data)
        except RtpError:
            self.packets_dropped += 1
            return
        now = self.clock.seconds()
        self.rtcp_packets_received += 1
        self._last_heard = now
        self._dead_reported = False
        if self.symmetric and not self._rtcp_latched and self.latched:
            self._rtcp_latched = True
            self.remote_rtcp_address = addr
        for packet in packets:
            if isinstance(packet, SenderReport):
                self._last_sr_ntp_mid = ntp_middle32(packet.ntp_timestamp)
                self._last_sr_arrival = now
            if isinstance(packet, (SenderReport, ReceiverReport)):
                for block in packet.reports:
                    if block.ssrc == self.ssrc:
                        self.remote_report = self._remote_report(block, now)
            elif isinstance(packet, Goodbye) and self.remote_ssrc in packet.ssrcs:
                self._peer_gone("bye")

    def _remote_report(self, block, now: float) -> RemoteReport:
        rtt = None
        if block.last_sr:
            arrival = ntp_middle32(ntp_from_seconds(now))
            delta = (arrival - block.last_sr - block.delay_since_last_sr) & 0xFFFFFFFF
            if delta < 0x80000000:
                rtt = delta * 1000 / 65536
        return RemoteReport(block.fraction_lost / 256, block.cumulative_lost,
                            block.jitter * 1000 / self.codec.clock_rate, rtt)

    # --- the media tick ------------------------------------------------------------

    def deliver_inbound(self, pcm: np.ndarray, status: int) -> None:
        for consumer in list(self.consumers):
            try:
                consumer.inbound_frame(self, pcm, status)
            except Exception:
                # one broken consumer must not stop the media of every other call
                log.failure("media consumer {consumer!r} failed; detached", consumer=consumer)
                self.remove_consumer(consumer)

    def next_outbound(self):
        """The frame for this tick: int16 PCM, codec bytes, or None for silence. An
        outgoing in-band DTMF tone replaces the source's audio while it plays."""
        if self._inband_tone is None and self._dtmf_queue and self._uses_inband_dtmf_out():
            digit, duration = self._dtmf_queue.pop(0)
            tone = np.concatenate([tones.dtmf(digit, duration), tones.silence(60)])
            self._inband_tone = np.concatenate([tone, tones.silence(-len(tone) % FRAME_SAMPLES)])
        frame = None
        source = self._source
        if source is not None:
            try:
                frame = source.next_frame(self)
            except Exception:
                log.failure("media source {source!r} failed; detached", source=source)
                self.clear_source(source)
        if self._inband_tone is not None:
            frame = self._inband_tone[:FRAME_SAMPLES]
            rest = self._inband_tone[FRAME_SAMPLES:]
            self._inband_tone = rest if len(rest) else None
            if self._inband_tone is None and not self._dtmf_queue:
                self.media_clock.source_changed(self)
        return frame

    def _uses_inband_dtmf_out(self) -> bool:
        return self.params is None or self.params.telephone_event_pt is None

    def send_frame(self, payload: bytes, now: float) -> None:
        """One tick's worth of encoded audio; sent as packets of the negotiated ptime."""
        if self._rtp_transport is None or self.remote_address is None:
            return
        if not self._sending:
            self._timestamp = (self._timestamp + FRAME_SAMPLES) & 0xFFFFFFFF
            return
        if self._dtmf_gap:
            self._dtmf_gap -= 1
        elif (self._dtmf_packets or self._dtmf_queue) and not self._uses_inband_dtmf_out():
            self._send_telephone_event()
            return
        if self._packet_samples == FRAME_SAMPLES and not self._outbound:
            self._send_rtp(self.params.payload_type, payload, self._timestamp)
            self._timestamp = (self._timestamp + FRAME_SAMPLES) & 0xFFFFFFFF
            return
        self._outbound += payload
        size = self._packet_samples
        while len(self._outbound) >= size:
            chunk, self._outbound = self._outbound[:size], self._outbound[size:]
            self._send_rtp(self.params.payload_type, chunk, self._timestamp)
            self._timestamp = (self._timestamp + size) & 0xFFFFFFFF

    def _send_telephone_event(self) -> None:
        if not self._dtmf_packets:
            digit, duration = self._dtmf_queue.pop(0)
            self._dtmf_packets = telephone_event_payloads(digit, duration, FRAME_SAMPLES // 8)
            # audio buffered for a longer ptime is dropped: the event takes over the stream
            self._outbound = b""
            self._dtmf_timestamp = self._timestamp
        marker, payload = self._dtmf_packets.pop(0)
        self._send_rtp(self.params.telephone_event_pt, payload, self._dtmf_timestamp, marker)
        self._timestamp = (self._timestamp + FRAME_SAMPLES) & 0xFFFFFFFF
        if not self._dtmf_packets:
            self._marker_pending = True  # audio resumes: a new talk spurt
            self._dtmf_gap = DTMF_GAP_TICKS
            if not self._dtmf_queue:
                self.media_clock.source_changed(self)

    def _send_rtp(self, payload_type: int, payload: bytes, timestamp: int, marker: bool = False) -> None:
        if self._marker_pending and payload_type == self.params.payload_type:
            marker = True
            self._marker_pending = False
        header = RTP_HEADER.pack(0x80, (0x80 if marker else 0) | payload_type,
                                 self._sequence, timestamp, self.ssrc)
        self._sequence = (self._sequence + 1) & 0xFFFF
        if self._pacer is not None and self._rtp_fd >= 0:
            try:
                self._pacer.send(self._rtp_fd, self.remote_address, header + payload)
            except (OSError, ValueError):
                self.send_errors += 1
                return
        elif self._sendto is not None:
            try:
                self._sendto(header + payload, self.remote_address)
            except OSError:
                # ICMP unreachable reported back, or the socket buffer is full: RTP is
                # best effort, the packet is dropped
                self.send_errors += 1
                return
        else:
            self._rtp_transport.write(header + payload, self.remote_address)
        self.packets_sent += 1
        self.octets_sent += len(payload)
        self._sent_since_report = True

    def housekeeping(self, now: float) -> None:
        """RTCP reports when due and dead-peer detection; the media clock calls this
        when ``housekeeping_due`` has passed (traffic only ever moves deadlines later)."""
        if now >= self._next_rtcp:
            self._next_rtcp = now + self.rtcp_interval * self._rng.uniform(0.5, 1.5)
            if self.remote_rtcp_address is not None:
                self._send_rtcp(now)
        due = self._next_rtcp
        if self.dead_peer_timeout is not None and not self._dead_reported and self._expect_media:
            dead_at = self._last_heard + self.dead_peer_timeout
            if now >= dead_at:
                self._peer_gone("timeout")
            else:
                due = min(due, dead_at)
        self.housekeeping_due = due

    def _peer_gone(self, reason: str) -> None:
        self._dead_reported = True
        for listener in list(self.dead_peer_listeners):
            listener(self, reason)

    def _send_rtcp(self, now: float, bye: bool = False) -> None:
        blocks = ()
        if self.stats is not None and self.stats.valid:
            lsr = dlsr = 0
            if self._last_sr_ntp_mid is not None:
                lsr = self._last_sr_ntp_mid
                dlsr = int((now - self._last_sr_arrival) * 65536) & 0xFFFFFFFF
            blocks = (self.stats.report_block(lsr, dlsr),)
        if self._sent_since_report:
            # the RTP time of ``now``: with a pacer, the timestamp has run ahead of
            # what has been sent by the pacer's lead
            lead = self.media_clock.send_lead_samples(self)
            report = SenderReport(self.ssrc, ntp_from_seconds(now), (self._timestamp - lead) & 0xFFFFFFFF,
                                  self.packets_sent & 0xFFFFFFFF, self.octets_sent & 0xFFFFFFFF, blocks)
        else:
            report = ReceiverReport(self.ssrc, blocks)
        self._sent_since_report = False
        packets = [report, SourceDescription((SdesChunk(self.ssrc, ((SDES_CNAME, self.cname),)),))]
        if bye:
            packets.append(Goodbye((self.ssrc,)))
        try:
            self._rtcp_transport.write(build_rtcp(packets), self.remote_rtcp_address)
        except OSError:
            # Best effort like RTP: an unreachable or refused report must not keep a
            # closing session from releasing its ports.
            self.send_errors += 1
            return
        self.rtcp_sent += 1


class PortAllocator:
    """Binds sessions to an even RTP port and the odd RTCP port above it, moving on to
    the next pair when either cannot be bound. Starts each search where the last one
    ended so that a port just released is not handed out again at once."""

    def __init__(self, reactor, port_range: tuple[int, int] = (10000, 20000), interface: str = ""):
        low, high = port_range
        low += low % 2
        if not 0 < low < high <= 65535 or high - low < 2:
            raise RtpSessionError(f"RTP port range {port_range} holds no even/odd pair")
        self.reactor = reactor
        self.interface = interface
        self._low = low
        self._pairs = (high - low + 1) // 2
        self._cursor = 0

    def bind(self, session: RtpSession) -> int:
        for _ in range(self._pairs):
            port = self._low + 2 * self._cursor
            self._cursor = (self._cursor + 1) % self._pairs
            # fresh protocols per attempt: a released port detaches its protocol later
            rtp_protocol, rtcp_protocol = _RtpPort(session), _RtcpPort(session)
            try:
                rtp = self.reactor.listenUDP(port, rtp_protocol, interface=self.interface)
            except CannotListenError:
                continue
            try:
                rtcp = self.reactor.listenUDP(port + 1, rtcp_protocol, interface=self.interface)
            except CannotListenError:
                rtp.stopListening()
                continue
            session.rtp_protocol, session.rtcp_protocol = rtp_protocol, rtcp_protocol
            session.attach_transports(rtp, rtcp, port)
            return port
        raise PortRangeExhausted(
            f"no free RTP/RTCP port pair in {self._low}-{self._low + 2 * self._pairs - 1}"
        )
