"""A call queue end to end over real SIP on loopback: SIPp callers and SIPp agents.

The walk-through of docs/attendant.md sets up the queue "support" (destination 200, two
connected calls at most, 240 s average). A number routes straight to the call-queue
application. SIPp places four callers a second apart; each stays on the line until the
server hangs up. Behind the trunk, SIPp plays the agents: it rings for a second, answers,
talks for a few seconds and hangs up. The server must connect the callers in the order they
arrived, never more than two at a time, and tell the waiting ones their position and wait.
"""

from __future__ import annotations

import os

from twisted.internet import defer, task

from tests.ivr import test_attendant_e2e as walk
from tests.sip.live import free_port, sipp_binary, spawn
from tests.support import require_peer

QUEUE_NUMBER = "18005550200"
CALLERS = 4
TALK_MS = 6000

AGENT = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="agent: rings, answers, talks, hangs up">
  <recv request="INVITE" crlf="true" rrs="true">
    <action>
      <ereg regexp=".*" search_in="hdr" header="From:" assign_to="server"/>
    </action>
  </recv>
  <send>
    <![CDATA[
      SIP/2.0 180 Ringing
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]agent[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:200@[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0

    ]]>
  </send>
  <pause milliseconds="1000"/>
  <send retrans="500">
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]agent[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:200@[local_ip]:[local_port];transport=[transport]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=agent 1 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000

    ]]>
  </send>
  <recv request="ACK" crlf="true"/>
  <pause milliseconds="%(talk)d"/>
  <send retrans="500">
    <![CDATA[
      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:200@[local_ip]>;tag=[pid]agent[call_number]
      To: [$server]
      [routes]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200" crlf="true"/>
</scenario>
"""



class QueueEndToEnd(walk.WalkThroughCase):
    timeout = 240

    @defer.inlineCallbacks
    def test_order_announcements_and_limit_with_sipp(self):
        yield defer.ensureDeferred(self._queue())

    async def _queue(self):
        require_peer("SIPp (Debian package sip-tester)", sipp_binary() is not None)
        agent_port = free_port()
        agent_file = os.path.join(self.data_dir, "agent.xml")
        caller_file = os.path.join(self.data_dir, "caller.xml")
        with open(agent_file, "w") as f:
            f.write(AGENT % {"talk": TALK_MS})
        with open(caller_file, "w") as f:
            f.write(walk.CALLER)
        server = await self.server([f"sip.outbound_proxy=sip:127.0.0.1:{agent_port}"])
        await self.admin(["access-number", "add", QUEUE_NUMBER, "call-queue",
                          "-o", f"account={walk.ATTENDANT}", "-o", "queue=support"])
        # The queue as the store saw it.
        queue = await self.store.attendant.get_queue(walk.ATTENDANT, "support")
        offered: list[str] = []
        connected_seen: list[int] = []

        async def watch():
            state = await self.store.attendant.get_queue(walk.ATTENDANT, "support")
            connected_seen.append(state.connected)
            for caller in await self.store.attendant.get_queue_callers(queue.id):
                if caller.state != "waiting" and caller.call_id not in offered:
                    offered.append(caller.call_id)
        watcher = task.LoopingCall(lambda: defer.ensureDeferred(watch()))
        watcher.start(0.1)
        self.addCleanup(lambda: watcher.running and watcher.stop())

        agents = spawn([sipp_binary(), "-sf", agent_file, "-i", "127.0.0.1", "-p", str(agent_port),
                        "-m", str(CALLERS), "-nostdin", "-timeout", "180s", "-timeout_error"])
        await walk.sleep(0.5)
        callers = spawn([sipp_binary(), "-sf", caller_file, f"127.0.0.1:{server.port}", "-s", QUEUE_NUMBER,
                         "-i", "127.0.0.1", "-p", str(free_port()), "-m", str(CALLERS), "-r", "1",
                         "-rp", "1000", "-l", str(CALLERS), "-nostdin", "-timeout", "180s",
                         "-timeout_error"])
        self.assertEqual(await callers.done, 0, callers.output[-3000:].decode(errors="replace"))
        self.assertEqual(await agents.done, 0, agents.output[-3000:].decode(errors="replace"))
        await walk.sleep(0.5)
        watcher.stop()

        arrived = [call.call_id for call in self.calls]
        self.assertEqual(len(arrived), CALLERS)
        # Connected in the order they arrived; never more than two agents at once.
        self.assertEqual(offered, arrived)
        self.assertEqual(max(connected_seen), 2)
        self.assertEqual(connected_seen[-1], 0)
        self.assertEqual(await self.store.attendant.get_queue_callers(queue.id), [])
        self.assertTrue(all(call.answered for call in self.calls))
        # The route hook records the prompts of all calls in one list, in the order played:
        # the first two callers went straight through without hearing the queue's welcome.
        self.assertNotIn("queue-welcome", self.heard[:2])
        self.assertEqual(self.heard.count("queue-welcome"), 2)
        start = self.heard.index("queue-welcome")
        self.assertIn("queue-you-are-next", self.heard)
        # The fourth caller had one caller ahead: 240 s / 2 * 1 = 2 minutes.
        self.assertIn(["queue-your-position", "2", "queue-estimated-wait", "2", "minutes"],
                      [self.heard[i:i + 5] for i in range(start, len(self.heard))])
        self.assertEqual(self.heard.count("queue-connecting"), CALLERS)
