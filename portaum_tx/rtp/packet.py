"""RTP and RTCP wire format (RFC 3550).

Pure functions and value classes: no I/O, no clock. Anything malformed raises
:class:`RtpError` with a message naming the field that was wrong, so callers on
the media path can count and drop bad datagrams with a single ``except``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

RTP_VERSION = 2
RTP_HEADER = struct.Struct("!BBHII")
RTCP_HEADER = struct.Struct("!BBH")

RTCP_SR = 200
RTCP_RR = 201
RTCP_SDES = 202
RTCP_BYE = 203
RTCP_APP = 204

SDES_END = 0
SDES_CNAME = 1
SDES_NAME = 2
SDES_TOOL = 6

_REPORT_BLOCK = struct.Struct("!IIIIII")


class RtpError(ValueError):
    """A datagram that is not valid RTP/RTCP, or a value that cannot be encoded."""


@dataclass(frozen=True)
class RtpHeaderExtension:
    profile: int
    data: bytes  # length must be a multiple of 4


@dataclass(frozen=True)
class RtpPacket:
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrcs: tuple[int, ...] = ()
    extension: RtpHeaderExtension | None = None
    padding: int = 0  # number of padding octets, including the count octet

    def to_bytes(self) -> bytes:
        return build_rtp(self)


def _check_range(name: str, value: int, bits: int) -> None:
    if not isinstance(value, int) or not 0 <= value < (1 << bits):
        raise RtpError(f"{name} {value!r} does not fit in {bits} bits")


def build_rtp(packet: RtpPacket) -> bytes:
    _check_range("payload type", packet.payload_type, 7)
    _check_range("sequence number", packet.sequence, 16)
    _check_range("timestamp", packet.timestamp, 32)
    _check_range("SSRC", packet.ssrc, 32)
    if len(packet.csrcs) > 15:
        raise RtpError(f"{len(packet.csrcs)} CSRCs, at most 15 fit")
    for csrc in packet.csrcs:
        _check_range("CSRC", csrc, 32)
    if not 0 <= packet.padding <= 255:
        raise RtpError(f"padding {packet.padding} is not 0..255 octets")
    first = (
        (RTP_VERSION << 6)
        | (0x20 if packet.padding else 0)
        | (0x10 if packet.extension is not None else 0)
        | len(packet.csrcs)
    )
    second = (0x80 if packet.marker else 0) | packet.payload_type
    parts = [RTP_HEADER.pack(first, second, packet.sequence, packet.timestamp, packet.ssrc)]
    if packet.csrcs:
        parts.append(struct.pack(f"!{len(packet.csrcs)}I", *packet.csrcs))
    if packet.extension is not None:
        ext = packet.extension
        _check_range("extension profile", ext.profile, 16)
        if len(ext.data) % 4:
            raise RtpError(f"extension data of {len(ext.data)} octets is not a multiple of 4")
        if len(ext.data) // 4 > 0xFFFF:
            raise RtpError("extension data too long")
        parts.append(struct.pack("!HH", ext.profile, len(ext.data) // 4))
        parts.append(ext.data)
    parts.append(packet.payload)
    if packet.padding:
        parts.append(bytes(packet.padding - 1) + bytes([packet.padding]))
    return b"".join(parts)


def parse_rtp(data: bytes) -> RtpPacket:
    if len(data) < RTP_HEADER.size:
        raise RtpError(f"RTP packet of {len(data)} octets is shorter than the 12-octet header")
    first, second, sequence, timestamp, ssrc = RTP_HEADER.unpack_from(data)
    version = first >> 6
    if version != RTP_VERSION:
        raise RtpError(f"RTP version {version}, expected 2")
    csrc_count = first & 0x0F
    offset = RTP_HEADER.size
    end = len(data)
    if end < offset + 4 * csrc_count:
        raise RtpError(f"RTP packet truncated in its {csrc_count} CSRCs")
    csrcs = struct.unpack_from(f"!{csrc_count}I", data, offset) if csrc_count else ()
    offset += 4 * csrc_count
    extension = None
    if first & 0x10:
        if end < offset + 4:
            raise RtpError("RTP packet truncated in its header extension")
        profile, words = struct.unpack_from("!HH", data, offset)
        offset += 4
        if end < offset + 4 * words:
            raise RtpError(f"RTP header extension of {words} words overruns the packet")
        extension = RtpHeaderExtension(profile, bytes(data[offset:offset + 4 * words]))
        offset += 4 * words
    padding = 0
    if first & 0x20:
        if end == offset:
            raise RtpError("RTP padding bit set but no padding octets")
        padding = data[-1]
        if padding == 0 or padding > end - offset:
            raise RtpError(f"RTP padding count {padding} is invalid for {end - offset} octets")
        end -= padding
    return RtpPacket(
        payload_type=second & 0x7F,
        sequence=sequence,
        timestamp=timestamp,
        ssrc=ssrc,
        payload=bytes(data[offset:end]),
        marker=bool(second & 0x80),
        csrcs=tuple(csrcs),
        extension=extension,
        padding=padding,
    )


def looks_like_rtcp(data: bytes) -> bool:
    """RFC 5761 demultiplexing: RTCP packet types 192..223 never collide with RTP PTs in use."""
    return len(data) >= 2 and (data[0] >> 6) == RTP_VERSION and 192 <= data[1] <= 223


# --- RTCP -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportBlock:
    ssrc: int
    fraction_lost: int  # 0..255, fixed point /256
    cumulative_lost: int  # signed 24 bits
    highest_sequence: int  # extended highest sequence number received
    jitter: int  # in timestamp units
    last_sr: int  # middle 32 bits of the NTP timestamp of the last SR, 0 if none
    delay_since_last_sr: int  # in units of 1/65536 s

    def to_bytes(self) -> bytes:
        _check_range("report block SSRC", self.ssrc, 32)
        _check_range("fraction lost", self.fraction_lost, 8)
        if not -(1 << 23) <= self.cumulative_lost < (1 << 23):
            raise RtpError(f"cumulative lost {self.cumulative_lost} does not fit in 24 bits")
        for name, value in (
            ("highest sequence", self.highest_sequence),
            ("jitter", self.jitter),
            ("LSR", self.last_sr),
            ("DLSR", self.delay_since_last_sr),
        ):
            _check_range(name, value, 32)
        lost = (self.fraction_lost << 24) | (self.cumulative_lost & 0xFFFFFF)
        return _REPORT_BLOCK.pack(
            self.ssrc, lost, self.highest_sequence, self.jitter,
            self.last_sr, self.delay_since_last_sr,
        )

    @classmethod
    def from_bytes(cls, data: bytes, offset: int) -> "ReportBlock":
        ssrc, lost, highest, jitter, lsr, dlsr = _REPORT_BLOCK.unpack_from(data, offset)
        cumulative = lost & 0xFFFFFF
        if cumulative & 0x800000:
            cumulative -= 1 << 24
        return cls(ssrc, lost >> 24, cumulative, highest, jitter, lsr, dlsr)


@dataclass(frozen=True)
class SenderReport:
    ssrc: int
    ntp_timestamp: int  # 64-bit NTP format
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[ReportBlock, ...] = ()

    packet_type = RTCP_SR


@dataclass(frozen=True)
class ReceiverReport:
    ssrc: int
    reports: tuple[ReportBlock, ...] = ()

    packet_type = RTCP_RR


@dataclass(frozen=True)
class SdesChunk:
    ssrc: int
    items: tuple[tuple[int, bytes], ...]  # (item type, value)


@dataclass(frozen=True)
class SourceDescription:
    chunks: tuple[SdesChunk, ...]

    packet_type = RTCP_SDES

    def cname(self, ssrc: int) -> bytes | None:
        for chunk in self.chunks:
            if chunk.ssrc == ssrc:
                for kind, value in chunk.items:
                    if kind == SDES_CNAME:
                        return value
        return None


@dataclass(frozen=True)
class Goodbye:
    ssrcs: tuple[int, ...]
    reason: bytes = b""

    packet_type = RTCP_BYE


@dataclass(frozen=True)
class UnknownRtcp:
    """A packet type this stack does not interpret (APP, feedback ...), kept verbatim."""

    packet_type: int
    count: int
    body: bytes = field(default=b"")


RtcpPacket = SenderReport | ReceiverReport | SourceDescription | Goodbye | UnknownRtcp


def _rtcp_header(count: int, packet_type: int, body: bytes) -> bytes:
    if not 0 <= count <= 31:
        raise RtpError(f"RTCP count {count} does not fit in 5 bits")
    if len(body) % 4:
        raise RtpError(f"RTCP body of {len(body)} octets is not 32-bit aligned")
    return RTCP_HEADER.pack((RTP_VERSION << 6) | count, packet_type, len(body) // 4) + body


def _build_one(packet: RtcpPacket) -> bytes:
    if isinstance(packet, SenderReport):
        _check_range("SSRC", packet.ssrc, 32)
        _check_range("NTP timestamp", packet.ntp_timestamp, 64)
        _check_range("RTP timestamp", packet.rtp_timestamp, 32)
        _check_range("packet count", packet.packet_count, 32)
        _check_range("octet count", packet.octet_count, 32)
        body = struct.pack(
            "!IQIII", packet.ssrc, packet.ntp_timestamp, packet.rtp_timestamp,
            packet.packet_count, packet.octet_count,
        ) + b"".join(block.to_bytes() for block in packet.reports)
        return _rtcp_header(len(packet.reports), RTCP_SR, body)
    if isinstance(packet, ReceiverReport):
        _check_range("SSRC", packet.ssrc, 32)
        body = struct.pack("!I", packet.ssrc) + b"".join(b.to_bytes() for b in packet.reports)
        return _rtcp_header(len(packet.reports), RTCP_RR, body)
    if isinstance(packet, SourceDescription):
        parts = []
        for chunk in packet.chunks:
            _check_range("SDES SSRC", chunk.ssrc, 32)
            items = [struct.pack("!I", chunk.ssrc)]
            for kind, value in chunk.items:
                if not 1 <= kind <= 255:
                    raise RtpError(f"SDES item type {kind} is not 1..255")
                if len(value) > 255:
                    raise RtpError(f"SDES item of {len(value)} octets is longer than 255")
                items.append(bytes([kind, len(value)]) + value)
            raw = b"".join(items) + b"\x00"
            raw += bytes(-len(raw) % 4)
            parts.append(raw)
        return _rtcp_header(len(packet.chunks), RTCP_SDES, b"".join(parts))
    if isinstance(packet, Goodbye):
        for ssrc in packet.ssrcs:
            _check_range("BYE SSRC", ssrc, 32)
        body = struct.pack(f"!{len(packet.ssrcs)}I", *packet.ssrcs)
        if packet.reason:
            if len(packet.reason) > 255:
                raise RtpError("BYE reason longer than 255 octets")
            reason = bytes([len(packet.reason)]) + packet.reason
            body += reason + bytes(-len(reason) % 4)
        return _rtcp_header(len(packet.ssrcs), RTCP_BYE, body)
    if isinstance(packet, UnknownRtcp):
        _check_range("RTCP packet type", packet.packet_type, 8)
        return _rtcp_header(packet.count, packet.packet_type, packet.body)
    raise RtpError(f"cannot encode {type(packet).__name__} as RTCP")


def build_rtcp(packets: list[RtcpPacket] | tuple[RtcpPacket, ...]) -> bytes:
    """A compound RTCP packet; RFC 3550 wants an SR or RR first."""
    if not packets:
        raise RtpError("a compound RTCP packet needs at least one packet")
    return b"".join(_build_one(p) for p in packets)


def _parse_sdes(count: int, body: bytes) -> SourceDescription:
    chunks = []
    offset = 0
    for _ in range(count):
        if offset + 4 > len(body):
            raise RtpError("SDES chunk truncated before its SSRC")
        (ssrc,) = struct.unpack_from("!I", body, offset)
        offset += 4
        items = []
        while True:
            if offset >= len(body):
                raise RtpError("SDES chunk not terminated by an END item")
            kind = body[offset]
            if kind == SDES_END:
                offset += 1
                offset += -offset % 4
                break
            if offset + 2 > len(body):
                raise RtpError("SDES item truncated in its length")
            length = body[offset + 1]
            if offset + 2 + length > len(body):
                raise RtpError(f"SDES item of {length} octets overruns the packet")
            items.append((kind, bytes(body[offset + 2:offset + 2 + length])))
            offset += 2 + length
        chunks.append(SdesChunk(ssrc, tuple(items)))
    return SourceDescription(tuple(chunks))


def _parse_reports(count: int, body: bytes, offset: int, what: str) -> tuple[ReportBlock, ...]:
    if offset + count * _REPORT_BLOCK.size > len(body):
        raise RtpError(f"{what} announces {count} report blocks but is too short for them")
    return tuple(
        ReportBlock.from_bytes(body, offset + i * _REPORT_BLOCK.size) for i in range(count)
    )


def _parse_one(count: int, packet_type: int, body: bytes) -> RtcpPacket:
    if packet_type == RTCP_SR:
        if len(body) < 24:
            raise RtpError(f"RTCP SR body of {len(body)} octets is shorter than 24")
        ssrc, ntp, rtp_ts, packets, octets = struct.unpack_from("!IQIII", body)
        reports = _parse_reports(count, body, 24, "RTCP SR")
        return SenderReport(ssrc, ntp, rtp_ts, packets, octets, reports)
    if packet_type == RTCP_RR:
        if len(body) < 4:
            raise RtpError("RTCP RR body is shorter than its SSRC")
        (ssrc,) = struct.unpack_from("!I", body)
        return ReceiverReport(ssrc, _parse_reports(count, body, 4, "RTCP RR"))
    if packet_type == RTCP_SDES:
        return _parse_sdes(count, body)
    if packet_type == RTCP_BYE:
        if len(body) < 4 * count:
            raise RtpError(f"RTCP BYE announces {count} SSRCs but is too short for them")
        ssrcs = struct.unpack_from(f"!{count}I", body) if count else ()
        reason = b""
        offset = 4 * count
        if offset < len(body):
            length = body[offset]
            if offset + 1 + length > len(body):
                raise RtpError(f"RTCP BYE reason of {length} octets overruns the packet")
            reason = bytes(body[offset + 1:offset + 1 + length])
        return Goodbye(tuple(ssrcs), reason)
    return UnknownRtcp(packet_type, count, bytes(body))


def parse_rtcp(data: bytes) -> list[RtcpPacket]:
    """Every packet of a compound RTCP datagram, in order."""
    if len(data) < RTCP_HEADER.size:
        raise RtpError(f"RTCP datagram of {len(data)} octets is shorter than a header")
    packets: list[RtcpPacket] = []
    offset = 0
    while offset < len(data):
        if offset + RTCP_HEADER.size > len(data):
            raise RtpError("RTCP datagram ends inside a packet header")
        first, packet_type, words = RTCP_HEADER.unpack_from(data, offset)
        if first >> 6 != RTP_VERSION:
            raise RtpError(f"RTCP version {first >> 6}, expected 2")
        length = 4 * (words + 1)
        if offset + length > len(data):
            raise RtpError(f"RTCP packet type {packet_type} of {length} octets overruns the datagram")
        body = data[offset + 4:offset + length]
        if first & 0x20:
            if not body or body[-1] == 0 or body[-1] > len(body):
                raise RtpError("RTCP padding count is invalid")
            body = body[:-body[-1]]
        packets.append(_parse_one(first & 0x1F, packet_type, bytes(body)))
        offset += length
    return packets


# NTP epoch (1900) to Unix epoch (1970).
NTP_UNIX_OFFSET = 2208988800


def ntp_from_seconds(unix_seconds: float) -> int:
    """64-bit NTP timestamp for a Unix time."""
    seconds = unix_seconds + NTP_UNIX_OFFSET
    whole = int(seconds)
    fraction = int((seconds - whole) * (1 << 32)) & 0xFFFFFFFF
    return ((whole & 0xFFFFFFFF) << 32) | fraction


def ntp_middle32(ntp: int) -> int:
    """The 'compact' NTP form used by LSR/DLSR/round-trip arithmetic."""
    return (ntp >> 16) & 0xFFFFFFFF
