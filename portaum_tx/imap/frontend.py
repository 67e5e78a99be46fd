"""IMAP and POP3 front ends: ports from ``[imap]``/``[pop3]``, factories for the node."""

from __future__ import annotations

from twisted.protocols.tls import TLSMemoryBIOFactory

from ..server import PortSpec
from .. import tls
from .pop3 import POP3Factory
from .server import IMAPServerFactory, Limits


def _max_message_size(config) -> int:
    return config.smtp.max_message_size


class IMAPFrontend:
    name = "imap"

    def __init__(self):
        self.factory: IMAPServerFactory | None = None
        self.factories: list[IMAPServerFactory] = []

    def ports(self, config):
        section = config.imap
        return [PortSpec("imap", "tcp", section.listen_address, section.port, "[imap] port"),
                PortSpec("imaps", "tcp", section.listen_address, section.tls_port,
                         "[imap] tls_port")]

    async def start(self, node):
        config = node.config
        context = tls.context_factory(config)
        limits = Limits(max_message_size=_max_message_size(config),
                        idle_timeout=config.imap.idle_timeout)

        def make(implicit):
            return IMAPServerFactory(
                accounts=node.accounts, mailboxes=node.mailboxes, events=node.events,
                clock=node.reactor, tls_context=context, implicit_tls=implicit,
                allow_plaintext_auth=config.imap.allow_plaintext_auth, limits=limits)
        self.factory = make(False)
        self.factories = [self.factory, make(True)]
        return {"imap": self.factory,
                "imaps": TLSMemoryBIOFactory(context, False, self.factories[1])}

    async def stop(self):
        """Tell connected clients before the store goes away (RFC 3501 7.1.5)."""
        for factory in self.factories:
            for session in list(factory.sessions):
                session.shut_down()


class POP3Frontend:
    name = "pop3"

    def ports(self, config):
        section = config.pop3
        return [PortSpec("pop3", "tcp", section.listen_address, section.port, "[pop3] port"),
                PortSpec("pop3s", "tcp", section.listen_address, section.tls_port,
                         "[pop3] tls_port")]

    async def start(self, node):
        config = node.config
        context = tls.context_factory(config)

        def make(implicit):
            return POP3Factory(accounts=node.accounts, mailboxes=node.mailboxes,
                               clock=node.reactor, tls_context=context, implicit_tls=implicit,
                               allow_plaintext_auth=config.pop3.allow_plaintext_auth,
                               idle_timeout=config.pop3.idle_timeout)
        return {"pop3": make(False), "pop3s": TLSMemoryBIOFactory(context, False, make(True))}
