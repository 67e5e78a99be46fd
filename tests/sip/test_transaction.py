"""Transaction state machines and every timer, on task.Clock with a fake transport."""

from twisted.internet import task
from twisted.trial import unittest

from portaum_tx.sip.message import Request, Response, make_response, parse_message
from portaum_tx.sip.transaction import (
    TimerSettings, TransactionLayer, TransportError, TwoXXRetransmitter, make_cancel, new_branch,
)

PEER = ("udp", "192.0.2.10", 5060)


def request(method="INVITE", branch="z9hG4bKclient1", cseq=1, to_tag=None, via_host="192.0.2.10",
            uri="sip:bob@example.com"):
    to = "<sip:bob@example.com>" + (";tag=%s" % to_tag if to_tag else "")
    return Request(method, uri, [
        ("Via", "SIP/2.0/UDP %s:5060;branch=%s" % (via_host, branch)),
        ("Max-Forwards", "70"),
        ("From", "<sip:alice@example.com>;tag=alice1"),
        ("To", to),
        ("Call-ID", "call-1@example.com"),
        ("CSeq", "%d %s" % (cseq, "INVITE" if method == "ACK" else method)),
    ])


def reply(req, status, to_tag="bob1"):
    return parse_message(make_response(req, status, to_tag=to_tag).serialize())


def advance_to(clock, when):
    """Run the clock to ``when``, stopping exactly at each scheduled call."""
    while True:
        pending = [c.getTime() for c in clock.getDelayedCalls()]
        upcoming = min(pending, default=None)
        if upcoming is None or upcoming > when:
            clock.advance(max(0.0, when - clock.seconds()))
            return
        clock.advance(max(0.0, upcoming - clock.seconds()))


class Harness:
    """A transaction layer on a task.Clock whose transport records what it sends."""

    def __init__(self, timers=TimerSettings()):
        self.clock = task.Clock()
        self.sent = []
        self.requests = []
        self.strays = []
        self.fail = False
        self.layer = TransactionLayer(self.clock, self.send, self.on_request,
                                      lambda r, s: self.strays.append(r), timers)

    def send(self, message, destination):
        if self.fail:
            raise TransportError("connection refused")
        self.sent.append((self.clock.seconds(), message, destination))

    def on_request(self, transaction, req):
        self.requests.append((transaction, req))

    def sent_times(self, predicate=lambda m: True):
        return [round(t, 3) for t, m, _ in self.sent if predicate(m)]

    def advance_to(self, when):
        advance_to(self.clock, when)


