"""SDP (RFC 4566) and the offer/answer model (RFC 3264) for G.711 audio and T.38.

:class:`SessionDescription` parses and serialises SDP, keeping lines it does
not interpret so that re-serialising is faithful.  :func:`answer_offer` builds
the answer to a remote offer from :class:`LocalCapabilities`;
:func:`make_offer` builds an offer for an outgoing call or for the re-INVITE
that switches a call to T.38; :func:`read_answer` reads the remote answer to
such an offer.  Negotiation results are :class:`NegotiatedStream` objects the
media layer can act on (remote address and port, payload types, direction).
"""

import ipaddress
import re
from dataclasses import dataclass, field, replace

__all__ = [
    "SdpError", "NotAcceptable", "Origin", "Connection", "RtpMap", "Media",
    "SessionDescription", "T38Params", "LocalCapabilities", "NegotiatedStream",
    "Negotiation", "answer_offer", "make_offer", "read_answer", "parse_sdp",
    "STATIC_PAYLOADS", "DIRECTIONS",
]


class SdpError(ValueError):
    """Malformed SDP; the message names the offending line."""


class NotAcceptable(Exception):
    """No offered stream can be accepted: answer the INVITE with 488."""


STATIC_PAYLOADS = {0: ("PCMU", 8000, 1), 3: ("GSM", 8000, 1), 4: ("G723", 8000, 1),
                   8: ("PCMA", 8000, 1), 9: ("G722", 8000, 1), 13: ("CN", 8000, 1),
                   18: ("G729", 8000, 1)}
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
_MIRROR = {"sendrecv": "sendrecv", "sendonly": "recvonly", "recvonly": "sendonly",
           "inactive": "inactive"}
_LINE_RE = re.compile(r"([a-z])=(.*)\Z")
_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+\Z")
MAX_SDP_SIZE = 64 * 1024
MAX_MEDIA = 32


def _int(text: str, what: str, maximum: int = 10 ** 32 - 1) -> int:
    if not text.isdigit() or not text.isascii() or len(text) > 32 or int(text) > maximum:
        raise SdpError("malformed %s %r" % (what, text[:40]))
    return int(text)


@dataclass
class Origin:
    """o= line. ``session_version`` must grow with each new offer/answer of a session."""

    username: str = "-"
    session_id: int = 0
    session_version: int = 0
    nettype: str = "IN"
    addrtype: str = "IP4"
    address: str = "0.0.0.0"

    def bumped(self) -> "Origin":
        """The same origin with the version incremented (for a re-offer)."""
        return replace(self, session_version=self.session_version + 1)

    def __str__(self) -> str:
        return "%s %d %d %s %s %s" % (self.username, self.session_id, self.session_version,
                                      self.nettype, self.addrtype, self.address)

    @classmethod
    def parse(cls, text: str) -> "Origin":
        parts = text.split()
        if len(parts) != 6:
            raise SdpError("malformed o= line %r" % text[:80])
        return cls(parts[0], _int(parts[1], "o= session id"), _int(parts[2], "o= version"),
                   parts[3], parts[4], parts[5])


@dataclass
class Connection:
    """c= line: address (``ttl``/``count`` for multicast)."""

    address: str
    addrtype: str = "IP4"
    nettype: str = "IN"
    ttl: int | None = None
    count: int | None = None

    @property
    def is_null(self) -> bool:
        """c=IN IP4 0.0.0.0: the RFC 2543 way of putting a call on hold."""
        return self.address in ("0.0.0.0", "::")

    def __str__(self) -> str:
        extra = "".join("/%d" % v for v in (self.ttl, self.count) if v is not None)
        return "%s %s %s%s" % (self.nettype, self.addrtype, self.address, extra)

    @classmethod
    def parse(cls, text: str) -> "Connection":
        parts = text.split()
        if len(parts) != 3:
            raise SdpError("malformed c= line %r" % text[:80])
        nettype, addrtype, address = parts
        pieces = address.split("/")
        address = pieces[0]
        numbers = [_int(p, "c= multicast suffix", 65535) for p in pieces[1:3]]
        if len(pieces) > 3:
            raise SdpError("malformed c= address %r" % parts[2][:60])
        addrtype = addrtype.upper()
        if nettype.upper() == "IN" and addrtype in ("IP4", "IP6"):
            try:
                parsed = ipaddress.ip_address(address)
            except ValueError:
                if not re.match(r"[A-Za-z0-9\-.]+\Z", address):
                    raise SdpError("malformed c= address %r" % address[:60]) from None
            else:
                if (parsed.version == 4) != (addrtype == "IP4"):
                    raise SdpError("c= address %s does not match %s" % (address, addrtype))
        ttl = count = None
        if addrtype == "IP4" and numbers:
            ttl = numbers[0]
            count = numbers[1] if len(numbers) > 1 else None
        elif numbers:
            count = numbers[0]
        return cls(address, addrtype, nettype.upper(), ttl, count)


