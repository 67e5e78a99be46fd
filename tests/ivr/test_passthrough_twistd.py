"""The pass-through PIN seed scenario through the whole server (``twistd portaum``), as a
provider runs it: nothing is routed by the test.

The set-up is the ``portaum-admin`` commands of docs/pass-through-pin.md. The server trusts
loopback as its proxy (``[sip] trusted_proxies``), so the From of Mark's phone (baresip)
names the calling account. The trunk (``[sip] outbound_proxy``) is SIPp's ``uas`` scenario.

1. A stranger's INVITE to the toll number gets 404 and never reaches the trunk.
2. Mark dials the toll number: the server sends the call to the IVR ``AD12125551234``,
   baresip keys Rachel's code 4545# (RFC 4733), the toll leg reaches SIPp and is bridged.
3. Mark dials a toll-free number: the server places it straight through the trunk as
   Mark's call, without the IVR.

The xDRs are then read with ``portaum-admin --json xdr list``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from twisted.internet import defer, reactor, threads
from twisted.trial import unittest

from tests.ivr.test_passthrough_e2e import walk_through_commands
from tests.sip.live import baresip_binary, free_port, sipp_binary, spawn
from tests.sip.test_interop_baresip import Baresip
from tests.support import require_peer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]
RACHEL = "12065557777"
MARK = "12065558888"
TOLL = "12125551234"
TOLL_FREE = "18005551212"
STRANGER = "15550001111"
OFF = []
for option in ("web.port", "imap.port", "imap.tls_port", "pop3.port", "pop3.tls_port",
               "smtp.port", "smtp.submission_port", "sip.tcp_port"):
    OFF += ["--set", f"{option}=0"]

#: Runs many portaum-admin commands (a JSON list of argument lists on stdin) in one Python
#: process, through the same ``execute`` the command line uses; prints [code, out, err]s.
ADMIN_BATCH = """
import io, json, sys
from twisted.internet import defer, reactor
from portaum_tx.admin import execute
commands, results = json.load(sys.stdin), []
async def run_all():
    try:
        for argv in commands:
            out, err = io.StringIO(), io.StringIO()
            results.append([await execute(argv, reactor, out, err), out.getvalue(),
                            err.getvalue()])
            if results[-1][0]:
                break
    finally:
        reactor.stop()
