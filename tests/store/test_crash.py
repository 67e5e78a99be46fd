"""Killing the process mid-burst loses no delivery that had returned success."""

import hashlib
import os
import signal
import subprocess
import sys

from twisted.internet import defer, threads

from tests.support import StoreTestCase, on_both_engines

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_and_kill(overrides, deliveries_before_kill):
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.store.crash_writer", *overrides], cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": ROOT})
    acknowledged = []
    try:
        for line in child.stdout:
            if line.strip() == "ready":
                continue
            uid, digest = line.split()
            acknowledged.append((int(uid), digest))
            if len(acknowledged) >= deliveries_before_kill:
                child.send_signal(signal.SIGKILL)
                break
    finally:
        child.kill()
        child.wait(30)
        error_text = child.stderr.read()
        child.stdout.close()
        child.stderr.close()
    return acknowledged, child.returncode, error_text


@on_both_engines
class CrashTests(StoreTestCase):
    @defer.inlineCallbacks
    def test_sigkill_mid_burst_keeps_every_acknowledged_delivery(self):
        overrides = self.config_overrides()
        if self.engine == "sqlite":
            # The real default: full synchronous commits.
            overrides = [o for o in overrides if "synchronous" not in o]
        else:
            self.make_config()  # empty the shared test database first
        acknowledged, code, errors = yield threads.deferToThread(run_and_kill, overrides, 60)
        self.assertEqual(code, -signal.SIGKILL, errors)
        self.assertEqual(len(acknowledged), 60, errors)
        store = yield defer.ensureDeferred(self.open_store(*overrides))
        mailbox = yield defer.ensureDeferred(store.mailboxes.get_mailbox("15550001111"))
        inbox = yield defer.ensureDeferred(store.mailboxes.get_folder(mailbox.id, "INBOX"))
        stored = yield defer.ensureDeferred(
            store.mailboxes.get_message_data(inbox.id, [uid for uid, _ in acknowledged]))
        for uid, digest in acknowledged:
            self.assertIn(uid, stored)
            self.assertEqual(hashlib.sha256(stored[uid]).hexdigest(), digest)
        # Quota accounting matches what is really stored (nothing half-written).
        infos = yield defer.ensureDeferred(store.mailboxes.get_message_infos(inbox.id))
        mailbox = yield defer.ensureDeferred(store.mailboxes.get_mailbox("15550001111"))
        self.assertEqual(mailbox.used_bytes, sum(info.size for info in infos))
