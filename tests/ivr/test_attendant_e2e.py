"""The SmartDesign attendant end to end, over real SIP and RTP on loopback.

The set-up is the ``portaum-admin`` commands of docs/attendant.md, run as written. The server
is the SIP front end with the router and the applications as they run.

- Transfer: a baresip phone calls 18005551234, keys 9 (directory), 2-7-6 and 116 as RFC 4733
  telephone-events, and is transferred to extension 116: a second baresip (auto-answer)
  behind the trunk (``[sip] outbound_proxy``) answers, and the server holds no call after
  the hand-over.
- Fax: libspandsp's calling fax (audio, over the G.711 RTP session) calls the attendant; its
  CNG tone is the Fax event, whose action (voicemail) hands the call to fax reception, and the
  fax arrives in the attendant's mailbox.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
import tempfile

from twisted.internet import defer, reactor, task, utils
from twisted.trial import unittest

from portaum_tx.accounts import AccountService
from portaum_tx.config import load_config
from portaum_tx.ivr.apps import load_applications
from portaum_tx.ivr.fake import describe
from portaum_tx.ivr.router import Router
from portaum_tx.mailbox.events import EventBus
from portaum_tx.mailbox.service import MailboxService
from portaum_tx.store import open_store
from tests.sip.live import LiveFrontend, baresip_binary, free_port, free_port_for_phone, sipp_binary
from tests.sip.live import spawn
from tests.sip.test_interop_baresip import CONFIG, Baresip
from tests.support import require_peer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WALK_THROUGH = os.path.join(ROOT, "docs", "attendant.md")
ATTENDANT = "18005551234"


#: A SIPp caller that stays on the line until the server hangs up (its INVITE has no
#: Allow header, so the server cannot transfer it with REFER).
CALLER = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="caller: waits in the queue until the server hangs up">
  <send retrans="500">
    <![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:1555000000[call_number]@[local_ip]>;tag=[pid]caller[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:1555000000[call_number]@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=caller 1 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000

    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rtd="true" rrs="true"/>
  <send>
    <![CDATA[
      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:1555000000[call_number]@[local_ip]>;tag=[pid]caller[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      [routes]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv request="BYE" timeout="120000"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
</scenario>
"""


def walk_through_commands() -> list[list[str]]:
    with open(WALK_THROUGH, encoding="utf-8") as f:
        text = f.read()
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for line in block.splitlines():
            if line.startswith("portaum-admin "):
                commands.append(shlex.split(line, comments=True)[1:])
    return commands


def sleep(seconds):
    return task.deferLater(reactor, seconds, lambda: None)


class Phone(Baresip):
    """baresip on a SIP port chosen beforehand (the trunk address the server dials)."""

    def __init__(self, test, account: str, port: int | None = None):
        self.dir = tempfile.mkdtemp(prefix="portaum-baresip-")
        test.addCleanup(shutil.rmtree, self.dir, True)
        with open(os.path.join(self.dir, "config"), "w") as f:
            f.write(CONFIG.format(port=port or free_port_for_phone(), dir=self.dir))
        with open(os.path.join(self.dir, "accounts"), "w") as f:
            f.write(account + "\n")
        self.process = spawn([baresip_binary(), "-f", self.dir], path=self.dir)
        test.addCleanup(self.kill)


