"""baresip (Debian, v1.0) against the SIP front end over loopback: it calls the server,
hears the answer and hangs up cleanly; it registers, subscribes to MWI, and its message
light turns on when a message arrives and off when it is read.

baresip runs headless: audio source ausine (a 440 Hz tone), player aufile (a WAV file),
commands over stdin (the stdio module).  Modules used from Debian's build: stdio, g711,
ausine, aufile, account, menu, mwi."""

import os
import shutil
import tempfile

from twisted.internet import defer, reactor
from twisted.trial import unittest

from portaum_tx.mailbox.events import MailboxChanged, NewMessage

from tests.sip.live import LiveFrontend, baresip_binary, free_port_for_phone, spawn
from tests.sip.uahelpers import FakeAccount, FakeEvents, FakeMailboxes, FakeStore
from tests.support import require_peer

CONFIG = """poll_method\t\tepoll
sip_listen\t\t127.0.0.1:{port}
call_local_timeout\t30
audio_player\t\taufile,{dir}/heard.wav
audio_source\t\tausine,440
ausrc_srate\t\t48000
ausrc_channels\t\t2
auplay_srate\t\t48000
module_path\t\t/usr/lib/baresip/modules
module\t\t\tstdio.so
module\t\t\tg711.so
module\t\t\tausine.so
module\t\t\taufile.so
module_tmp\t\taccount.so
module_app\t\tmenu.so
module_app\t\tmwi.so
"""


def sleep(seconds):
    d = defer.Deferred()
    reactor.callLater(seconds, d.callback, None)
    return d


class Baresip:
    def __init__(self, test, account: str):
        self.dir = tempfile.mkdtemp(prefix="portaum-baresip-")
        test.addCleanup(shutil.rmtree, self.dir, True)
        with open(os.path.join(self.dir, "config"), "w") as f:
            f.write(CONFIG.format(port=free_port_for_phone(), dir=self.dir))
        with open(os.path.join(self.dir, "accounts"), "w") as f:
            f.write(account + "\n")
        self.process = spawn([baresip_binary(), "-f", self.dir], path=self.dir)
        test.addCleanup(self.kill)

    def kill(self):
        if not self.process.done.called:
            try:
                self.process.transport.signalProcess("KILL")
            except Exception:
                pass
            return self.process.done

    def command(self, text):
        self.process.send(text + "\n")

    async def quit(self):
        self.command("/quit")
        return await self.process.done

    @property
    def output(self):
        return self.process.output.decode(errors="replace")


class BaresipTests(unittest.TestCase):
    timeout = 60

    def setUp(self):
        require_peer("baresip", baresip_binary() is not None)

    @defer.inlineCallbacks
    def test_call_answered_and_hung_up(self):
        yield defer.ensureDeferred(self._call())

    async def _call(self):
        calls = []

        async def answering(call):
            calls.append(call)
            await call.answer()
            await call.hungup
        server = await LiveFrontend(answering).start()
        self.addCleanup(lambda: defer.ensureDeferred(server.stop()))
        phone = Baresip(self, "<sip:1001@127.0.0.1>;regint=0")
        self.assertTrue(await phone.process.wait_for(b"baresip is ready", 10), phone.output)
        phone.command("/dial sip:800@127.0.0.1:%d" % server.port)
        self.assertTrue(await phone.process.wait_for(b"Call established", 10), phone.output)
        await sleep(1.0)   # some RTP each way
        phone.command("/hangup")
        self.assertTrue(await phone.process.wait_for(b"terminated", 10), phone.output)
        self.assertEqual(await phone.quit(), 0)
        [call] = calls
        self.assertEqual((call.calling, call.called), ("1001", "800"))
        self.assertTrue(call.answered)
        self.assertEqual(call.hangup_reason, "bye")
        self.assertIn("stream: incoming rtp for 'audio' established", phone.output)
        self.assertGreater(call.session.packets_received, 10)
        self.assertEqual(server.frontend.ua.active_calls, 0)

    @defer.inlineCallbacks
    def test_message_waiting_light(self):
        yield defer.ensureDeferred(self._mwi())

    async def _mwi(self):
        mailboxes = FakeMailboxes()
        mailboxes.add(FakeAccount("1001", "secret"))
        events = FakeEvents()
        store = FakeStore()
        store.accounts = mailboxes

        async def nobody(call):
            await call.reject(404)
        # libre 0.6 (under Debian's baresip 1.0) gives up on a SHA-256 challenge.
        server = await LiveFrontend(nobody, overrides=["sip.digest_algorithms=MD5"], store=store,
                                    events=events, mailboxes=mailboxes).start()
        self.addCleanup(lambda: defer.ensureDeferred(server.stop()))
        # baresip 1.0's mwi module subscribes from a 1 ms start-up timer that walks its
        # list of subscriptions while adding to it; when the registration succeeds before
        # that timer runs (a loaded machine), it loops forever sending SUBSCRIBEs.  Holding
        # the REGISTER back a little keeps the phone out of that bug.
        deliver = server.frontend.transport.received

        held = []

        def late_register(message, peer, source):
            if getattr(message, "method", None) == "REGISTER" and not held:
                held.append(reactor.callLater(0.5, deliver, message, peer, source))
            else:
                deliver(message, peer, source)
        self.addCleanup(lambda: [call.cancel() for call in held if call.active()])
        server.frontend.transport.received = late_register
        phone = Baresip(self, "<sip:1001@127.0.0.1:%d>;regint=600;mwi=yes;auth_pass=secret"
                        % server.port)
        self.assertTrue(await phone.process.wait_for(b"Messages-Waiting: no", 15), phone.output)
        [subscription] = store.subscriptions.rows.values()
        self.assertEqual(subscription.account_id, "1001")
        # A voice message is delivered: the light goes on.
        mailboxes.counts["1001"]["voice"]["new"] = 1
        events.publish_now(NewMessage("1001", "INBOX", 1, 1, "voice"))
        self.assertTrue(await phone.process.wait_for(b"Messages-Waiting: yes", 10), phone.output)
        self.assertIn("Voice-Message: 1/0 (0/0)", phone.output)
        # It is read: off again.
        mailboxes.counts["1001"]["voice"].update(new=0, old=1)
        events.publish_now(MailboxChanged("1001", "INBOX", "flags", (1,)))
        self.assertTrue(await phone.process.wait_for(b"Voice-Message: 0/1 (0/0)", 10),
                        phone.output)
        self.assertEqual(phone.output.count("Messages-Waiting: yes"), 1)
        self.assertEqual(await phone.quit(), 0)
