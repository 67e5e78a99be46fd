"""Password and PIN hashing.

scrypt with a random salt, encoded as ``scrypt$n$r$p$salt$hash`` so the
parameters can be raised later without invalidating stored hashes.  SIP
digest authentication cannot use such a hash, so :func:`digest_ha1` keeps
the RFC 8760 HA1 values (MD5 and SHA-256) beside it, as SIP registrars do.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

_N, _R, _P = 2 ** 14, 8, 1


def hash_secret(secret: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(secret.encode("utf-8"), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return "scrypt${}${}${}${}${}".format(
        _N, _R, _P, base64.b64encode(salt).decode(), base64.b64encode(digest).decode())


def verify_secret(secret: str, encoded: str | None) -> bool:
    """True when ``secret`` matches; False for a wrong or unusable hash."""
    if not encoded:
        return False
    try:
        scheme, n, r, p, salt, digest = encoded.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(secret.encode("utf-8"), salt=base64.b64decode(salt),
                                n=int(n), r=int(r), p=int(p), dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def digest_ha1(user: str, realm: str, password: str) -> tuple[str, str]:
    """``(HA1 with MD5, HA1 with SHA-256)`` of ``user:realm:password``."""
    material = f"{user}:{realm}:{password}".encode("utf-8")
    return hashlib.md5(material).hexdigest(), hashlib.sha256(material).hexdigest()
