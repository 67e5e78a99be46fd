"""MWI over the user agent (fake socket, task.Clock, in-memory store): Digest-authenticated
SUBSCRIBE, NOTIFY at subscription and at every change, refresh, unsubscribe, expiry,
trusted proxies, unsolicited NOTIFY, and refreshes served from the store after a restart."""

from twisted.internet import defer
from twisted.trial import unittest

from portaum_tx.mailbox.events import MailboxChanged, NewMessage
from portaum_tx.sip.digest import build_authorization, parse_challenge
from portaum_tx.sip.message import Response, make_response
from portaum_tx.sip.subscribe import MwiService, message_summary

from tests.sip.uahelpers import FakeAccount, FakeEvents, FakeMailboxes, FakeStore, Harness


def subscribe(cseq=1, branch="z9hG4bKsub1", expires=3600, authorization=None, to_tag=None,
              event="message-summary", call_id="mwi-1", uri="sip:1001@192.0.2.1"):
    to = "<sip:1001@example.com>" + (";tag=%s" % to_tag if to_tag else "")
    lines = [f"SUBSCRIBE {uri} SIP/2.0",
             f"Via: SIP/2.0/UDP 10.0.0.7:5062;branch={branch};rport",
             "Max-Forwards: 70", "From: <sip:1001@example.com>;tag=phone1", f"To: {to}",
             f"Call-ID: {call_id}", f"CSeq: {cseq} SUBSCRIBE",
             "Contact: <sip:1001@10.0.0.7:5062>", f"Event: {event}", f"Expires: {expires}",
             "Accept: application/simple-message-summary"]
    if authorization:
        lines.append("Authorization: %s" % authorization)
    return ("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode()


class MwiTests(unittest.TestCase):
    def setUp(self):
        self.h = Harness()
        self.mailboxes = FakeMailboxes()
        self.mailboxes.add(FakeAccount("1001", "secret"))
        self.events = FakeEvents()
        self.store = FakeStore()
        self.mwi = self.make_service(self.h)

    def make_service(self, harness, trusted=()):
        service = MwiService(harness.ua, self.store, self.events, self.mailboxes, self.mailboxes,
                             harness.clock, realm="portaum", secret=b"cluster-secret",
                             trusted_proxies=trusted, domain="example.com")
        self.successResultOf(defer.ensureDeferred(service.start()))
        self.addCleanup(lambda: defer.ensureDeferred(service.stop()))
        return service

    def exchange(self, harness=None):
        """Responses sent, and NOTIFYs sent (each answered 200)."""
        harness = harness or self.h
        responses, notifies = [], []
        for message, address in harness.take():
            if isinstance(message, Response):
                responses.append(message)
            elif message.method == "NOTIFY":
                notifies.append(message)
                harness.feed(make_response(message, 200).serialize())
        return responses, notifies

    def authorized_subscribe(self, password="secret", **kw):
        self.h.feed(subscribe(**kw))
        [challenge_response], _ = self.exchange()
        self.assertEqual(challenge_response.status, 401)
        challenges = challenge_response.get_all("WWW-Authenticate")
        self.assertEqual([parse_challenge(c).algorithm for c in challenges], ["SHA-256", "MD5"])
        credentials = build_authorization(parse_challenge(challenges[1]), "1001", password,
                                          "SUBSCRIBE", kw.get("uri", "sip:1001@192.0.2.1"))
        kw = dict(kw, cseq=kw.get("cseq", 1) + 1, branch=kw.get("branch", "z9hG4bKsub1") + "a")
        self.h.feed(subscribe(authorization=str(credentials), **kw))
        return self.exchange()

    def test_summary_body(self):
        counts = {"voice": {"new": 2, "old": 8, "urgent_new": 0, "urgent_old": 2},
                  "fax": {"new": 0, "old": 0}}
        self.assertEqual(message_summary(counts, "sip:1001@example.com"),
                         "Messages-Waiting: yes\r\nMessage-Account: sip:1001@example.com\r\n"
                         "Voice-Message: 2/8 (0/2)\r\n")

    def test_subscribe_with_digest_gets_notify_and_changes(self):
        [ok], [notify] = self.authorized_subscribe()
        self.assertEqual(ok.status, 200)
        self.assertEqual(ok.get("Expires"), "3600")
        self.assertEqual(notify.get("Event"), "message-summary")
        self.assertEqual(notify.get("Subscription-State"), "active;expires=3600")
        self.assertEqual(notify.get("Content-Type"), "application/simple-message-summary")
        self.assertIn(b"Messages-Waiting: no", notify.body)
        self.assertEqual(notify.to.tag, "phone1")
        self.assertEqual(notify.from_.tag, ok.to.tag)
        self.assertEqual(str(notify.uri), "sip:1001@10.0.0.7:5062")
        # A voice message arrives: the light goes on.
        self.mailboxes.counts["1001"]["voice"]["new"] = 1
        self.events.publish_now(NewMessage("1001", "INBOX", 1, 1, "voice"))
        self.h.clock.advance(0)
        _, [lit] = self.exchange()
        self.assertIn(b"Messages-Waiting: yes", lit.body)
        self.assertIn(b"Voice-Message: 1/0 (0/0)", lit.body)
        self.assertEqual(lit.cseq.number, notify.cseq.number + 1)
        # An event that changes nothing sends nothing.
        self.events.publish_now(MailboxChanged("1001", "INBOX", "flags"))
        self.h.clock.advance(0)
        self.assertEqual(self.exchange(), ([], []))
        # Read: off.
        self.mailboxes.counts["1001"]["voice"].update(new=0, old=1)
        self.events.publish_now(MailboxChanged("1001", "INBOX", "flags", (1,)))
        self.h.clock.advance(0)
        _, [dark] = self.exchange()
        self.assertIn(b"Messages-Waiting: no", dark.body)
        self.assertIn(b"Voice-Message: 0/1 (0/0)", dark.body)

    def test_wrong_password_is_403(self):
        [refused], notifies = self.authorized_subscribe(password="wrong")
        self.assertEqual(refused.status, 403)
        self.assertEqual(notifies, [])
        self.assertEqual(self.store.subscriptions.rows, {})

    def test_unknown_mailbox_is_404(self):
        self.h.feed(subscribe(uri="sip:9999@192.0.2.1"))
        [response], _ = self.exchange()
        self.assertEqual(response.status, 404)

    def test_trusted_proxy_needs_no_credentials(self):
        h = Harness()
        self.make_service(h, trusted=["192.0.2.7"])
        h.feed(subscribe())
        [ok], [notify] = self.exchange(h)
        self.assertEqual(ok.status, 200)
        self.assertIn(b"Messages-Waiting: no", notify.body)

    def test_other_event_is_489_and_short_expiry_423(self):
        self.h.feed(subscribe(event="presence"))
        self.h.feed(subscribe(expires=10, branch="z9hG4bKsub2", call_id="mwi-2"))
        responses, _ = self.exchange()
        self.assertEqual([r.status for r in responses], [489, 423])
        self.assertEqual(responses[0].get("Allow-Events"), "message-summary")
        self.assertEqual(responses[1].get("Min-Expires"), "60")

    def test_refresh_and_unsubscribe(self):
        [ok], _ = self.authorized_subscribe()
        tag = ok.to.tag
        # Refreshes are authenticated like the first SUBSCRIBE.
        self.h.feed(subscribe(cseq=3, branch="z9hG4bKref", to_tag=tag, expires=600))
        [challenged], _ = self.exchange()
        self.assertEqual(challenged.status, 401)
        nonce = parse_challenge(challenged.get_all("WWW-Authenticate")[1])
        auth = build_authorization(nonce, "1001", "secret", "SUBSCRIBE", "sip:1001@192.0.2.1")
        self.h.feed(subscribe(cseq=4, branch="z9hG4bKref2", to_tag=tag, expires=600,
                              authorization=str(auth)))
        [refreshed], [notify] = self.exchange()
        self.assertEqual((refreshed.status, refreshed.get("Expires")), (200, "600"))
        self.assertEqual(notify.get("Subscription-State"), "active;expires=600")
        auth = build_authorization(nonce, "1001", "secret", "SUBSCRIBE", "sip:1001@192.0.2.1",
                                   nc=2)
        self.h.feed(subscribe(cseq=5, branch="z9hG4bKun", to_tag=tag, expires=0,
                              authorization=str(auth)))
        [gone], [last] = self.exchange()
        self.assertEqual(gone.status, 200)
        self.assertEqual(last.get("Subscription-State"), "terminated;reason=timeout")
        self.assertEqual(self.store.subscriptions.rows, {})

    def test_expiry_sends_terminated_notify(self):
        self.authorized_subscribe(expires=120)
        self.h.clock.advance(150)
        _, [last] = self.exchange()
        self.assertEqual(last.get("Subscription-State"), "terminated;reason=timeout")
        self.assertEqual(self.store.subscriptions.rows, {})

    def test_dead_subscriber_is_forgotten(self):
        self.authorized_subscribe()
        self.assertEqual(len(self.store.subscriptions.rows), 1)
        self.mailboxes.counts["1001"]["voice"]["new"] = 3
        self.events.publish_now(NewMessage("1001", "INBOX", 1, 2, "voice"))
        self.h.clock.advance(0)
        [(message, _)] = self.h.take()
        self.assertEqual(message.method, "NOTIFY")
        self.h.feed(make_response(message, 481).serialize())
        self.assertEqual(self.store.subscriptions.rows, {})

    def test_refresh_after_restart_is_served_from_the_store(self):
        [ok], _ = self.authorized_subscribe()
        # Another node (or this one restarted) with the same store.
        h2 = Harness()
        self.make_service(h2, trusted=["192.0.2.7"])
        h2.feed(subscribe(cseq=7, branch="z9hG4bKnode2", to_tag=ok.to.tag, expires=900))
        [refreshed], [notify] = self.exchange(h2)
        self.assertEqual(refreshed.status, 200)
        self.assertEqual(notify.from_.tag, ok.to.tag)
        self.assertEqual(notify.get("Subscription-State"), "active;expires=900")

    def test_unsolicited_notify_to_configured_contact(self):
        self.mailboxes.add(FakeAccount("2002", mwi_contact="sip:2002@192.0.2.9:5070"))
        self.mailboxes.counts["2002"]["voice"]["new"] = 2
        self.events.publish_now(NewMessage("2002", "INBOX", 1, 1, "voice"))
        self.h.clock.advance(0)
        sent = self.h.take()
        [(notify, address)] = sent
        self.assertEqual(address, ("192.0.2.9", 5070))
        self.assertEqual(notify.method, "NOTIFY")
        self.assertIsNone(notify.to.tag)
        self.assertEqual(notify.get("Event"), "message-summary")
        self.assertIn(b"Voice-Message: 2/0 (0/0)", notify.body)
        # Unchanged counts: not sent again.
        self.events.publish_now(NewMessage("2002", "INBOX", 1, 1, "voice"))
        self.h.clock.advance(0)
        self.assertEqual(self.h.take(), [])
