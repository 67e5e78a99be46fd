"""Typed configuration: one INI section per service, every option declared once.

The file format is deliberately small (``[section]``, ``key = value``, ``#`` or
``;`` comments) and parsed here rather than with :mod:`configparser` so that
every error can name the file, the line and the key.  Options are declared in
:data:`SECTIONS`; ``tap.conf`` at the repository root documents each one and a
test keeps the two in step.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Any, Callable


class ConfigError(Exception):
    """A configuration problem a user can fix; ``str()`` is one line."""

    def __init__(self, message: str, source: str | None = None,
                 line: int | None = None, key: str | None = None):
        self.message = message
        self.source = source
        self.line = line
        self.key = key
        super().__init__(self.one_line())

    def one_line(self) -> str:
        where = ""
        if self.source:
            where = self.source + (f":{self.line}" if self.line else "") + ": "
        what = f"{self.key}: " if self.key else ""
        return f"{where}{what}{self.message}"


# --- value types -----------------------------------------------------------

def _str(text: str) -> str:
    return text


def _int(text: str) -> int:
    try:
        return int(text, 10)
    except ValueError:
        raise ValueError(f"expected a whole number, got {text!r}") from None


def _positive_int(text: str) -> int:
    value = _int(text)
    if value <= 0:
        raise ValueError(f"expected a number greater than 0, got {text!r}")
    return value


def _port(text: str) -> int:
    """A TCP/UDP port; 0 switches the listener off."""
    try:
        value = int(text, 10)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise ValueError(f"expected a port number 0-65535 (0 = off), got {text!r}")
    return value


def _bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "yes", "true", "on"):
        return True
    if lowered in ("0", "no", "false", "off"):
        return False
    raise ValueError(f"expected yes or no, got {text!r}")


def _seconds(text: str) -> float:
    """A duration: ``30``, ``30s``, ``5m``, ``2h`` or ``1d``."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if not match:
        raise ValueError(f"expected a duration such as 30s, 5m, 2h or 1d, got {text!r}")
    scale = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
    return float(match.group(1)) * scale


def _positive_seconds(text: str) -> float:
    value = _seconds(text)
    if value <= 0:
        raise ValueError(f"expected a duration above 0, got {text!r}")
    return value


def parse_size(text: str) -> int:
    """A size in bytes: ``1048576``, ``512K``, ``100M``, ``2G``."""
    match = re.fullmatch(r"\s*(\d+)\s*([kKmMgG]?)[bB]?\s*", text)
    if not match:
        raise ValueError(f"expected a size such as 100M, 512K or 2G, got {text!r}")
    scale = {"": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}[match.group(2).lower()]
    return int(match.group(1)) * scale


def _send_ahead(text: str) -> int:
    """Milliseconds of RTP prepared ahead: whole media ticks (20 ms), at most 200."""
    value = _int(text)
    if not 0 <= value <= 200 or value % 20:
        raise ValueError(f"expected 0-200 ms in steps of 20 (the media tick), got {text!r}")
    return value


def _prompt_ahead(text: str) -> int:
    """Milliseconds of prompt audio prepared ahead: whole media ticks, at most 2000."""
    value = _int(text)
    if not 0 <= value <= 2000 or value % 20:
        raise ValueError(f"expected 0-2000 ms in steps of 20 (the media tick), got {text!r}")
    return value


def _list(text: str) -> tuple[str, ...]:
    return tuple(item for item in re.split(r"[\s,]+", text.strip()) if item)


def _choice(*choices: str) -> Callable[[str], str]:
    def convert(text: str) -> str:
        if text not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {text!r}")
        return text
    convert.__name__ = "one of " + "/".join(choices)
    return convert


@dataclasses.dataclass(frozen=True)
class Option:
    name: str
    convert: Callable[[str], Any]
    default: str
    help: str


def _opt(name, convert, default, help_text):
    return Option(name, convert, default, help_text)


