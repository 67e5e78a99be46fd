"""HTTP Digest authentication for SIP (RFC 2617, RFC 7616, RFC 8760).

UAC side (outgoing legs answering 401/407): :func:`parse_challenge`,
:func:`select_challenge`, :func:`build_authorization`.

Server side: :class:`DigestServer` issues challenges whose nonce carries its
own timestamp and an HMAC over it, so any cluster node holding the shared
secret can verify it without shared state; :meth:`DigestServer.verify`
checks credentials against the stored HA1 (``H(user:realm:password)``,
precomputed per algorithm with :func:`compute_ha1`).

Without server-side state a nonce can be replayed within its lifetime; the
lifetime (default 300 s) bounds that window.  Callers that need strict
replay protection can track ``(nonce, nc)`` pairs themselves.
"""

import base64
import hashlib
import hmac
import os
import struct
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Callable, Iterable, Mapping

from portaum_tx.sip.headers import AuthHeader, SipParseError

__all__ = [
    "DigestError", "Challenge", "Credentials", "DigestServer", "VerifyResult",
    "parse_challenge", "select_challenge", "parse_credentials", "build_authorization",
    "compute_ha1", "ALGORITHMS",
]


class DigestError(ValueError):
    """A challenge or credentials that cannot be used; the message says why."""


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_HASHES: dict[str, Callable[[bytes], str]] = {"MD5": _md5, "SHA-256": _sha256}
ALGORITHMS = ("MD5", "MD5-sess", "SHA-256", "SHA-256-sess")
# Strongest first (RFC 8760 sec. 2.4: the UAC uses the first it supports
# among the server's preferences; we order our own choice the same way).
_PREFERENCE = ("SHA-256", "SHA-256-sess", "MD5", "MD5-sess")


def _normalise_algorithm(name: str | None) -> str:
    if not name:
        return "MD5"
    for algorithm in ALGORITHMS:
        if algorithm.lower() == name.lower():
            return algorithm
    raise DigestError("unsupported digest algorithm %r" % name[:40])


def _hash_for(algorithm: str) -> Callable[[bytes], str]:
    return _HASHES[algorithm.replace("-sess", "")]


def compute_ha1(username: str, realm: str, password: str, algorithm: str = "MD5") -> str:
    """HA1 = H(username:realm:password), to be stored instead of the password."""
    algorithm = _normalise_algorithm(algorithm).replace("-sess", "")
    return _hash_for(algorithm)(("%s:%s:%s" % (username, realm, password)).encode("utf-8"))


def _as_auth_header(value: str | AuthHeader) -> AuthHeader:
    if isinstance(value, AuthHeader):
        return value
    try:
        return AuthHeader.parse(value)
    except SipParseError as exc:
        raise DigestError(str(exc)) from None


@dataclass
class Challenge:
    """A Digest challenge from WWW-Authenticate or Proxy-Authenticate."""

    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: list[str] = field(default_factory=list)
    opaque: str | None = None
    stale: bool = False
    domain: str | None = None


def parse_challenge(value: str | AuthHeader) -> Challenge:
    """Parse one WWW-/Proxy-Authenticate value; :class:`DigestError` if unusable."""
    header = _as_auth_header(value)
    if header.scheme.lower() != "digest":
        raise DigestError("authentication scheme %r is not Digest" % header.scheme[:40])
    params = header.params
    if "realm" not in params or "nonce" not in params:
        raise DigestError("Digest challenge without realm or nonce")
    qop = [q.strip() for q in params.get("qop", "").split(",") if q.strip()]
    return Challenge(realm=params["realm"], nonce=params["nonce"],
                     algorithm=_normalise_algorithm(params.get("algorithm")),
                     qop=qop, opaque=params.get("opaque"),
                     stale=params.get("stale", "").lower() == "true",
                     domain=params.get("domain"))