class ClientInviteTests(unittest.TestCase):
    def setUp(self):
        self.h = Harness()
        self.responses = []

    def start(self, reliable=False, req=None):
        self.req = req or request()
        return self.h.layer.send_request(self.req, PEER, reliable,
                                         lambda t, r: self.responses.append(r))

    def test_timer_a_doubles_and_timer_b_times_out(self):
        txn = self.start()
        self.assertTrue(txn.timer_active("A") and txn.timer_active("B"))
        self.h.advance_to(40)
        self.assertEqual(self.h.sent_times(), [0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5])
        self.assertEqual([r.status for r in self.responses], [408])
        self.assertTrue(self.responses[0].local)
        self.assertTrue(txn.timed_out)
        self.assertTrue(txn.terminated)
        self.assertEqual(self.successResultOf(txn.final).status, 408)
        self.assertEqual(self.h.layer.client_transactions, 0)

    def test_reliable_no_retransmission(self):
        txn = self.start(reliable=True)
        self.assertFalse(txn.timer_active("A"))
        self.h.advance_to(31.9)
        self.assertEqual(len(self.h.sent), 1)
        self.assertEqual(self.responses, [])
        self.h.advance_to(32.1)
        self.assertEqual([r.status for r in self.responses], [408])

    def test_provisional_stops_a_and_b(self):
        txn = self.start()
        self.h.advance_to(0.6)
        self.h.layer.receive(reply(self.req, 180), PEER, False)
        self.assertEqual(txn.state, "proceeding")
        self.h.advance_to(100)
        self.assertEqual(self.h.sent_times(), [0, 0.5])
        self.assertEqual([r.status for r in self.responses], [180])
        self.assertFalse(txn.terminated)

    def test_non2xx_final_acks_and_timer_d(self):
        txn = self.start()
        self.h.layer.receive(reply(self.req, 180), PEER, False)
        self.h.layer.receive(reply(self.req, 486), PEER, False)
        self.assertEqual(txn.state, "completed")
        ack = self.h.sent[-1][1]
        self.assertEqual(ack.method, "ACK")
        self.assertEqual(ack.top_via.branch, "z9hG4bKclient1")
        self.assertEqual(ack.to.tag, "bob1")
        self.assertEqual((ack.cseq.number, ack.cseq.method), (1, "ACK"))
        self.assertEqual(str(ack.uri), "sip:bob@example.com")
        # A retransmitted 486 is answered with the ACK again, not shown to the TU.
        self.h.clock.advance(1)
        self.h.layer.receive(reply(self.req, 486), PEER, False)
        self.assertEqual(len([m for _, m, _ in self.h.sent if m.method == "ACK"]), 2)
        self.assertEqual([r.status for r in self.responses], [180, 486])
        self.assertTrue(txn.timer_active("D"))
        self.h.advance_to(31.9)
        self.assertFalse(txn.terminated)
        self.h.advance_to(32.1)
        self.assertTrue(txn.terminated)
        self.assertEqual(self.successResultOf(txn.final).status, 486)

    def test_ack_send_failure_after_final(self):
        txn = self.start()
        self.h.fail = True
        self.h.layer.receive(reply(self.req, 486), PEER, False)
        self.assertEqual([(r.status, r.local) for r in self.responses], [(486, False)])
        self.assertEqual(self.successResultOf(txn.final).status, 486)
        self.assertTrue(txn.terminated)
        self.assertEqual(self.h.clock.getDelayedCalls(), [])

    def test_timer_d_zero_on_reliable(self):
        txn = self.start(reliable=True)
        self.h.layer.receive(reply(self.req, 503), PEER, True)
        self.h.clock.advance(0)
        self.assertTrue(txn.terminated)

    def test_2xx_accepted_state_and_timer_m(self):
        txn = self.start()
        self.h.layer.receive(reply(self.req, 200), PEER, False)
        self.assertEqual(txn.state, "accepted")
        self.assertEqual(len(self.h.sent), 1, "no ACK for 2xx from the transaction")
        self.h.layer.receive(reply(self.req, 200), PEER, False)
        self.h.layer.receive(reply(self.req, 200, to_tag="fork2"), PEER, False)
        self.assertEqual([r.status for r in self.responses], [200, 200, 200])
        self.assertEqual(self.h.strays, [])
        self.h.advance_to(32.1)
        self.assertTrue(txn.terminated)
        self.h.layer.receive(reply(self.req, 200), PEER, False)
        self.assertEqual(len(self.h.strays), 1)

    def test_transport_error_is_503(self):
        self.h.fail = True
        txn = self.start()
        self.assertEqual([r.status for r in self.responses], [503])
        self.assertTrue(txn.terminated)
        self.assertIsInstance(txn.transport_error, TransportError)
        self.assertEqual(self.successResultOf(txn.final).status, 503)

    def test_transport_error_on_retransmission(self):
        txn = self.start()
        self.h.fail = True
        self.h.clock.advance(0.5)
        self.assertEqual([r.status for r in self.responses], [503])
        self.assertTrue(txn.terminated)

    def test_asynchronous_transport_failure(self):
        txn = self.start(reliable=True)
        other = self.h.layer.send_request(request(branch="z9hG4bKother"), ("tcp", "x", 1), True)
        self.h.layer.transport_failed(PEER, TransportError("connection reset"))
        self.assertEqual([r.status for r in self.responses], [503])
        self.assertTrue(txn.terminated)
        self.assertFalse(other.terminated)

    def test_shutdown_cancels_everything(self):
        self.start()
        self.h.layer.receive(parse_message(request("OPTIONS", branch="z9hG4bKin").serialize()),
                             PEER, False)
        self.assertEqual((self.h.layer.client_transactions, self.h.layer.server_transactions), (1, 1))
        self.h.layer.shutdown()
        self.assertEqual((self.h.layer.client_transactions, self.h.layer.server_transactions), (0, 0))
        self.assertEqual(self.h.clock.getDelayedCalls(), [])

    def test_cancel_waits_for_provisional(self):
        txn = self.start()
        cancel_responses = []
        self.assertIsNone(txn.cancel(lambda t, r: cancel_responses.append(r.status)))
        self.assertEqual([m.method for _, m, _ in self.h.sent], ["INVITE"])
        self.h.layer.receive(reply(self.req, 180), PEER, False)
        cancel = self.h.sent[-1][1]
        self.assertEqual(cancel.method, "CANCEL")
        self.assertEqual(cancel.top_via.branch, "z9hG4bKclient1")
        self.assertEqual(str(cancel.cseq), "1 CANCEL")
        self.assertIs(txn.cancel(), txn.cancel_transaction)
        self.h.layer.receive(reply(cancel, 200), PEER, False)
        self.h.layer.receive(reply(self.req, 487), PEER, False)
        self.assertEqual(cancel_responses, [200])
        self.assertEqual([r.status for r in self.responses], [180, 487])

    def test_cancel_not_sent_after_final(self):
        txn = self.start()
        txn.cancel()
        self.h.layer.receive(reply(self.req, 200), PEER, False)
        self.assertEqual([m.method for _, m, _ in self.h.sent], ["INVITE"])

    def test_requires_branch(self):
        self.assertRaises(ValueError, self.h.layer.send_request,
                          request(branch="1234"), PEER, False)
        self.assertRaises(ValueError, self.h.layer.send_request, request("ACK"), PEER, False)
        self.start()
        self.assertRaises(ValueError, self.h.layer.send_request, request(), PEER, False)

    def test_configurable_timers(self):
        h = Harness(TimerSettings(t1=1.0, t2=8.0, t4=2.0))
        responses = []
        h.layer.send_request(request(), PEER, False, lambda t, r: responses.append(r.status))
        h.advance_to(63.9)
        self.assertEqual(h.sent_times(), [0, 1, 3, 7, 15, 31, 63])
        self.assertEqual(responses, [])
        h.advance_to(64.1)
        self.assertEqual(responses, [408])