SECTIONS: dict[str, tuple[Option, ...]] = {
    "storage": (
        _opt("engine", _choice("sqlite", "postgres"), "sqlite",
             "sqlite (one node, zero setup) or postgres (cluster)"),
        _opt("data_dir", _str, "var", "directory for the SQLite file, TLS keys and spool"),
        _opt("sqlite_path", _str, "", "SQLite file; empty means <data_dir>/portaum.sqlite"),
        _opt("sqlite_synchronous", _choice("full", "normal"), "full",
             "full survives power loss; normal survives process crashes only"),
        _opt("postgres_dsn", _str, "", "libpq connection string, e.g. host=db dbname=portaum user=portaum"),
        _opt("pool_size", _positive_int, "4", "PostgreSQL connections per node"),
    ),
    "sip": (
        _opt("listen_address", _str, "0.0.0.0", "address SIP listens on (:: for IPv6)"),
        _opt("udp_port", _port, "5060", "SIP over UDP"),
        _opt("tcp_port", _port, "5060", "SIP over TCP"),
        _opt("tls_port", _port, "0", "SIP over TLS (0 = off)"),
        _opt("domain", _str, "", "SIP domain of the accounts; empty means the host name"),
        _opt("realm", _str, "portaum", "digest authentication realm"),
        _opt("public_address", _str, "", "address written into Contact/SDP when behind NAT"),
        _opt("outbound_proxy", _str, "", "SIP URI of the trunk or proxy for outgoing legs"),
        _opt("outbound_username", _str, "", "digest user name for the trunk"),
        _opt("outbound_password", _str, "", "digest password for the trunk"),
        _opt("trusted_proxies", _list, "", "addresses whose requests need no authentication"),
        _opt("max_calls", _positive_int, "1000", "beyond this, new calls get 503 Retry-After"),
        _opt("session_expires", _seconds, "1800", "RFC 4028 session interval"),
        _opt("digest_algorithms", _list, "SHA-256, MD5",
             "challenges offered to phones (MWI), best first; MD5 alone for phones that "
             "give up on a SHA-256 challenge (baresip 1.0)"),
        _opt("mwi_expires", _seconds, "3600", "MWI subscription length when the phone names none"),
    ),
    "rtp": (
        _opt("port_min", _port, "16384", "lowest RTP port (even)"),
        _opt("port_max", _port, "32767", "highest RTP port"),
        _opt("ptime", _positive_int, "20", "packet time in milliseconds"),
        _opt("dead_peer_timeout", _seconds, "30s", "hang up when nothing is heard for this long"),
        _opt("symmetric", _bool, "yes", "send RTP to where the far end's packets come from"),
        _opt("batched_reads", _bool, "yes",
             "the media tick reads every RTP socket itself, the usual packet without Python; "
             "no: one reactor callback per packet (several times the CPU per call, see "
             "bench/README.md)"),
        _opt("send_ahead", _send_ahead, "60",
             "ms of RTP prepared ahead and sent on time by a thread of its own, so that a "
             "pause of the server shorter than this does not reach the streams; it adds as "
             "much delay to what is sent (0: the media tick sends as it runs)"),
        _opt("prompt_ahead", _prompt_ahead, "0",
             "ms of prompt audio prepared ahead (with send_ahead above 0), so that a longer "
             "pause of the server does not reach callers listening to a prompt; a key press "
             "that interrupts the prompt takes back what was not yet due, so it adds no "
             "delay (0 or at most send_ahead: off; see bench/README.md before turning it on)"),
        _opt("gc_freeze", _bool, "yes",
             "after each full garbage collection, keep what survived it out of the next one, "
             "so that the collector's pause, which stops every call's media, grows with what "
             "is new rather than with the calls in progress"),
        _opt("gc_thaw_interval", _positive_seconds, "1h",
             "with gc_freeze, how often everything kept out goes through one full collection "
             "again, to reclaim reference cycles among old objects (one pause as long as a "
             "full collection without gc_freeze; /health gc shows what it reclaimed)"),
    ),
    "imap": (
        _opt("listen_address", _str, "0.0.0.0", "address IMAP listens on"),
        _opt("port", _port, "1143", "IMAP with STARTTLS"),
        _opt("tls_port", _port, "1993", "IMAP over implicit TLS"),
        _opt("allow_plaintext_auth", _bool, "no", "allow LOGIN before STARTTLS"),
        _opt("idle_timeout", _seconds, "30m", "close connections idle this long"),
    ),
    "pop3": (
        _opt("listen_address", _str, "0.0.0.0", "address POP3 listens on"),
        _opt("port", _port, "1110", "POP3 with STLS"),
        _opt("tls_port", _port, "1995", "POP3 over implicit TLS"),
        _opt("allow_plaintext_auth", _bool, "no", "allow USER/PASS before STLS"),
        _opt("idle_timeout", _seconds, "10m", "close connections idle this long"),
    ),
    "smtp": (
        _opt("listen_address", _str, "0.0.0.0", "address SMTP listens on"),
        _opt("port", _port, "1025", "inbound mail for local mailboxes (MX role)"),
        _opt("submission_port", _port, "1587", "authenticated submission"),
        _opt("hostname", _str, "", "name used in greetings and Received headers; empty = host name"),
        _opt("max_message_size", parse_size, "25M", "largest message accepted"),
        _opt("allow_plaintext_auth", _bool, "no", "allow AUTH before STARTTLS on submission"),
        _opt("smarthost", _str, "", "host[:port] to relay outbound mail through; empty = MX lookup"),
        _opt("smarthost_username", _str, "", "AUTH user name for the smarthost"),
        _opt("smarthost_password", _str, "", "AUTH password for the smarthost"),
        _opt("smarthost_require_tls", _bool, "no",
             "refuse to relay through the smarthost without STARTTLS"),
        _opt("retry_for", _seconds, "5d", "give up on an outbound message after this long"),
        _opt("from_address", _str, "", "sender of notifications; empty = portaum@<hostname>"),
    ),
    "web": (
        _opt("listen_address", _str, "0.0.0.0", "address the web site listens on"),
        _opt("port", _port, "8080", "self-care and admin site, JSON API"),
        _opt("admin_password", _str, "", "operator password for the admin site; empty = admin off"),
    ),
    "fax": (
        _opt("enabled", _bool, "yes", "receive faxes (needs libspandsp)"),
        _opt("local_ident", _str, "PORTAUM", "our station identifier (CSI)"),
        _opt("ecm", _bool, "yes", "offer error correction mode"),
        _opt("t38", _bool, "yes", "switch to T.38 when the far end supports it"),
    ),
    "prompts": (
        _opt("directory", _str, "", "shipped prompt set; empty = the prompts/ beside the code"),
        _opt("languages", _list, "en es", "languages offered, first is the default"),
    ),
    "tls": (
        _opt("certificate", _str, "", "PEM certificate; empty = self-signed in <data_dir>/tls"),
        _opt("private_key", _str, "", "PEM private key for the certificate"),
    ),
    "payment": (
        _opt("url", _str, "", "HTTPS URL of the payment gateway's charge endpoint; empty = card top-up off"),
        _opt("username", _str, "", "HTTP basic user name at the gateway"),
        _opt("password", _str, "", "HTTP basic password at the gateway"),
        _opt("timeout", _seconds, "30s", "give up on a gateway request after this long"),
    ),
    "cluster": (
        _opt("node_name", _str, "", "this node's name in logs and call records; empty = host name"),
        _opt("secret", _str, "", "shared secret of the nodes (nonces, cookies); empty = per data_dir"),
    ),
}


