"""DTMF: RFC 4733 telephone-events (receive and send), in-band detection, SIP INFO bodies.

Every path ends in the same value, :class:`DtmfDigit`, one per key press, so the
IVR does not care how a digit arrived. The in-band detector is a bank: it keeps
per-session state in arrays indexed by a slot number and processes the frames of
all sessions of a media tick in one vectorized pass.
"""

from __future__ import annotations

import math
import struct
from collections import deque
from dataclasses import dataclass

import numpy as np

from portaum_tx.rtp.codecs import SAMPLE_RATE

DTMF_DIGITS = "0123456789*#ABCD"
FLASH = "!"
EVENT_CODES = {digit: code for code, digit in enumerate(DTMF_DIGITS)} | {FLASH: 16}
EVENT_DIGITS = {code: digit for digit, code in EVENT_CODES.items()}

ROW_FREQUENCIES = (697.0, 770.0, 852.0, 941.0)
COLUMN_FREQUENCIES = (1209.0, 1336.0, 1477.0, 1633.0)
KEYPAD = ("123A", "456B", "789C", "*0#D")
DIGIT_TONES = {
    KEYPAD[r][c]: (ROW_FREQUENCIES[r], COLUMN_FREQUENCIES[c]) for r in range(4) for c in range(4)
}

# Peak amplitude of a 0 dBm0 sine in 16-bit linear PCM (G.711 full scale is +3.17 dBm0).
DBM0_PEAK = 32124 / 10 ** (3.17 / 20)


class DtmfError(ValueError):
    """A telephone-event payload, digit or SIP INFO body that cannot be understood."""


@dataclass(frozen=True)
class DtmfDigit:
    digit: str  # one of 0-9 * # A-D, or "!" for flash
    source: str  # "rfc4733", "inband" or "info"
    duration_ms: int | None = None
    volume: int | None = None  # RFC 4733 power level, -dBm0 (0..63), when known


def digit_to_event(digit: str) -> int:
    try:
        return EVENT_CODES[digit.upper()]
    except (KeyError, AttributeError):
        raise DtmfError(f"{digit!r} is not a DTMF digit (0-9 * # A-D or ! for flash)") from None


# --- RFC 4733 -------------------------------------------------------------------------

_EVENT = struct.Struct("!BBH")


@dataclass(frozen=True)
class TelephoneEvent:
    event: int
    end: bool
    volume: int
    duration: int  # timestamp units since the event's timestamp

    @classmethod
    def parse(cls, payload: bytes) -> "TelephoneEvent":
        if len(payload) < 4:
            raise DtmfError(f"telephone-event payload of {len(payload)} octets, expected 4")
        event, flags, duration = _EVENT.unpack_from(payload)
        return cls(event, bool(flags & 0x80), flags & 0x3F, duration)

    def to_bytes(self) -> bytes:
        if not 0 <= self.event <= 255 or not 0 <= self.volume <= 63 or not 0 <= self.duration <= 0xFFFF:
            raise DtmfError(f"telephone-event out of range: {self}")
        return _EVENT.pack(self.event, (0x80 if self.end else 0) | self.volume, self.duration)


def _newer(timestamp: int, than: int) -> bool:
    """RTP timestamp serial-number comparison (wraps at 2**32)."""
    diff = (timestamp - than) & 0xFFFFFFFF
    return 0 < diff < 0x80000000


