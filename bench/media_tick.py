"""Time one MediaClock tick with N sessions on fake datagram transports.

Every session has in-band DTMF and fax tone detection on, receives one 20 ms
packet of speech per tick, and sends: half play a cached prompt (pre-encoded bytes),
half echo their decoded input back (PCM, so the vectorized encode runs).

    python3 bench/media_tick.py [--sessions 1000] [--ticks 500]
"""

import argparse
import os
import random
import statistics
import sys
import time
import wave

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from twisted.internet.task import Clock  # noqa: E402

from portaum_tx.rtp.clock import MediaClock  # noqa: E402
from portaum_tx.rtp.codecs import PCMU  # noqa: E402
from portaum_tx.rtp.packet import RtpPacket, build_rtp  # noqa: E402
from portaum_tx.rtp.player import MusicOnHold, Player, Prompt  # noqa: E402
from portaum_tx.rtp.session import MediaParams, RtpSession  # noqa: E402


class NullTransport:
    """Counts datagrams instead of sending them."""

    def __init__(self):
        self.count = 0

    def write(self, data, addr):
        self.count += 1

    def stopListening(self):
        pass


class Echo:
    def __init__(self):
        self.frame = None

    def inbound_frame(self, session, pcm, status):
        self.frame = pcm

    def next_frame(self, session):
        return self.frame


def speech_ulaw(seconds=10):
    path = os.path.join(os.path.dirname(__file__), "..", "tests", "rtp", "data", "alsa_voices_8k.wav")
    with wave.open(path) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int16)
    return PCMU.encode(pcm[: seconds * 8000 // 160 * 160])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--ticks", type=int, default=500)
    args = parser.parse_args()

    clock = Clock()
    media = MediaClock(clock)
    speech = speech_ulaw()
    prompt = Prompt(PCMU, speech[::-1])
    rng = random.Random(1)
    sessions = []
    for index in range(args.sessions):
        session = RtpSession(media, MediaParams(("127.0.0.1", 40000 + 2 * index)),
                             inband_dtmf=True, fax_detection=True, rng=rng, dead_peer_timeout=None)
        session.attach_transports(NullTransport(), NullTransport(), 20000 + 2 * index)
        session.start()
        if index % 2:
            Player(session).play([MusicOnHold(prompt)])
        else:
            echo = Echo()
            session.add_consumer(echo)
            session.set_source(echo)
        sessions.append(session)

    frames = [speech[i:i + 160] for i in range(0, len(speech), 160)]
    addr = [("127.0.0.1", 40000 + 2 * i) for i in range(args.sessions)]
    tick_times, receive_times = [], []
    for tick in range(args.ticks):
        payload = frames[tick % len(frames)]
        datagrams = [build_rtp(RtpPacket(0, (1000 + tick) & 0xFFFF, 160 * tick, 7000 + i, payload))
                     for i in range(args.sessions)]
        started = time.process_time()
        for session, datagram, source in zip(sessions, datagrams, addr):
            session.rtp_received(datagram, source)
        receive_times.append(time.process_time() - started)
        clock.advance(0.020)
        started = time.process_time()
        media.tick()
        tick_times.append(time.process_time() - started)

    sent = sum(s._rtp_transport.count for s in sessions)
    warm = tick_times[20:]
    print(f"sessions={args.sessions} ticks={args.ticks} packets_sent={sent}")
    print(f"tick: mean {1000 * statistics.mean(warm):.2f} ms, median {1000 * statistics.median(warm):.2f} ms, "
          f"p99 {1000 * sorted(warm)[int(0.99 * len(warm))]:.2f} ms (budget 20 ms)")
    print(f"inbound packet handling per tick: mean {1000 * statistics.mean(receive_times[20:]):.2f} ms")
    print(f"total media CPU per 20 ms: {1000 * (statistics.mean(warm) + statistics.mean(receive_times[20:])):.2f} ms")


if __name__ == "__main__":
    main()