class Section:
    """The typed values of one section, as attributes."""

    def __init__(self, name: str, values: dict[str, Any]):
        self._name = name
        self.__dict__.update(values)

    def __repr__(self):
        items = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"<[{self._name}] {items}>"


class Config:
    """All sections; ``config.sip.udp_port`` and so on."""

    def __init__(self, sections: dict[str, Section], source: str | None):
        self.source = source
        self.sections = sections
        for name, section in sections.items():
            setattr(self, name, section)

    @property
    def data_dir(self) -> str:
        return self.storage.data_dir

    @property
    def sqlite_path(self) -> str:
        return self.storage.sqlite_path or os.path.join(self.storage.data_dir, "portaum.sqlite")


def parse_ini(text: str, source: str) -> dict[str, dict[str, tuple[str, int]]]:
    """Parse INI text into ``{section: {key: (value, line)}}``; the header's own
    line is kept under the key ``""``."""
    result: dict[str, dict[str, tuple[str, int]]] = {}
    current: dict[str, tuple[str, int]] | None = None
    current_name = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            if not line.endswith("]") or len(line) < 3:
                raise ConfigError(f"malformed section header {line!r}", source, number)
            current_name = line[1:-1].strip()
            if current_name in result:
                raise ConfigError(f"section [{current_name}] appears twice", source, number)
            current = result[current_name] = {"": ("", number)}
            continue
        if "=" not in line:
            raise ConfigError(f"expected 'key = value', got {line!r}", source, number)
        if current is None:
            raise ConfigError("option outside of any [section]", source, number)
        key, value = (part.strip() for part in line.split("=", 1))
        if not key:
            raise ConfigError("missing key before '='", source, number)
        if key in current and key:
            raise ConfigError("set twice in the same section", source, number,
                              f"[{current_name}] {key}")
        current[key] = (value, number)
    return result


