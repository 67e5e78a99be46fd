"""Shared set-up for voicemail flow tests: a real store, the IVR on a task.Clock.

The store runs on the real engine (its queries complete on the reactor), while the IVR, the
account service and the mailbox service read time from one task.Clock that FakeCall.run
moves on whenever the application waits on the call.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy

from twisted.internet import defer, reactor, task

from portaum_tx.accounts import AccountService
from portaum_tx.convert.audio import pcm16_to_ulaw
from portaum_tx.ivr.apps import AppContext, load_applications
from portaum_tx.ivr.fake import FakeCall, speech
from portaum_tx.ivr.router import run_application
from portaum_tx.mailbox.events import EventBus, NewMessage
from portaum_tx.mailbox.service import MailboxService
from portaum_tx.store import Store
from tests.support import StoreTestCase

START = dt.datetime(2026, 11, 20, 15, 0, tzinfo=dt.timezone.utc).timestamp()
MAILBOX = "15551230001"
PIN = "4321"


class VoicemailCase(StoreTestCase):
    """A customer with one mailbox (MAILBOX, PIN), services on a task.Clock."""

    async def _open(self):
        await super()._open()
        self.clock = task.Clock()
        self.clock.advance(START)
        self.ivr_store = Store(self.store.db, self.clock)
        self.events = EventBus(self.ivr_store)
        self.addCleanup(self.events.close)
        self.new_messages = []
        self.events.subscribe(NewMessage, self.new_messages.append)
        self.mailboxes = MailboxService(self.ivr_store, self.events, self.clock, domain="example.net")
        self.accounts = AccountService(self.ivr_store, self.clock)
        self.registry = load_applications().copy()
        await self.ivr_store.accounts.add_customer("acme")
        await self.accounts.create_account(MAILBOX, "acme", pin=PIN, timezone="America/New_York")

    def context(self, mailbox=None, reason=None, access_number=None) -> AppContext:
        return AppContext(store=self.ivr_store, mailboxes=self.mailboxes, accounts=self.accounts,
                          clock=self.clock, applications=self.registry, access_number=access_number,
                          mailbox=mailbox, reason=reason)

    def make_call(self, **kwargs) -> FakeCall:
        kwargs.setdefault("calling", "15557654321")
        kwargs.setdefault("called", MAILBOX)
        return FakeCall(self.clock, **kwargs)

    async def run_app(self, name, call, context=None, options=None):
        app = self.registry.get(name)
        await call.run(run_application(app, call, context or self.context(), options or {}, name), reactor)
        self.assertEqual(self.clock.getDelayedCalls(), [], "timers left behind")
        self.assertTrue(call.is_hungup or call.answered)
        return call

    async def messages(self, folder="INBOX", account=MAILBOX):
        mailbox = await self.mailboxes.open(account)
        box = await mailbox.folder(folder)
        infos = await mailbox.message_infos(box)
        data = await mailbox.message_data(box, [i.uid for i in infos])
        return [(info, email.message_from_bytes(data[info.uid], policy=email.policy.default))
                for info in infos]

    async def leave_message(self, seconds=3.0, caller="15557654321", when=None, urgent=False):
        """A voice message delivered straight through the mailbox service."""
        from portaum_tx.convert.audio import pcm16_to_wav
        if when is not None:
            self.clock.advance(when - self.clock.seconds())
        return await self.mailboxes.deliver_voice(
            MAILBOX, audio=pcm16_to_wav(speech(seconds)), audio_format="wav", duration=seconds,
            caller=caller, urgent=urgent)

    async def store_greeting(self, kind, seconds=2.0):
        await self.ivr_store.accounts.store_greeting(MAILBOX, kind, pcm16_to_ulaw(speech(seconds, 7)))


def run(coroutine):
    return defer.ensureDeferred(coroutine)
