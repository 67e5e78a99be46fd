"""The "fax" application over a real store, on a task.Clock: a FakeCall whose media is the
fake RTP session of test_fax_app_session, spandsp sending as audio or over UDPTL."""

import email
import email.policy
import io
import os

import numpy as np
from PIL import Image
from twisted.internet import defer, reactor, task
from twisted.trial.unittest import SkipTest

from portaum_tx.accounts import AccountService
from portaum_tx.fax import spandsp
from portaum_tx.fax.call import FaxSettings
from portaum_tx.ivr.apps import AppContext, OptionError, load_applications
from portaum_tx.ivr.apps import fax as fax_app
from portaum_tx.ivr.fake import FakeCall
from portaum_tx.ivr.router import run_application
from portaum_tx.mailbox.events import EventBus, NewMessage
from portaum_tx.mailbox.service import MailboxService
from portaum_tx.store import Store
from tests.fax.faxpeer import (
    AudioSender, FakeUdptlLink, T38Sender, page_similarity, text_page, ulaw_round_trip,
    write_document,
)
from tests.fax.test_fax_app_session import (
    FAR_END, FakeAllocator, FakeRtp, FakeSignalling, spandsp_missing,
)
from tests.support import StoreTestCase

MAILBOX = "15551230001"
START = 1795300000.0


class FaxAppCase(StoreTestCase):
    async def _open(self):
        await super()._open()
        self.clock = task.Clock()
        self.clock.advance(START)
        self.ivr_store = Store(self.store.db, self.clock)
        self.events = EventBus(self.ivr_store)
        self.addCleanup(self.events.close)
        self.new_messages = []
        self.events.subscribe(NewMessage, self.new_messages.append)
        self.mailboxes = MailboxService(self.ivr_store, self.events, self.clock,
                                        domain="example.net")
        self.accounts = AccountService(self.ivr_store, self.clock)
        await self.ivr_store.accounts.add_customer("acme")
        await self.accounts.create_account(MAILBOX, "acme", pin="4321")
        self.registry = load_applications().copy()
        self.dir = self.mktemp()
        os.makedirs(self.dir)
        self.source = os.path.join(self.dir, "source.tif")
        self.pages = write_document(self.source, pages=[text_page(400), text_page(300)])

    def context(self, mailbox=MAILBOX):
        return AppContext(store=self.ivr_store, mailboxes=self.mailboxes, accounts=self.accounts,
                          clock=self.clock, applications=self.registry, mailbox=mailbox)

    def fax_call(self, signalling=None, called=MAILBOX):
        call = FakeCall(self.clock, calling="15557654321", called=called)
        call.fax_rtp = self.rtp = FakeRtp(self.clock)
        call.fax_port_allocator = self.allocator = FakeAllocator()
        call.fax_signalling = signalling
        return call

    async def run_fax(self, call, context=None, options=None, sender="audio", ecm=True,
                      hang_up_after_pages=None, max_seconds=300, app="fax"):
        """Run the application while ticking the media; the store's queries complete on the
        real reactor, so every tick also lets the reactor turn once."""
        done = defer.ensureDeferred(run_application(
            self.registry.get(app), call, context or self.context(), options or {}, app))
        audio = AudioSender(self.source, ecm=ecm) if sender == "audio" else None
        if audio is not None:
            self.addCleanup(audio.close)
        t38 = {}
        heard = np.zeros(160, dtype=np.int16)
        ticks = 0
        idle_turns = 0
        while not done.called and ticks < max_seconds * 50:
            rtp = getattr(self, "rtp", None)
            if not call._waiting() and not (rtp is not None and rtp.media_clock.hooks) \
                    and idle_turns < 5000:
                # The application waits on the store (real reactor), not on the call:
                # let it get there before moving the call's clock.
                idle_turns += 1
                await task.deferLater(reactor, 0.001, lambda: None)
                continue
            idle_turns = 0
            ticks += 1
            session_udptl = None
            if rtp is not None and rtp.media_clock.hooks:
                if audio is not None and rtp.consumers:
                    line = ulaw_round_trip(audio.step(ulaw_round_trip(heard)))
                    for consumer in list(rtp.consumers):
                        consumer.inbound_frame(rtp, line, 0)
                for hook in list(rtp.media_clock.hooks):
                    hook(ticks)
                if rtp.source is not None:
                    heard = rtp.source.next_frame(rtp)
                session_udptl = self._udptl()
            if sender == "t38" and session_udptl is not None and session_udptl.remote_address:
                if not t38:
                    t38["in"] = FakeUdptlLink(lambda d: session_udptl.rtp_received(d, FAR_END))
                    t38["sender"] = T38Sender(self.source, t38["in"].send, ecm=ecm)
                    self.addCleanup(t38["sender"].close)
                    t38["out"] = FakeUdptlLink(t38["sender"].feed_udptl)
                    session_udptl._transports[0].deliver = t38["out"].send
                t38["in"].tick()
                t38["out"].tick()
                t38["sender"].tick()
                if hang_up_after_pages is not None and \
                        t38["sender"].pages_sent >= hang_up_after_pages and not call.is_hungup:
                    t38["sender"].stop()
                    call.remote_hangup("bye")
            self.clock.advance(0.02)
            await task.deferLater(reactor, 0, lambda: None)
        for _ in range(200):
            if done.called:
                break
            await task.deferLater(reactor, 0.01, lambda: None)
        self.assertTrue(done.called, f"the application did not end: {call.events} {call.played}")
        await done
        return call

    def _udptl(self):
        return self._sessions[-1].udptl if getattr(self, "_sessions", None) else None

    def setUp(self):
        # Keep a handle on each FaxCallSession the application makes.
        self._sessions = []
        original = fax_app.FaxCallSession

        def recording(*args, **kwargs):
            session = original(*args, **kwargs)
            self._sessions.append(session)
            return session

        self.patch(fax_app, "FaxCallSession", recording)
        return super().setUp()

    async def messages(self):
        mailbox = await self.mailboxes.open(MAILBOX)
        box = await mailbox.folder("INBOX")
        infos = await mailbox.message_infos(box)
        data = await mailbox.message_data(box, [i.uid for i in infos])
        return [(info, email.message_from_bytes(data[info.uid], policy=email.policy.default))
                for info in infos]

    def document(self, message):
        (part,) = list(message.iter_attachments())
        return part.get_content_type(), part.get_payload(decode=True)


