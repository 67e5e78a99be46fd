"""Call-progress and signalling tones (int16 PCM at 8 kHz, ready for G.711), and
fax tone detection (CNG from a calling fax, CED/ANSam from an answering one).

The fax detector is a bank like the in-band DTMF detector: per-session state in
arrays indexed by slot, one vectorized pass over the frames of a media tick.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from portaum_tx.rtp.codecs import SAMPLE_RATE, SAMPLES_PER_MS
from portaum_tx.rtp.dtmf import DBM0_PEAK, DIGIT_TONES, SlotStates, digit_to_event, dft_basis, tone_powers


class ToneError(ValueError):
    """A tone that cannot be generated (bad duration, digit or level)."""


def _samples(ms: float) -> int:
    if ms < 0:
        raise ToneError(f"duration {ms} ms is negative")
    return int(round(ms * SAMPLES_PER_MS))


def _to_pcm(signal: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(signal), -32768, 32767).astype(np.int16)


def silence(ms: float) -> np.ndarray:
    return np.zeros(_samples(ms), dtype=np.int16)


def tone(frequencies, ms: float, level_dbm0: float = -13.0) -> np.ndarray:
    """Sum of sines, each at ``level_dbm0``."""
    n = np.arange(_samples(ms))
    amplitude = DBM0_PEAK * 10 ** (level_dbm0 / 20)
    signal = np.zeros(len(n))
    for frequency in frequencies:
        signal += amplitude * np.sin(2 * np.pi * frequency * n / SAMPLE_RATE)
    return _to_pcm(signal)


def cadence(frequencies, on_ms: float, off_ms: float, cycles: int = 1,
            level_dbm0: float = -13.0) -> np.ndarray:
    one = np.concatenate([tone(frequencies, on_ms, level_dbm0), silence(off_ms)])
    return np.tile(one, cycles)


def beep(ms: float = 500, frequency: float = 1000.0, level_dbm0: float = -10.0) -> np.ndarray:
    return tone((frequency,), ms, level_dbm0)


def ringback(cycles: int = 1) -> np.ndarray:
    """North American ringback: 440+480 Hz, 2 s on, 4 s off."""
    return cadence((440.0, 480.0), 2000, 4000, cycles, level_dbm0=-19.0)


def busy(cycles: int = 1) -> np.ndarray:
    """480+620 Hz, 0.5 s on, 0.5 s off."""
    return cadence((480.0, 620.0), 500, 500, cycles, level_dbm0=-24.0)


def dtmf(digit: str, ms: float = 100, row_dbm0: float = -9.0, column_dbm0: float = -7.0) -> np.ndarray:
    """One key's dual tone (default levels carry the customary 2 dB of normal twist)."""
    digit_to_event(digit)  # validates
    if digit.upper() not in DIGIT_TONES:
        raise ToneError(f"{digit!r} has no DTMF tone pair")
    row, column = DIGIT_TONES[digit.upper()]
    return _to_pcm(tone((row,), ms, row_dbm0).astype(float) + tone((column,), ms, column_dbm0))


def dtmf_sequence(digits: str, on_ms: float = 100, off_ms: float = 100) -> np.ndarray:
    parts = []
    for digit in digits:
        parts.append(dtmf(digit, on_ms))
        parts.append(silence(off_ms))
    return np.concatenate(parts) if parts else silence(0)


def fax_cng(cycles: int = 1, level_dbm0: float = -15.0) -> np.ndarray:
    """T.30 calling tone: 1100 Hz, 0.5 s on, 3 s off."""
    return cadence((1100.0,), 500, 3000, cycles, level_dbm0)


