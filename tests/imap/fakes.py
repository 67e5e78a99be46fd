"""Stand-ins for the account and mailbox services, for protocol unit tests
over StringTransport with a task.Clock (no database, no reactor)."""

from __future__ import annotations

import dataclasses

from twisted.internet import defer

from portaum_tx.accounts import LoginRefused


@dataclasses.dataclass
class FakeAccount:
    id: str
    email: str | None = None
    um_enabled: bool = True


class FakeAccounts:
    def __init__(self, password="secret-1"):
        self.password = password
        self.attempts = []

    def authenticate(self, login, secret, source=None):
        self.attempts.append((login, secret, source))
        if secret == self.password:
            return defer.succeed(FakeAccount(login))
        return defer.fail(LoginRefused("authentication failed"))

    def find_login(self, login):
        from portaum_tx.store import NotFound
        return defer.fail(NotFound(login))


class EmptyMailbox:
    """A mailbox with no folders at all."""

    def folder(self, name):
        from portaum_tx.store import NotFound
        return defer.fail(NotFound(name))

    def folders(self):
        return defer.succeed([])


class FakeMailboxes:
    domain = "example.net"

    def __init__(self):
        self.delivered = []

    def open(self, account_id):
        return defer.succeed(EmptyMailbox())

    def resolve(self, address):
        from portaum_tx.mailbox.service import UnknownMailbox
        if address.split("@")[0] in ("rachel", "12065557777"):
            return defer.succeed("12065557777")
        return defer.fail(UnknownMailbox(address))

    def deliver(self, account_id, data, **kwargs):
        self.delivered.append((account_id, data))
        return defer.succeed(None)


class FakeEvents:
    def subscribe(self, event_type, callback):
        return lambda: None