class FaxApplicationTests(FaxAppCase):
    def setUp(self):
        missing = spandsp_missing()
        if missing:
            raise SkipTest(missing)
        return super().setUp()

    @defer.inlineCallbacks
    def test_g711_fax_delivered_as_pdf_with_mwi_event(self):
        call = yield defer.ensureDeferred(self.run_fax(self.fax_call(), options={"t38": "no"}))
        self.assertEqual(call.event_names[0], "answer")
        self.assertIn("hangup", call.event_names)
        messages = yield defer.ensureDeferred(self.messages())
        self.assertEqual(len(messages), 1)
        info, message = messages[0]
        self.assertEqual(info.kind, "fax")
        self.assertEqual(message["Subject"], "Fax from +1 555 0200, 2 pages")
        kind, data = self.document(message)
        self.assertEqual(kind, "application/pdf")
        self.assertTrue(data.startswith(b"%PDF"))
        self.assertEqual(len(self.new_messages), 1)
        # The spool directory of the call is gone.
        self.assertFalse(any(os.path.exists(s.tiff_directory) for s in self._sessions))

    @defer.inlineCallbacks
    def test_t38_fax_delivered_as_tiff_per_account_preference(self):
        yield defer.ensureDeferred(self.accounts.set_preferences(MAILBOX, fax_format="tiff"))
        signalling = FakeSignalling()
        yield defer.ensureDeferred(self.run_fax(self.fax_call(signalling), sender="t38"))
        self.assertEqual(signalling.requests, 1)
        messages = yield defer.ensureDeferred(self.messages())
        kind, data = self.document(messages[0][1])
        self.assertEqual(kind, "image/tiff")
        image = Image.open(io.BytesIO(data))
        self.assertEqual(image.n_frames, 2)
        for index, source in enumerate(self.pages):
            image.seek(index)
            self.assertGreater(page_similarity(image.copy(), source), 0.98)

    @defer.inlineCallbacks
    def test_caller_hangs_up_mid_fax_partial_delivered(self):
        signalling = FakeSignalling()
        call = self.fax_call(signalling)
        yield defer.ensureDeferred(self.run_fax(call, sender="t38", ecm=False,
                                                hang_up_after_pages=1))
        messages = yield defer.ensureDeferred(self.messages())
        self.assertEqual(len(messages), 1)
        self.assertEqual(messages[0][1]["Subject"],
                         "Fax from +1 555 0100, 1 page (incomplete)")
        self.assertNotIn("hangup", call.event_names)     # the caller hung up, not us

    @defer.inlineCallbacks
    def test_nothing_received_nothing_delivered(self):
        call = self.fax_call()
        self.clock.callLater(3.0, call.remote_hangup, "bye")
        yield defer.ensureDeferred(self.run_fax(call, sender=None))
        self.assertEqual((yield defer.ensureDeferred(self.messages())), [])

    @defer.inlineCallbacks
    def test_mailbox_from_the_called_number(self):
        call = self.fax_call(called=MAILBOX)
        yield defer.ensureDeferred(self.run_fax(call, context=self.context(mailbox=None),
                                                options={"t38": "no"}))
        self.assertEqual(len((yield defer.ensureDeferred(self.messages()))), 1)

    @defer.inlineCallbacks
    def test_cng_during_voicemail_greeting_hands_over_to_fax(self):
        call = self.fax_call()
        # During the greeting: tied to its first prompt, since the store queries before
        # it complete on the real reactor while this test moves the fake clock.
        call.on_prompt("vm-the-person-at", fax="CNG", after=1.0)
        yield defer.ensureDeferred(self.run_fax(call, context=self.context(),
                                                options={"t38": "no"}, app="voicemail"))
        self.assertEqual(call.event_names[:2], ["answer", "fax"], call.events)
        messages = yield defer.ensureDeferred(self.messages())
        self.assertEqual([info.kind for info, _ in messages], ["fax"], (call.events, call.played))
        self.assertEqual(messages[0][1]["Subject"], "Fax from +1 555 0200, 2 pages")

    @defer.inlineCallbacks
    def test_unknown_mailbox_rejected(self):
        call = self.fax_call(called="15550000000")
        yield defer.ensureDeferred(self.run_fax(call, context=self.context(mailbox=None),
                                                sender=None))
        self.assertEqual(call.event_names, ["reject"])