def fax_ced(ms: float = 3000, level_dbm0: float = -15.0, ansam: bool = False) -> np.ndarray:
    """2100 Hz answer tone; ``ansam`` adds V.8's 15 Hz amplitude modulation and the
    phase reversals every 450 ms (V.25 ANSam/ with reversals)."""
    n = np.arange(_samples(ms))
    amplitude = DBM0_PEAK * 10 ** (level_dbm0 / 20)
    phase = 2 * np.pi * 2100.0 * n / SAMPLE_RATE
    if ansam:
        phase = phase + np.pi * (n // (450 * SAMPLES_PER_MS) % 2)
        envelope = 1 + 0.2 * np.sin(2 * np.pi * 15.0 * n / SAMPLE_RATE)
    else:
        envelope = 1.0
    return _to_pcm(amplitude * envelope * np.sin(phase))


# --- fax tone detection ---------------------------------------------------------------

CNG = "CNG"
CED = "CED"


@dataclass(frozen=True)
class FaxToneSettings:
    block_samples: int = 160
    min_level_dbm0: float = -43.0
    min_tone_fraction: float = 0.6  # share of the block energy in the tone
    cng_min_ms: int = 380
    cng_max_ms: int = 750
    cng_bursts: int = 1  # 2 also checks the 3 s silence between bursts
    cng_gap_min_ms: int = 2500
    cng_gap_max_ms: int = 3600
    ced_min_ms: int = 500
    dropout_blocks: int = 2  # blocks a tone may miss (ANSam phase reversals) without ending


class FaxToneDetector:
    """Reports CNG once per valid calling-tone burst (or pair of bursts) and CED once
    per answer tone lasting at least ``ced_min_ms``."""

    def __init__(self, settings: FaxToneSettings | None = None, capacity: int = 64):
        self.settings = s = settings or FaxToneSettings()
        self._basis = dft_basis((1100.0, 2100.0), s.block_samples)
        block_ms = s.block_samples / SAMPLES_PER_MS
        amplitude = DBM0_PEAK * 10 ** (s.min_level_dbm0 / 20)
        self._min_power = (amplitude * s.block_samples / 2) ** 2
        self._fraction_scale = 2.0 / s.block_samples
        self._cng_min = int(s.cng_min_ms // block_ms)
        self._cng_max = int(-(-s.cng_max_ms // block_ms))
        self._gap_min = int(s.cng_gap_min_ms // block_ms)
        self._gap_max = int(-(-s.cng_gap_max_ms // block_ms))
        self._ced_min = int(-(-s.ced_min_ms // block_ms))
        self._block_number = 0
        self.states = SlotStates(capacity, {
            "cng_on": (np.int32, 0), "cng_miss": (np.int16, 0), "cng_bursts": (np.int16, 0),
            "cng_last_end": (np.int64, -(1 << 40)), "ced_on": (np.int32, 0), "ced_miss": (np.int16, 0),
            "ced_done": (np.bool_, False),
        })

    def reset(self, slot: int) -> None:
        self.states.reset(slot)

    def tones_present(self, block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        block = np.asarray(block, dtype=np.float32)
        if block.ndim != 2 or block.shape[1] != self.settings.block_samples:
            raise ToneError(f"expected a (sessions, {self.settings.block_samples}) block, got {block.shape}")
        powers = tone_powers(block, self._basis)
        energy = np.einsum("ij,ij->i", block, block) * self.settings.min_tone_fraction
        present = (powers >= self._min_power) & (powers * self._fraction_scale >= energy[:, None])
        return present[:, 0], present[:, 1]

    def _track(self, hit, on, miss):
        """Advance a tone's on-run with dropout tolerance; returns new on, miss and the
        length of runs that ended in this block (0 where none ended)."""
        tolerance = self.settings.dropout_blocks
        running = on > 0
        on_next = np.where(hit, on + 1 + np.where(running, miss, 0), on)
        miss_next = np.where(hit, 0, np.where(running, miss + 1, 0))
        ended = ~hit & running & (miss_next > tolerance)
        ended_length = np.where(ended, on, 0)
        on_next = np.where(ended, 0, on_next)
        miss_next = np.where(ended, 0, miss_next)
        return on_next, miss_next, ended_length

    def process(self, block: np.ndarray, slots: np.ndarray) -> list[tuple[int, str]]:
        slots = np.asarray(slots, dtype=np.intp)
        self._block_number += 1
        if len(slots) == 0:
            return []
        self.states.ensure(int(slots.max()) + 1)
        st = self.states
        cng_hit, ced_hit = self.tones_present(block)
        # Only rows hearing a tone now or in a tone run need their state advanced.
        busy = np.flatnonzero(cng_hit | ced_hit | (st.cng_on[slots] > 0) | (st.ced_on[slots] > 0))
        if len(busy) == 0:
            return []
        slots = slots[busy]
        cng_hit = cng_hit[busy]
        ced_hit = ced_hit[busy]

        cng_on, cng_miss, burst = self._track(cng_hit, st.cng_on[slots], st.cng_miss[slots])
        ended = burst > 0
        bursts = st.cng_bursts[slots]
        valid = (burst >= self._cng_min) & (burst <= self._cng_max)
        # silence between the end of the previous burst and the start of this one
        gap = self._block_number - st.cng_last_end[slots] - burst - self.settings.dropout_blocks - 1
        in_cadence = (bursts > 0) & (gap >= self._gap_min) & (gap <= self._gap_max)
        bursts = np.where(valid, np.where(in_cadence, bursts + 1, 1), np.where(ended, 0, bursts))
        cng_fire = valid & (bursts >= self.settings.cng_bursts)
        bursts = np.where(cng_fire, 0, bursts)

        ced_on, ced_miss, ced_ended = self._track(ced_hit, st.ced_on[slots], st.ced_miss[slots])
        done = st.ced_done[slots] & (ced_ended == 0)
        ced_fire = (ced_on >= self._ced_min) & ~done
        done = done | ced_fire

        st.cng_on[slots] = np.minimum(cng_on, 1 << 20)
        st.cng_miss[slots] = cng_miss
        st.cng_bursts[slots] = bursts
        st.cng_last_end[slots] = np.where(ended, self._block_number, st.cng_last_end[slots])
        st.ced_on[slots] = np.minimum(ced_on, 1 << 20)
        st.ced_miss[slots] = ced_miss
        st.ced_done[slots] = done
        events = [(int(busy[i]), CNG) for i in np.flatnonzero(cng_fire)]
        events += [(int(busy[i]), CED) for i in np.flatnonzero(ced_fire)]
        return events