reactor.callWhenRunning(lambda: defer.ensureDeferred(run_all()))
reactor.run(installSignalHandlers=False)
json.dump(results, sys.stdout)
"""


def _env():
    return {**os.environ, "PYTHONPATH": ROOT}


def sleep(seconds):
    d = defer.Deferred()
    reactor.callLater(seconds, d.callback, None)
    return d


class PassThroughThroughTwistd(unittest.TestCase):
    timeout = 150

    def setUp(self):
        require_peer("baresip", baresip_binary() is not None)
        require_peer("SIPp (Debian package sip-tester)", sipp_binary() is not None)
        self.workdir = tempfile.mkdtemp(prefix="portaum-pass-through-")
        self.addCleanup(shutil.rmtree, self.workdir, True)
        self.port = free_port()
        self.trunk_port = free_port()

    def admin(self, *commands) -> list[str]:
        """Run portaum-admin commands in the server's directory; their outputs."""
        result = subprocess.run([sys.executable, "-c", ADMIN_BATCH], cwd=self.workdir,
                                env=_env(), input=json.dumps(commands), capture_output=True,
                                text=True, timeout=90)
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        outputs = []
        for argv, (code, out, err) in zip(commands, json.loads(result.stdout)):
            self.assertEqual(code, 0, f"portaum-admin {' '.join(argv)}: {err}")
            outputs.append(out)
        self.assertEqual(len(outputs), len(commands))
        return outputs

    def start_server(self):
        settings = ["--set", "sip.listen_address=127.0.0.1", "--set", f"sip.udp_port={self.port}",
                    "--set", "sip.domain=127.0.0.1", "--set", "sip.trusted_proxies=127.0.0.1",
                    "--set", f"sip.outbound_proxy=sip:127.0.0.1:{self.trunk_port}",
                    "--set", "rtp.port_min=43000", "--set", "rtp.port_max=43998"]
        child = subprocess.Popen(TWISTD + ["-n", "--pidfile=", "portaum"] + settings + OFF,
                                 cwd=self.workdir, env=_env(), stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True)

        def stop():
            if child.stdout.closed:
                return
            if child.poll() is None:
                child.terminate()
                child.wait(30)
            self.server_output = child.stdout.read()
            child.stdout.close()
        self.stop_server = stop
        self.addCleanup(stop)
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            if child.poll() is not None:
                raise AssertionError("server exited: " + child.stdout.read())
            if _answers(self.port, _options(), 0.5).startswith("SIP/2.0 200"):
                return child
        raise AssertionError("the SIP listener did not answer OPTIONS")

    def trunk_messages(self) -> str:
        """What SIPp (the trunk) received and sent so far (its -trace_msg log)."""
        text = ""
        for name in os.listdir(self.workdir):
            if name.endswith("_messages.log"):
                with open(os.path.join(self.workdir, name), errors="replace") as f:
                    text += f.read()
        return text

    async def until(self, condition, timeout, what):
        """Poll ``condition`` every 0.2 s for at most ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"after {timeout} s still not {what}")
            await sleep(0.2)

    def acks_at_trunk(self) -> int:
        return len(re.findall(r"^ACK sip:", self.trunk_messages(), re.M))

    def invites_at_trunk(self) -> int:
        return len(re.findall(r"^INVITE sip:", self.trunk_messages(), re.M))

    @defer.inlineCallbacks
    def test_seed_scenario_through_the_server(self):
        yield defer.ensureDeferred(self._scenario())

    async def _scenario(self):
        commands = walk_through_commands()
        setup = [c for c in commands if c[:2] not in (["xdr", "list"], ["billing", "check"])]
        await threads.deferToThread(self.admin, *setup)
        trunk = spawn([sipp_binary(), "-sn", "uas", "-i", "127.0.0.1", "-p", str(self.trunk_port),
                       "-mp", str(free_port()), "-m", "2", "-nostdin", "-rtp_echo", "-trace_msg",
                       "-timeout", "100s", "-timeout_error"], path=self.workdir)
        self.addCleanup(lambda: trunk.done.called or trunk.transport.signalProcess("KILL"))
        child = await threads.deferToThread(self.start_server)

        # A stranger (no account of ours) calling the toll number: 404, no trunk call.
        status = await threads.deferToThread(_answers, self.port, _invite(STRANGER, TOLL), 10)
        self.assertTrue(status.startswith("SIP/2.0 404"), status)

        phone = Baresip(self, f"<sip:{MARK}@127.0.0.1>;regint=0")
        self.assertTrue(await phone.process.wait_for(b"baresip is ready", 15), phone.output)

        # The toll call: the IVR answers, asks for the code, and connects the toll leg.
        phone.command(f"/dial sip:{TOLL}@127.0.0.1:{self.port}")
        self.assertTrue(await phone.process.wait_for(b"Call established", 15), phone.output)
        await sleep(1.0)
        for key in "4545#":
            phone.process.send(key)
            await sleep(0.4)
        await self.until(lambda: self.acks_at_trunk() >= 1, 25, "connected to the trunk")
        self.assertIn(f"INVITE sip:{TOLL}@", self.trunk_messages())
        await sleep(2.5)
        phone.command("/hangup")
        await self.until(lambda: phone.output.count("terminated") >= 1, 15, "hung up")

        # The toll-free call: straight through the trunk, no IVR.
        phone.command(f"/dial sip:{TOLL_FREE}@127.0.0.1:{self.port}")
        await self.until(lambda: phone.output.count("Call established") >= 2, 20,
                         "established directly")
        self.assertEqual(self.acks_at_trunk(), 2)
        self.assertIn(f"INVITE sip:{TOLL_FREE}@", self.trunk_messages())
        await sleep(2.0)
        phone.command("/hangup")
        await self.until(lambda: phone.output.count("terminated") >= 2, 15, "hung up")

        self.assertEqual(await trunk.done, 0, trunk.summary())
        self.assertEqual(self.invites_at_trunk(), 2)   # the stranger's call never came
        self.assertEqual(await phone.quit(), 0)
        self.assertIsNone(child.poll())
        await threads.deferToThread(self.stop_server)

        mark, rachel = [json.loads(out) for out in await threads.deferToThread(
            self.admin, ["--json", "xdr", "list", "--account", MARK],
            ["--json", "xdr", "list", "--account", RACHEL])]
        mark = [x for x in mark if x["service"] != "adjustment"]
        rachel = [x for x in rachel if x["service"] != "adjustment"]
        # Rachel pays the toll call she made from Mark's phone with her code.
        [toll] = rachel
        self.assertEqual((toll["cli"], toll["cld"], toll["leg"], toll["access_number"]),
                         (MARK, TOLL, "B", "AD" + TOLL))
        self.assertGreaterEqual(toll["duration"], 2)
        self.assertGreater(float(toll["charge"]), 0)
        # Mark pays the call into the IVR; his toll-free call is his own, direct and free.
        by_cld = {x["cld"]: x for x in mark}
        self.assertEqual(sorted(by_cld), sorted(["AD" + TOLL, TOLL_FREE]), mark)
        ivr, free = by_cld["AD" + TOLL], by_cld[TOLL_FREE]
        self.assertEqual((ivr["cli"], ivr["leg"]), (MARK, "A"))
        self.assertGreater(ivr["duration"], toll["duration"])
        self.assertEqual((free["cli"], free["leg"], free["access_number"]), (MARK, "B", ""))
        self.assertGreaterEqual(free["duration"], 1)
        self.assertEqual(float(free["charge"]), 0)


def _options() -> bytes:
    tag = time.monotonic_ns()
    return (b"OPTIONS sip:ping@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;"
            b"branch=z9hG4bKping%d;rport\r\nFrom: <sip:t@t>;tag=1\r\n"
            b"To: <sip:ping@127.0.0.1>\r\nCall-ID: ping%d\r\nCSeq: 1 OPTIONS\r\n"
            b"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n" % (tag, tag))


def _invite(calling: str, called: str) -> bytes:
    """An INVITE without SDP (a delayed offer) from ``calling``."""
    tag = time.monotonic_ns()
    return (b"INVITE sip:%s@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;"
            b"branch=z9hG4bKstranger%d;rport\r\nFrom: <sip:%s@127.0.0.1>;tag=s%d\r\n"
            b"To: <sip:%s@127.0.0.1>\r\nCall-ID: stranger%d\r\nCSeq: 1 INVITE\r\n"
            b"Contact: <sip:%s@127.0.0.1:9>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
            % (called.encode(), tag, calling.encode(), tag, called.encode(), tag,
               calling.encode()))


def _answers(port: int, request: bytes, timeout: float) -> str:
    """The final response to ``request`` (the status line and headers), "" on silence."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        probe.sendto(request, ("127.0.0.1", port))
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return ""
            probe.settimeout(min(left, 0.5))
            try:
                response = probe.recv(65536).decode(errors="replace")
            except OSError:
                if timeout <= 0.5:
                    time.sleep(0.2)
                    return ""
                continue
            if not re.match(r"SIP/2.0 1\d\d", response):
                return response
