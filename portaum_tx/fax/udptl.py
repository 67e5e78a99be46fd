"""UDPTL framing of T.38 IFP packets (ITU-T T.38 clause 9.1 / Annex A).

The wire format is the ASN.1 aligned PER encoding of::

    UDPTLPacket ::= SEQUENCE {
        seq-number          INTEGER (0..65535),
        primary-ifp-packet  TYPE-IDENTIFIER.&Type(IFPPacket),
        error-recovery      CHOICE {
            secondary-ifp-packets  SEQUENCE OF TYPE-IDENTIFIER.&Type(IFPPacket),
            fec-info               SEQUENCE {
                fec-npackets  INTEGER,
                fec-data      SEQUENCE OF OCTET STRING } } }

IFP packets themselves stay opaque bytes here: spandsp's t38_core decodes them.
This module is pure (no twisted.internet) so it can be fuzzed and reused by any
transport.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass

SEQ_MODULO = 65536
MAX_DATAGRAM = 65507

# A length determinant above this needs PER fragmentation (X.691 10.9.3.8).
_FRAGMENT = 16384


class UdptlError(ValueError):
    """A UDPTL datagram is malformed, or a packet cannot be encoded."""


@dataclass(frozen=True)
class FecInfo:
    """Parity protection: each entry m XORs `span` earlier IFP packets."""

    span: int
    data: tuple[bytes, ...]


@dataclass(frozen=True)
class UdptlPacket:
    seq: int
    primary: bytes
    # Redundant copies of the previous packets, newest (seq - 1) first.
    secondary: tuple[bytes, ...] = ()
    fec: FecInfo | None = None


# --- PER primitives -------------------------------------------------------

def _encode_length(out: bytearray, length: int) -> None:
    if length < 0x80:
        out.append(length)
    elif length < _FRAGMENT:
        out += bytes((0x80 | (length >> 8), length & 0xFF))
    else:
        raise UdptlError(f"length {length} needs PER fragmentation")


def _encode_octets(out: bytearray, data: bytes) -> None:
    """Open type / octet string; long values are split into 16K fragments."""
    rest = memoryview(bytes(data))
    while len(rest) >= _FRAGMENT:
        blocks = min(len(rest) // _FRAGMENT, 4)
        out.append(0xC0 | blocks)
        out += rest[:blocks * _FRAGMENT]
        rest = rest[blocks * _FRAGMENT:]
    _encode_length(out, len(rest))
    out += rest


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def byte(self, what: str) -> int:
        if self.pos >= len(self.data):
            raise UdptlError(f"UDPTL packet truncated in {what} at offset {self.pos}")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def take(self, count: int, what: str) -> bytes:
        end = self.pos + count
        if end > len(self.data):
            raise UdptlError(
                f"UDPTL packet truncated in {what}: need {count} bytes at offset "
                f"{self.pos}, have {len(self.data) - self.pos}")
        chunk = self.data[self.pos:end]
        self.pos = end
        return chunk

    def length(self, what: str) -> int:
        """A non-fragmented length determinant (counts are always small)."""
        first = self.byte(what)
        if first & 0x80 == 0:
            return first
        if first & 0xC0 == 0x80:
            return ((first & 0x3F) << 8) | self.byte(what)
        raise UdptlError(f"fragmented length not allowed for {what}")

    def octets(self, what: str) -> bytes:
        parts = []
        while True:
            first = self.byte(what)
            if first & 0xC0 == 0xC0:
                blocks = first & 0x3F
                if not 1 <= blocks <= 4:
                    raise UdptlError(f"bad fragment count {blocks} in {what}")
                parts.append(self.take(blocks * _FRAGMENT, what))
                continue
            if first & 0x80:
                count = ((first & 0x3F) << 8) | self.byte(what)
            else:
                count = first
            parts.append(self.take(count, what))
            return b"".join(parts)


# --- packet codec ---------------------------------------------------------

def parse_udptl(datagram: bytes) -> UdptlPacket:
    """Decode one UDPTL datagram; raises UdptlError naming what is wrong."""
    if not isinstance(datagram, (bytes, bytearray, memoryview)):
        raise UdptlError(f"UDPTL datagram must be bytes, not {type(datagram).__name__}")
    reader = _Reader(bytes(datagram))
    seq = int.from_bytes(reader.take(2, "sequence number"), "big")
    primary = reader.octets("primary IFP packet")
    if not primary:
        raise UdptlError(f"UDPTL packet {seq} has an empty primary IFP packet")
    choice = reader.byte("error-recovery choice")
    if choice & 0x80 == 0:
        count = reader.length("secondary packet count")
        secondary = tuple(reader.octets(f"secondary IFP packet {i}") for i in range(count))
        fec = None
    else:
        size = reader.length("fec-npackets length")
        if not 1 <= size <= 4:
            raise UdptlError(f"fec-npackets of {size} bytes is not a sane span")
        span = int.from_bytes(reader.take(size, "fec-npackets"), "big", signed=True)
        if span < 0:
            raise UdptlError(f"negative fec-npackets {span}")
        count = reader.length("fec-data count")
        fec = FecInfo(span, tuple(reader.octets(f"fec-data {i}") for i in range(count)))
        secondary = ()
    if reader.pos != len(reader.data):
        raise UdptlError(
            f"UDPTL packet {seq} has {len(reader.data) - reader.pos} trailing bytes")
    return UdptlPacket(seq, primary, secondary, fec)


def build_udptl(packet: UdptlPacket) -> bytes:
    if not 0 <= packet.seq < SEQ_MODULO:
        raise UdptlError(f"sequence number {packet.seq} out of range 0..65535")
    if not packet.primary:
        raise UdptlError("primary IFP packet is empty")
    out = bytearray(packet.seq.to_bytes(2, "big"))
    _encode_octets(out, packet.primary)
    if packet.fec is None:
        out.append(0x00)
        _encode_length(out, len(packet.secondary))
        for ifp in packet.secondary:
            _encode_octets(out, ifp)
    else:
        if not 0 <= packet.fec.span < 0x80:
            raise UdptlError(f"fec span {packet.fec.span} out of range 0..127")
        out += bytes((0x80, 1, packet.fec.span))
        _encode_length(out, len(packet.fec.data))
        for parity in packet.fec.data:
            _encode_octets(out, parity)
    return bytes(out)


def _xor(blocks) -> bytes:
    """XOR of byte strings, the shorter ones zero-padded (T.38 FEC rule)."""
    result = bytearray()
    for block in blocks:
        if len(block) > len(result):
            result.extend(bytes(len(block) - len(result)))
        for i, value in enumerate(block):
            result[i] ^= value
    return bytes(result)


def fec_covered(seq: int, span: int, entries: int, index: int) -> list[int]:
    """Sequence numbers protected by parity entry `index` of packet `seq`.

    Entry m of packet s covers s+m-k*entries for k = 1..span, the layout used by
    spandsp, Asterisk and FreeSWITCH.
    """
    return [(seq + index - k * entries) % SEQ_MODULO for k in range(1, span + 1)]


def ifp_length(ifp: bytes, t38_version: int = 0) -> int | None:
    """Encoded length of the IFP packet at the start of `ifp`, None if it is cut short.

    FEC repair yields the packet padded with zeros to the longest covered packet;
    the IFP's own PER structure tells where it really ends. The layout follows
    T.38 clause 8 (IFPPacket), including the version 0 packing of field types in
    half octets that the 1998 ASN.1 implied.
    """
    size = len(ifp)
    if size < 1:
        return None
    first = ifp[0]
    data_field_present = first & 0x80
    ptr = 2 if first & 0x20 else 1              # extended indicator / data type
    if ptr > size:
        return None
    if not first & 0x40 or not data_field_present:   # indicator, or data without fields
        return ptr
    if ptr >= size:
        return None
    count = ifp[ptr]
    ptr += 1
    other_half = False
    for _ in range(count):
        if ptr >= size:
            return None
        if t38_version == 0:
            if other_half:
                field_data_present = (ifp[ptr] >> 3) & 1
                ptr += 1
                other_half = False
            else:
                field_data_present = (ifp[ptr] >> 7) & 1
                if field_data_present:
                    ptr += 1
                else:
                    other_half = True
        else:
            field_data_present = (ifp[ptr] >> 7) & 1
            ptr += 2 if ifp[ptr] & 0x40 else 1
        if field_data_present:
            if ptr + 2 > size:
                return None
            ptr += 2 + ((ifp[ptr] << 8) | ifp[ptr + 1]) + 1
        if ptr > size:
            return None
    if other_half:
        ptr += 1
    return ptr if ptr <= size else None


# --- sender ---------------------------------------------------------------

class UdptlSender:
    """Wraps outgoing IFP packets into UDPTL datagrams with error recovery.

    mode "redundancy" repeats the last `redundancy` IFP packets in each datagram;
    mode "fec" adds `fec_entries` parity blocks each spanning `fec_span` packets.
    """

    def __init__(self, redundancy: int = 3, mode: str = "redundancy",
                 fec_span: int = 3, fec_entries: int = 3,
                 max_datagram: int = 1400, first_seq: int = 0):
        if mode not in ("redundancy", "fec"):
            raise ValueError(f"unknown UDPTL error-recovery mode {mode!r}")
        if redundancy < 0 or fec_span < 1 or fec_entries < 1:
            raise ValueError("redundancy, fec_span and fec_entries must be positive")
        self.mode = mode
        self.redundancy = redundancy
        self.fec_span = fec_span
        self.fec_entries = fec_entries
        self.max_datagram = max_datagram
        self.next_seq = first_seq % SEQ_MODULO
        depth = redundancy if mode == "redundancy" else fec_span * fec_entries
        self._history: deque[bytes] = deque(maxlen=max(depth, 1))

    def packetize(self, ifp: bytes) -> bytes:
        seq = self.next_seq
        if self.mode == "redundancy":
            older = list(self._history)[::-1][:self.redundancy]
            datagram = build_udptl(UdptlPacket(seq, bytes(ifp), tuple(older)))
            # Shed redundancy rather than exceed the negotiated datagram size.
            while len(datagram) > self.max_datagram and older:
                older.pop()
                datagram = build_udptl(UdptlPacket(seq, bytes(ifp), tuple(older)))
        else:
            datagram = build_udptl(UdptlPacket(seq, bytes(ifp), fec=self._fec(seq)))
        self._history.append(bytes(ifp))
        self.next_seq = (seq + 1) % SEQ_MODULO
        return datagram

    def _fec(self, seq: int) -> FecInfo:
        history = list(self._history)        # oldest first, ends at seq - 1
        span, entries = self.fec_span, self.fec_entries
        # Wind parity up gradually while fewer packets than span*entries exist.
        if len(history) < span * entries:
            entries = len(history) // span
            if entries == 0:
                return FecInfo(0, ())
        parity = []
        for index in range(entries):
            covered = fec_covered(seq, span, entries, index)
            parity.append(_xor(history[len(history) - ((seq - s) % SEQ_MODULO)]
                               for s in covered))
        return FecInfo(span, tuple(parity))


# --- receiver -------------------------------------------------------------

@dataclass
class UdptlStats:
    received: int = 0
    delivered: int = 0
    recovered: int = 0
    duplicates: int = 0
    late: int = 0
    lost: int = 0


class UdptlReceiver:
    """Turns datagrams into IFP packets delivered in sequence order.

    Gaps are filled from redundancy or FEC. A gap that stays open while
    `reorder_window` newer packets arrive is declared lost and skipped; a packet
    arriving after its slot was delivered or skipped is dropped as late. Memory is
    bounded by the window and a fixed history for FEC repair.
    """

    HISTORY = 64        # recent IFP packets kept for FEC repair and duplicate detection
    RESYNC_JUMP = 2000  # a forward jump larger than this means the peer restarted

    def __init__(self, reorder_window: int = 4, t38_version: int = 0):
        if reorder_window < 1:
            raise ValueError("reorder_window must be at least 1")
        self.reorder_window = reorder_window
        self.t38_version = t38_version
        self.stats = UdptlStats()
        self.next_seq: int | None = None
        self._pending: dict[int, bytes] = {}
        self._recent: OrderedDict[int, bytes] = OrderedDict()
        self._fec: OrderedDict[int, FecInfo] = OrderedDict()

    def receive(self, datagram: bytes) -> list[tuple[int, bytes]]:
        """Parse a datagram; return (seq, ifp) pairs now deliverable, in order.

        Raises UdptlError for malformed data, with no change of state.
        """
        packet = parse_udptl(datagram)
        self.stats.received += 1
        if self.next_seq is None:
            self.next_seq = packet.seq
        ahead = (packet.seq - self.next_seq) % SEQ_MODULO
        if ahead >= SEQ_MODULO // 2:
            if packet.seq in self._recent:
                self.stats.duplicates += 1
            else:
                self.stats.late += 1
            return []
        delivered: list[tuple[int, bytes]] = []
        if ahead > self.RESYNC_JUMP:
            delivered += self.flush()
            self.next_seq = packet.seq
        if packet.seq in self._pending:
            self.stats.duplicates += 1
            return delivered
        self._pending[packet.seq] = packet.primary
        self._remember(packet.seq, packet.primary)
        for back, ifp in enumerate(packet.secondary, start=1):
            seq = (packet.seq - back) % SEQ_MODULO
            if ifp and self._waiting_for(seq) and seq not in self._pending:
                self._pending[seq] = ifp
                self._remember(seq, ifp)
                self.stats.recovered += 1
        if packet.fec is not None and packet.fec.data:
            self._fec[packet.seq] = packet.fec
            while len(self._fec) > 16:
                self._fec.popitem(last=False)
            self._repair_from_fec()
        delivered += self._drain()
        return delivered

    @property
    def holding(self) -> bool:
        """Packets are held behind a gap; the caller may flush() after a short wait."""
        return bool(self._pending)

    def flush(self) -> list[tuple[int, bytes]]:
        """Give up on open gaps and deliver everything held (e.g. at end of call)."""
        delivered = []
        while self._pending:
            delivered += self._drain()
            if self._pending:
                self._skip_to_oldest()
        return delivered

    def _waiting_for(self, seq: int) -> bool:
        return (seq - self.next_seq) % SEQ_MODULO < SEQ_MODULO // 2

    def _remember(self, seq: int, ifp: bytes) -> None:
        self._recent[seq] = ifp
        self._recent.move_to_end(seq)
        while len(self._recent) > self.HISTORY:
            self._recent.popitem(last=False)

    def _drain(self) -> list[tuple[int, bytes]]:
        delivered = []
        while True:
            while self.next_seq in self._pending:
                delivered.append((self.next_seq, self._pending.pop(self.next_seq)))
                self.next_seq = (self.next_seq + 1) % SEQ_MODULO
            if not self._pending:
                break
            newest = max((s - self.next_seq) % SEQ_MODULO for s in self._pending)
            if newest < self.reorder_window:
                break
            self._skip_to_oldest()
        self.stats.delivered += len(delivered)
        return delivered

    def _skip_to_oldest(self) -> None:
        gap = min((s - self.next_seq) % SEQ_MODULO for s in self._pending)
        self.stats.lost += gap
        self.next_seq = (self.next_seq + gap) % SEQ_MODULO

    def _repair_from_fec(self) -> None:
        # Repairing one packet may make another parity entry solvable: iterate.
        progress = True
        while progress:
            progress = False
            for seq, fec in self._fec.items():
                entries = len(fec.data)
                for index, parity in enumerate(fec.data):
                    covered = fec_covered(seq, fec.span, entries, index)
                    missing = [s for s in covered if s not in self._recent]
                    if len(missing) != 1 or not self._waiting_for(missing[0]):
                        continue
                    if (missing[0] - self.next_seq) % SEQ_MODULO >= self.HISTORY:
                        continue
                    known = [self._recent[s] for s in covered if s != missing[0]]
                    # Parity is as long as the longest covered packet: cut the
                    # zero padding off where the IFP structure says it ends.
                    repaired = _xor([parity] + known)
                    length = ifp_length(repaired, self.t38_version)
                    if length is None:
                        continue
                    repaired = repaired[:length]
                    self._pending[missing[0]] = repaired
                    self._remember(missing[0], repaired)
                    self.stats.recovered += 1
                    progress = True