@dataclass
class RtpMap:
    """a=rtpmap value: encoding name, clock rate, channels."""

    encoding: str
    clock_rate: int
    channels: int = 1

    def __str__(self) -> str:
        suffix = "/%d" % self.channels if self.channels != 1 else ""
        return "%s/%d%s" % (self.encoding, self.clock_rate, suffix)


@dataclass
class Media:
    """One m= section with its c=, b=, and a= lines (in order)."""

    media: str
    port: int
    proto: str
    formats: list[str]
    port_count: int | None = None
    connection: Connection | None = None
    info: str | None = None
    bandwidths: list[str] = field(default_factory=list)
    key: str | None = None
    attributes: list[tuple[str, str | None]] = field(default_factory=list)

    # -- attributes ------------------------------------------------------

    def attr(self, name: str) -> str | None:
        """Value of the first a=name ('' for a flag), or None."""
        for key, value in self.attributes:
            if key == name:
                return "" if value is None else value
        return None

    def attrs(self, name: str) -> list[str]:
        return ["" if v is None else v for k, v in self.attributes if k == name]

    def set_attr(self, name: str, value: str | None = None) -> None:
        """Replace a=name (or append it)."""
        self.remove_attr(name)
        self.attributes.append((name, value))

    def remove_attr(self, name: str) -> None:
        self.attributes = [(k, v) for k, v in self.attributes if k != name]

    @property
    def direction(self) -> str | None:
        """The media-level direction attribute, or None if absent."""
        for key, _ in self.attributes:
            if key in DIRECTIONS:
                return key
        return None

    @direction.setter
    def direction(self, value: str) -> None:
        self.attributes = [(k, v) for k, v in self.attributes if k not in DIRECTIONS]
        self.attributes.append((value, None))

    def rtpmap(self, payload_type: str) -> RtpMap | None:
        """The rtpmap of ``payload_type`` (static types need none)."""
        for value in self.attrs("rtpmap"):
            pt, _, rest = value.partition(" ")
            if pt == payload_type:
                pieces = rest.strip().split("/")
                try:
                    return RtpMap(pieces[0], int(pieces[1]),
                                  int(pieces[2]) if len(pieces) > 2 and pieces[2] else 1)
                except (IndexError, ValueError):
                    return None
        if payload_type.isdigit() and int(payload_type) in STATIC_PAYLOADS:
            return RtpMap(*STATIC_PAYLOADS[int(payload_type)])
        return None

    def fmtp(self, payload_type: str) -> str | None:
        for value in self.attrs("fmtp"):
            pt, _, rest = value.partition(" ")
            if pt == payload_type:
                return rest.strip()
        return None

    def _int_attr(self, name: str) -> int | None:
        value = self.attr(name)
        if value is None:
            return None
        try:
            return int(value.strip())
        except ValueError:
            return None

    @property
    def ptime(self) -> int | None:
        return self._int_attr("ptime")

    @property
    def maxptime(self) -> int | None:
        return self._int_attr("maxptime")

    @property
    def rejected(self) -> bool:
        return self.port == 0

    @property
    def is_t38(self) -> bool:
        return self.media == "image" and self.proto.lower() == "udptl" and \
            "t38" in [f.lower() for f in self.formats]

    def __str__(self) -> str:
        port = "%d/%d" % (self.port, self.port_count) if self.port_count else str(self.port)
        lines = ["m=%s %s %s %s" % (self.media, port, self.proto, " ".join(self.formats))]
        if self.info is not None:
            lines.append("i=" + self.info)
        if self.connection is not None:
            lines.append("c=%s" % self.connection)
        lines.extend("b=" + b for b in self.bandwidths)
        if self.key is not None:
            lines.append("k=" + self.key)
        lines.extend("a=" + k if v is None else "a=%s:%s" % (k, v) for k, v in self.attributes)
        return "\r\n".join(lines)

    @classmethod
    def parse_m_line(cls, text: str) -> "Media":
        parts = text.split()
        if len(parts) < 3:
            raise SdpError("malformed m= line %r" % text[:80])
        media, port_text, proto = parts[:3]
        formats = parts[3:]
        if not _TOKEN_RE.match(media) or not re.match(r"[A-Za-z0-9/._\-]+\Z", proto):
            raise SdpError("malformed m= line %r" % text[:80])
        port_text, _, count_text = port_text.partition("/")
        port = _int(port_text, "m= port", 65535)
        count = _int(count_text, "m= port count", 65535) if count_text else None
        if not formats and port != 0:
            raise SdpError("m= line without formats %r" % text[:80])
        return cls(media, port, proto, formats, count)