class ClientNonInviteTests(unittest.TestCase):
    def setUp(self):
        self.h = Harness()
        self.responses = []
        self.req = request("OPTIONS", branch=new_branch())

    def start(self, reliable=False):
        return self.h.layer.send_request(self.req, PEER, reliable,
                                         lambda t, r: self.responses.append(r))

    def test_timer_e_capped_at_t2_and_timer_f(self):
        txn = self.start()
        self.h.advance_to(40)
        self.assertEqual(self.h.sent_times(),
                         [0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5])
        self.assertEqual([r.status for r in self.responses], [408])
        self.assertTrue(txn.terminated)

    def test_proceeding_retransmits_every_t2(self):
        txn = self.start()
        self.h.clock.advance(0.2)
        self.h.layer.receive(reply(self.req, 100), PEER, False)
        self.assertEqual(txn.state, "proceeding")
        self.h.advance_to(20)
        self.assertEqual(self.h.sent_times(), [0, 0.5, 4.5, 8.5, 12.5, 16.5])
        self.h.advance_to(33)
        self.assertEqual([r.status for r in self.responses], [100, 408])

    def test_final_and_timer_k(self):
        txn = self.start()
        self.h.layer.receive(reply(self.req, 200), PEER, False)
        self.assertEqual(txn.state, "completed")
        self.h.layer.receive(reply(self.req, 200), PEER, False)
        self.assertEqual([r.status for r in self.responses], [200])
        self.assertTrue(txn.timer_active("K"))
        self.h.advance_to(4.9)
        self.assertFalse(txn.terminated)
        self.h.advance_to(5.1)
        self.assertTrue(txn.terminated)
        self.assertEqual(self.h.sent_times(), [0])

    def test_reliable(self):
        txn = self.start(reliable=True)
        self.assertFalse(txn.timer_active("E"))
        self.h.layer.receive(reply(self.req, 404), PEER, True)
        self.h.clock.advance(0)
        self.assertTrue(txn.terminated)
        self.assertEqual(len(self.h.sent), 1)

    def test_unmatched_response_is_stray(self):
        self.start()
        other = request("OPTIONS", branch="z9hG4bKother")
        self.h.layer.receive(reply(other, 200), PEER, False)
        wrong_method = reply(self.req, 200)
        wrong_method.set("CSeq", "1 BYE")
        self.h.layer.receive(wrong_method, PEER, False)
        self.assertEqual(len(self.h.strays), 2)
        self.assertEqual(self.responses, [])


