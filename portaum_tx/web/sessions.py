"""Signed session cookies and CSRF tokens.

A session is a signed token held in an HttpOnly cookie, not a server-side
row: every node of a cluster shares the secret and so accepts every other
node's sessions.  The token carries a fingerprint of the account's password
hash, so changing the password ends every other session of that account.
The CSRF token is derived from the session's nonce; the page reads it from
the session endpoint and sends it back in a header on every change.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import os

USER_COOKIE = b"portaum_session"
ADMIN_COOKIE = b"portaum_admin"
CSRF_HEADER = b"x-csrf-token"
LIFETIME = 12 * 3600


class BadSession(Exception):
    """The token is malformed, forged or expired."""


@dataclasses.dataclass(frozen=True)
class Session:
    role: str          # "user" or "admin"
    subject: str       # account ID, or "operator"
    issued: int
    expires: int
    nonce: str
    fingerprint: str = ""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def fingerprint(password_hash: str | None) -> str:
    return hashlib.sha256((password_hash or "").encode()).hexdigest()[:16]


class SessionSigner:
    def __init__(self, secret: str, lifetime: int = LIFETIME):
        self._key = hashlib.sha256(b"portaum web session\0" + secret.encode()).digest()
        self.lifetime = lifetime

    def _mac(self, data: bytes) -> bytes:
        return hmac.new(self._key, data, hashlib.sha256).digest()

    def issue(self, role: str, subject: str, now: int, password_hash: str | None = None) -> tuple[str, Session]:
        session = Session(role, subject, now, now + self.lifetime, _b64(os.urandom(12)),
                          fingerprint(password_hash) if role == "user" else "")
        payload = json.dumps(dataclasses.asdict(session), separators=(",", ":")).encode()
        return f"{_b64(payload)}.{_b64(self._mac(payload))}", session

    def verify(self, token: str, now: int) -> Session:
        body, dot, mac = token.partition(".")
        if not dot or len(token) > 2000:
            raise BadSession("malformed session token")
        try:
            payload = _unb64(body)
            given = _unb64(mac)
        except (ValueError, TypeError):
            raise BadSession("malformed session token") from None
        if not hmac.compare_digest(given, self._mac(payload)):
            raise BadSession("session signature does not match")
        try:
            session = Session(**json.loads(payload))
        except (ValueError, TypeError):
            raise BadSession("malformed session payload") from None
        if session.expires <= now:
            raise BadSession("session expired")
        return session

    def csrf_token(self, session: Session) -> str:
        return _b64(self._mac(b"csrf\0" + session.nonce.encode()))[:32]

    def check_csrf(self, session: Session, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(given.encode(), self.csrf_token(session).encode())