class TelephoneEventReceiver:
    """Turns a stream of telephone-event packets into one DtmfDigit per key press.

    The digit is reported on the first packet of an event (barge-in wants it
    early); retransmitted updates, the three redundant end packets, duplicates and
    late packets of earlier events are absorbed. An event is identified by its RTP
    timestamp; a long event continued under a new timestamp (RFC 4733 2.5.1.3,
    no marker, same code, previous segment not ended) is not a new press.
    """

    def __init__(self, clock_rate: int = SAMPLE_RATE):
        self.clock_rate = clock_rate
        self._timestamp: int | None = None
        self._event: int | None = None
        self._ended = True
        self._recent: deque[int] = deque(maxlen=16)

    def feed(self, timestamp: int, marker: bool, payload: bytes) -> DtmfDigit | None:
        event = TelephoneEvent.parse(payload)
        if event.event not in EVENT_DIGITS:
            return None  # tones and line events are not key presses
        if timestamp == self._timestamp:
            if event.end:
                self._ended = True
            return None
        if timestamp in self._recent or (
            self._timestamp is not None and not _newer(timestamp, self._timestamp)
        ):
            return None  # a late packet of an event already handled
        if (
            not marker and not self._ended and event.event == self._event
            and self._timestamp is not None
            and (timestamp - self._timestamp) & 0xFFFFFFFF <= 0x10000 + self.clock_rate
        ):
            self._recent.append(self._timestamp)
            self._timestamp = timestamp
            self._ended = event.end
            return None
        if self._timestamp is not None:
            self._recent.append(self._timestamp)
        self._timestamp = timestamp
        self._event = event.event
        self._ended = event.end
        return DtmfDigit(
            EVENT_DIGITS[event.event], "rfc4733",
            duration_ms=event.duration * 1000 // self.clock_rate if event.end else None,
            volume=event.volume,
        )


