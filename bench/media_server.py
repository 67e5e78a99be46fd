"""The server side of the media load benchmark: the product's SIP user agent and
media engine in one process, answering every call with a long prompt and counting
the digits it hears.

Every INVITE to any number is answered; the call then plays ``--prompt`` (an .au
file, looped) until the caller hangs up, with in-band DTMF detection on for calls
that did not offer telephone-event. A control port answers ``stats`` with a JSON
summary (digits heard per Call-ID, receive statistics, tick timings) so the load
generator can compare what it sent with what was detected.

    taskset -c 1 python3 bench/media_server.py --sip-port 25060 --control-port 25059

``--io batched`` reads every session's socket once per tick (portaum_tx.rtp.batch_io)
instead of one reactor callback per packet.
"""

import argparse
import gc
import json
import os
import resource
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from twisted.internet import epollreactor  # noqa: E402

epollreactor.install()

from twisted.internet import defer, reactor  # noqa: E402
from twisted.internet.protocol import DatagramProtocol  # noqa: E402

from portaum_tx.rtp import clock as clock_module  # noqa: E402
from portaum_tx.rtp.clock import TICK_SECONDS  # noqa: E402
from portaum_tx.rtp.engine import MediaEngine  # noqa: E402
from portaum_tx.rtp.player import MusicOnHold  # noqa: E402
from portaum_tx.sip.transport import SipTransport, UdpEndpoint  # noqa: E402
from portaum_tx.sip.ua import UserAgent  # noqa: E402

SPEECH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "rtp", "data",
                      "alsa_voices_8k.wav")


def speech_prompt():
    """The test speech (about 11 s) as a prompt; looped it is as long as the call."""
    import wave

    import numpy as np

    from portaum_tx.rtp.player import Prompt
    with wave.open(SPEECH) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int16)
    return Prompt.from_pcm(pcm, "speech")


class CallRecord:
    def __init__(self, call_id: str, rtp, rfc4733: bool):
        self.call_id = call_id
        self.rtp = rtp
        self.rfc4733 = rfc4733
        self.digits: list[str] = []
        self.sources: list[str] = []
        self.ended = None

    def summary(self) -> dict:
        rtp = self.rtp
        lost = 0
        if rtp.stats is not None and rtp.stats.valid:
            s = rtp.stats
            expected = s.cycles + s.max_seq - s.base_seq + 1
            lost = max(0, expected - s.received)
        return {"call_id": self.call_id, "digits": "".join(self.digits), "sources": self.sources,
                "rfc4733": self.rfc4733, "received": rtp.packets_received, "sent": rtp.packets_sent,
                "lost": lost, "late": rtp.jitter.late, "dropped_frames": rtp.jitter.dropped_frames,
                "send_errors": rtp.send_errors, "ended": self.ended}


class GcTimer:
    """How long the garbage collector stops the process, per generation."""

    def __init__(self):
        self.pauses: list[tuple[int, float]] = []
        self._start = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase, info):
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.pauses.append((info["generation"], time.perf_counter() - self._start))

    def take(self) -> dict:
        pauses, self.pauses = self.pauses, []
        summary = {}
        for generation in (0, 1, 2):
            times = [t for g, t in pauses if g == generation]
            if times:
                summary["gen%d" % generation] = {"count": len(times), "max_ms": round(max(times) * 1000, 2),
                                                 "total_ms": round(sum(times) * 1000, 1)}
        return summary


class TickTimer:
    """Wraps the media clock's tick to record how long each one takes, and how late
    after its due instant (clock epoch + n x 20 ms) the tick started and its sends
    began: the send instants are what the callers' jitter buffers see."""

    def __init__(self, media_clock):
        self.durations: list[float] = []
        self.starts: list[float] = []
        self.sends: list[float] = []
        self.clock = media_clock
        original = media_clock.tick

        def due() -> float:
            return media_clock._epoch + media_clock._due * TICK_SECONDS

        def timed_tick():
            self.starts.append(time.time() - due())
            start = time.perf_counter()
            original()
            self.durations.append(time.perf_counter() - start)
        media_clock.tick = timed_tick
        send_frames = clock_module.send_frames

        def timed_send(sessions, frames, now, *pacer):
            self.sends.append(time.time() - due())
            return send_frames(sessions, frames, now, *pacer)
        clock_module.send_frames = timed_send

    def take(self) -> tuple[list[float], list[float], list[float]]:
        taken = self.durations, self.starts, self.sends
        self.durations, self.starts, self.sends = [], [], []
        return taken


