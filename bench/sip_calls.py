"""SIP call set-up rate and concurrent dialogs, with SIPp as the caller.

The SIP front end (UDP, loopback) runs in this process with an application that answers
at once and waits for the caller's BYE; SIPp's built-in ``uac`` scenario calls it.

    python3 bench/sip_calls.py rate --rate 100 --calls 2000
    python3 bench/sip_calls.py hold --calls 500 --hold 20

``rate`` places ``--calls`` calls at ``--rate`` per second (each held 0 s) and reports the
rate achieved and the failed calls; ``hold`` keeps ``--calls`` dialogs up at once for
``--hold`` seconds each, opened at ``--rate`` per second (RTP included: one session per
call on our side), and reports the peak of dialogs held and how many
were established and ended cleanly.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import sys
import time
import types

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from twisted.internet import defer, protocol, reactor  # noqa: E402

from portaum_tx.config import load_config  # noqa: E402
from portaum_tx.sip.frontend import SipFrontend  # noqa: E402


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sipp(protocol.ProcessProtocol):
    def __init__(self):
        self.done = defer.Deferred()
        self.output = b""

    def outReceived(self, data):
        self.output += data

    errReceived = outReceived

    def processEnded(self, reason):
        self.done.callback(reason.value.exitCode)


async def quick_answer(call):
    await call.answer()
    await call.hungup


async def run(args) -> int:
    port = free_port()
    config = load_config(None, ["sip.listen_address=127.0.0.1", "sip.udp_port=%d" % port,
                                "sip.tcp_port=0", "sip.domain=127.0.0.1",
                                "sip.max_calls=%d" % (args.calls + 100),
                                "rtp.port_min=20000", "rtp.port_max=40000"])
    node = types.SimpleNamespace(config=config, reactor=reactor, store=None, events=None,
                                 mailboxes=None, accounts=None, name="bench", secret="x")
    frontend = SipFrontend(route=quick_answer)
    targets = await frontend.start(node)
    listening = reactor.listenUDP(port, targets["sip-udp"], interface="127.0.0.1")
    hold_ms = 0 if args.mode == "rate" else int(args.hold * 1000)
    rate = args.rate
    sipp = Sipp()
    stats = os.path.abspath("sipp-bench-stats.csv")
    command = [shutil.which("sipp"), "-sn", "uac", "127.0.0.1:%d" % port, "-s", "800",
               "-i", "127.0.0.1", "-p", str(free_port()), "-m", str(args.calls),
               "-r", str(rate), "-d", str(hold_ms), "-l", str(args.calls), "-nostdin",
               "-timeout", "%ds" % (args.calls / max(rate, 1) + args.hold + 60),
               "-timeout_error", "-max_socket", "100", "-trace_stat", "-stf", stats]
    peak = 0

    def sample():
        nonlocal peak
        peak = max(peak, frontend.ua.active_calls)
    from twisted.internet import task
    sampler = task.LoopingCall(sample)
    sampler.start(0.2)
    started = time.monotonic()
    reactor.spawnProcess(sipp, command[0], command, env={"PATH": "/usr/bin:/bin"})
    code = await sipp.done
    elapsed = time.monotonic() - started
    sampler.stop()
    text = sipp.output.decode(errors="replace")
    successful = _counter(text, "Successful call")
    failed = _counter(text, "Failed call")
    print("sipp exit %s; %d successful, %d failed calls in %.1f s" % (code, successful, failed,
                                                                      elapsed))
    if args.mode == "rate":
        print("set-up rate achieved: %.1f calls/s (asked %d/s)" % (successful / elapsed, args.rate))
    else:
        print("peak concurrent dialogs on the server: %d" % peak)
    await frontend.stop()
    await listening.stopListening()
    if os.path.exists(stats):
        os.remove(stats)
    return 0 if code == 0 and failed == 0 else 1


def _counter(text: str, name: str) -> int:
    values = re.findall(r"%s\s*\|\s*(\d+)\s*\|\s*(\d+)" % re.escape(name), text)
    return int(values[-1][1]) if values else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("rate", "hold"))
    parser.add_argument("--rate", type=int, default=50)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--hold", type=float, default=10.0)
    args = parser.parse_args()
    result = {}

    def go():
        d = defer.ensureDeferred(run(args))
        d.addBoth(lambda r: (result.setdefault("code", r), reactor.stop()))
    reactor.callWhenRunning(go)
    reactor.run()
    code = result.get("code")
    sys.exit(code if isinstance(code, int) else 1)


if __name__ == "__main__":
    main()
