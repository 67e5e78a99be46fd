"""``twistd portaum`` and ``portaum-admin`` as a provider runs them: real processes."""

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request

from twisted.internet import defer, threads
from twisted.trial import unittest

from tests.support import POSTGRES_DSN, postgres_test_dsn, _truncate_all
from tests.support import free_port as support_free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]
ADMIN = [sys.executable, "-m", "portaum_tx.admin"]


def free_port() -> int:
    return support_free_port(socket.SOCK_STREAM)


class Process:
    """A server process in its own working directory."""

    def __init__(self, workdir, *args):
        self.workdir = workdir
        self.web_port = free_port()
        # Only the web front end is needed here; other listeners are switched
        # off so the test never collides with anything on the machine.
        self.args = ["-n", "--pidfile=", "portaum", "--set", f"web.port={self.web_port}",
                     "--set", "web.listen_address=127.0.0.1", *args] + OFF
        self.child = None

    def start(self):
        self.child = subprocess.Popen(TWISTD + self.args, cwd=self.workdir, env=_env(),
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.child.poll() is not None:
                raise AssertionError("server exited: " + self.child.stdout.read())
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.web_port}/health", timeout=2) as r:
                    return json.load(r)
            except OSError:
                time.sleep(0.1)
        raise AssertionError("server did not become ready")

    def stop(self):
        """SIGTERM, as an init system stops it; returns (exit code, output)."""
        if self.child is None or self.child.stdout.closed:
            return None, ""
        if self.child.poll() is None:
            self.child.send_signal(signal.SIGTERM)
            self.child.wait(30)
        output = self.child.stdout.read()
        self.child.stdout.close()
        return self.child.returncode, output


def _env():
    return {**os.environ, "PYTHONPATH": ROOT}


#: Listeners of front ends not under test here, switched off.
OFF = []
for option in ("sip.udp_port", "sip.tcp_port", "imap.port", "imap.tls_port", "pop3.port",
               "pop3.tls_port", "smtp.port", "smtp.submission_port"):
    OFF += ["--set", f"{option}=0"]


def run(command, workdir, *args):
    result = subprocess.run(command + list(args), cwd=workdir, env=_env(), text=True,
                            capture_output=True, timeout=120)
    return result.returncode, result.stdout, result.stderr


class TapTestsMixin:
    engine = "sqlite"

    def setUp(self):
        self.workdir = tempfile.mkdtemp(prefix="portaum-tap-")
        self.addCleanup(shutil.rmtree, self.workdir, True)
        self.storage = []
        if self.engine == "postgres":
            dsn = postgres_test_dsn()
            _truncate_all(dsn)
            self.storage = ["--set", "storage.engine=postgres",
                            "--set", f"storage.postgres_dsn={dsn}"]

    def admin(self, *args):
        return run(ADMIN, self.workdir, *self.storage, *args)

    def server(self):
        process = Process(self.workdir, *self.storage)
        self.addCleanup(process.stop)
        return process

    def _scenario(self):
        first = self.server()
        health = first.start()
        self.assertEqual((health["status"], health["engine"]), ("ok", self.engine))
        # how the media engine keeps time, for monitoring (the clock runs from the SIP
        # front end's start, so start-up work after it may already have cost ticks)
        media = health["media"]
        self.assertEqual((media["sessions"], media["send_ahead_ms"]), (0, 60))
        self.assertIsInstance(media["skipped_ticks"], int)
        self.assertEqual(media["pacer"]["send_errors"], 0)
        # the collector's pauses; the start-up heap is frozen out of its reach
        collector = health["gc"]
        self.assertEqual(len(collector["collections"]), 3)
        self.assertGreater(collector["frozen"], 10000)
        self.assertEqual(len(collector["max_pause_ms"]), 3)
        # and each full collection's survivors too, with an hourly thaw ([rtp] gc_freeze)
        self.assertEqual(collector["survivor_freeze"]["thaw_interval_s"], 3600.0)
        self.assertEqual(collector["survivor_freeze"]["thaws"], 0)
        # Provisioning while the server runs, against the same store.
        for command in (["customer", "add", "Smart Calls, Ltd."],
                        ["account", "add", "12065557777", "--customer", "Smart Calls, Ltd.",
                         "--pin", "4545", "--password", "rachel-secret",
                         "--email", "rachel@example.com"],
                        ["alias", "add", "1206555#4545", "--account", "12065557777"]):
            code, out, err = self.admin(*command)
            self.assertEqual(code, 0, err)
        code, output = first.stop()
        # twistd shuts down cleanly, then re-raises the signal it was stopped by.
        self.assertEqual(code, -signal.SIGTERM, output)
        self.assertIn("Server Shut Down", output)
        # A new process finds everything again.
        second = self.server()
        self.assertEqual(second.start()["status"], "ok")
        code, out, err = self.admin("--json", "account", "show", "12065557777")
        self.assertEqual(code, 0, err)
        shown = json.loads(out)
        self.assertEqual(shown["aliases"], ["1206555#4545"])
        self.assertEqual(shown["customer"], "Smart Calls, Ltd.")
        self.assertTrue(shown["pin_set"])
        self.assertEqual(shown["quota_bytes"], 100 * 1024 * 1024)
        second.stop()

    def test_start_provision_restart(self):
        return threads.deferToThread(self._scenario)


