"""RFC 4475 torture messages sent to the user agent over a (fake) UDP socket: the right
response actually goes out, or nothing at all where none can be routed (responses in the
set are never answered).  The choices where RFC 4475 allows several are those of
tests/sip/test_torture.py; in addition the user agent answers REGISTER and MESSAGE with
405 (it is not a registrar) and in-dialog requests of unknown dialogs with 481."""

import os

from twisted.trial import unittest

from portaum_tx.sip.message import Response

from tests.sip.uahelpers import Harness

DATA = os.path.join(os.path.dirname(__file__), "data", "rfc4475")

# message -> (status sent, or None for nothing; whether a call is handed upward)
EXPECTED = {
    "wsinv": (481, False),       # To carries a tag: a dialog we do not have
    "intmeth": (501, False), "esc01": (100, True), "escnull": (405, False),
    "esc02": (501, False), "lwsdisp": (200, False), "longreq": (100, True),
    "dblreq": (405, False), "semiuri": (200, False), "transports": (200, False),
    "mpart01": (405, False), "unreason": (None, False), "noreason": (None, False),
    "badinv01": (400, False), "clerr": (400, False), "ncl": (400, False),
    "scalar02": (400, False), "scalarlg": (None, False), "quotbal": (400, False),
    "ltgtruri": (400, False), "lwsruri": (400, False), "lwsstart": (400, False),
    "trws": (200, False), "escruri": (400, False), "baddate": (400, False),
    "regbadct": (400, False), "badaspec": (400, False), "baddn": (400, False),
    "badvers": (505, False), "mismatch01": (400, False), "mismatch02": (400, False),
    "bigcode": (None, False), "badbranch": (200, False), "insuf": (400, False),
    "unkscm": (416, False), "novelsc": (416, False), "unksm2": (405, False),
    "bext01": (420, False), "invut": (415, False), "regaut01": (405, False),
    "multi01": (400, False), "mcl01": (400, False), "bcast": (None, False),
    "zeromf": (200, False), "cparam01": (405, False), "cparam02": (405, False),
    "regescrt": (405, False), "sdp01": (406, False), "inv2543": (100, True),
}


class TortureThroughTheUserAgent(unittest.TestCase):
    def test_every_message_is_covered(self):
        names = {f[:-4] for f in os.listdir(DATA) if f.endswith(".dat")}
        self.assertEqual(names, set(EXPECTED))

    def outcome(self, name):
        harness = Harness()
        with open(os.path.join(DATA, name + ".dat"), "rb") as f:
            harness.feed(f.read(), source=("192.0.2.7", 5062))
        harness.clock.advance(0.3)   # past the 100 Trying delay of INVITE
        sent = harness.take()
        for message, _ in sent:
            self.assertIsInstance(message, Response, name)
        return [m.status for m, _ in sent], harness

    def test_each_message_gets_its_response(self):
        for name, (status, call) in sorted(EXPECTED.items()):
            statuses, harness = self.outcome(name)
            self.assertEqual(statuses, [] if status is None else [status], name)
            self.assertEqual(bool(harness.incoming), call, name)

    def test_accepted_invites_can_be_answered(self):
        from twisted.internet import defer
        for name in ("esc01", "longreq", "inv2543"):
            _, harness = self.outcome(name)
            [session] = harness.incoming
            defer.ensureDeferred(session.answer())
            [ok] = [m for m, _ in harness.take()]
            self.assertEqual(ok.status, 200, name)
            self.assertIsNotNone(ok.to.tag, name)
            self.assertEqual(ok.get("Content-Type"), "application/sdp", name)

    def test_rejections_name_what_was_wrong(self):
        for name in ("badaspec", "insuf", "badinv01", "baddn"):
            harness = Harness()
            with open(os.path.join(DATA, name + ".dat"), "rb") as f:
                harness.feed(f.read())
            [(response, _)] = harness.take()
            self.assertEqual(response.status, 400)
            self.assertNotEqual(response.reason, "Bad Request", name)
