#!/usr/bin/env python3
"""Render the shipped music on hold: prompts/<lang>/moh.au for every language.

The tune is written here, note by note, and synthesised with numpy (a soft electric-piano
voice over a bass line), so it is the project's own and free of any licence; nothing is
downloaded. It loops without a seam: the notes still sounding at the end ring on into the
start. Deterministic: the same bytes every run, so the files can be checked against this
script.

    python3 scripts/make_moh.py          # writes prompts/en/moh.au and prompts/es/moh.au
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from portaum_tx.convert.audio import make_au, pcm16_to_ulaw  # noqa: E402

RATE = 8000
BEATS_PER_MINUTE = 92
#: Peak level of the result, in dB below full scale: quieter than the prompts (-3 dB).
PEAK_DB = -9.0
LANGUAGES = ("en", "es")

# One bar a chord, four beats a bar: I vi IV V  I vi ii V7 in C major.
CHORDS = [("C4", "E4", "G4"), ("A3", "C4", "E4"), ("F3", "A3", "C4"), ("G3", "B3", "D4"),
          ("C4", "E4", "G4"), ("A3", "C4", "E4"), ("D4", "F4", "A4"), ("G3", "B3", "F4")]
BASS = ["C3", "A2", "F2", "G2", "C3", "A2", "D3", "G2"]
# The tune: (note or None for a rest, beats), eight bars of four beats.
MELODY = [
    ("E5", 1), ("G5", 1), ("C6", 1.5), ("B5", 0.5),
    ("A5", 2), ("E5", 1), ("C5", 1),
    ("F5", 1), ("A5", 1), ("C6", 1), ("A5", 1),
    ("G5", 3), (None, 1),
    ("E5", 1), ("G5", 1), ("C6", 1.5), ("D6", 0.5),
    ("E6", 1), ("C6", 1), ("A5", 2),
    ("F5", 1), ("A5", 1), ("D6", 1), ("C6", 1),
    ("B5", 2), ("G5", 1), ("D5", 1),
]

_SEMITONES = {"C": -9, "D": -7, "E": -5, "F": -4, "G": -2, "A": 0, "B": 2}


def frequency(note: str) -> float:
    """"A4" -> 440.0 (equal temperament)."""
    name, octave = note[:-1], int(note[-1])
    semitone = _SEMITONES[name[0]] + (1 if "#" in name else -1 if name.endswith("b") else 0)
    return 440.0 * 2.0 ** ((semitone + 12 * (octave - 4)) / 12.0)


def tone(note: str, seconds: float, level: float, decay: float) -> np.ndarray:
    """A soft electric-piano note: a few harmonics, a quick attack, an exponential decay,
    the upper harmonics dying faster; nothing near the 4 kHz limit."""
    t = np.arange(int(seconds * RATE)) / RATE
    f = frequency(note)
    wave = np.zeros_like(t)
    for harmonic, weight in ((1, 1.0), (2, 0.35), (3, 0.12)):
        if f * harmonic < 3400:
            wave += weight * np.sin(2 * np.pi * f * harmonic * t) * np.exp(-t * decay * harmonic)
    attack = np.minimum(1.0, t / 0.012)
    release = np.minimum(1.0, (seconds - t) / 0.05)
    return level * wave * attack * release


def melody() -> np.ndarray:
    """The whole loop as float samples (unnormalised)."""
    beat = 60.0 / BEATS_PER_MINUTE
    bar = 4 * beat
    length = int(round(len(CHORDS) * bar * RATE))
    out = np.zeros(length)

    def add(start: float, samples: np.ndarray) -> None:
        # notes ringing past the end wrap round to the start: the loop has no seam
        first = int(round(start * RATE)) % length
        end = first + len(samples)
        out[first:min(end, length)] += samples[:length - first]
        if end > length:
            out[:end - length] += samples[length - first:]

    for index, (chord, root) in enumerate(zip(CHORDS, BASS)):
        start = index * bar
        add(start, tone(root, bar * 1.1, 0.50, 1.2))
        pattern = [chord[0], chord[1], chord[2], chord[1]] * 2   # eighth-note arpeggio
        for step, note in enumerate(pattern):
            add(start + step * beat / 2, tone(note, beat * 1.5, 0.22, 2.5))
    time = 0.0
    for note, beats in MELODY:
        if note is not None:
            add(time, tone(note, beats * beat + 0.3, 0.45, 1.6))
        time += beats * beat
    return out


def render() -> bytes:
    """The .au file: G.711 u-law, 8 kHz mono."""
    music = melody()
    peak = 10 ** (PEAK_DB / 20.0) * 32767
    pcm = np.round(music / np.max(np.abs(music)) * peak).astype(np.int16)
    return make_au(pcm16_to_ulaw(pcm))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "prompts")
    args = parser.parse_args(argv)
    data = render()
    for language in LANGUAGES:
        path = args.out / language / "moh.au"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        print(f"{path}: {(len(data) - 24) / RATE:.1f} s")


if __name__ == "__main__":
    main()