class WalkThroughCase(unittest.TestCase):
    """The walk-through's set-up and the server; no tests of its own."""

    timeout = 240

    def setUp(self):
        self.data_dir = tempfile.mkdtemp(prefix="portaum-aa-e2e-")
        self.addCleanup(shutil.rmtree, self.data_dir, True)

    async def admin(self, args) -> str:
        out, err, code = await utils.getProcessOutputAndValue(
            sys.executable, ["-m", "portaum_tx.admin", "--set", f"storage.data_dir={self.data_dir}", *args],
            env=dict(os.environ), path=ROOT)
        self.assertEqual(code, 0, f"portaum-admin {shlex.join(args)}: {err.decode()}")
        return out.decode()

    async def server(self, overrides=()):
        """The walk-through's set-up, then the front end routing every call as the server does;
        ``self.heard`` collects what the server played, as prompt names."""
        for command in walk_through_commands():
            await self.admin(command)
        store = await open_store(load_config(None, [f"storage.data_dir={self.data_dir}"]), reactor)
        self.addCleanup(lambda: defer.ensureDeferred(store.close()))
        events = EventBus(store)
        self.addCleanup(events.close)
        mailboxes = MailboxService(store, events, reactor, domain="example.net")
        self.store, self.mailboxes = store, mailboxes
        router = Router(store, mailboxes, AccountService(store, reactor), reactor, load_applications())
        self.heard: list[str] = []
        self.finished = defer.Deferred()
        self.calls = []

        async def route(call):
            self.calls.append(call)
            play = call.play

            async def recording_play(items, barge_in=False):
                items = list(items)
                self.heard.extend(describe(item) for item in items)
                return await play(items, barge_in)
            call.play = recording_play
            try:
                return await router.handle(call)
            finally:
                if not self.finished.called:
                    self.finished.callback(call)

        server = await LiveFrontend(route, overrides=list(overrides)).start()
        self.addCleanup(lambda: defer.ensureDeferred(server.stop()))
        return server

    async def until_heard(self, name: str, seconds: float = 20.0) -> None:
        for _ in range(int(seconds / 0.1)):
            if name in self.heard:
                return
            await sleep(0.1)
        self.fail(f"the server never played {name}; it played {self.heard}")