def telephone_event_payloads(
    digit: str, duration_ms: int = 100, interval_ms: int = 20, volume: int = 10,
    clock_rate: int = SAMPLE_RATE,
) -> list[tuple[bool, bytes]]:
    """(marker, payload) of every packet of one key press, one per send interval.

    All share the event's RTP timestamp: the first carries the marker, updates
    grow the duration, and the end is sent three times as RFC 4733 advises.
    """
    code = digit_to_event(digit)
    if duration_ms <= 0 or interval_ms <= 0:
        raise DtmfError(f"duration {duration_ms} ms and interval {interval_ms} ms must be positive")
    step = interval_ms * clock_rate // 1000
    total = min(duration_ms * clock_rate // 1000, 0xFFFF)
    packets = []
    duration = step
    first = True
    while duration < total:
        packets.append((first, TelephoneEvent(code, False, volume, duration).to_bytes()))
        first = False
        duration += step
    end = TelephoneEvent(code, True, volume, total).to_bytes()
    packets.extend([(first, end), (False, end), (False, end)])
    return packets


# --- In-band detection ----------------------------------------------------------------


def goertzel_power(samples: np.ndarray, frequency: float, rate: int = SAMPLE_RATE) -> float:
    """Scalar Goertzel recurrence: |X(f)|^2 over the block. The bank computes the
    same quantity for many blocks and frequencies as a single matrix product."""
    coeff = 2 * math.cos(2 * math.pi * frequency / rate)
    s_prev = s_prev2 = 0.0
    for x in np.asarray(samples, dtype=float):
        s = x + coeff * s_prev - s_prev2
        s_prev2, s_prev = s_prev, s
    return s_prev2 ** 2 + s_prev ** 2 - coeff * s_prev * s_prev2


def dft_basis(frequencies, block: int, rate: int = SAMPLE_RATE) -> np.ndarray:
    """(block, 2*len(frequencies)) cos/sin columns: x @ basis gives the real and
    imaginary parts whose squared sum equals the Goertzel power of each frequency."""
    n = np.arange(block)[:, None]
    phase = 2 * np.pi * np.asarray(frequencies, dtype=float)[None, :] * n / rate
    return np.concatenate([np.cos(phase), np.sin(phase)], axis=1).astype(np.float32)


def tone_powers(block: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Goertzel power of each basis frequency for each row of a (sessions, samples) block."""
    projected = np.asarray(block, dtype=np.float32) @ basis
    half = basis.shape[1] // 2
    return projected[:, :half] ** 2 + projected[:, half:] ** 2


def _db(value: float) -> float:
    return 10 ** (value / 10)


class SlotStates:
    """Grow-on-demand per-slot arrays shared by the detector banks."""

    def __init__(self, capacity: int, fields: dict[str, tuple[np.dtype, int]]):
        self._fields = fields
        self.capacity = 0
        for name, (dtype, initial) in fields.items():
            setattr(self, name, np.full(0, initial, dtype=dtype))
        self.ensure(capacity)

    def ensure(self, slot_count: int) -> None:
        if slot_count <= self.capacity:
            return
        new_capacity = max(slot_count, 2 * self.capacity, 16)
        for name, (dtype, initial) in self._fields.items():
            old = getattr(self, name)
            grown = np.full(new_capacity, initial, dtype=dtype)
            grown[: len(old)] = old
            setattr(self, name, grown)
        self.capacity = new_capacity

    def reset(self, slot: int) -> None:
        self.ensure(slot + 1)
        for name, (_dtype, initial) in self._fields.items():
            getattr(self, name)[slot] = initial


@dataclass(frozen=True)
class InbandDtmfSettings:
    block_samples: int = 160
    min_tone_dbm0: float = -36.0  # weakest tone of the pair that is accepted
    normal_twist_db: float = 8.0  # column tone louder than row tone
    reverse_twist_db: float = 4.0  # row tone louder than column tone
    relative_peak_db: float = 8.0  # other frequencies of the same group must be this far below
    harmonic_db: float = 6.0  # second harmonics must be this far below their fundamental
    min_tone_fraction: float = 0.5  # share of the block energy in the two tones
    # Windows of block_samples are analysed every half block (10 ms hops), so that a
    # 40 ms tone or gap always covers whole windows whatever its alignment.
    min_on_windows: int = 3  # consecutive windows with the digit: about 40 ms of tone
    min_off_windows: int = 2  # windows without it before the next press counts
    # Frames the jitter buffer concealed (a lost or late packet) are skipped, the key's
    # state held over them, for up to this many in a row: one lost packet in the middle
    # of a tone must not end the key and start it again. A longer gap is heard as the
    # silence it is, so a phone that stops sending between presses still has them end.
    max_concealed_frames: int = 3


class InbandDtmfDetector:
    """Goertzel DTMF detection over a (sessions x block) array per call.

    Each call receives one block per session; the detector analyses two windows per
    block, the one straddling the previous block's second half and this block's first
    half, then the block itself. Each window is classified as one digit or none with
    the usual checks (level, twist, relative peak, second harmonic, share of energy);
    a digit is reported once when it persists for ``min_on_windows`` windows after at
    least ``min_off_windows`` windows without it. Blocks marked as not heard (the
    jitter buffer's concealment) are left out, up to ``max_concealed_frames`` in a row.
    """

    def __init__(self, settings: InbandDtmfSettings | None = None, capacity: int = 64):
        self.settings = s = settings or InbandDtmfSettings()
        fundamentals = ROW_FREQUENCIES + COLUMN_FREQUENCIES
        harmonics = tuple(2 * f for f in fundamentals)
        self._basis = dft_basis(fundamentals + harmonics, s.block_samples)
        # A sine of peak A gives Goertzel power (A*N/2)^2 on its own bin.
        min_amplitude = DBM0_PEAK * 10 ** (s.min_tone_dbm0 / 20)
        self._min_power = (min_amplitude * s.block_samples / 2) ** 2
        self._normal_twist = _db(s.normal_twist_db)
        self._reverse_twist = _db(s.reverse_twist_db)
        self._relative_peak = _db(-s.relative_peak_db)
        self._harmonic = _db(-s.harmonic_db)
        # Power of a tone relative to block energy sum(x^2): (A N/2)^2 / (A^2 N/2) = N/2.
        self._fraction_scale = 2.0 / s.block_samples
        self._keypad_codes = np.array(
            [[DTMF_DIGITS.index(KEYPAD[r][c]) for c in range(4)] for r in range(4)], dtype=np.int8
        )
        self.states = SlotStates(capacity, {
            "last": (np.int8, -1), "run": (np.int16, 0), "active": (np.int8, -1),
            "off": (np.int16, 0), "armed": (np.bool_, True), "concealed": (np.int16, 0),
        })
        self._half = s.block_samples // 2
        self._tails = np.zeros((self.states.capacity, self._half), dtype=np.int16)

    def reset(self, slot: int) -> None:
        self.states.reset(slot)
        self._grow_tails()
        self._tails[slot] = 0

    def _grow_tails(self) -> None:
        if len(self._tails) < self.states.capacity:
            grown = np.zeros((self.states.capacity, self._half), dtype=np.int16)
            grown[: len(self._tails)] = self._tails
            self._tails = grown

    def classify(self, block: np.ndarray) -> np.ndarray:
        """Digit code (index into DTMF_DIGITS) per row, -1 where no DTMF pair is present."""
        s = self.settings
        block = np.asarray(block, dtype=np.float32)
        if block.ndim != 2 or block.shape[1] != s.block_samples:
            raise DtmfError(f"expected a (sessions, {s.block_samples}) block, got {block.shape}")
        powers = tone_powers(block, self._basis)
        result = np.full(len(block), -1, dtype=np.int8)
        # Cheap screen on every row: strongest row and column bins loud enough and
        # holding most of the block's energy. Speech and music rarely pass, so the
        # remaining checks run on a handful of rows at most.
        row_peak = powers[:, 0:4].max(axis=1)
        col_peak = powers[:, 4:8].max(axis=1)
        energy = np.einsum("ij,ij->i", block, block)
        candidates = np.flatnonzero(
            (row_peak >= self._min_power) & (col_peak >= self._min_power)
            & ((row_peak + col_peak) * self._fraction_scale >= s.min_tone_fraction * energy)
        )
        if len(candidates) == 0:
            return result
        powers = powers[candidates]
        rows, cols = powers[:, 0:4], powers[:, 4:8]
        row_harm, col_harm = powers[:, 8:12], powers[:, 12:16]
        index = np.arange(len(candidates))
        best_row = rows.argmax(axis=1)
        best_col = cols.argmax(axis=1)
        row_power = rows[index, best_row]
        col_power = cols[index, best_col]

        ok = col_power <= row_power * self._normal_twist
        ok &= row_power <= col_power * self._reverse_twist
        others_row = rows.copy()
        others_row[index, best_row] = 0
        others_col = cols.copy()
        others_col[index, best_col] = 0
        ok &= others_row.max(axis=1) <= row_power * self._relative_peak
        ok &= others_col.max(axis=1) <= col_power * self._relative_peak
        ok &= row_harm[index, best_row] <= row_power * self._harmonic
        ok &= col_harm[index, best_col] <= col_power * self._harmonic
        result[candidates] = np.where(ok, self._keypad_codes[best_row, best_col], -1)
        return result

    def process(self, block: np.ndarray, slots: np.ndarray,
                heard: np.ndarray | None = None) -> list[tuple[int, str]]:
        """Analyse one block per session (row) and advance the per-slot state; returns
        (row, digit) for each row whose session completed a new key press.

        ``heard`` (one bool per row; all True when left out) says which blocks came
        from packets; the others are concealment and are skipped while short."""
        slots = np.asarray(slots, dtype=np.intp)
        if len(slots) == 0:
            return []
        block = np.asarray(block)
        if block.ndim != 2 or block.shape[1] != self.settings.block_samples:
            raise DtmfError(f"expected a (sessions, {self.settings.block_samples}) block, got {block.shape}")
        if heard is not None and len(heard) != len(slots):
            raise DtmfError(f"{len(heard)} heard flags for {len(slots)} blocks")
        self.states.ensure(int(slots.max()) + 1)
        self._grow_tails()
        if heard is not None:
            kept = self._not_skipped(np.asarray(heard, dtype=np.bool_), slots)
            if kept is not None:
                if len(kept) == 0:
                    return []
                return [(int(kept[row]), digit)
                        for row, digit in self._analyse(block[kept], slots[kept])]
        return self._analyse(block, slots)

    def _not_skipped(self, heard: np.ndarray, slots: np.ndarray) -> np.ndarray | None:
        """Rows to analyse (None: all of them), counting each slot's concealed run."""
        st = self.states
        if heard.all():
            st.concealed[slots] = 0
            return None
        run = np.where(heard, 0, st.concealed[slots] + 1)
        st.concealed[slots] = np.minimum(run, 10_000)
        return np.flatnonzero((run == 0) | (run > self.settings.max_concealed_frames))

    def _analyse(self, block: np.ndarray, slots: np.ndarray) -> list[tuple[int, str]]:
        half = self._half
        straddling = np.concatenate([self._tails[slots], block[:, :half]], axis=1)
        self._tails[slots] = block[:, half:]
        digits = self.classify(np.concatenate([straddling, block]))
        count = len(slots)
        events = self._advance(digits[:count], slots)
        events += self._advance(digits[count:], slots)
        return events

    def _advance(self, digit: np.ndarray, slots: np.ndarray) -> list[tuple[int, str]]:
        st = self.states
        # Rows with no tone, no tone last window and armed have nothing to update.
        busy = np.flatnonzero((digit >= 0) | (st.last[slots] >= 0) | ~st.armed[slots])
        if len(busy) == 0:
            return []
        slots = slots[busy]
        digit = digit[busy]
        last = st.last[slots]
        run = np.where(digit >= 0, np.where(digit == last, st.run[slots] + 1, 1), 0)
        active = st.active[slots]
        off = np.where(digit != active, st.off[slots] + 1, 0)
        armed = st.armed[slots] | (off >= self.settings.min_off_windows)
        fire = (digit >= 0) & (run >= self.settings.min_on_windows) & armed
        active = np.where(fire, digit, active)
        armed = armed & ~fire
        off = np.where(fire, 0, off)
        st.last[slots] = digit
        st.run[slots] = np.minimum(run, 10_000)
        st.active[slots] = active
        st.off[slots] = np.minimum(off, 10_000)
        st.armed[slots] = armed
        return [(int(busy[i]), DTMF_DIGITS[digit[i]]) for i in np.flatnonzero(fire)]


# --- SIP INFO -------------------------------------------------------------------------


def _digit_from_signal(value: str) -> str:
    value = value.strip()
    if len(value) == 1 and value.upper() in EVENT_CODES:
        return value.upper()
    if value.isascii() and value.isdigit() and int(value) in EVENT_DIGITS:
        return EVENT_DIGITS[int(value)]  # some phones send the RFC 4733 event code
    raise DtmfError(f"DTMF signal {value!r} is not a digit")


def parse_sip_info_dtmf(content_type: str, body: bytes | str) -> DtmfDigit:
    """The key press carried by a SIP INFO body of type application/dtmf-relay
    ("Signal=5\\r\\nDuration=160") or application/dtmf ("5")."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if isinstance(body, bytes):
        try:
            body = body.decode("ascii")
        except UnicodeDecodeError:
            raise DtmfError("SIP INFO DTMF body is not ASCII") from None
    if media_type == "application/dtmf":
        return DtmfDigit(_digit_from_signal(body), "info")
    if media_type != "application/dtmf-relay":
        raise DtmfError(f"content type {content_type!r} does not carry DTMF")
    fields = {}
    for line in body.splitlines():
        if not line.strip():
            continue
        name, sep, value = line.partition("=")
        if not sep:
            raise DtmfError(f"dtmf-relay line {line!r} is not name=value")
        fields[name.strip().lower()] = value.strip()
    if "signal" not in fields:
        raise DtmfError("dtmf-relay body has no Signal line")
    duration = None
    if "duration" in fields:
        try:
            duration = int(fields["duration"])
        except ValueError:
            raise DtmfError(f"dtmf-relay Duration {fields['duration']!r} is not a number") from None
        if duration < 0:
            raise DtmfError(f"dtmf-relay Duration {duration} is negative")
    return DtmfDigit(_digit_from_signal(fields["signal"]), "info", duration_ms=duration)
