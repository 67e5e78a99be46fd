"""Time one read of the RTP reader (portaum_tx.rtp.batch_io) over N real sockets.

N sessions of a BatchedMediaEngine on loopback, latched onto one sender socket; each
round the sender puts one 20 ms PCMU packet on every session's socket, then one
``read_sockets()`` (what the media tick does after sending) is timed. Reported: the
median and 90th percentile of a read, after the first 50 rounds (probation and
latching). Run it pinned to a core of its own:

    taskset -c 1 .venv/bin/python bench/rtp_reader.py --sessions 1000
"""

import argparse
import os
import resource
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from twisted.internet import reactor  # noqa: E402

from portaum_tx.rtp.batch_io import BatchedMediaEngine  # noqa: E402
from portaum_tx.rtp.session import MediaParams  # noqa: E402

RTP_HEADER = struct.Struct("!BBHII")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.bind(("127.0.0.1", 0))
    sender.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 22)
    engine = BatchedMediaEngine(reactor, (20000, 29999), "127.0.0.1")
    sessions = []
    for _ in range(args.sessions):
        session = engine.create_session(MediaParams(remote_address=sender.getsockname(),
                                                    payload_type=0, ptime=20))
        session.start()
        sessions.append(session)
    clock = engine.media_clock
    payload = b"\xff" * 160
    times = []
    for n in range(args.rounds):
        for i, session in enumerate(sessions):
            sender.sendto(RTP_HEADER.pack(0x80, 0, n, n * 160, 1000 + i) + payload,
                          ("127.0.0.1", session.local_port))
        started = time.perf_counter()
        clock.read_sockets()
        times.append(time.perf_counter() - started)
        for session in sessions:
            session.jitter.pop()
    times = sorted(times[50:])
    print("sessions %d: read median %.2f ms, p90 %.2f ms; packets %d, without Python %d"
          % (args.sessions, times[len(times) // 2] * 1000, times[int(len(times) * 0.9)] * 1000,
             clock.packets_read, clock._reader.fast_packets))
    for session in sessions:
        session.close()


if __name__ == "__main__":
    main()