class TapTests(TapTestsMixin, unittest.TestCase):
    def test_default_store_is_sqlite_under_var(self):
        def scenario():
            process = self.server()
            process.start()
            process.stop()
            self.assertTrue(os.path.exists(os.path.join(self.workdir, "var", "portaum.sqlite")))
        return threads.deferToThread(scenario)

    def assertOneLine(self, code, out, err, expected):
        self.assertNotEqual(code, 0)
        text = (out + err).strip()
        self.assertNotIn("Traceback", text)
        self.assertIn(expected, text)
        lines = [line for line in text.splitlines() if "portaum" in line and ":" in line
                 and expected in line]
        self.assertEqual(len(lines), 1, text)

    def test_bad_config_stops_with_one_line(self):
        path = os.path.join(self.workdir, "tap.conf")
        with open(path, "w") as handle:
            handle.write("[sip]\nudp_port = 5060\n\n[imap]\nport = many\n")
        code, out, err = run(TWISTD, self.workdir, "-n", "--pidfile=", "portaum", "-c", path)
        self.assertOneLine(code, out, err,
                           f"portaum: {path}:5: [imap] port: expected a port number")
        code, out, err = run(TWISTD, self.workdir, "-n", "--pidfile=", "portaum", "-c", "missing.conf")
        self.assertOneLine(code, out, err, "portaum: missing.conf: configuration file not found")

    def test_port_in_use_stops_with_one_line(self):
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        self.addCleanup(busy.close)
        port = busy.getsockname()[1]
        code, out, err = run(TWISTD, self.workdir, "-n", "--pidfile=", "portaum", *OFF,
                             "--set", "web.listen_address=127.0.0.1", "--set", f"web.port={port}")
        self.assertOneLine(code, out, err, f"[web] port: cannot listen on TCP 127.0.0.1:{port}")

    def test_newer_schema_is_refused(self):
        def scenario():
            process = self.server()
            process.start()
            process.stop()
            database = sqlite3.connect(os.path.join(self.workdir, "var", "portaum.sqlite"))
            database.execute("UPDATE schema_version SET version = 999")
            database.commit()
            database.close()
            return run(TWISTD, self.workdir, "-n", "--pidfile=", "portaum", *OFF,
                       "--set", "web.port=0")
        code, out, err = yield threads.deferToThread(scenario)
        self.assertOneLine(code, out, err, "the database schema is version 999")
    test_newer_schema_is_refused = defer.inlineCallbacks(test_newer_schema_is_refused)

    def test_cli_bad_input_is_one_line(self):
        def scenario():
            results = {}
            self.admin("customer", "add", "Acme")
            for name, command in {
                "duplicate": ["customer", "add", "Acme"],
                "malformed": ["account", "add", "12-34", "--customer", "Acme"],
                "unknown customer": ["account", "add", "15551234", "--customer", "Nobody"],
                "bad pin": ["account", "add", "15551234", "--customer", "Acme", "--pin", "12"],
                "bad option": ["access-number", "add", "AD%", "roaming-pin", "-o", "novalue"],
                "unknown account": ["alias", "add", "99#1", "--account", "404"],
            }.items():
                results[name] = self.admin(*command)
            return results
        results = yield threads.deferToThread(scenario)
        expected = {
            "duplicate": "portaum-admin: error: customer 'Acme' already exists",
            "malformed": "portaum-admin: error: account ID must be a phone number",
            "unknown customer": "portaum-admin: error: no customer named 'Nobody'",
            "bad pin": "portaum-admin: error: PIN must be 4 to 10 digits",
            "bad option": "portaum-admin: error: option must be KEY=VALUE, got 'novalue'",
            "unknown account": "portaum-admin: error: no account 404",
        }
        for name, (code, out, err) in results.items():
            self.assertEqual(code, 1, name)
            self.assertEqual(err.count("\n"), 1, (name, err))
            self.assertTrue(err.startswith(expected[name]), (name, err))
    test_cli_bad_input_is_one_line = defer.inlineCallbacks(test_cli_bad_input_is_one_line)


class TapPostgresTests(TapTestsMixin, unittest.TestCase):
    engine = "postgres"
    if not POSTGRES_DSN:
        skip = "PORTAUM_TEST_POSTGRES is not set"