def select_challenge(values: Iterable[str | AuthHeader]) -> Challenge:
    """The best usable challenge among several (SHA-256 before MD5)."""
    usable = []
    for value in values:
        try:
            usable.append(parse_challenge(value))
        except DigestError:
            continue
    if not usable:
        raise DigestError("no usable Digest challenge")
    return min(usable, key=lambda c: _PREFERENCE.index(c.algorithm))


def _response(algorithm: str, ha1: str, nonce: str, method: str, uri: str,
              qop: str | None, nc: str | None, cnonce: str | None, body: bytes) -> str:
    h = _hash_for(algorithm)
    if algorithm.endswith("-sess"):
        ha1 = h(("%s:%s:%s" % (ha1, nonce, cnonce or "")).encode("utf-8"))
    if qop == "auth-int":
        ha2 = h(("%s:%s:%s" % (method, uri, h(body))).encode("utf-8"))
    else:
        ha2 = h(("%s:%s" % (method, uri)).encode("utf-8"))
    if qop:
        data = "%s:%s:%s:%s:%s:%s" % (ha1, nonce, nc, cnonce, qop, ha2)
    else:
        data = "%s:%s:%s" % (ha1, nonce, ha2)
    return h(data.encode("utf-8"))


def build_authorization(challenge: Challenge, username: str, password: str, method: str,
                        uri: str, nc: int = 1, cnonce: str | None = None,
                        body: bytes = b"") -> AuthHeader:
    """Credentials answering ``challenge`` (put ``str()`` of it in Authorization or
    Proxy-Authorization).  Uses qop=auth when offered (auth-int if only that is),
    with ``nc`` counting the requests made with this nonce."""
    if challenge.qop:
        qop = "auth" if "auth" in challenge.qop else \
            "auth-int" if "auth-int" in challenge.qop else None
        if qop is None:
            raise DigestError("no supported qop in %r" % challenge.qop)
    else:
        qop = None
    cnonce = cnonce or os.urandom(12).hex()
    nc_text = "%08x" % nc
    ha1 = compute_ha1(username, challenge.realm, password, challenge.algorithm)
    response = _response(challenge.algorithm, ha1, challenge.nonce, method, uri,
                         qop, nc_text, cnonce, body)
    params = {"username": username, "realm": challenge.realm, "nonce": challenge.nonce,
              "uri": uri, "response": response, "algorithm": challenge.algorithm}
    if qop:
        params.update({"qop": qop, "nc": nc_text, "cnonce": cnonce})
    if challenge.opaque is not None:
        params["opaque"] = challenge.opaque
    return AuthHeader("Digest", params)


