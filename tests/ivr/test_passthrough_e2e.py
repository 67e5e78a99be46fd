"""The pass-through PIN seed scenario end to end, over real SIP and RTP on loopback.

The set-up is the ``portaum-admin`` commands of docs/pass-through-pin.md, run as they are
written. Mark's phone is baresip (account 12065558888): it dials the toll number 12125551234
and keys Rachel's code 4545 as RFC 4733 telephone-events. The far end is SIPp's "uas"
scenario behind the trunk (``[sip] outbound_proxy``), echoing the RTP it hears. The front end
routes the call as the server does for an account that calls via IVR: the billing engine
says the toll call goes to ``AD12125551234``, where the pass-through application runs.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
import tempfile

from twisted.internet import defer, reactor, utils
from twisted.trial import unittest

from portaum_tx.accounts import AccountService
from portaum_tx.billing.engine import BillingEngine
from portaum_tx.config import load_config
from portaum_tx.ivr.apps import load_applications
from portaum_tx.ivr.apps.passthrough import VIA_IVR, outgoing_route
from portaum_tx.ivr.router import Router, run_application
from portaum_tx.store import open_store
from tests.sip.live import LiveFrontend, baresip_binary, free_port, sipp_binary, spawn
from tests.sip.test_interop_baresip import Baresip
from tests.support import require_peer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WALK_THROUGH = os.path.join(ROOT, "docs", "pass-through-pin.md")
RACHEL = "12065557777"
MARK = "12065558888"
TOLL = "12125551234"


def walk_through_commands() -> list[list[str]]:
    """Every ``portaum-admin`` command of the walk-through's shell blocks, in order."""
    with open(WALK_THROUGH, encoding="utf-8") as f:
        text = f.read()
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for line in block.splitlines():
            if line.startswith("portaum-admin "):
                commands.append(shlex.split(line, comments=True)[1:])
    return commands


def sleep(seconds):
    d = defer.Deferred()
    reactor.callLater(seconds, d.callback, None)
    return d