class ServerInviteTests(unittest.TestCase):
    def setUp(self):
        self.h = Harness()
        self.invite = request(branch="z9hG4bKserver1")

    def receive(self, message, reliable=False):
        self.h.layer.receive(parse_message(message.serialize()), PEER, reliable)

    def start(self, reliable=False):
        self.receive(self.invite, reliable)
        txn, req = self.h.requests[-1]
        self.assertEqual(req.method, "INVITE")
        return txn

    def test_trying_after_200ms(self):
        txn = self.start()
        self.h.clock.advance(0.19)
        self.assertEqual(self.h.sent, [])
        self.h.clock.advance(0.02)
        self.assertEqual([m.status for _, m, _ in self.h.sent], [100])
        self.assertIsNone(self.h.sent[0][1].to.tag)
        self.assertEqual(self.h.sent[0][2], PEER)
        self.assertEqual(txn.state, "proceeding")

    def test_no_trying_if_tu_answers(self):
        txn = self.start()
        self.h.clock.advance(0.1)
        txn.respond(make_response(txn.request, 180, to_tag="t1"))
        self.h.clock.advance(1)
        self.assertEqual([m.status for _, m, _ in self.h.sent], [180])

    def test_retransmission_absorbed_and_answered(self):
        txn = self.start()
        self.receive(self.invite)          # nothing sent yet: 100 at once
        txn.respond(make_response(txn.request, 180, to_tag="t1"))
        self.receive(self.invite)
        self.assertEqual([m.status for _, m, _ in self.h.sent], [100, 180, 180])
        self.assertEqual(len(self.h.requests), 1)
        self.assertEqual(self.h.layer.server_transactions, 1)

    def test_non2xx_timer_g_and_h(self):
        txn = self.start()
        timeouts = []
        txn.on_timeout = timeouts.append
        txn.respond(make_response(txn.request, 486, to_tag="t1"))
        self.h.advance_to(40)
        self.assertEqual(self.h.sent_times(lambda m: m.status == 486),
                         [0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5])
        self.assertEqual(timeouts, [txn])
        self.assertTrue(txn.terminated)

    def test_retransmitted_invite_in_completed_resends_final(self):
        txn = self.start()
        txn.respond(make_response(txn.request, 486, to_tag="t1"))
        self.receive(self.invite)
        self.assertEqual([m.status for _, m, _ in self.h.sent], [486, 486])

    def test_ack_confirms_and_timer_i(self):
        txn = self.start()
        txn.respond(make_response(txn.request, 486, to_tag="t1"))
        self.h.advance_to(0.7)
        self.receive(request("ACK", branch="z9hG4bKserver1", to_tag="t1"))
        self.assertEqual(txn.state, "confirmed")
        self.assertEqual(len(self.h.requests), 1, "ACK for non-2xx stays in the transaction")
        self.assertFalse(txn.timer_active("G") or txn.timer_active("H"))
        self.assertTrue(txn.timer_active("I"))
        self.h.advance_to(5.6)
        self.assertFalse(txn.terminated)
        self.h.advance_to(5.8)
        self.assertTrue(txn.terminated)
        self.assertEqual(self.h.sent_times(), [0, 0.5])

    def test_reliable_no_g_and_i_zero(self):
        txn = self.start(reliable=True)
        txn.respond(make_response(txn.request, 603, to_tag="t1"))
        self.assertFalse(txn.timer_active("G"))
        self.assertTrue(txn.timer_active("H"))
        self.receive(request("ACK", branch="z9hG4bKserver1", to_tag="t1"), reliable=True)
        self.h.clock.advance(0)
        self.assertTrue(txn.terminated)
        self.assertEqual(len(self.h.sent), 1)

    def test_2xx_accepted_and_timer_l(self):
        txn = self.start()
        ok = make_response(txn.request, 200, to_tag="t1")
        txn.respond(ok)
        self.assertEqual(txn.state, "accepted")
        self.receive(self.invite)
        self.assertEqual(len(self.h.sent), 1, "INVITE retransmission absorbed, 2xx is the TU's")
        txn.respond(ok)                     # the TU's own retransmission goes out
        self.assertEqual(len(self.h.sent), 2)
        self.receive(request("ACK", branch="z9hG4bKack2xx", to_tag="t1"))
        self.assertEqual(self.h.requests[-1][0], None)
        self.assertEqual(self.h.requests[-1][1].method, "ACK")
        self.assertRaises(ValueError, txn.respond, make_response(txn.request, 486))
        self.h.advance_to(32.1)
        self.assertTrue(txn.terminated)
        self.assertRaises(ValueError, txn.respond, ok)

    def test_cannot_answer_twice(self):
        txn = self.start()
        txn.respond(make_response(txn.request, 486))
        self.assertRaises(ValueError, txn.respond, make_response(txn.request, 200))

    def test_cancel_matching(self):
        invite_txn = self.start()
        cancel = make_cancel(self.invite)
        self.receive(cancel)
        cancel_txn, req = self.h.requests[-1]
        self.assertEqual(req.method, "CANCEL")
        self.assertIsNot(cancel_txn, invite_txn)
        self.assertIs(cancel_txn.cancels, invite_txn)
        cancel_txn.respond(make_response(req, 200))
        invite_txn.respond(make_response(invite_txn.request, 487, to_tag="t1"))
        self.assertEqual([m.status for _, m, _ in self.h.sent], [200, 487])
        self.assertEqual(self.h.sent[0][1].cseq.method, "CANCEL")

    def test_cancel_without_invite(self):
        self.receive(make_cancel(request(branch="z9hG4bKnothere")))
        self.assertIsNone(self.h.requests[-1][0].cancels)

    def test_same_branch_other_sent_by_is_new_transaction(self):
        self.start()
        self.receive(request(branch="z9hG4bKserver1", via_host="192.0.2.99"))
        self.assertEqual(len(self.h.requests), 2)

    def test_merged_request_detected(self):
        txn = self.start()
        self.receive(request(branch="z9hG4bKviaotherproxy", via_host="192.0.2.99"))
        second = self.h.requests[-1][0]
        self.assertIsNot(second, txn)
        self.assertIs(second.merged_with, txn)
        self.assertIsNone(txn.merged_with)
        # In-dialog requests (To tag) and a new CSeq are not merges.
        self.receive(request("OPTIONS", branch="z9hG4bKo1", to_tag="t"))
        self.assertIsNone(self.h.requests[-1][0].merged_with)
        self.receive(request(branch="z9hG4bKnext", cseq=2))
        self.assertIsNone(self.h.requests[-1][0].merged_with)
        # Once the first transaction ends, the same request is new again.
        txn.respond(make_response(txn.request, 486, to_tag="t1"))
        self.h.advance_to(40)
        self.receive(request(branch="z9hG4bKlater"))
        self.assertIsNone(self.h.requests[-1][0].merged_with)

    def test_transport_error(self):
        txn = self.start()
        errors = []
        txn.on_transport_error = lambda t, e: errors.append(e)
        self.h.fail = True
        txn.respond(make_response(txn.request, 180))
        self.assertEqual(len(errors), 1)
        self.assertTrue(txn.terminated)


