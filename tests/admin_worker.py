"""Runs portaum-admin commands for tests in one long-lived process.

Starting Python and importing the product for every command made the CLI
tests slow; this worker runs each command exactly as ``portaum-admin`` does
(``portaum_tx.admin.execute``: its own store connection, its own output),
reading one JSON argument list per line and answering one JSON line with the
exit status and what the command printed.  :class:`AdminWorker` is the test
side.
"""

import io
import json
import os
import subprocess
import sys
import threading

from twisted.internet import defer, threads

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def serve() -> None:
    from twisted.internet import reactor
    from portaum_tx.admin import execute

    def loop():
        for line in sys.stdin:
            argv = json.loads(line)
            out, err = io.StringIO(), io.StringIO()
            code = threads.blockingCallFromThread(
                reactor, lambda: defer.ensureDeferred(execute(argv, reactor, out, err)))
            sys.stdout.write(json.dumps({"code": code, "stdout": out.getvalue(),
                                         "stderr": err.getvalue()}) + "\n")
            sys.stdout.flush()
        reactor.callFromThread(reactor.stop)

    reactor.callWhenRunning(lambda: threading.Thread(target=loop, daemon=True).start())
    reactor.run(installSignalHandlers=False)


class AdminWorker:
    """``run(argv) -> (code, stdout, stderr)``, as a separate process would give them."""

    def __init__(self):
        self._child = None

    def run(self, argv):
        if self._child is None:
            self._child = subprocess.Popen(
                [sys.executable, "-m", "tests.admin_worker"], cwd=ROOT, text=True,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                env={**os.environ, "PYTHONPATH": ROOT})
        self._child.stdin.write(json.dumps(list(argv)) + "\n")
        self._child.stdin.flush()
        line = self._child.stdout.readline()
        if not line:
            raise AssertionError(f"the admin worker died running {argv}")
        result = json.loads(line)
        return result["code"], result["stdout"], result["stderr"]

    def close(self):
        if self._child is not None:
            self._child.stdin.close()
            self._child.wait(60)
            self._child.stdout.close()
            self._child = None


class AdminCommands:
    """Mixin for a StoreTestCase: ``admin(*argv, expect=0)`` runs one command against the
    test's database and returns its output, or, when a failure is expected, the one error
    line (without its ``portaum-admin: error:`` prefix when ``error_prefix_kept`` is false)."""

    error_prefix = "portaum-admin: error: "
    error_prefix_kept = True

    def admin(self, *argv: str, expect: int = 0) -> str:
        settings = [arg for override in self._overrides for arg in ("--set", override)]
        if not hasattr(self, "_admin_worker"):
            self._admin_worker = AdminWorker()
            self.addCleanup(self._admin_worker.close)
        code, stdout, stderr = self._admin_worker.run([*settings, *argv])
        if code != expect:
            self.fail(f"portaum-admin {' '.join(argv)} exited {code}, not {expect}:\n"
                      f"{stdout}{stderr}")
        if expect:
            lines = stderr.strip().splitlines()
            self.assertEqual(len(lines), 1, stderr)
            self.assertTrue(lines[0].startswith(self.error_prefix), stderr)
            return lines[0] if self.error_prefix_kept else lines[0][len(self.error_prefix):]
        return stdout

    def admin_json(self, *argv: str):
        return json.loads(self.admin("--json", *argv))


if __name__ == "__main__":
    serve()
