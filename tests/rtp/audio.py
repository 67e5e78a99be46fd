"""Test signals: the recorded voice sample and helpers to add noise and run detectors."""

import os
import wave

import numpy as np

DATA = os.path.join(os.path.dirname(__file__), "data")


def recorded_speech() -> np.ndarray:
    """About 11 s of a recorded human voice (ALSA's channel test announcements,
    resampled to 8 kHz mono 16-bit)."""
    with wave.open(os.path.join(DATA, "alsa_voices_8k.wav")) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.int16)


def speech_variants() -> list[np.ndarray]:
    """The recording at several levels and pitches (resampled in time), so both low
    and high voices are represented."""
    speech = recorded_speech().astype(float)
    variants = []
    for speed in (0.8, 1.0, 1.25, 1.5):
        positions = np.arange(0, len(speech) - 1, speed)
        shifted = np.interp(positions, np.arange(len(speech)), speech)
        for gain in (0.5, 1.0, 3.0):
            variants.append(np.clip(shifted * gain, -32768, 32767).astype(np.int16))
    return variants


def add_white_noise(signal: np.ndarray, snr_db: float, rng, reference_power=None) -> np.ndarray:
    """White noise at snr_db below the mean power of the non-silent part of the signal."""
    signal = signal.astype(float)
    if reference_power is None:
        reference_power = np.mean(signal[signal != 0] ** 2)
    noise = rng.normal(0.0, np.sqrt(reference_power / 10 ** (snr_db / 10)), len(signal))
    return np.clip(np.rint(signal + noise), -32768, 32767).astype(np.int16)


def blocks(signal: np.ndarray, size: int = 160, offset: int = 0) -> np.ndarray:
    """The signal cut in whole blocks, starting ``offset`` samples late (zero-padded)."""
    signal = np.concatenate([np.zeros(offset, np.int16), np.asarray(signal, np.int16)])
    signal = np.concatenate([signal, np.zeros(-len(signal) % size, np.int16)])
    return signal.reshape(-1, size)


def run_bank(detector, signals, offsets=None):
    """Feed equal-length signals as parallel sessions (one row each) block by block;
    returns per session the list of (block index, event)."""
    stacked = [blocks(s, offset=(offsets[i] if offsets else 0)) for i, s in enumerate(signals)]
    length = max(len(b) for b in stacked)
    stacked = [np.concatenate([b, np.zeros((length - len(b), b.shape[1]), np.int16)]) for b in stacked]
    cube = np.stack(stacked, axis=1)  # (blocks, sessions, samples)
    slots = np.arange(len(signals))
    events = [[] for _ in signals]
    for index, block in enumerate(cube):
        for row, event in detector.process(block, slots):
            events[row].append((index, event))
    return events