@dataclass
class SessionDescription:
    """A whole SDP body.

    ``extra`` keeps the session-level i=, u=, e=, p=, z=, k= lines as
    ``(letter, value)``; ``times`` holds t= values and ``repeats`` r= values.
    """

    origin: Origin
    name: str = "-"
    connection: Connection | None = None
    times: list[str] = field(default_factory=lambda: ["0 0"])
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    media: list[Media] = field(default_factory=list)
    bandwidths: list[str] = field(default_factory=list)
    extra: list[tuple[str, str]] = field(default_factory=list)
    repeats: list[str] = field(default_factory=list)
    version: int = 0

    def attr(self, name: str) -> str | None:
        for key, value in self.attributes:
            if key == name:
                return "" if value is None else value
        return None

    @property
    def direction(self) -> str | None:
        """Session-level direction attribute, or None."""
        for key, _ in self.attributes:
            if key in DIRECTIONS:
                return key
        return None

    def media_direction(self, media: Media) -> str:
        """Effective direction of ``media``: its own, else the session's, else sendrecv."""
        return media.direction or self.direction or "sendrecv"

    def media_connection(self, media: Media) -> Connection | None:
        return media.connection or self.connection

    def serialize(self) -> bytes:
        lines = ["v=%d" % self.version, "o=%s" % self.origin, "s=%s" % (self.name or "-")]
        order = "iuep"
        lines.extend("%s=%s" % kv for kv in sorted(
            (kv for kv in self.extra if kv[0] in order), key=lambda kv: order.index(kv[0])))
        if self.connection is not None:
            lines.append("c=%s" % self.connection)
        lines.extend("b=" + b for b in self.bandwidths)
        for t in self.times:
            lines.append("t=" + t)
        lines.extend("r=" + r for r in self.repeats)
        lines.extend("%s=%s" % kv for kv in self.extra if kv[0] in "zk")
        lines.extend("a=" + k if v is None else "a=%s:%s" % (k, v) for k, v in self.attributes)
        lines.extend(str(m) for m in self.media)
        return ("\r\n".join(lines) + "\r\n").encode("utf-8")

    def __bytes__(self) -> bytes:
        return self.serialize()

    @classmethod
    def parse(cls, data: bytes | str) -> "SessionDescription":
        """Parse an SDP body; raises :class:`SdpError` naming the bad line."""
        if isinstance(data, (bytes, bytearray)):
            if len(data) > MAX_SDP_SIZE:
                raise SdpError("SDP larger than %d octets" % MAX_SDP_SIZE)
            try:
                text = bytes(data).decode("utf-8")
            except UnicodeDecodeError:
                raise SdpError("SDP is not UTF-8") from None
        elif isinstance(data, str):
            text = data
        else:
            raise SdpError("SDP must be bytes or text")
        lines = [line for line in re.split(r"\r?\n", text) if line.strip()]
        if not lines or lines[0].strip() != "v=0":
            raise SdpError("SDP does not start with v=0")
        session: SessionDescription | None = None
        origin = None
        name = None
        current: Media | None = None
        pending: dict = {"connection": None, "times": [], "attributes": [], "media": [],
                         "bandwidths": [], "extra": [], "repeats": []}
        for line in lines[1:]:
            match = _LINE_RE.match(line.rstrip(" \t"))
            if not match:
                raise SdpError("malformed SDP line %r" % line[:80])
            kind, value = match.groups()
            if kind == "m":
                if len(pending["media"]) >= MAX_MEDIA:
                    raise SdpError("too many m= lines")
                current = Media.parse_m_line(value)
                pending["media"].append(current)
            elif kind == "a":
                attr_name, colon, attr_value = value.partition(":")
                if not attr_name or not _TOKEN_RE.match(attr_name):
                    raise SdpError("malformed a= line %r" % line[:80])
                entry = (attr_name, attr_value if colon else None)
                (current.attributes if current else pending["attributes"]).append(entry)
            elif kind == "c":
                conn = Connection.parse(value)
                if current:
                    current.connection = conn
                else:
                    pending["connection"] = conn
            elif kind == "b":
                (current.bandwidths if current else pending["bandwidths"]).append(value)
            elif current is not None:
                if kind == "i":
                    current.info = value
                elif kind == "k":
                    current.key = value
                # other letters inside a media section are ignored (RFC 4566 5)
            elif kind == "o":
                origin = Origin.parse(value)
            elif kind == "s":
                name = value
            elif kind == "t":
                if not re.match(r"\d+ \d+\Z", value.strip()):
                    raise SdpError("malformed t= line %r" % line[:80])
                pending["times"].append(value.strip())
            elif kind == "r":
                pending["repeats"].append(value)
            elif kind == "v":
                raise SdpError("second v= line")
            else:
                pending["extra"].append((kind, value))
        if origin is None:
            raise SdpError("SDP without o= line")
        session = cls(origin, name if name is not None else "-")
        session.connection = pending["connection"]
        session.times = pending["times"] or ["0 0"]
        session.attributes = pending["attributes"]
        session.media = pending["media"]
        session.bandwidths = pending["bandwidths"]
        session.extra = pending["extra"]
        session.repeats = pending["repeats"]
        return session