class ServerNonInviteTests(unittest.TestCase):
    def setUp(self):
        self.h = Harness()
        self.req = request("OPTIONS", branch="z9hG4bKopt")

    def receive(self, reliable=False):
        self.h.layer.receive(parse_message(self.req.serialize()), PEER, reliable)

    def test_states_and_timer_j(self):
        self.receive()
        txn = self.h.requests[0][0]
        self.assertEqual(txn.state, "trying")
        self.receive()
        self.assertEqual(self.h.sent, [], "retransmission in Trying is absorbed silently")
        txn.respond(make_response(txn.request, 100))
        self.receive()
        self.assertEqual([m.status for _, m, _ in self.h.sent], [100, 100])
        txn.respond(make_response(txn.request, 200, to_tag="x"))
        self.receive()
        self.assertEqual([m.status for _, m, _ in self.h.sent], [100, 100, 200, 200])
        self.assertEqual(len(self.h.requests), 1)
        self.assertTrue(txn.timer_active("J"))
        self.h.advance_to(31.9)
        self.assertFalse(txn.terminated)
        self.h.advance_to(32.1)
        self.assertTrue(txn.terminated)
        self.receive()
        self.assertEqual(len(self.h.requests), 2, "after Timer J it is a new request")

    def test_reliable_timer_j_zero(self):
        self.receive(reliable=True)
        txn = self.h.requests[0][0]
        txn.respond(make_response(txn.request, 200))
        self.h.clock.advance(0)
        self.assertTrue(txn.terminated)

    def test_no_trying_for_non_invite(self):
        self.receive()
        self.h.clock.advance(1)
        self.assertEqual(self.h.sent, [])

    def test_request_without_to_dropped(self):
        bad = parse_message(self.req.serialize())
        bad.remove("To")
        self.h.layer.receive(bad, PEER, False)
        self.assertEqual(self.h.requests, [])

    def test_malformed_dropped(self):
        bad = parse_message(self.req.serialize())
        bad.set("Via", "garbage")
        self.h.layer.receive(bad, PEER, False)
        bad = parse_message(self.req.serialize())
        bad.remove("CSeq")
        self.h.layer.receive(bad, PEER, False)
        self.assertEqual(self.h.requests, [])


