"""Accounts as operators and users meet them: validation, secrets, sign-in.

The CLI, the web and the mail and phone front ends all create accounts and
check passwords and PINs through :class:`AccountService`, so the rules
(what an account ID looks like, PIN length, lockout after failures) are
written once.  Hashing runs off the reactor thread: scrypt is deliberately
slow.
"""

from __future__ import annotations

import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from twisted.internet import threads

from . import passwords
from .config import parse_size
from .mailbox.service import DEFAULT_FOLDERS
from .store import Account, NotFound

DEFAULT_QUOTA = 100 * 1024 * 1024


class InvalidValue(ValueError):
    """A value a user gave is not acceptable; the text says which and why."""


class LoginRefused(Exception):
    """Wrong credentials, or the subject is locked; ``locked_until`` says which."""

    def __init__(self, message: str, locked_until: int = 0):
        super().__init__(message)
        self.locked_until = locked_until


_ACCOUNT_ID = re.compile(r"\+?[0-9]{2,32}")
_ALIAS = re.compile(r"[0-9A-Za-z+*#._-]{1,64}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
CHOICES = {
    "attachment_format": ("wav", "mp3"),
    "fax_format": ("pdf", "tiff"),
    "forward_mode": ("none", "copy", "notify"),
    "greeting": ("personal", "name", "system"),
}


def check_account_id(value: str) -> str:
    if not _ACCOUNT_ID.fullmatch(value):
        raise InvalidValue(f"account ID must be a phone number (digits, optional leading +), "
                           f"got {value!r}")
    return value


def check_alias(value: str) -> str:
    if not _ALIAS.fullmatch(value):
        raise InvalidValue(f"alias may hold digits, letters and + * # . _ - (at most 64), "
                           f"got {value!r}")
    return value


def check_pin(value: str, minimum: int = 4, maximum: int = 10) -> str:
    if not value.isdigit() or not minimum <= len(value) <= maximum:
        raise InvalidValue(f"PIN must be {minimum} to {maximum} digits")
    return value


def check_password(value: str) -> str:
    if len(value) < 6:
        raise InvalidValue("password must be at least 6 characters")
    return value


def check_preference(name: str, value: Any) -> Any:
    """Validate and normalise one account preference."""
    if name in CHOICES:
        if value not in CHOICES[name]:
            raise InvalidValue(f"{name} must be one of {', '.join(CHOICES[name])}, got {value!r}")
        return value
    if name == "language":
        if not re.fullmatch(r"[a-z]{2}(-[A-Za-z]{2})?", value or ""):
            raise InvalidValue(f"language must be a code such as en or es, got {value!r}")
        return value
    if name == "timezone":
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidValue(f"unknown time zone {value!r} (use a name such as "
                               "America/New_York)") from None
        return value
    if name in ("email", "forward_address"):
        if value in (None, ""):
            return None
        if not _EMAIL.fullmatch(value):
            raise InvalidValue(f"{name} is not an e-mail address: {value!r}")
        return value.lower() if name == "email" else value
    if name == "um_enabled":
        return int(bool(value))
    if name in ("associated_number",):
        if value in (None, ""):
            return None
        if not value.isdigit():
            raise InvalidValue(f"associated number must be digits, got {value!r}")
        return value
    if name == "mwi_contact":
        if value in (None, ""):
            return None
        if not re.fullmatch(r"sips?:\S+", value):
            raise InvalidValue(f"MWI contact must be a sip: URI, got {value!r}")
        return value
    raise InvalidValue(f"unknown account setting {name!r}")


def parse_quota(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise InvalidValue(f"quota: {exc}") from None


class AccountService:
    #: Failed sign-ins counted within this window lock the subject...
    FAILURE_WINDOW = 15 * 60
    FAILURE_LIMIT = 5
    #: ...for this long.
    LOCK_FOR = 15 * 60

    def __init__(self, store, reactor, realm: str = "portaum"):
        self.store = store
        self._reactor = reactor
        self.realm = realm

    def _hash(self, secret: str):
        return threads.deferToThread(passwords.hash_secret, secret)

    async def _secret_fields(self, account_id: str, pin: str | None,
                             password: str | None) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        if pin is not None:
            fields["pin_hash"] = await self._hash(check_pin(pin))
        if password is not None:
            fields["password_hash"] = await self._hash(check_password(password))
            md5, sha256 = passwords.digest_ha1(account_id, self.realm, password)
            fields.update(digest_realm=self.realm, ha1_md5=md5, ha1_sha256=sha256)
        return fields

    async def create_account(self, account_id: str, customer: str, *, pin: str | None = None,
                             password: str | None = None, quota: int = DEFAULT_QUOTA,
                             **preferences: Any) -> Account:
        check_account_id(account_id)
        values = {name: check_preference(name, value) for name, value in preferences.items()
                  if value is not None}
        owner = await self.store.accounts.get_customer(customer)
        values.update(await self._secret_fields(account_id, pin, password))
        return await self.store.accounts.add_account(
            account_id, owner.id, quota_bytes=quota, mailbox_folders=DEFAULT_FOLDERS, **values)

    async def set_secrets(self, account_id: str, *, pin: str | None = None,
                          password: str | None = None) -> Account:
        await self.store.accounts.get_account(account_id)
        fields = await self._secret_fields(account_id, pin, password)
        return await self.store.accounts.set_account_fields(account_id, **fields)

    async def set_preferences(self, account_id: str, **preferences: Any) -> Account:
        values = {name: check_preference(name, value) for name, value in preferences.items()}
        return await self.store.accounts.set_account_fields(account_id, **values)

    async def get_account(self, account_id: str) -> Account:
        """An account's settings (forwarding, formats) for the front ends."""
        return await self.store.accounts.get_account(account_id)

    async def add_alias(self, alias: str, account_id: str) -> None:
        await self.store.accounts.add_alias(check_alias(alias), account_id)

    # --- sign-in -------------------------------------------------------------

    async def find_login(self, login: str) -> Account:
        """The account a user means by an account ID, alias or e-mail address."""
        if "@" in login:
            return await self.store.accounts.get_account_by_email(login)
        return await self.store.accounts.get_account_by_alias(login)

    async def authenticate(self, login: str, secret: str, *, kind: str = "password",
                           source: str | None = None) -> Account:
        """Check a password (or, with ``kind="pin"``, a PIN).

        Failures are counted per account and per source address, persisted
        so that they hold across connections and cluster nodes; reaching the
        limit locks the subject for :attr:`LOCK_FOR` seconds.  Raises
        :class:`LoginRefused` with one message whatever the reason, so it
        cannot be used to find out which accounts exist."""
        accounts = self.store.accounts
        now = int(self._reactor.seconds())
        subjects = [f"{kind}:{login}"] + ([f"address:{source}"] if source else [])
        for subject in subjects:
            locked_until = await accounts.get_locked_until(subject)
            if locked_until > now:
                raise LoginRefused("too many failed attempts; try again later", locked_until)
        try:
            account = await self.find_login(login)
        except NotFound:
            account = None
        stored = None if account is None else (
            account.pin_hash if kind == "pin" else account.password_hash)
        ok = await threads.deferToThread(passwords.verify_secret, secret, stored)
        if ok:
            await accounts.delete_auth_failures(subjects[0])
            return account
        locked_until = 0
        for subject in subjects:
            _, until = await accounts.add_auth_failure(subject, self.FAILURE_WINDOW,
                                                       self.FAILURE_LIMIT, self.LOCK_FOR)
            locked_until = max(locked_until, until if until > now else 0)
        raise LoginRefused("authentication failed", locked_until)