def parse_sdp(data: bytes | str) -> SessionDescription:
    """Shorthand for :meth:`SessionDescription.parse`."""
    return SessionDescription.parse(data)


# -- T.38 -----------------------------------------------------------------

_T38_FLAGS = ("T38FaxFillBitRemoval", "T38FaxTranscodingMMR", "T38FaxTranscodingJBIG")


@dataclass
class T38Params:
    """T.38 session parameters (ITU-T T.38 Annex D, RFC 4612 / RFC 3362 usage)."""

    version: int = 0
    max_bit_rate: int = 14400
    rate_management: str = "transferredTCF"
    max_buffer: int | None = 2000
    max_datagram: int | None = 400
    udp_ec: str | None = "t38UDPRedundancy"
    fill_bit_removal: bool = False
    transcoding_mmr: bool = False
    transcoding_jbig: bool = False

    @classmethod
    def from_media(cls, media: Media) -> "T38Params":
        def flag(name: str) -> bool:
            value = media.attr(name)
            return value is not None and value.strip() not in ("0",)

        def number(name: str, default):
            value = media.attr(name)
            if value is None:
                return default
            try:
                return int(value.strip())
            except ValueError:
                raise SdpError("malformed a=%s" % name) from None

        return cls(version=number("T38FaxVersion", 0),
                   max_bit_rate=number("T38MaxBitRate", 14400),
                   rate_management=(media.attr("T38FaxRateManagement") or "transferredTCF").strip(),
                   max_buffer=number("T38FaxMaxBuffer", None),
                   max_datagram=number("T38FaxMaxDatagram", None),
                   udp_ec=(media.attr("T38FaxUdpEC") or "").strip() or None,
                   fill_bit_removal=flag("T38FaxFillBitRemoval"),
                   transcoding_mmr=flag("T38FaxTranscodingMMR"),
                   transcoding_jbig=flag("T38FaxTranscodingJBIG"))

    def attributes(self) -> list[tuple[str, str | None]]:
        """The a= lines describing these parameters."""
        attrs: list[tuple[str, str | None]] = [
            ("T38FaxVersion", str(self.version)),
            ("T38MaxBitRate", str(self.max_bit_rate)),
            ("T38FaxRateManagement", self.rate_management),
        ]
        if self.max_buffer is not None:
            attrs.append(("T38FaxMaxBuffer", str(self.max_buffer)))
        if self.max_datagram is not None:
            attrs.append(("T38FaxMaxDatagram", str(self.max_datagram)))
        if self.udp_ec:
            attrs.append(("T38FaxUdpEC", self.udp_ec))
        for name, on in zip(_T38_FLAGS, (self.fill_bit_removal, self.transcoding_mmr,
                                         self.transcoding_jbig)):
            if on:
                attrs.append((name, None))
        return attrs


