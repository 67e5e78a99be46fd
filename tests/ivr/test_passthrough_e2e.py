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

    async def admin(self, args) -> str:
        out, err, code = await utils.getProcessOutputAndValue(
            sys.executable, ["-m", "portaum_tx.admin", "--set",
                             f"storage.data_dir={self.data_dir}", *args],
            env=dict(os.environ), path=ROOT)
        self.assertEqual(code, 0, f"portaum-admin {shlex.join(args)}: {err.decode()}")
        return out.decode()

    @defer.inlineCallbacks
    def test_seed_scenario_over_sip(self):
        yield defer.ensureDeferred(self._scenario())

    async def _scenario(self):
        commands = walk_through_commands()
        history = [c for c in commands if c[:2] == ["xdr", "list"]]
        checks = [c for c in commands if c[:2] == ["billing", "check"]]
        setup = [c for c in commands if c not in history and c not in checks]
        self.assertEqual(len(history), 3)
        for command in setup:
            await self.admin(command)
        toll_check = await self.admin(checks[0])
        self.assertIn("AD%", toll_check)

        store = await open_store(load_config(None, [f"storage.data_dir={self.data_dir}"]), reactor)
        self.addCleanup(lambda: defer.ensureDeferred(store.close()))
        billing = BillingEngine(store, reactor)
        router = Router(store, None, AccountService(store, reactor), reactor, load_applications())
        finished = defer.Deferred()
        seen = {}

        async def route(call):
            """The server's routing of an account's call: via the IVR when billing says so."""
            try:
                decision = await outgoing_route(billing, call.calling, call.called)
                seen["decision"] = decision
                if decision.kind == VIA_IVR:
                    call.called = decision.number
                found = await router.route(call.called)
                seen["application"] = found.application
                context = router.context(found)
                context.billing = billing
                app = router.applications.get(found.application)
                await run_application(app, call, context, found.options, found.application)
                seen["played"] = getattr(call, "played", None)
            finally:
                finished.callback(None)

        uas_port = free_port()
        far_end = spawn([sipp_binary(), "-sn", "uas", "-i", "127.0.0.1", "-p", str(uas_port),
                         "-m", "1", "-nostdin", "-rtp_echo", "-timeout", "60s", "-timeout_error"])
        server = await LiveFrontend(route, overrides=[
            f"sip.outbound_proxy=sip:127.0.0.1:{uas_port}"]).start()
        self.addCleanup(lambda: defer.ensureDeferred(server.stop()))
        phone = Baresip(self, f"<sip:{MARK}@127.0.0.1>;regint=0")
        self.assertTrue(await phone.process.wait_for(b"baresip is ready", 10), phone.output)
        await sleep(0.5)  # SIPp binds its socket
        phone.command(f"/dial sip:{TOLL}@127.0.0.1:{server.port}")
        self.assertTrue(await phone.process.wait_for(b"Call established", 10), phone.output)
        await sleep(1.0)
        for key in "4545#":
            phone.process.send(key)
            await sleep(0.4)
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
        await finished
        self.assertEqual(await far_end.done, 0, far_end.output[-3000:].decode(errors="replace"))
        self.assertEqual(await phone.quit(), 0)

        self.assertEqual((seen["decision"].kind, seen["decision"].number), (VIA_IVR, "AD" + TOLL))
        self.assertEqual(seen["application"], "pass-through")
        self.assertIn("stream: incoming rtp for 'audio' established", phone.output)
        [toll] = [x for x in await billing.history(account=RACHEL) if x.service != "adjustment"]
        self.assertEqual((toll.cli, toll.cld, toll.leg, toll.access_number),
                         (MARK, TOLL, "B", "AD" + TOLL))
        self.assertGreaterEqual(toll.duration, 2)
        self.assertGreater(toll.charge, 0)
        [ivr] = [x for x in await billing.history(account=MARK) if x.service != "adjustment"]
        self.assertEqual((ivr.cli, ivr.cld, ivr.leg), (MARK, "AD" + TOLL, "A"))
        self.assertGreater(ivr.duration, toll.duration)
        self.assertEqual((await billing.get_account(RACHEL)).balance, toll.charge)
        self.assertEqual(await store.billing.get_reservations(RACHEL), [])

        # The walk-through's history commands show the same.
        mark, rachel, customer = [await self.admin(c) for c in history]
        self.assertIn("AD" + TOLL, mark)
        self.assertIn(TOLL, rachel)
        self.assertIn(MARK, rachel)
        self.assertIn("AD" + TOLL, customer)
        self.assertIn(RACHEL, customer)