class Rfc2543MatchingTests(unittest.TestCase):
    """Branches without the magic cookie (RFC 4475 badbranch, inv2543)."""

    def setUp(self):
        self.h = Harness()

    def receive(self, message):
        self.h.layer.receive(parse_message(message.serialize()), PEER, False)

    def test_retransmission_matched(self):
        with open(__file__.rsplit("/", 1)[0] + "/data/rfc4475/badbranch.dat", "rb") as f:
            data = f.read()
        self.h.layer.receive(parse_message(data), PEER, False)
        self.h.layer.receive(parse_message(data), PEER, False)
        self.assertEqual(len(self.h.requests), 1)
        txn = self.h.requests[0][0]
        txn.respond(make_response(txn.request, 200, to_tag="x"))
        self.h.layer.receive(parse_message(data), PEER, False)
        self.assertEqual([m.status for _, m, _ in self.h.sent], [200, 200])

    def test_invite_and_ack_by_to_tag(self):
        invite = request(branch="1234")
        self.receive(invite)
        txn = self.h.requests[0][0]
        txn.respond(make_response(txn.request, 486, to_tag="sent"))
        self.receive(request("ACK", branch="5678", to_tag="other"))
        self.assertEqual(txn.state, "completed", "ACK with another To tag does not match")
        self.assertEqual(self.h.requests[-1][0], None)
        self.receive(request("ACK", branch="1234", to_tag="sent"))
        self.assertEqual(txn.state, "confirmed")

    def test_no_branch_at_all(self):
        invite = request(branch="x")
        invite.set("Via", "SIP/2.0/UDP iftgw.example.com")
        self.receive(invite)
        self.receive(invite)
        self.assertEqual(len(self.h.requests), 1)
        cancel = make_cancel(invite)
        self.receive(cancel)
        self.assertIs(self.h.requests[-1][0].cancels, self.h.requests[0][0])


class TwoXXRetransmitterTests(unittest.TestCase):
    def setUp(self):
        self.clock = task.Clock()
        self.sent = []
        self.timeouts = []
        self.response = Response(200)

    def make(self, reliable=False, timers=TimerSettings()):
        return TwoXXRetransmitter(self.clock, lambda m, d: self.sent.append(self.clock.seconds()),
                                  self.response, PEER, reliable,
                                  lambda: self.timeouts.append(1), timers)

    def advance(self, until):
        advance_to(self.clock, until)

    def test_doubling_until_timeout(self):
        retransmitter = self.make()
        self.advance(40)
        self.assertEqual([round(t, 3) for t in self.sent],
                         [0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5])
        self.assertEqual(self.timeouts, [1])
        self.assertFalse(retransmitter.running)

    def test_ack_stops(self):
        retransmitter = self.make()
        self.advance(2)
        retransmitter.ack_received()
        self.advance(40)
        self.assertEqual(len(self.sent), 3)
        self.assertEqual(self.timeouts, [])
        self.assertTrue(retransmitter.acked)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_reliable_sends_once_but_still_times_out(self):
        self.make(reliable=True)
        self.advance(40)
        self.assertEqual(self.sent, [0])
        self.assertEqual(self.timeouts, [1])

    def test_already_sent(self):
        retransmitter = TwoXXRetransmitter(
            self.clock, lambda m, d: self.sent.append(self.clock.seconds()), self.response, PEER,
            False, None, TimerSettings(), already_sent=True)
        advance_to(self.clock, 2)
        retransmitter.stop()
        self.assertEqual(self.sent, [0.5, 1.5])

    def test_send_errors_tolerated(self):
        def failing(message, destination):
            raise TransportError("down")
        TwoXXRetransmitter(self.clock, failing, self.response, PEER, False,
                           lambda: self.timeouts.append(1))
        self.advance(33)
        self.assertEqual(self.timeouts, [1])