# -- offer / answer -------------------------------------------------------

@dataclass
class LocalCapabilities:
    """What this end can do, used to answer and to offer.

    ``codecs`` in preference order (names as in rtpmap, e.g. PCMU, PCMA);
    ``t38_port`` None means T.38 is not accepted.
    """

    address: str
    audio_port: int
    codecs: tuple[str, ...] = ("PCMU", "PCMA")
    telephone_event: bool = True
    telephone_event_pt: int = 101
    ptime: int | None = 20
    t38_port: int | None = None
    t38: T38Params = field(default_factory=T38Params)
    t38_rate_management: tuple[str, ...] = ("transferredTCF",)
    session_name: str = "portaum"
    username: str = "-"
    direction: str = "sendrecv"

    @property
    def addrtype(self) -> str:
        return "IP6" if ":" in self.address else "IP4"


@dataclass
class NegotiatedStream:
    """What was agreed for one accepted m= line."""

    index: int
    kind: str                      # "audio" or "t38"
    remote_address: str | None
    remote_port: int
    local_port: int
    direction: str                 # our direction: sendrecv / sendonly / recvonly / inactive
    payload_type: int | None = None
    codec: str | None = None
    clock_rate: int = 8000
    telephone_event_pt: int | None = None
    ptime: int | None = None       # packetisation the remote asked us to send with
    t38: T38Params | None = None
    on_hold: bool = False          # the remote put us on hold (sendonly/inactive/0.0.0.0)

    @property
    def send(self) -> bool:
        return self.direction in ("sendrecv", "sendonly") and not self.on_hold_null

    @property
    def receive(self) -> bool:
        return self.direction in ("sendrecv", "recvonly")

    @property
    def on_hold_null(self) -> bool:
        return self.remote_address in (None, "0.0.0.0", "::")


@dataclass
class Negotiation:
    """Result of an offer/answer exchange: the SDP we send (if any) and streams."""

    sdp: SessionDescription | None
    streams: list[NegotiatedStream]

    @property
    def audio(self) -> NegotiatedStream | None:
        return next((s for s in self.streams if s.kind == "audio"), None)

    @property
    def image(self) -> NegotiatedStream | None:
        return next((s for s in self.streams if s.kind == "t38"), None)

    @property
    def on_hold(self) -> bool:
        return bool(self.streams) and all(s.on_hold for s in self.streams)


def _find_payload(media: Media, encoding: str, clock: int = 8000) -> str | None:
    for fmt in media.formats:
        if not fmt.isdigit() or not fmt.isascii() or int(fmt) > 127:
            continue
        rtpmap = media.rtpmap(fmt)
        if rtpmap and rtpmap.encoding.lower() == encoding.lower() and rtpmap.clock_rate == clock:
            return fmt
    return None


def _rejected_copy(media: Media) -> Media:
    return Media(media.media, 0, media.proto, list(media.formats) or ["0"])


def _answer_audio(offer: SessionDescription, media: Media, index: int,
                  local: LocalCapabilities) -> tuple[Media, NegotiatedStream] | None:
    if media.proto.upper() not in ("RTP/AVP", "RTP/AVPF"):
        return None
    chosen = None
    for codec in local.codecs:
        pt = _find_payload(media, codec)
        if pt is not None:
            chosen = (codec, pt)
            break
    if chosen is None:
        return None
    codec, pt = chosen
    formats = [pt]
    attributes: list[tuple[str, str | None]] = [("rtpmap", "%s %s/8000" % (pt, codec))]
    event_pt = _find_payload(media, "telephone-event") if local.telephone_event else None
    if event_pt is not None:
        formats.append(event_pt)
        attributes.append(("rtpmap", "%s telephone-event/8000" % event_pt))
        attributes.append(("fmtp", "%s %s" % (event_pt, media.fmtp(event_pt) or "0-15")))
    if local.ptime:
        attributes.append(("ptime", str(local.ptime)))
    return _finish(offer, media, index, local, "audio", local.audio_port, formats, attributes,
                   payload_type=int(pt), codec=codec,
                   telephone_event_pt=int(event_pt) if event_pt is not None else None,
                   ptime=media.ptime)