def load_config(path: str | None = None,
                overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read ``path`` (optional), apply ``section.key=value`` overrides, and
    convert every option to its type.  Raises :class:`ConfigError`."""
    raw: dict[str, dict[str, tuple[str, int | None]]] = {}
    if path is not None:
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except FileNotFoundError:
            raise ConfigError("configuration file not found", path) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read configuration file: {exc}", path) from None
        raw = parse_ini(text, path)
    for override in overrides:
        match = re.fullmatch(r"\s*([a-z0-9_]+)\.([a-z0-9_]+)\s*=(.*)", override)
        if not match:
            raise ConfigError(f"expected section.key=value, got {override!r}", "command line")
        section, key, value = match.groups()
        raw.setdefault(section, {})[key] = (value.strip(), None)

    header_lines = {name: options.pop("", ("", None))[1] for name, options in raw.items()}
    sections = {}
    for section_name, options in raw.items():
        if section_name not in SECTIONS:
            line = header_lines[section_name]
            raise ConfigError(f"unknown section; known sections are {', '.join(SECTIONS)}",
                              _source_for(path, line), line, f"[{section_name}]")
    for section_name, declared in SECTIONS.items():
        given = raw.get(section_name, {})
        known = {option.name: option for option in declared}
        for key, (_, line) in given.items():
            if key not in known:
                raise ConfigError("unknown option", _source_for(path, line), line,
                                  f"[{section_name}] {key}")
        values = {}
        for option in declared:
            text, line = given.get(option.name, (option.default, None))
            try:
                values[option.name] = option.convert(text)
            except ValueError as exc:
                raise ConfigError(str(exc), _source_for(path, line), line,
                                  f"[{section_name}] {option.name}") from None
        sections[section_name] = Section(section_name, values)
    config = Config(sections, path)
    _check_consistency(config, path)
    return config


def _source_for(path: str | None, line: int | None) -> str:
    # A value without a line number came from a --set override.
    return path if (path and line is not None) else "command line"


def _check_consistency(config: Config, path: str | None) -> None:
    if config.storage.engine == "postgres" and not config.storage.postgres_dsn:
        raise ConfigError("engine = postgres needs postgres_dsn", path or "command line",
                          None, "[storage] postgres_dsn")
    if config.rtp.port_min >= config.rtp.port_max:
        raise ConfigError("port_min must be below port_max", path or "command line",
                          None, "[rtp] port_min")
