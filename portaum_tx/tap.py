"""``twistd portaum``: command-line options and the service they make."""

from __future__ import annotations

import sys

from twisted.python import usage

from .config import ConfigError, load_config


class Options(usage.Options):
    synopsis = "[--config tap.conf] [--set section.key=value ...]"
    longdesc = ("Runs the portaum unified-messaging server. Without --config it runs on "
                "defaults: an embedded SQLite store under ./var/ and unprivileged ports. "
                "Every option is documented in tap.conf.")
    optParameters = [
        ["config", "c", None, "configuration file (INI, see tap.conf)"],
    ]

    def __init__(self):
        super().__init__()
        self["set"] = []

    def opt_set(self, assignment):
        """Override one option: section.key=value (repeatable)."""
        self["set"].append(assignment)

    opt_s = opt_set


def makeService(options):
    from twisted.internet import reactor
    from .server import PortaumService
    try:
        config = load_config(options["config"], options["set"])
    except ConfigError as exc:
        # One line, no traceback: twistd would otherwise print one.
        print(f"portaum: {exc}", file=sys.stderr)
        raise SystemExit(1)
    return PortaumService(config, reactor)