class FaxUnavailableTests(FaxAppCase):
    @defer.inlineCallbacks
    def test_library_missing_says_so_and_hangs_up(self):
        def missing(path=None):
            raise spandsp.FaxUnavailable("libspandsp not found (install the Debian package "
                                         "libspandsp2): test")
        self.patch(spandsp, "load_library", missing)
        call = self.fax_call()
        yield defer.ensureDeferred(self.run_fax(call, sender=None))
        self.assertEqual(call.played, ["fax-not-available"])
        self.assertEqual(call.event_names[0], "answer")
        self.assertEqual(call.event_names[-1], "hangup")
        self.assertEqual(self._sessions, [])
        self.assertEqual((yield defer.ensureDeferred(self.messages())), [])

    @defer.inlineCallbacks
    def test_disabled_by_configuration(self):
        self.patch(fax_app, "_defaults", FaxSettings(enabled=False))
        call = self.fax_call()
        yield defer.ensureDeferred(self.run_fax(call, sender=None))
        self.assertEqual(call.played, ["fax-not-available"])

    def test_missing_library_logged_when_the_applications_load(self):
        from twisted.logger import formatEvent, globalLogPublisher
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)

        def missing(path=None):
            raise spandsp.FaxUnavailable("libspandsp not found (install the Debian package "
                                         "libspandsp2): no candidate library name")
        self.patch(spandsp, "load_library", missing)
        fax_app._announce_availability()
        texts = [formatEvent(e) for e in events]
        self.assertIn("fax reception is off: libspandsp not found (install the Debian package "
                      "libspandsp2): no candidate library name; calls to the fax application "
                      "hear fax-not-available", texts)

    def test_configure_reports_why(self):
        self.patch(fax_app, "_defaults", fax_app._defaults)
        self.assertEqual(fax_app.configure(FaxSettings(enabled=False)), "[fax] enabled = no")

    def test_options(self):
        settings = fax_app.parse_options({"ecm": "no", "t38": "off", "local_ident": "+1 555 9",
                                          "max_pages": "10", "t38_request": "no"},
                                         FaxSettings())
        self.assertEqual((settings.ecm, settings.t38, settings.local_ident, settings.max_pages,
                          settings.t38_request), (False, False, "+1 555 9", 10, False))
        for bad in ({"ecm": "maybe"}, {"max_pages": 0}, {"local_ident": "x" * 21},
                    {"local_ident": "tab\there"}):
            self.assertRaises(OptionError, fax_app.parse_options, bad, FaxSettings())
