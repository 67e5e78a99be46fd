"""The whole server (``twistd portaum``, as a provider runs it) answering SIP: a mailbox is
provisioned with portaum-admin; SIPp's built-in ``uac`` scenario calls it (the IVR router
sends the calls to voicemail deposit, which answers); baresip registers, subscribes to MWI,
calls its own mailbox, leaves a 440 Hz message, and its light turns on."""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from twisted.internet import defer, reactor, threads
from twisted.trial import unittest

from tests.sip.live import baresip_binary, free_port, sipp_binary, spawn
from tests.sip.test_interop_baresip import Baresip
from tests.support import require_peer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]
ADMIN = [sys.executable, "-m", "portaum_tx.admin"]
OFF = []
for option in ("web.port", "imap.port", "imap.tls_port", "pop3.port", "pop3.tls_port",
               "smtp.port", "smtp.submission_port"):
    OFF += ["--set", f"{option}=0"]


def _env():
    return {**os.environ, "PYTHONPATH": ROOT}


class WholeServer(unittest.TestCase):
    timeout = 120

    def setUp(self):
        require_peer("SIPp (Debian package sip-tester)", sipp_binary() is not None)
        self.workdir = tempfile.mkdtemp(prefix="portaum-sip-server-")
        self.addCleanup(shutil.rmtree, self.workdir, True)
        self.port = free_port()
        self.settings = ["--set", "sip.listen_address=127.0.0.1",
                         "--set", f"sip.udp_port={self.port}", "--set", "sip.tcp_port=0",
                         "--set", "sip.domain=127.0.0.1",
                         "--set", "rtp.port_min=42000", "--set", "rtp.port_max=42998"]

    def admin(self, *args):
        result = subprocess.run(ADMIN + list(args), cwd=self.workdir, env=_env(),
                                capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def start_server(self):
        child = subprocess.Popen(TWISTD + ["-n", "--pidfile=", "portaum"] + self.settings + OFF,
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
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if child.poll() is not None:
                raise AssertionError("server exited: " + child.stdout.read())
            if _options_answered(self.port):
                return child
        raise AssertionError("the SIP listener did not answer OPTIONS")

    @defer.inlineCallbacks
    def test_sipp_calls_a_mailbox(self):
        yield threads.deferToThread(self.admin, "customer", "add", "Example")
        yield threads.deferToThread(self.admin, "account", "add", "--customer", "Example",
                                    "--password", "secret1234", "1001")
        child = yield threads.deferToThread(self.start_server)
        process = spawn([sipp_binary(), "-sn", "uac", "127.0.0.1:%d" % self.port, "-s", "1001",
                         "-m", "2", "-r", "1", "-d", "3000", "-nostdin", "-i", "127.0.0.1",
                         "-p", str(free_port(both=True)), "-timeout", "40s", "-timeout_error"],
                        path=self.workdir)
        code = yield process.done
        self.assertEqual(code, 0, process.summary())
        self.assertIsNone(child.poll())
        # SIPp sends no audio: the deposits are discarded as silent; the calls were
        # answered and ended cleanly, which is what is checked here.

    @defer.inlineCallbacks
    def test_baresip_leaves_a_message_and_its_light_turns_on(self):
        require_peer("baresip", baresip_binary() is not None)
        self.settings += ["--set", "sip.digest_algorithms=MD5"]   # libre 0.6 does MD5 only
        yield threads.deferToThread(self.admin, "customer", "add", "Example")
        yield threads.deferToThread(self.admin, "account", "add", "--customer", "Example",
                                    "--password", "secret1234", "1001")
        yield threads.deferToThread(self.start_server)
        phone = Baresip(self, "<sip:1001@127.0.0.1:%d>;regint=600;mwi=yes;auth_pass=secret1234"
                        % self.port)
        self.assertTrue((yield phone.process.wait_for(b"Messages-Waiting: no", 20)), phone.output)
        phone.command("/dial sip:1001@127.0.0.1:%d" % self.port)
        self.assertTrue((yield phone.process.wait_for(b"Call established", 10)), phone.output)
        yield _sleep(12)   # the greeting, the tone, then some seconds of a 440 Hz message
        phone.command("/hangup")
        self.assertTrue((yield phone.process.wait_for(b"Messages-Waiting: yes", 20)),
                        phone.output)
        self.assertIn("Voice-Message: 1/0 (0/0)", phone.output)
        self.assertEqual((yield phone.quit()), 0)
        yield threads.deferToThread(self.stop_server)
        counts = yield defer.ensureDeferred(self.message_counts("1001"))
        self.assertEqual(counts["voice"]["new"], 1)

    async def message_counts(self, account_id):
        from portaum_tx.config import load_config
        from portaum_tx.store import open_store
        config = load_config(None, ["storage.data_dir=%s" % os.path.join(self.workdir, "var")])
        store = await open_store(config, reactor)
        try:
            return await store.mailboxes.get_message_counts(account_id)
        finally:
            await store.close()


def _options_answered(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        probe.settimeout(0.5)
        probe.sendto(b"OPTIONS sip:ping@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;"
                     b"branch=z9hG4bKping%d;rport\r\nFrom: <sip:t@t>;tag=1\r\n"
                     b"To: <sip:ping@127.0.0.1>\r\nCall-ID: ping%d\r\nCSeq: 1 OPTIONS\r\n"
                     b"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
                     % (time.monotonic_ns(), time.monotonic_ns()), ("127.0.0.1", port))
        try:
            return probe.recv(4096).startswith(b"SIP/2.0 200")
        except OSError:
            time.sleep(0.2)
            return False


def _sleep(seconds):
    d = defer.Deferred()
    reactor.callLater(seconds, d.callback, None)
    return d
