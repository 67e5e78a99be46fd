"""The SMTP front end: inbound (MX) and submission listeners, the outbound
queue runner and forwarding of new messages."""

from __future__ import annotations

import socket

from ..server import PortSpec
from .. import tls
from .forward import Forwarder
from .local import local_account
from .queue import OutboundQueue, Smarthost, SMTPRelay
from .server import SMTPServerFactory


class SMTPFrontend:
    name = "smtp"

    def __init__(self):
        self.queue: OutboundQueue | None = None
        self.forwarder: Forwarder | None = None

    def ports(self, config):
        section = config.smtp
        return [PortSpec("smtp", "tcp", section.listen_address, section.port, "[smtp] port"),
                PortSpec("submission", "tcp", section.listen_address, section.submission_port,
                         "[smtp] submission_port")]

    async def start(self, node):
        config = node.config.smtp
        hostname = config.hostname or socket.getfqdn()
        from_address = config.from_address or f"portaum@{hostname}"
        local_domains = {node.mailboxes.domain.lower(), hostname.lower()}
        context = tls.context_factory(node.config)

        async def deliver_locally(recipient: str, data: bytes) -> bool:
            account_id = await local_account(node.mailboxes, node.accounts, local_domains,
                                             recipient)
            if account_id is None:
                return False
            await node.mailboxes.deliver(account_id, data, kind="email", enforce_quota=False)
            return True

        smarthost = Smarthost.parse(config.smarthost, username=config.smarthost_username,
                                    password=config.smarthost_password,
                                    require_tls=config.smarthost_require_tls)
        relay = SMTPRelay(node.reactor, hostname, smarthost)
        self.queue = OutboundQueue(node.store.outbound, relay, node.reactor, node_name=node.name,
                                   hostname=hostname, retry_for=config.retry_for,
                                   from_address=from_address, local_delivery=deliver_locally)
        self.forwarder = Forwarder(accounts=node.accounts, mailboxes=node.mailboxes,
                                   queue=self.queue, clock=node.reactor,
                                   from_address=from_address, hostname=hostname)
        node.mailboxes.delivery_hooks.append(self.forwarder)
        self._hooks = node.mailboxes.delivery_hooks
        self.queue.start()

        def make(role):
            return SMTPServerFactory(
                role=role, mailboxes=node.mailboxes, accounts=node.accounts, clock=node.reactor,
                hostname=hostname, local_domains=local_domains, outbound=self.queue,
                tls_context=context, allow_plaintext_auth=config.allow_plaintext_auth,
                max_message_size=config.max_message_size)
        return {"smtp": make("mx"), "submission": make("submission")}

    async def stop(self):
        if self.forwarder is not None:
            if self.forwarder in self._hooks:
                self._hooks.remove(self.forwarder)
            await self.forwarder.drain()
        if self.queue is not None:
            await self.queue.stop()
