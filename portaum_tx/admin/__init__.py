"""``portaum-admin``: provisioning from the command line.

Works on the same configuration (and so the same engine and database) as the
server.  Each noun lives in its own module that adds its sub-commands to the
parser; every command prints a readable table, or JSON with ``--json``.
Errors a user can cause print one line and exit non-zero.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..config import ConfigError, load_config

#: Modules that add sub-commands: each has ``register(subparsers)``.
COMMAND_MODULES = ("customers", "accounts", "aliases", "access_numbers", "billing", "attendant")


class CommandError(Exception):
    """A user error found while running a command."""


class Output:
    """Prints results as a table or as JSON."""

    def __init__(self, as_json: bool, stream=None):
        self.as_json = as_json
        self.stream = stream or sys.stdout

    def record(self, data: dict[str, Any]) -> None:
        if self.as_json:
            self.stream.write(json.dumps(data, indent=2, default=str) + "\n")
            return
        width = max((len(k) for k in data), default=0)
        for key, value in data.items():
            self.stream.write(f"{key.ljust(width)}  {'' if value is None else value}\n")

    def table(self, rows: list[dict[str, Any]], columns: list[str]) -> None:
        if self.as_json:
            self.stream.write(json.dumps(rows, indent=2, default=str) + "\n")
            return
        if not rows:
            self.stream.write("(none)\n")
            return
        text = [[("" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
        widths = [max(len(c), *(len(row[i]) for row in text)) for i, c in enumerate(columns)]
        self.stream.write("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths)).rstrip() + "\n")
        for row in text:
            self.stream.write("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() + "\n")

    def done(self, message: str, data: dict[str, Any] | None = None) -> None:
        if self.as_json:
            self.stream.write(json.dumps(data or {"result": message}, default=str) + "\n")
        else:
            self.stream.write(message + "\n")


def build_parser() -> argparse.ArgumentParser:
    import importlib
    parser = argparse.ArgumentParser(
        prog="portaum-admin",
        description="Provision customers, accounts, aliases and access numbers.")
    parser.add_argument("--config", "-c", help="configuration file (default: built-in defaults)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override one configuration option")
    parser.add_argument("--json", action="store_true", help="print JSON")
    nouns = parser.add_subparsers(dest="noun", metavar="NOUN", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(nouns)
    return parser


async def _run(reactor, args, output: Output) -> None:
    from ..accounts import AccountService
    from ..store import open_store
    store = await open_store(args.loaded_config, reactor)
    try:
        context = Context(store, AccountService(store, reactor, args.loaded_config.sip.realm),
                          args.loaded_config, output)
        await args.handler(context, args)
    finally:
        await store.close()


class Context:
    def __init__(self, store, accounts, config, output: Output):
        self.store = store
        self.accounts = accounts
        self.config = config
        self.out = output


async def execute(argv: list[str], reactor, stdout=None, stderr=None) -> int:
    """Run one command on ``reactor``; returns the exit status.

    The command-line entry point runs this on the global reactor; scripts
    and tests that run many commands call it repeatedly in one process."""
    from ..accounts import InvalidValue
    from ..store import StoreError
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    parser = build_parser()
    try:
        with _redirected(stdout, stderr):
            args = parser.parse_args(argv)
    except SystemExit as exit:  # --help, or a usage error argparse has printed
        return int(exit.code or 0)
    try:
        args.loaded_config = load_config(args.config, args.set)
    except ConfigError as exc:
        print(f"portaum-admin: {exc}", file=stderr)
        return 2
    try:
        await _run(reactor, args, Output(args.json, stdout))
    except (CommandError, InvalidValue, StoreError, ValueError) as exc:
        print(f"portaum-admin: error: {exc}", file=stderr)
        return 1
    return 0


class _redirected:
    """argparse writes usage and errors to sys.stdout/sys.stderr itself."""

    def __init__(self, stdout, stderr):
        self._streams = (stdout, stderr)

    def __enter__(self):
        self._saved = (sys.stdout, sys.stderr)
        sys.stdout, sys.stderr = self._streams

    def __exit__(self, *exc_info):
        sys.stdout, sys.stderr = self._saved


def main(argv: list[str] | None = None) -> int:
    from twisted.internet import defer, reactor
    outcome: dict[str, int] = {}

    async def go():
        try:
            outcome["code"] = await execute(sys.argv[1:] if argv is None else argv, reactor)
        finally:
            reactor.stop()

    reactor.callWhenRunning(lambda: defer.ensureDeferred(go()))
    reactor.run(installSignalHandlers=False)
    return outcome.get("code", 1)


def entry_point() -> None:
    sys.exit(main())