def _answer_t38(offer: SessionDescription, media: Media, index: int,
                local: LocalCapabilities) -> tuple[Media, NegotiatedStream] | None:
    if local.t38_port is None or not media.is_t38:
        return None
    try:
        remote = T38Params.from_media(media)
    except SdpError:
        return None
    if remote.rate_management not in local.t38_rate_management:
        return None
    ours = local.t38
    if remote.udp_ec in ("t38UDPFEC", "t38UDPRedundancy") and ours.udp_ec:
        udp_ec = "t38UDPRedundancy" if ours.udp_ec == "t38UDPRedundancy" or \
            remote.udp_ec == "t38UDPRedundancy" else ours.udp_ec
    else:
        udp_ec = "t38UDPNoEC" if remote.udp_ec else None
    agreed = T38Params(
        version=min(remote.version, ours.version),
        max_bit_rate=min(remote.max_bit_rate, ours.max_bit_rate),
        rate_management=remote.rate_management,
        max_buffer=ours.max_buffer,
        max_datagram=ours.max_datagram,
        udp_ec=udp_ec,
        fill_bit_removal=remote.fill_bit_removal and ours.fill_bit_removal,
        transcoding_mmr=remote.transcoding_mmr and ours.transcoding_mmr,
        transcoding_jbig=remote.transcoding_jbig and ours.transcoding_jbig,
    )
    fmt = next(f for f in media.formats if f.lower() == "t38")
    result = _finish(offer, media, index, local, "t38", local.t38_port, [fmt],
                     agreed.attributes(), t38=agreed)
    if result is None:
        return None
    # What we send is bounded by what the remote can receive.
    result[1].t38 = replace(agreed, max_buffer=remote.max_buffer,
                            max_datagram=remote.max_datagram)
    return result


def _finish(offer, media, index, local, kind, port, formats, attributes, **stream_args):
    offered = offer.media_direction(media)
    ours = _intersect(_MIRROR[offered], local.direction)
    connection = offer.media_connection(media)
    remote_address = connection.address if connection else None
    if remote_address is None:
        return None
    on_hold = offered in ("sendonly", "inactive") or connection.is_null
    answer = Media(media.media, port, media.proto, formats, attributes=list(attributes))
    answer.direction = ours
    stream = NegotiatedStream(index=index, kind=kind, remote_address=remote_address,
                              remote_port=media.port, local_port=port, direction=ours,
                              on_hold=on_hold, **stream_args)
    return answer, stream


def _intersect(a: str, b: str) -> str:
    send = a in ("sendrecv", "sendonly") and b in ("sendrecv", "sendonly")
    recv = a in ("sendrecv", "recvonly") and b in ("sendrecv", "recvonly")
    return {(True, True): "sendrecv", (True, False): "sendonly",
            (False, True): "recvonly", (False, False): "inactive"}[(send, recv)]


def answer_offer(offer: SessionDescription, local: LocalCapabilities,
                 origin: Origin) -> Negotiation:
    """Answer ``offer`` (RFC 3264 sec. 6).

    The answer has the offer's m= lines in the same order; the first usable
    audio stream (G.711 per ``local.codecs``, plus telephone-event) and the
    first T.38 stream (if ``local.t38_port``) are accepted, every other one
    is rejected with port 0.  Directions are mirrored (sendonly -> recvonly)
    and hold is detected (sendonly, inactive, or c=0.0.0.0).  ``origin`` is
    ours (bump its version for each new answer in the session).  Raises
    :class:`NotAcceptable` if nothing can be accepted (answer 488).
    """
    answer_media: list[Media] = []
    streams: list[NegotiatedStream] = []
    kinds_done: set[str] = set()
    for index, media in enumerate(offer.media):
        result = None
        if not media.rejected:
            if media.media == "audio" and "audio" not in kinds_done:
                result = _answer_audio(offer, media, index, local)
            elif media.media == "image" and "t38" not in kinds_done:
                result = _answer_t38(offer, media, index, local)
        if result is None:
            answer_media.append(_rejected_copy(media))
            continue
        answer_media.append(result[0])
        streams.append(result[1])
        kinds_done.add(result[1].kind)
    if not streams:
        raise NotAcceptable("no acceptable media stream in the offer")
    sdp = SessionDescription(origin, local.session_name,
                             Connection(local.address, local.addrtype),
                             media=answer_media)
    return Negotiation(sdp, streams)