class BenchServer:
    def __init__(self, args):
        self.args = args
        engine_options = dict(port_range=(args.rtp_min, args.rtp_max), interface=args.address,
                              dead_peer_timeout=60.0, send_ahead_ms=args.send_ahead,
                              prompt_ahead_ms=args.prompt_ahead)
        if args.io == "batched":
            from portaum_tx.rtp.batch_io import BatchedMediaEngine
            self.engine = BatchedMediaEngine(reactor, **engine_options)
        else:
            self.engine = MediaEngine(reactor, **engine_options)
        self.prompt = self.engine.prompts.load(args.prompt) if args.prompt else speech_prompt()
        self.ticks = TickTimer(self.engine.media_clock)
        self.gc = GcTimer()
        self.calls: dict[str, CallRecord] = {}
        self.transport = SipTransport(reactor)
        self.endpoint = UdpEndpoint(self.transport)
        self.ua = UserAgent(reactor, self.transport, host=args.address, media=self.engine,
                            on_incoming=self.incoming, ports={"udp": args.sip_port},
                            max_calls=args.max_calls)

    def start(self):
        self.engine.start()
        reactor.listenUDP(self.args.sip_port, self.endpoint, interface=self.args.address,
                          maxPacketSize=65535)
        reactor.listenUDP(self.args.control_port, Control(self), interface=self.args.address)

    def incoming(self, invite) -> None:
        defer.ensureDeferred(self.run_call(invite))

    async def run_call(self, invite) -> None:
        rtp = invite.rtp
        record = None
        try:
            await invite.answer()
            params = rtp.params
            record = CallRecord(invite.call_id, rtp, params is not None and params.telephone_event_pt is not None)
            self.calls[invite.call_id] = record

            def heard(digit, record=record):
                record.digits.append(digit.digit)
                record.sources.append(digit.source)
            rtp.dtmf_listeners.append(heard)
            self.engine.player(rtp).play([MusicOnHold(self.prompt)])
            record.ended = await invite.ended
        except Exception as exc:  # a failed call is reported in the stats, not fatal
            if record is not None:
                record.ended = "error: %s" % exc

    def stats(self) -> dict:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        durations, starts, sends = (sorted(taken) for taken in self.ticks.take())
        clock = self.engine.media_clock

        def pct(p, values=durations):
            return round(values[min(len(values) - 1, int(p * len(values)))] * 1000, 3) if values else None
        return {
            "pid": os.getpid(), "active_calls": self.ua.active_calls, "rejected_busy": self.ua.rejected_busy,
            "sessions": len(clock.sessions), "ticks": clock.ticks, "skipped_ticks": clock.skipped_ticks,
            "tick_ms": {"count": len(durations), "p50": pct(0.5), "p99": pct(0.99),
                        "max": round(durations[-1] * 1000, 3) if durations else None},
            "tick_start_late_ms": {"p50": pct(0.5, starts), "p99": pct(0.99, starts),
                                   "max": pct(1.0, starts)},
            "send_start_late_ms": {"p50": pct(0.5, sends), "p99": pct(0.99, sends),
                                   "max": pct(1.0, sends)},
            "pacer": self.engine.status().get("pacer"),
            "gc": self.gc.take(), "autogroup": open("/proc/self/autogroup").read().strip(),
            "cpu_seconds": usage.ru_utime + usage.ru_stime, "maxrss_kib": usage.ru_maxrss,
            "calls": [record.summary() for record in self.calls.values()],
        }


class Control(DatagramProtocol):
    """``stats`` -> JSON (sent in pieces of at most 60000 octets, then ``end``);
    ``reset`` forgets finished calls; ``ticks`` drops recorded tick timings;
    ``freeze`` moves every object alive to the collector's permanent generation;
    ``census`` counts the objects the collector tracks, by type; ``collect`` times a full
    collection."""

    def __init__(self, server: BenchServer):
        self.server = server

    def datagramReceived(self, data, addr):
        command = data.strip()
        if command == b"stats":
            blob = json.dumps(self.server.stats()).encode()
            for start in range(0, len(blob), 60000):
                self.transport.write(blob[start:start + 60000], addr)
            self.transport.write(b"end", addr)
        elif command == b"reset":
            self.server.calls = {k: v for k, v in self.server.calls.items() if v.ended is None}
            self.server.ticks.take()
            self.transport.write(b"ok", addr)
        elif command == b"freeze":
            # an experiment, not a product setting: what the calls' heap costs the
            # collector (frozen objects are never collected, cycles among them leak)
            gc.freeze()
            self.transport.write(b"ok", addr)
        elif command == b"census":
            # which objects the collector tracks (the frozen start-up heap aside): what a
            # full collection has to traverse
            counts = {}
            for obj in gc.get_objects():
                name = type(obj).__qualname__
                counts[name] = counts.get(name, 0) + 1
            top = sorted(counts.items(), key=lambda item: -item[1])[:40]
            lists = [obj for obj in gc.get_objects() if type(obj) is list]
            shapes = {}
            for obj in lists[::max(1, len(lists) // 300)]:
                owners = ",".join(sorted({type(r).__qualname__ for r in gc.get_referrers(obj) if r is not lists}))
                key = "len=%d first=%s owners=%s" % (len(obj), type(obj[0]).__qualname__ if obj else "-", owners)
                shapes[key] = shapes.get(key, 0) + 1
            lists = None
            self.transport.write(json.dumps({"tracked": sum(counts.values()), "top": top,
                                             "lists": sorted(shapes.items(), key=lambda item: -item[1])[:20]}).encode(), addr)
        elif command == b"collect":
            # how long a full collection of the live heap takes
            start = time.perf_counter()
            gc.collect()
            took = time.perf_counter() - start
            self.transport.write(json.dumps({"tracked": len(gc.get_objects()),
                                             "full_collection_ms": round(took * 1000, 2)}).encode(), addr)
        elif command == b"ticks":
            self.server.ticks.take()
            self.server.gc.take()
            self.transport.write(b"ok", addr)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--sip-port", type=int, default=25060)
    parser.add_argument("--control-port", type=int, default=25059)
    parser.add_argument("--rtp-min", type=int, default=30000)
    parser.add_argument("--rtp-max", type=int, default=39999)
    parser.add_argument("--max-calls", type=int, default=5000)
    parser.add_argument("--prompt", help=".au file to loop (default: the test speech)")
    parser.add_argument("--io", choices=("reactor", "batched"), default="reactor")
    parser.add_argument("--send-ahead", type=int, default=60,
                        help="ms of RTP prepared ahead and sent by the pacer thread ([rtp] "
                             "send_ahead; 0: the tick sends)")
    parser.add_argument("--prompt-ahead", type=int, default=0,
                        help="ms of prompt audio prepared ahead ([rtp] prompt_ahead)")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    gc.freeze()
    server = BenchServer(args)
    server.start()
    print("ready", flush=True)
    reactor.run()


if __name__ == "__main__":
    main()