class PassThroughEndToEnd(unittest.TestCase):
    timeout = 120

    def setUp(self):
        require_peer("baresip", baresip_binary() is not None)
        require_peer("SIPp (Debian package sip-tester)", sipp_binary() is not None)
        self.data_dir = tempfile.mkdtemp(prefix="portaum-e2e-")
        self.addCleanup(shutil.rmtree, self.data_dir, True)
        self.store = self.billing = None

    async def admin(self, args) -> str:
        out, err, code = await utils.getProcessOutputAndValue(
            sys.executable, ["-m", "portaum_tx.admin", "--set",
                             f"storage.data_dir={self.data_dir}", *args],
            env=dict(os.environ), path=ROOT)
        self.assertEqual(code, 0, f"portaum-admin {shlex.join(args)}: {err.decode()}")
        return out.decode()

    async def configure(self):
        """Run the walk-through's set-up; returns its xDR history commands."""
        commands = walk_through_commands()
        history = [c for c in commands if c[:2] == ["xdr", "list"]]
        checks = [c for c in commands if c[:2] == ["billing", "check"]]
        self.assertEqual((len(history), len(checks)), (3, 3))
        for command in commands:
            if command not in history and command not in checks:
                await self.admin(command)
        toll, toll_free, internal = [await self.admin(c) for c in checks]
        self.assertIn("AD%", toll)
        self.assertNotIn("AD%", toll_free)
        self.assertNotIn("AD%", internal)
        return history

    async def start_server(self, uas_port=None):
        """The store the CLI filled, the billing engine, and the SIP front end routing an
        account's calls as the server does: via the IVR when billing says so."""
        store = await open_store(load_config(None, [f"storage.data_dir={self.data_dir}"]), reactor)
        self.addCleanup(lambda: defer.ensureDeferred(store.close()))
        self.store = store
        self.billing = BillingEngine(store, reactor)
        router = Router(store, None, AccountService(store, reactor), reactor, load_applications())
        self.finished = defer.Deferred()
        self.seen = {}

        async def route(call):
            try:
                decision = await outgoing_route(self.billing, call.calling, call.called)
                self.seen["decision"] = decision
                if decision.kind == VIA_IVR:
                    call.called = decision.number
                found = await router.route(call.called)
                self.seen["application"] = found.application
                # The router's own context: the application finds the engine over its store.
                context = router.context(found)
                app = router.applications.get(found.application)
                await run_application(app, call, context, found.options, found.application)
            finally:
                self.finished.callback(None)

        overrides = [f"sip.outbound_proxy=sip:127.0.0.1:{uas_port}"] if uas_port else []
        server = await LiveFrontend(route, overrides=overrides).start()
        self.addCleanup(lambda: defer.ensureDeferred(server.stop()))
        return server

    async def marks_phone_calls(self, server) -> Baresip:
        phone = Baresip(self, f"<sip:{MARK}@127.0.0.1>;regint=0")
        self.assertTrue(await phone.process.wait_for(b"baresip is ready", 10), phone.output)
        phone.command(f"/dial sip:{TOLL}@127.0.0.1:{server.port}")
        self.assertTrue(await phone.process.wait_for(b"Call established", 10), phone.output)
        await sleep(1.0)
        return phone

    @staticmethod
    async def keys(phone, keys):
        """Keys on the phone's keypad: baresip sends them as RFC 4733 telephone-events."""
        for key in keys:
            phone.process.send(key)
            await sleep(0.4)

    async def calls_of(self, account):
        return [x for x in await self.billing.history(account=account)
                if x.service != "adjustment"]

    @defer.inlineCallbacks
    def test_seed_scenario_over_sip(self):
        yield defer.ensureDeferred(self._scenario())

    async def _scenario(self):
        history = await self.configure()
        uas_port = free_port()
        far_end = spawn([sipp_binary(), "-sn", "uas", "-i", "127.0.0.1", "-p", str(uas_port),
                         "-m", "1", "-nostdin", "-rtp_echo", "-timeout", "60s", "-timeout_error"])
        server = await self.start_server(uas_port)
        await sleep(0.5)  # SIPp binds its socket
        phone = await self.marks_phone_calls(server)
        await self.keys(phone, "4545#")
        # The toll leg rings SIPp, which answers; let the bridged call run a little.
        for _ in range(50):
            if server.frontend.ua.active_calls >= 2:
                break
            await sleep(0.2)
        self.assertEqual(server.frontend.ua.active_calls, 2,
                         f"the toll leg was not placed; {phone.output[-2000:]}")
        await sleep(3.0)
        phone.command("/hangup")
        self.assertTrue(await phone.process.wait_for(b"terminated", 10), phone.output)
        await self.finished
        self.assertEqual(await far_end.done, 0, far_end.output[-3000:].decode(errors="replace"))
        self.assertEqual(await phone.quit(), 0)

        decision = self.seen["decision"]
        self.assertEqual((decision.kind, decision.number), (VIA_IVR, "AD" + TOLL))
        self.assertEqual(self.seen["application"], "pass-through")
        self.assertIn("stream: incoming rtp for 'audio' established", phone.output)
        [toll] = await self.calls_of(RACHEL)
        self.assertEqual((toll.cli, toll.cld, toll.leg, toll.access_number),
                         (MARK, TOLL, "B", "AD" + TOLL))
        self.assertGreaterEqual(toll.duration, 2)
        self.assertGreater(toll.charge, 0)
        [ivr] = await self.calls_of(MARK)
        self.assertEqual((ivr.cli, ivr.cld, ivr.leg), (MARK, "AD" + TOLL, "A"))
        self.assertGreater(ivr.duration, toll.duration)
        self.assertEqual((await self.billing.get_account(RACHEL)).balance, toll.charge)
        self.assertEqual(await self.store.billing.get_reservations(RACHEL), [])

        # The walk-through's history commands show the same.
        mark, rachel, customer = [await self.admin(c) for c in history]
        self.assertIn("AD" + TOLL, mark)
        self.assertIn(TOLL, rachel)
        self.assertIn(MARK, rachel)
        self.assertIn("AD" + TOLL, customer)
        self.assertIn(RACHEL, customer)

    @defer.inlineCallbacks
    def test_wrong_pin_is_refused_after_the_attempts(self):
        yield defer.ensureDeferred(self._wrong_pin())

    async def _wrong_pin(self):
        await self.configure()
        await self.admin(["access-number", "set", "AD%", "-o", "maximum_login_attempts=2"])
        server = await self.start_server()
        phone = await self.marks_phone_calls(server)
        await self.keys(phone, "1111#")
        await sleep(4.0)   # "not correct", then the code prompt again
        await self.keys(phone, "2222#")
        # "You have exceeded the maximum number of attempts": the IVR hangs up.
        self.assertTrue(await phone.process.wait_for(b"terminated", 20), phone.output)
        await self.finished
        self.assertEqual(await phone.quit(), 0)
        self.assertEqual(server.frontend.ua.active_calls, 0)
        self.assertEqual(await self.calls_of(RACHEL), [])
        [ivr] = await self.calls_of(MARK)
        self.assertEqual((ivr.cld, ivr.leg), ("AD" + TOLL, "A"))
        self.assertEqual((await self.billing.get_account(RACHEL)).balance, 0)