def make_offer(local: LocalCapabilities, origin: Origin, t38: bool = False,
               audio: bool = True) -> SessionDescription:
    """An SDP offer: G.711 audio (codecs in preference order + telephone-event)
    and/or a T.38 image stream (``t38=True``, e.g. the re-INVITE to T.38 with
    ``audio=False``)."""
    media: list[Media] = []
    if audio:
        formats, attributes = [], []
        for codec in local.codecs:
            pt = next((str(p) for p, (name, _, _) in STATIC_PAYLOADS.items()
                       if name == codec.upper()), None)
            if pt is None:
                continue
            formats.append(pt)
            attributes.append(("rtpmap", "%s %s/8000" % (pt, codec.upper())))
        if local.telephone_event:
            pt = str(local.telephone_event_pt)
            formats.append(pt)
            attributes.append(("rtpmap", "%s telephone-event/8000" % pt))
            attributes.append(("fmtp", "%s 0-15" % pt))
        if local.ptime:
            attributes.append(("ptime", str(local.ptime)))
        m = Media("audio", local.audio_port, "RTP/AVP", formats, attributes=attributes)
        m.direction = local.direction
        media.append(m)
    if t38:
        if local.t38_port is None:
            raise ValueError("a T.38 offer needs LocalCapabilities.t38_port")
        m = Media("image", local.t38_port, "udptl", ["t38"], attributes=local.t38.attributes())
        m.direction = local.direction
        media.append(m)
    if not media:
        raise ValueError("an offer needs at least one stream")
    return SessionDescription(origin, local.session_name,
                              Connection(local.address, local.addrtype), media=media)


def read_answer(offer: SessionDescription, answer: SessionDescription) -> Negotiation:
    """Read the remote ``answer`` to our ``offer``.

    Raises :class:`SdpError` if the answer does not match the offer's m=
    lines, :class:`NotAcceptable` if every stream was rejected.
    """
    if len(answer.media) != len(offer.media):
        raise SdpError("answer has %d m= lines, offer had %d"
                       % (len(answer.media), len(offer.media)))
    streams = []
    for index, (ours, theirs) in enumerate(zip(offer.media, answer.media)):
        if theirs.rejected or ours.rejected:
            continue
        if theirs.media != ours.media:
            raise SdpError("answer m= line %d is %s, offer was %s"
                           % (index, theirs.media, ours.media))
        connection = answer.media_connection(theirs)
        if connection is None:
            raise SdpError("answer stream %d has no c= line" % index)
        remote_direction = answer.media_direction(theirs)
        direction = _MIRROR[remote_direction]
        on_hold = remote_direction in ("sendonly", "inactive") or connection.is_null
        if theirs.is_t38:
            try:
                params = T38Params.from_media(theirs)
            except SdpError:
                continue
            streams.append(NegotiatedStream(
                index, "t38", connection.address, theirs.port, ours.port, direction,
                t38=params, on_hold=on_hold))
            continue
        codec_pt = next((f for f in theirs.formats if f in ours.formats and f.isdigit() and
                         (theirs.rtpmap(f) or RtpMap("", 0)).encoding.lower()
                         not in ("telephone-event", "cn")), None)
        if codec_pt is None:
            continue
        rtpmap = theirs.rtpmap(codec_pt) or ours.rtpmap(codec_pt)
        event_pt = _find_payload(theirs, "telephone-event")
        streams.append(NegotiatedStream(
            index, "audio", connection.address, theirs.port, ours.port, direction,
            payload_type=int(codec_pt), codec=rtpmap.encoding.upper() if rtpmap else None,
            clock_rate=rtpmap.clock_rate if rtpmap else 8000,
            telephone_event_pt=int(event_pt) if event_pt else None,
            ptime=theirs.ptime, on_hold=on_hold))
    if not streams:
        raise NotAcceptable("every offered stream was rejected")
    return Negotiation(None, streams)
