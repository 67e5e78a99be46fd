"""MWI with the real store, mailbox service and event bus (both engines): a phone
subscribed with Digest against the account's stored HA1 hears of a voice message
delivered through MailboxService and of its being read; with two nodes on one database
each change is announced once."""

from twisted.internet import defer, reactor, task

from portaum_tx.accounts import AccountService
from portaum_tx.mailbox.events import EventBus
from portaum_tx.mailbox.service import MailboxService
from portaum_tx.sip.digest import build_authorization, parse_challenge
from portaum_tx.sip.message import Request, Response, make_response
from portaum_tx.sip.subscribe import MwiService

from tests.sip.test_subscribe import subscribe
from tests.sip.uahelpers import Harness
from tests.support import StoreTestCase, on_both_engines


class Node:
    def __init__(self, test, store):
        self.store = store
        self.events = EventBus(store)
        test.addCleanup(self.events.close)
        self.mailboxes = MailboxService(store, self.events, reactor, domain="example.com")
        self.harness = Harness()
        self.mwi = MwiService(self.harness.ua, store, self.events, self.mailboxes,
                              store.accounts, reactor, realm="portaum", secret=b"shared",
                              domain="example.com", sweep_interval=3600)
        test.addCleanup(lambda: defer.ensureDeferred(self.mwi.stop()))

    def notifies(self):
        out = []
        for message, _ in self.harness.take():
            if isinstance(message, Request) and message.method == "NOTIFY":
                out.append(message)
                self.harness.feed(make_response(message, 200).serialize())
        return out


async def settle(condition, timeout=5.0):
    """Let the database and the event bus work until ``condition()`` holds."""
    waited = 0.0
    while not condition() and waited < timeout:
        await task.deferLater(reactor, 0.02, lambda: None)
        waited += 0.02
    return condition()


@on_both_engines
class MwiWithStore(StoreTestCase):
    async def provision(self):
        accounts = AccountService(self.store, reactor, realm="portaum")
        await self.store.accounts.add_customer("Example")
        await accounts.create_account("1001", "Example", password="secret1234")

    async def subscribed(self, node):
        await node.mwi.start()
        node.harness.feed(subscribe())
        responses = []
        await settle(lambda: responses.extend(m for m, _ in node.harness.take()) or responses)
        [challenge] = responses
        self.assertEqual(challenge.status, 401)
        credentials = build_authorization(
            parse_challenge(challenge.get_all("WWW-Authenticate")[1]), "1001", "secret1234",
            "SUBSCRIBE", "sip:1001@192.0.2.1")
        node.harness.feed(subscribe(cseq=2, branch="z9hG4bKsub2",
                                    authorization=str(credentials)))
        sent = []
        await settle(lambda: sent.extend(node.harness.take()) or len(sent) >= 2)
        ok = next(m for m, _ in sent if isinstance(m, Response))
        [first] = [m for m, _ in sent if isinstance(m, Request)]
        node.harness.feed(make_response(first, 200).serialize())
        self.assertEqual(ok.status, 200)
        return first

    def test_voice_message_turns_the_light_on_and_reading_it_off(self):
        return defer.ensureDeferred(self._light())

    async def _light(self):
        await self.provision()
        node = Node(self, self.store)
        first = await self.subscribed(node)
        self.assertIn(b"Messages-Waiting: no", first.body)
        delivered = await node.mailboxes.deliver_voice("1001", audio=b"RIFF....WAVE",
                                                       audio_format="wav", duration=3.0,
                                                       caller="555")
        lit = []
        self.assertTrue(await settle(lambda: lit.extend(node.notifies()) or lit))
        self.assertIn(b"Messages-Waiting: yes", lit[0].body)
        self.assertIn(b"Voice-Message: 1/0 (0/0)", lit[0].body)
        mailbox = await node.mailboxes.open("1001")
        await mailbox.set_flags(await mailbox.folder("INBOX"), [delivered.uid], ["\\Seen"])
        dark = []
        self.assertTrue(await settle(lambda: dark.extend(node.notifies()) or dark))
        self.assertIn(b"Messages-Waiting: no", dark[0].body)
        self.assertIn(b"Voice-Message: 0/1 (0/0)", dark[0].body)

    def test_two_nodes_announce_each_change_once(self):
        return defer.ensureDeferred(self._two_nodes())

    async def _two_nodes(self):
        await self.provision()
        first_node = Node(self, self.store)
        await self.subscribed(first_node)
        second_node = Node(self, await self.open_store())
        await second_node.mwi.start()
        await second_node.mailboxes.deliver_voice("1001", audio=b"RIFF....WAVE",
                                                  audio_format="wav", duration=3.0)
        heard = []

        def collect():
            heard.extend(first_node.notifies() + second_node.notifies())
            return heard
        self.assertTrue(await settle(collect))
        await settle(lambda: collect() and False, timeout=0.5)   # anything more?
        self.assertEqual(len(heard), 1)
        self.assertIn(b"Messages-Waiting: yes", heard[0].body)