@dataclass
class Credentials:
    """Digest credentials from Authorization / Proxy-Authorization."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str = "MD5"
    qop: str | None = None
    nc: str | None = None
    cnonce: str | None = None
    opaque: str | None = None


def parse_credentials(value: str | AuthHeader) -> Credentials:
    """Parse an Authorization value; :class:`DigestError` if not usable Digest."""
    header = _as_auth_header(value)
    if header.scheme.lower() != "digest":
        raise DigestError("authentication scheme %r is not Digest" % header.scheme[:40])
    params = header.params
    missing = [n for n in ("username", "realm", "nonce", "uri", "response") if n not in params]
    if missing:
        raise DigestError("Digest credentials without %s" % ", ".join(missing))
    qop = params.get("qop")
    if qop is not None and qop not in ("auth", "auth-int"):
        raise DigestError("unsupported qop %r" % qop[:20])
    if qop and ("nc" not in params or "cnonce" not in params):
        raise DigestError("qop without nc or cnonce")
    return Credentials(params["username"], params["realm"], params["nonce"], params["uri"],
                       params["response"], _normalise_algorithm(params.get("algorithm")),
                       qop, params.get("nc"), params.get("cnonce"), params.get("opaque"))


class VerifyResult(Enum):
    """Outcome of :meth:`DigestServer.verify`."""

    OK = "ok"
    STALE = "stale"        # right password, expired nonce: challenge again with stale=true
    INVALID = "invalid"    # wrong password, foreign or forged nonce, wrong realm


class DigestServer:
    """Stateless Digest challenges and verification for one realm.

    ``secret`` must be the same on every cluster node.  ``now`` returns the
    current time in seconds (injected for tests).
    """

    _NONCE_STRUCT = struct.Struct("!QQ")

    def __init__(self, realm: str, secret: bytes, nonce_lifetime: float = 300.0,
                 algorithms: Iterable[str] = ("SHA-256", "MD5"),
                 now: Callable[[], float] = time.time):
        if not secret:
            raise ValueError("DigestServer needs a non-empty secret")
        self.realm = realm
        self.secret = secret
        self.nonce_lifetime = nonce_lifetime
        self.algorithms = tuple(_normalise_algorithm(a) for a in algorithms)
        self.now = now

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self.secret, payload + self.realm.encode("utf-8"),
                        hashlib.sha256).digest()[:16]

    def make_nonce(self) -> str:
        """A nonce = timestamp + random + HMAC(secret, both + realm), base64url."""
        payload = self._NONCE_STRUCT.pack(int(self.now() * 1000), int.from_bytes(os.urandom(8), "big"))
        return base64.urlsafe_b64encode(payload + self._mac(payload)).decode("ascii").rstrip("=")

    def nonce_age(self, nonce: str) -> float | None:
        """Seconds since ``nonce`` was issued, or None if it was not issued with our secret."""
        try:
            raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        except (ValueError, TypeError):
            return None
        if len(raw) != 32:
            return None
        payload, mac = raw[:16], raw[16:]
        if not hmac.compare_digest(mac, self._mac(payload)):
            return None
        issued_ms, _ = self._NONCE_STRUCT.unpack(payload)
        return self.now() - issued_ms / 1000.0

    def challenge(self, stale: bool = False) -> list[AuthHeader]:
        """Challenge values, one per algorithm (SHA-256 first per RFC 8760).

        Put each in its own WWW-Authenticate (401) or Proxy-Authenticate (407).
        """
        nonce = self.make_nonce()
        out = []
        for algorithm in self.algorithms:
            params = {"realm": self.realm, "nonce": nonce, "algorithm": algorithm,
                      "qop": "auth"}
            if stale:
                params["stale"] = "true"
            out.append(AuthHeader("Digest", params))
        return out

    def verify(self, credentials: Credentials, method: str,
               ha1: str | Mapping[str, str], body: bytes = b"") -> VerifyResult:
        """Check ``credentials`` for a request with ``method``.

        ``ha1`` is the stored HA1 hex for the credentials' algorithm, or a map
        from base algorithm ("MD5", "SHA-256") to HA1.  The caller checks that
        ``credentials.uri`` names the Request-URI and looks up HA1 by
        ``credentials.username``.
        """
        if credentials.realm != self.realm:
            return VerifyResult.INVALID
        if credentials.algorithm not in self.algorithms and \
                credentials.algorithm.replace("-sess", "") not in self.algorithms:
            return VerifyResult.INVALID
        if isinstance(ha1, Mapping):
            stored = ha1.get(credentials.algorithm.replace("-sess", ""))
            if stored is None:
                return VerifyResult.INVALID
        else:
            stored = ha1
        age = self.nonce_age(credentials.nonce)
        if age is None or age < -5:
            return VerifyResult.INVALID
        expected = _response(credentials.algorithm, stored.lower(), credentials.nonce, method,
                             credentials.uri, credentials.qop, credentials.nc,
                             credentials.cnonce, body)
        if not hmac.compare_digest(expected, credentials.response.lower()):
            return VerifyResult.INVALID
        if age > self.nonce_lifetime:
            return VerifyResult.STALE
        return VerifyResult.OK
