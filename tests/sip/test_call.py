"""SipCall: the IVR's Call over SIP (fake socket, task.Clock, real RTP sessions on fake
ports): identity from the INVITE, answer and reject, hang-up both ways with its reason,
SIP INFO digits, outgoing legs as calls, blind transfer by REFER and by a bridged leg."""

from twisted.internet import defer
from twisted.trial import unittest

from portaum_tx.ivr.call import CallHungUp, DialFailed, TransferFailed
from portaum_tx.ivr.prompts import PromptLibrary
from portaum_tx.sip.call import SipCall
from portaum_tx.sip.message import Request, Response, make_response
from portaum_tx.sip.ua import Credentials

from tests.sip.uahelpers import Harness, RtpMedia, in_dialog, invite
from tests.sip.test_ua_outgoing import ANSWER, PROXY


class SipCallTests(unittest.TestCase):
    def setUp(self):
        self.h = Harness(outbound_proxy="sip:192.0.2.50:5060",
                         credentials=Credentials("u", "p"))
        self.h.ua.media = RtpMedia(self.h.clock)
        self.prompts = PromptLibrary()

    def incoming(self, extra=""):
        self.h.feed(invite(extra=extra))
        [session] = self.h.incoming
        return SipCall.for_incoming(session, self.h.ua, self.prompts)

    def answered(self, extra=""):
        call = self.incoming(extra)
        d = defer.ensureDeferred(call.answer())
        ok = [m for m, _ in self.h.take() if isinstance(m, Response)][-1]
        self.h.feed(in_dialog("ACK", ok.to.tag, 1, "z9hG4bKack1"))
        self.successResultOf(d)
        return call, ok.to.tag

    def test_identity_and_diversion(self):
        call = self.incoming('History-Info: <sip:2002@example.com>;index=1\r\n'
                             'History-Info: <sip:vm@example.com;cause=486>;index=1.1\r\n')
        self.assertEqual((call.calling, call.called, call.calling_name), ("1001", "800", "Alice"))
        self.assertEqual((call.original_called, call.diversion_reason), ("2002", "busy"))
        self.assertEqual(call.call_id, "call-1")

    def test_answer_then_caller_hangs_up(self):
        call, tag = self.answered()
        self.assertTrue(call.answered)
        self.assertTrue(call.session.started)
        self.h.feed(in_dialog("BYE", tag, 2, "z9hG4bKbye"))
        self.assertEqual(call.hangup_reason, "bye")
        self.assertTrue(call.session.closed)
        with self.assertRaises(CallHungUp):
            call.check()

    def test_reject_sends_the_status(self):
        call = self.incoming()
        self.successResultOf(defer.ensureDeferred(call.reject(404, "Not Found")))
        statuses = [m.status for m, _ in self.h.take()]
        self.assertEqual(statuses, [404])
        self.assertEqual(call.hangup_reason, "rejected")

    def test_caller_cancels_before_answer(self):
        call = self.incoming()
        self.h.feed(invite(method="CANCEL", body=b""))
        self.assertEqual(call.hangup_reason, "cancel")

    def test_info_digits_reach_collect(self):
        call, tag = self.answered()
        collected = defer.ensureDeferred(call.collect_digits(max_digits=2, first_timeout=5))
        for n, digit in enumerate("42"):
            self.h.feed(in_dialog("INFO", tag, 2 + n, "z9hG4bKi%d" % n,
                                  body=b"Signal=%s\r\nDuration=160\r\n" % digit.encode(),
                                  content_type="application/dtmf-relay"))
        self.assertEqual(self.successResultOf(collected).digits, "42")

    def test_hangup_sends_bye(self):
        call, tag = self.answered()
        self.h.take()
        self.successResultOf(defer.ensureDeferred(call.hangup()))
        [(bye, _)] = self.h.take()
        self.assertEqual(bye.method, "BYE")
        self.assertEqual(call.hangup_reason, "local")

    def answer_leg(self):
        [(leg_invite, address)] = [(m, a) for m, a in self.h.take() if isinstance(m, Request)]
        self.assertEqual(address, PROXY)
        self.h.feed(make_response(leg_invite, 200, to_tag="far", headers=[
            ("Contact", "<sip:x@192.0.2.60>"), ("Content-Type", "application/sdp")],
            body=ANSWER).serialize(), source=PROXY)
        return leg_invite

    def test_dial_returns_an_answered_call(self):
        call, _ = self.answered()
        self.h.take()
        d = defer.ensureDeferred(call.dial("5551234", caller_id="800", timeout=30))
        self.answer_leg()
        leg = self.successResultOf(d)
        self.assertIsInstance(leg, SipCall)
        self.assertTrue(leg.answered)
        self.assertEqual(leg.called, "5551234")

    def test_dial_busy_is_dial_failed(self):
        call, _ = self.answered()
        self.h.take()
        d = defer.ensureDeferred(call.dial("5551234", caller_id="800", timeout=30))
        [(leg_invite, _)] = [(m, a) for m, a in self.h.take() if isinstance(m, Request)]
        self.h.feed(make_response(leg_invite, 486, to_tag="far").serialize(), source=PROXY)
        failure = self.failureResultOf(d, DialFailed)
        self.assertEqual((failure.value.reason, failure.value.code), ("busy", 486))

    def test_transfer_by_refer(self):
        call, tag = self.answered("Allow: INVITE, ACK, BYE, CANCEL, REFER, NOTIFY\r\n")
        self.h.take()
        d = defer.ensureDeferred(call.transfer("sip:2002@192.0.2.80"))
        [(refer, _)] = self.h.take()
        self.assertEqual(refer.method, "REFER")
        self.assertEqual(refer.get("Refer-To"), "<sip:2002@192.0.2.80>")
        self.h.feed(make_response(refer, 202).serialize())
        notify = (in_dialog("NOTIFY", tag, 2, "z9hG4bKn1", body=b"SIP/2.0 200 OK\r\n",
                            content_type="message/sipfrag;version=2.0",
                            extra="Event: refer\r\nSubscription-State: terminated\r\n"))
        self.h.feed(notify)
        self.successResultOf(d)
        sent = self.h.take()
        self.assertEqual([m.status if isinstance(m, Response) else m.method for m, _ in sent],
                         [200, "BYE"])
        self.assertEqual(call.hangup_reason, "transferred")

    def test_refused_refer_is_transfer_failed(self):
        call, tag = self.answered("Allow: INVITE, ACK, BYE, CANCEL, REFER, NOTIFY\r\n")
        self.h.take()
        d = defer.ensureDeferred(call.transfer("sip:2002@192.0.2.80"))
        [(refer, _)] = self.h.take()
        self.h.feed(make_response(refer, 202).serialize())
        self.h.feed(in_dialog("NOTIFY", tag, 2, "z9hG4bKn1", body=b"SIP/2.0 486 Busy Here\r\n",
                              content_type="message/sipfrag",
                              extra="Event: refer\r\nSubscription-State: terminated\r\n"))
        self.failureResultOf(d, TransferFailed)
        self.assertFalse(call.is_hungup)

    def test_transfer_without_refer_bridges_a_new_leg(self):
        call, tag = self.answered()   # the caller's INVITE did not allow REFER
        self.h.take()
        d = defer.ensureDeferred(call.transfer("5552000"))
        self.answer_leg()
        self.assertEqual([m.method for m, _ in self.h.take()], ["ACK"])
        self.assertFalse(d.called)    # bridged until one side hangs up
        self.h.feed(in_dialog("BYE", tag, 2, "z9hG4bKbye"))
        self.failureResultOf(d, CallHungUp)   # the caller left: the application is done
        self.assertEqual(call.hangup_reason, "bye")
        methods = [m.method for m, _ in self.h.take() if isinstance(m, Request)]
        self.assertEqual(methods, ["BYE"])  # the new leg is hung up too

    def test_bridged_transfer_ends_when_the_new_leg_hangs_up(self):
        call, tag = self.answered()
        self.h.take()
        d = defer.ensureDeferred(call.transfer("5552000"))
        leg_invite = self.answer_leg()
        self.h.take()
        far_bye = Request("BYE", "sip:portaum@192.0.2.1:5060", [
            ("Via", "SIP/2.0/UDP 192.0.2.50:5060;branch=z9hG4bKfar"), ("Max-Forwards", "70"),
            ("From", "<sip:5552000@192.0.2.50>;tag=far"), ("To", leg_invite.get("From")),
            ("Call-ID", leg_invite.call_id), ("CSeq", "1 BYE")])
        self.h.feed(far_bye.serialize(), source=PROXY)
        self.successResultOf(d)
        self.assertEqual(call.hangup_reason, "transferred")
        sent = [(m.status if isinstance(m, Response) else m.method) for m, _ in self.h.take()]
        self.assertEqual(sorted(map(str, sent)), ["200", "BYE"])  # 200 to the leg, BYE to the caller
