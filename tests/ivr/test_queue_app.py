"""Call queues end to end over a real store: order, announcements on entry and every
minute, estimated wait, the connected-call limit across two nodes, attempt after attempt,
and callers who hang up."""

from twisted.internet import defer

from portaum_tx.convert.audio import make_au, pcm16_to_ulaw
from portaum_tx.ivr.call import DialFailed
from portaum_tx.ivr.fake import FakeCall
from portaum_tx.ivr import queues
from portaum_tx.store import Store
from tests.ivr.test_attendant_support import ATTENDANT, AttendantCase, StoreFakeCall, run_together
from tests.support import on_both_engines


class Agents(dict):
    """What dialling the queue's destination reaches: a new agent leg per answered attempt,
    who talks for ``talk`` seconds and hangs up. ``answers(n)`` says whether attempt n
    (counted over all callers) is answered."""

    def __init__(self, clock, talk: float, answers=lambda n: True, ring: float = 2.0):
        super().__init__()
        self.clock, self.talk, self.answers, self.ring = clock, talk, answers, ring
        self.attempts = 0
        self.calls: list[tuple[float, float, str]] = []  # (answered, hung up, caller)
        self._caller = None

    def for_caller(self, call):
        agents = self

        class Lookup(dict):
            def get(self, destination, default=None):
                return agents.attempt(call, destination)
        call.dial_outcomes = Lookup()
        call.ring_seconds = self.ring

    def attempt(self, call, destination):
        self.attempts += 1
        if not self.answers(self.attempts):
            return DialFailed(destination, "no-answer")
        agent = FakeCall(self.clock, called=destination)
        answered = self.clock.seconds() + self.ring
        agent.hang_up(at=answered + self.talk)
        self.calls.append((answered, answered + self.talk, call.call_id))
        return agent

    def most_at_once(self) -> int:
        edges = sorted([(a, 1) for a, _, _ in self.calls] + [(h, -1) for _, h, _ in self.calls])
        level = peak = 0
        for _, step in edges:
            level += step
            peak = max(peak, level)
        return peak