class AttendantEndToEnd(WalkThroughCase):
    @defer.inlineCallbacks
    def test_directory_transfer_to_a_second_phone(self):
        yield defer.ensureDeferred(self._transfer())

    async def _transfer(self):
        require_peer("baresip", baresip_binary() is not None)
        extension_port = free_port_for_phone()
        server = await self.server([f"sip.outbound_proxy=sip:127.0.0.1:{extension_port}"])
        john = Phone(self, "<sip:116@127.0.0.1>;regint=0;answermode=auto", port=extension_port)
        caller = Phone(self, "<sip:15557654321@127.0.0.1>;regint=0")
        self.assertTrue(await john.process.wait_for(b"baresip is ready", 10), john.output)
        self.assertTrue(await caller.process.wait_for(b"baresip is ready", 10), caller.output)
        caller.command(f"/dial sip:{ATTENDANT}@127.0.0.1:{server.port}")
        self.assertTrue(await caller.process.wait_for(b"Call established", 10), caller.output)
        await self.until_heard("aa-welcome")
        caller.process.send("9")
        await self.until_heard("dir-intro")
        for key in "276":
            caller.process.send(key)
            await sleep(0.3)
        await self.until_heard("dir-make-selection")
        for key in "116":
            caller.process.send(key)
            await sleep(0.3)
        # John's phone answers the transferred call.
        self.assertTrue(await john.process.wait_for(b"Call established", 20),
                        f"{john.output[-3000:]}\n--- caller ---\n{caller.output[-3000:]}")
        await self.finished
        [call] = self.calls
        # REFER: the caller's own phone called extension 116 behind the trunk, and John's phone
        # sees the caller, not the server.
        self.assertIn(f"connecting to '<sip:116@127.0.0.1:{extension_port}>'", caller.output)
        self.assertIn("answering call on line 1 from sip:15557654321@127.0.0.1", john.output)
        self.assertTrue(call.is_hungup)
        self.assertEqual(self.heard[:2], ["aa-welcome", "aa-enter-extension"])
        self.assertIn("dir-intro", self.heard)
        self.assertEqual(self.heard[-1], "aa-transferring")
        # The server holds nothing once the far end answered: the phones talk directly.
        for _ in range(50):
            if server.frontend.ua.active_calls == 0:
                break
            await sleep(0.1)
        self.assertEqual(server.frontend.ua.active_calls, 0)
        await sleep(1.0)
        caller.command("/hangup")
        self.assertTrue(await john.process.wait_for(b"terminated", 10), john.output[-3000:])
        self.assertEqual(await caller.quit(), 0)
        self.assertEqual(await john.quit(), 0)

    @defer.inlineCallbacks
    def test_transfer_bridged_when_the_caller_cannot_take_refer(self):
        yield defer.ensureDeferred(self._bridged())

    async def _bridged(self):
        require_peer("baresip", baresip_binary() is not None)
        require_peer("SIPp (Debian package sip-tester)", sipp_binary() is not None)
        extension_port = free_port_for_phone()
        server = await self.server([f"sip.outbound_proxy=sip:127.0.0.1:{extension_port}"])
        # A caller who keys nothing is transferred to John when the menu times out.
        await self.admin(["menu", "set", ATTENDANT, "ROOT", "-e", "timeout=transfer:116"])
        john = Phone(self, "<sip:116@127.0.0.1>;regint=0;answermode=auto", port=extension_port)
        self.assertTrue(await john.process.wait_for(b"baresip is ready", 10), john.output)
        scenario = os.path.join(self.data_dir, "caller.xml")
        with open(scenario, "w") as f:
            f.write(CALLER)
        caller = spawn([sipp_binary(), "-sf", scenario, f"127.0.0.1:{server.port}", "-s", ATTENDANT,
                        "-i", "127.0.0.1", "-p", str(free_port()), "-m", "1", "-nostdin",
                        "-timeout", "60s", "-timeout_error"])
        self.assertTrue(await john.process.wait_for(b"Call established", 30), john.output[-3000:])
        # The server holds both legs and bridges them.
        for _ in range(50):
            if server.frontend.ua.active_calls == 2:
                break
            await sleep(0.1)
        self.assertEqual(server.frontend.ua.active_calls, 2)
        await sleep(2.0)
        self.assertEqual(server.frontend.ua.active_calls, 2)
        john.command("/hangup")
        # John hanging up ends the caller's call too.
        self.assertEqual(await caller.done, 0, caller.output[-3000:].decode(errors="replace"))
        await self.finished
        self.assertEqual(self.heard, ["aa-welcome", "aa-enter-extension", "silence:5000"])
        for _ in range(50):
            if server.frontend.ua.active_calls == 0:
                break
            await sleep(0.1)
        self.assertEqual(server.frontend.ua.active_calls, 0)
        self.assertEqual(await john.quit(), 0)

    @defer.inlineCallbacks
    def test_fax_tone_reaches_fax_reception(self):
        yield defer.ensureDeferred(self._fax())

    async def _fax(self):
        from portaum_tx.fax import spandsp
        from tests.fax.e2e_harness import CallingFax
        from tests.fax.faxpeer import A4_ROWS_STANDARD, text_page, write_document
        try:
            spandsp.load_library()
            missing = ""
        except spandsp.FaxUnavailable as e:
            missing = str(e)
        require_peer("libspandsp", not missing, missing)
        server = await self.server()
        source = os.path.join(self.data_dir, "page.tif")
        write_document(source, pages=[text_page(A4_ROWS_STANDARD)])
        machine = CallingFax(source, t38=True)
        self.addCleanup(lambda: defer.ensureDeferred(machine.close()))
        await machine.call(server.port, ATTENDANT)
        await self.finished
        await sleep(0.3)
        # The attendant answered with its intro; the CNG tone was the Fax event.
        self.assertEqual(self.heard[0], "aa-welcome")
        self.assertNotIn("no-input", self.heard)
        mailbox = await self.mailboxes.open(ATTENDANT)
        box = await mailbox.folder("INBOX")
        infos = await mailbox.message_infos(box)
        self.assertEqual([info.kind for info in infos], ["fax"])
        self.assertEqual(machine.pages_sent, 1)
