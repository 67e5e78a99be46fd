"""The outbound queue on a task.Clock over the real store: backoff, expiry,
bounces, and at-least-once delivery without duplicates across restarts."""

from __future__ import annotations

import email
import email.policy

from twisted.internet import defer, task
from twisted.trial import unittest

from portaum_tx.smtp.queue import DeliveryError, OutboundQueue, Smarthost
from portaum_tx.store.outbound import OutboundStore
from tests.support import StoreTestCase, on_both_engines


def wait_for(predicate):
    from twisted.internet import reactor
    d = defer.Deferred()

    def check():
        if predicate():
            d.callback(None)
        else:
            reactor.callLater(0.01, check)
    check()
    return d.addTimeout(10, reactor)


class ScriptedRelay:
    """Answers each send from a script: "ok", "temp", "perm" or "hang"."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.sent = []
        self.hanging = []

    def send(self, sender, recipient, data):
        answer = self.answers.pop(0) if self.answers else "ok"
        self.sent.append((sender, recipient, answer))
        if answer == "ok":
            return defer.succeed(None)
        if answer == "hang":
            d = defer.Deferred()
            self.hanging.append(d)
            return d
        return defer.fail(DeliveryError(
            "451 4.3.0 busy" if answer == "temp" else "550 5.1.1 no such user",
            permanent=answer == "perm"))


@on_both_engines
class OutboundQueueTests(StoreTestCase):
    def make_queue(self, relay, node="node-1", retry_for=3600):
        queue = OutboundQueue(self.outbound, relay, self.clock, node_name=node,
                              hostname="mx.example.net", retry_for=retry_for,
                              from_address="postmaster@mx.example.net", lease=600)
        return queue

    async def _open(self):
        await super()._open()
        self.clock = task.Clock()
        self.clock.advance(1_800_000_000)
        self.outbound = OutboundStore(self.store.db, self.clock)

    async def queued(self):
        return [(i.recipient, i.kind, i.attempts) for i in await self.outbound.get_outbound()]

    @defer.inlineCallbacks
    def test_temporary_failures_back_off_then_expire_into_a_bounce(self):
        relay = ScriptedRelay("temp", "temp", "temp")
        queue = self.make_queue(relay, retry_for=300)
        yield defer.ensureDeferred(queue.enqueue("a@example.net", ["b@remote.example"],
                                                 b"Subject: s\r\n\r\nx\r\n"))
        yield defer.ensureDeferred(queue.run_once())
        self.assertEqual((yield defer.ensureDeferred(self.queued())),
                         [("b@remote.example", "mail", 1)])
        self.clock.advance(59)
        self.assertEqual((yield defer.ensureDeferred(queue.run_once())), 0)
        self.clock.advance(1)
        self.assertEqual((yield defer.ensureDeferred(queue.run_once())), 1)
        self.clock.advance(299)
        self.assertEqual((yield defer.ensureDeferred(queue.run_once())), 0)
        self.clock.advance(1)
        yield defer.ensureDeferred(queue.run_once())
        # 300 s have passed: the message is given up and a bounce queued.
        left = yield defer.ensureDeferred(self.outbound.claim_outbound("test", 10))
        self.assertEqual([(i.sender, i.recipient, i.kind) for i in left],
                         [("", "a@example.net", "bounce")])
        report = email.message_from_bytes(left[0].data, policy=email.policy.default)
        status = list(report.iter_parts())[1].as_string()
        self.assertIn("Status: 4.4.7", status)
        self.assertIn("451 4.3.0 busy", status)
        self.assertIn("gave up after 360 s", status)

    @defer.inlineCallbacks
    def test_permanent_failure_bounces_once_and_bounces_never_bounce(self):
        relay = ScriptedRelay("perm", "perm")
        queue = self.make_queue(relay)
        yield defer.ensureDeferred(queue.enqueue("a@example.net", ["b@remote.example"], b"x\r\n"))
        yield defer.ensureDeferred(queue.run_once())
        self.assertEqual((yield defer.ensureDeferred(self.queued())),
                         [("a@example.net", "bounce", 0)])
        # The bounce itself fails for good: dropped, nothing new queued.
        yield defer.ensureDeferred(queue.run_once())
        self.assertEqual((yield defer.ensureDeferred(self.queued())), [])
        self.assertEqual([s[1] for s in relay.sent], ["b@remote.example", "a@example.net"])

    @defer.inlineCallbacks
    def test_node_dying_mid_delivery_is_retried_after_the_lease_and_sent_once(self):
        hung = ScriptedRelay("hang")
        dead = self.make_queue(hung, node="node-1")
        yield defer.ensureDeferred(dead.enqueue("a@example.net", ["b@remote.example"], b"x\r\n"))
        # Never finishes: the node "dies" while sending.
        defer.ensureDeferred(dead.run_once())
        yield wait_for(lambda: hung.sent)
        self.assertEqual(len(hung.sent), 1)
        relay = ScriptedRelay("ok")
        restarted = self.make_queue(relay, node="node-2")
        self.assertEqual((yield defer.ensureDeferred(restarted.run_once())), 0)
        self.clock.advance(601)
        self.assertEqual((yield defer.ensureDeferred(restarted.run_once())), 1)
        self.assertEqual([s[1] for s in relay.sent], ["b@remote.example"])
        self.assertEqual((yield defer.ensureDeferred(self.queued())), [])
        # Delivered rows are gone: another restart sends nothing again.
        again = ScriptedRelay()
        self.assertEqual((yield defer.ensureDeferred(self.make_queue(again).run_once())), 0)
        self.assertEqual(again.sent, [])

    @defer.inlineCallbacks
    def test_kick_runs_a_pass_and_the_poll_loop_runs_on_the_clock(self):
        relay = ScriptedRelay("ok", "ok")
        queue = self.make_queue(relay)
        queue.poll_interval = 30
        queue.start()
        self.addCleanup(lambda: defer.ensureDeferred(queue.stop()))
        yield defer.ensureDeferred(queue.enqueue("a@example.net", ["b@remote.example"], b"x"))
        while queue._running is not None:
            yield queue._running
        self.assertEqual(len(relay.sent), 1)
        passes = queue.passes
        self.clock.advance(30)
        while queue._running is not None:
            yield queue._running
        self.assertGreater(queue.passes, passes)

    def test_smarthost_parsing(self):
        self.assertEqual(Smarthost.parse("relay.example:587", username="u").port, 587)
        self.assertEqual(Smarthost.parse("relay.example").port, 25)
        self.assertIsNone(Smarthost.parse(""))


class MXLookupTests(unittest.TestCase):
    def test_mx_hosts_come_from_twisted_names(self):
        from twisted.names import dns
        from portaum_tx.smtp.queue import SMTPRelay

        class Resolver:
            def lookupMailExchange(self, name, timeout=None):
                record = dns.RRHeader(name, dns.MX, payload=dns.Record_MX(10, b"mx1.remote.example"))
                return defer.succeed(([record], [], []))

            def getHostByName(self, name, timeout=None):
                return defer.succeed("192.0.2.25")

        relay = SMTPRelay(task.Clock(), "mx.example.net", resolver=Resolver())
        hosts = []
        d = defer.ensureDeferred(relay._hosts("bob@remote.example"))
        d.addCallback(hosts.extend)
        self.assertEqual(hosts, [("mx1.remote.example", 25)])
