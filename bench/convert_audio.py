"""Time the audio conversions on the voicemail and upload paths.

    python3 bench/convert_audio.py

Prints the best of five runs for 60 s of audio per conversion.
"""

import io
import os
import sys
import time

import numpy as np
import soundfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from portaum_tx.convert import audio  # noqa: E402


def best(func, runs=5):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times) * 1000


def main():
    rng = np.random.default_rng(1)
    seconds = 60
    t = np.arange(8000 * seconds) / 8000
    pcm = (np.sin(2 * np.pi * 440 * t) * 8000 + rng.normal(0, 500, t.size)).astype(np.int16)
    ulaw = audio.pcm16_to_ulaw(pcm)
    t44 = np.arange(44100 * seconds) / 44100
    stereo = np.stack([np.sin(2 * np.pi * 440 * t44), np.sin(2 * np.pi * 660 * t44)], axis=1) * 0.3
    wav44 = io.BytesIO()
    soundfile.write(wav44, stereo, 44100, format="WAV", subtype="PCM_16")
    mp3_44 = io.BytesIO()
    soundfile.write(mp3_44, stereo, 44100, format="MP3")
    rows = [
        ("PCM -> WAV", lambda: audio.pcm16_to_wav(pcm)),
        ("PCM -> MP3 (16 kHz, 32 kbit/s)", lambda: audio.pcm16_to_mp3(pcm)),
        ("PCM -> u-law", lambda: audio.pcm16_to_ulaw(pcm)),
        ("u-law -> PCM", lambda: audio.ulaw_to_pcm16(ulaw)),
        ("44.1 kHz stereo WAV upload -> .au", lambda: audio.upload_to_au(wav44.getvalue())),
        ("44.1 kHz stereo MP3 upload -> .au", lambda: audio.upload_to_au(mp3_44.getvalue())),
    ]
    print(f"{seconds} s of audio, best of 5")
    for name, func in rows:
        print(f"{name:40s} {best(func):8.1f} ms")


if __name__ == "__main__":
    main()