@on_both_engines
class QueueTests(AttendantCase):
    async def _open(self):
        await super()._open()
        self.queue = await self.book.add_queue(ATTENDANT, "support", "200", 2, 120)

    def caller(self, n, agents, **kwargs):
        call = self.make_call(call_id=f"caller-{n}", calling=f"1555000000{n}", **kwargs)
        agents.for_caller(call)
        return call

    def queue_app(self, call, store=None):
        app = self.registry.get("call-queue")
        context = self.context()
        if store is not None:
            context.store = store
        return lambda: app(call, context, {"queue": "support", "account": ATTENDANT})

    def announcements(self, call):
        """(time, items) of each announcement: from queue-welcome or the position up to the
        last word of the estimated wait."""
        found, current = [], None
        for when, item in call.timeline:
            if current is None and item in ("queue-welcome", "queue-your-position", "queue-you-are-next"):
                current = (when, [])
            if current is not None:
                current[1].append(item)
                if item in ("minute", "minutes"):
                    found.append(current)
                    current = None
        return found

    async def test_order_announcements_and_the_connected_limit_across_two_nodes(self):
        node_b = await self.open_store()
        store_b = Store(node_b.db, self.clock)
        agents = Agents(self.clock, talk=100)
        calls = [self.caller(n, agents) for n in range(5)]
        start = self.clock.seconds()
        await run_together(self.clock, [
            (start + n, call, self.queue_app(call, store_b if n % 2 else None))
            for n, call in enumerate(calls)])
        # Callers reach an agent in the order they arrived, never more than two at once.
        self.assertEqual([caller for _, _, caller in sorted(agents.calls)], [c.call_id for c in calls])
        self.assertEqual(agents.most_at_once(), 2)
        # The first two went straight through, hearing no announcement.
        for call in calls[:2]:
            self.assertEqual(call.played[0], "queue-connecting")
            self.assertNotIn("queue-welcome", call.played)
        # The third is next in line; the estimate counts the callers ahead (none).
        third = self.announcements(calls[2])
        self.assertEqual(third[0][1], ["queue-welcome", "queue-you-are-next", "queue-estimated-wait",
                                       "queue-less-than", "1", "minute"])
        # The fifth has two callers ahead: 120 s / 2 connected * 2 = 2 minutes.
        fifth = self.announcements(calls[4])
        self.assertEqual(fifth[0][1], ["queue-welcome", "queue-your-position", "3", "queue-estimated-wait",
                                       "2", "minutes"])
        # Every minute after that, position and wait again, until connected.
        times = [when for when, _ in fifth]
        self.assertGreater(len(times), 2)
        self.assertEqual([later - earlier for earlier, later in zip(times, times[1:])],
                         [60.0] * (len(times) - 1))
        self.assertEqual(fifth[-1][1][:2], ["queue-you-are-next", "queue-estimated-wait"])
        # Once the queue is empty nothing is left in the store.
        state = await self.ivr_store.attendant.get_queue(ATTENDANT, "support")
        self.assertEqual(state.connected, 0)
        self.assertEqual(await self.ivr_store.attendant.get_queue_callers(self.queue.id), [])
        for call in calls:
            self.assertEqual([what for what in call.event_names if what in ("bridge", "hangup")],
                             ["bridge", "hangup"])

    async def test_a_caller_who_hangs_up_leaves_the_queue(self):
        await self.book.set_queue(ATTENDANT, "support", max_connected=1)
        agents = Agents(self.clock, talk=150)
        calls = [self.caller(n, agents) for n in range(3)]
        calls[1].hang_up(at=self.clock.seconds() + 40)
        start = self.clock.seconds()
        await run_together(self.clock, [(start + n, call, self.queue_app(call))
                                        for n, call in enumerate(calls)])
        self.assertEqual([caller for _, _, caller in sorted(agents.calls)], ["caller-0", "caller-2"])
        self.assertEqual(calls[1].hangup_reason, "caller")
        last = self.announcements(calls[2])
        self.assertEqual(last[0][1][:3], ["queue-welcome", "queue-your-position", "2"])
        # A minute later the caller ahead has gone: next in line.
        self.assertEqual(last[1][1][0], "queue-you-are-next")
        self.assertEqual(await self.ivr_store.attendant.get_queue_callers(self.queue.id), [])

    async def test_attempt_after_attempt_until_answered(self):
        agents = Agents(self.clock, talk=30, answers=lambda n: n >= 3)
        call = self.caller(0, agents)
        await run_together(self.clock, [(self.clock.seconds(), call, self.queue_app(call))])
        self.assertEqual([what for what in call.event_names if what in ("dial", "bridge")],
                         ["dial", "dial", "dial", "bridge"])
        self.assertEqual(agents.attempts, 3)
        # Music on hold between attempts.
        self.assertTrue(any(item.startswith("audio:music") for item in call.played))

    async def test_recorded_music_on_hold(self):
        await self.ivr_store.attendant.store_attendant_prompt(
            ATTENDANT, "queue:support", "music", make_au(pcm16_to_ulaw(queues.default_music_pcm()[:8000])))
        await self.book.set_queue(ATTENDANT, "support", max_connected=1)
        agents = Agents(self.clock, talk=10)
        calls = [self.caller(n, agents) for n in range(2)]
        await run_together(self.clock, [(self.clock.seconds() + n, c, self.queue_app(c))
                                        for n, c in enumerate(calls)])
        self.assertIn("audio:music-support", calls[1].played)

    async def test_queue_removed_while_callers_wait(self):
        await self.book.set_queue(ATTENDANT, "support", max_connected=1)
        agents = Agents(self.clock, talk=100)
        calls = [self.caller(n, agents) for n in range(2)]

        def remove():
            return self.ivr_store.attendant.delete_queue(ATTENDANT, "support")
        removal = []
        calls[1].on_prompt("queue-welcome", action=lambda: removal.append(defer.ensureDeferred(remove())))
        await run_together(self.clock, [(self.clock.seconds() + n, c, self.queue_app(c))
                                        for n, c in enumerate(calls)])
        await removal[0]
        self.assertEqual(calls[1].played[-1], "service-unavailable")
        self.assertEqual(calls[1].event_names[-1], "hangup")
        self.assertEqual([caller for _, _, caller in agents.calls], ["caller-0"])

    async def test_queue_option_errors(self):
        from portaum_tx.ivr.apps import OptionError
        app = self.registry.get("call-queue")
        for options, message in [({}, "option queue must name a call queue"),
                                 ({"queue": "sales"}, "account 18005551234 has no queue 'sales'"),
                                 ({"queue": "support", "account": "1999"}, "no account or alias 1999")]:
            call = StoreFakeCall(self.clock, called=ATTENDANT)
            with self.assertRaisesRegex(OptionError, message):
                await app(call, self.context(), options)
