"""portaum-admin menu / directory / queue, run as a provider would: one process per command
against this test's database, then read back through the store."""

import os

from portaum_tx.ivr.attendant import AttendantBook, EventAction
from portaum_tx.ivr.fake import speech
from portaum_tx.convert.audio import pcm16_to_wav
from tests.admin_worker import AdminCommands
from tests.support import StoreTestCase, on_both_engines

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ACCOUNT = "18005551234"


@on_both_engines
class AttendantCommandTests(AdminCommands, StoreTestCase):
    error_prefix_kept = False

    async def _open(self):
        await super()._open()
        customer = await self.store.accounts.add_customer("SmartDesign")
        for account_id, email in ((ACCOUNT, None), ("15551230116", "john.brown@smartdesign.example"),
                                  ("15551230145", "mary.broslavsky@smartdesign.example")):
            await self.store.accounts.add_account(account_id, customer.id, quota_bytes=10 ** 6,
                                                  mailbox_folders=(("INBOX", None),), email=email)
        await self.store.accounts.add_alias("116", "15551230116")
        await self.store.accounts.add_alias("145", "15551230145")

    async def test_build_a_menu_tree(self):
        a = self.admin
        a("queue", "add", ACCOUNT, "support", "200", "--max-connected", "2", "--average-duration", "240")
        a("menu", "add", ACCOUNT, "AfterHours", "--event", "0=voicemail", "--event", "fax=voicemail")
        a("menu", "add", ACCOUNT, "Sales", "--period", "hr{9am-5pm} wd{mo-fr}",
          "-e", "1=transfer:116", "-e", "2=extension:3", "-e", "star=menu:ROOT", "--play-before", "1")
        a("menu", "set", ACCOUNT, "ROOT", "-e", "1=menu:Sales", "-e", "2=queue:support", "-e", "9=directory",
          "-e", "0=e164:16045551234", "-e", "not-active=menu:AfterHours", "-e", "fax=voicemail",
          "--period", "hr{8am-6pm}, wd{sa}")
        menus = {m.name: m for m in await AttendantBook(self.store).menus(ACCOUNT)}
        self.assertEqual(sorted(menus), ["AfterHours", "ROOT", "Sales"])
        self.assertEqual(menus["Sales"].action_for("1"), EventAction("transfer", "116", play_before=True))
        self.assertEqual(menus["Sales"].action_for("2"), EventAction("transfer_extension", max_digits=3))
        self.assertEqual(menus["ROOT"].action_for("not_active"), EventAction("menu", "AfterHours"))
        self.assertEqual(menus["ROOT"].period, "hr{8am-6pm}, wd{sa}")
        shown = self.admin_json("menu", "show", ACCOUNT, "Sales")
        self.assertEqual(shown["period_description"], "From 9:00am until 6:00pm\n   Monday-Friday of any month")
        self.assertEqual(shown["events"]["*"], {"action": "menu", "target": "ROOT"})
        self.assertEqual(shown["prompts"]["timeout"], "default (no-input)")
        text = a("menu", "show", ACCOUNT, "ROOT")
        self.assertIn("not_active  menu:AfterHours", text)
        self.assertIn("5           default", text)
        listed = self.admin_json("menu", "list", ACCOUNT)
        self.assertEqual([row["name"] for row in listed], ["ROOT", "AfterHours", "Sales"])
        # Rename: the references follow.
        a("menu", "set", ACCOUNT, "Sales", "--rename", "Sellers", "--always", "--no-play-before", "1")
        root = self.admin_json("menu", "show", ACCOUNT, "ROOT")
        self.assertEqual(root["events"]["1"], {"action": "menu", "target": "Sellers"})
        self.assertEqual(self.admin_json("menu", "show", ACCOUNT, "Sellers")["period"], "")
        # Clear an event, then the menu is free to go.
        a("menu", "set", ACCOUNT, "ROOT", "-e", "1=default")
        a("menu", "remove", ACCOUNT, "Sellers")
        self.assertEqual([m["name"] for m in self.admin_json("menu", "list", ACCOUNT)], ["ROOT", "AfterHours"])

    async def test_validation_errors_are_one_line(self):
        a = self.admin
        a("menu", "add", ACCOUNT, "Sales")
        a("menu", "set", ACCOUNT, "ROOT", "-e", "1=menu:Sales")
        cases = [
            (("menu", "set", ACCOUNT, "ROOT", "-e", "2=menu:Support"),
             "menu ROOT, event 2: there is no menu 'Support'"),
            (("menu", "set", ACCOUNT, "ROOT", "-e", "3=queue:support"),
             "menu ROOT, event 3: there is no queue 'support'"),
            (("menu", "set", ACCOUNT, "ROOT", "-e", "4=voicemail:19990001111"),
             "menu ROOT, event 4: there is no account '19990001111'"),
            (("menu", "set", ACCOUNT, "ROOT", "-e", "5=jump"), "unknown action 'jump'"),
            (("menu", "set", ACCOUNT, "ROOT", "-e", "x=default"), "unknown event 'x'"),
            (("menu", "set", ACCOUNT, "ROOT", "-e", "5"), "--event must be EVENT=ACTION, got '5'"),
            (("menu", "set", ACCOUNT, "ROOT", "--period", "hr{25}"), "hour"),
            (("menu", "remove", ACCOUNT, "ROOT"), "the ROOT menu cannot be removed"),
            (("menu", "set", ACCOUNT, "ROOT", "--rename", "Main"), "the ROOT menu cannot be renamed"),
            (("menu", "remove", ACCOUNT, "Sales"), "menu Sales is still used by menu ROOT, event 1"),
            (("menu", "add", ACCOUNT, "sales"), "already has a menu 'sales'"),
            (("menu", "show", ACCOUNT, "Nope"), "has no menu 'Nope'"),
            (("menu", "list", "19990001111"), "no account 19990001111"),
            (("queue", "add", ACCOUNT, "support", "2x"), "queue destination must be"),
            (("queue", "add", ACCOUNT, "support", "200", "--max-connected", "0"), "maximum connected calls"),
            (("directory", "add", ACCOUNT, "11a", "Brown"), "extension must be 1-15 digits"),
            (("directory", "add", ACCOUNT, "117", "42"), "last name must contain letters"),
            (("menu", "prompt", ACCOUNT, "ROOT", "intro", "/nonexistent.wav"), "cannot read /nonexistent.wav"),
            (("menu", "prompt", ACCOUNT, "ROOT", "outro", "/dev/null"), "prompt kind must be"),
        ]
        for argv, message in cases:
            self.assertIn(message, a(*argv, expect=1), argv)
        a("queue", "add", ACCOUNT, "support", "200")
        a("menu", "set", ACCOUNT, "ROOT", "-e", "3=queue:support")
        self.assertIn("queue support is still used by menu ROOT, event 3",
                      a("queue", "remove", ACCOUNT, "support", expect=1))

    async def test_prompts_directory_and_queues(self):
        a = self.admin
        wav = os.path.abspath(self.mktemp() + ".wav")
        with open(wav, "wb") as handle:
            handle.write(pcm16_to_wav(speech(1.0)))
        a("menu", "prompt", ACCOUNT, "ROOT", "intro", wav)
        a("menu", "prompt", ACCOUNT, "ROOT", "before-star", wav)
        audio = await self.store.attendant.get_attendant_prompt(ACCOUNT, "menu:ROOT", "intro")
        self.assertEqual(audio[:4], b".snd")
        shown = self.admin_json("menu", "show", ACCOUNT, "ROOT")["prompts"]
        self.assertTrue(shown["intro"].startswith("recorded"))
        self.assertTrue(shown["before-*"].startswith("recorded"))
        a("menu", "prompt", ACCOUNT, "ROOT", "intro", "--remove")
        self.assertIsNone(await self.store.attendant.get_attendant_prompt(ACCOUNT, "menu:ROOT", "intro"))

        imported = self.admin_json("directory", "import", ACCOUNT)["imported"]
        self.assertEqual(sorted((e["extension"], e["last_name"]) for e in imported),
                         [("116", "Brown"), ("145", "Broslavsky")])
        a("directory", "add", ACCOUNT, "100", "Asok", "--first", "Cecil")
        a("directory", "set", ACCOUNT, "145", "--exclude", "--name-file", wav)
        a("directory", "mode", ACCOUNT, "sequence")
        listing = self.admin_json("directory", "list", ACCOUNT)
        self.assertEqual(listing["mode"], "sequence")
        self.assertEqual([(e["extension"], e["excluded"], e["recorded_name"]) for e in listing["entries"]],
                         [("100", False, False), ("145", True, True), ("116", False, False)])
        a("directory", "set", ACCOUNT, "145", "--include", "--no-name")
        self.assertFalse((await self.store.attendant.get_directory_entry(ACCOUNT, "145")).has_name_audio)
        a("directory", "remove", ACCOUNT, "100")
        self.assertIn("has no extension 100", a("directory", "remove", ACCOUNT, "100", expect=1))

        a("queue", "add", ACCOUNT, "support", "200", "--music", wav)
        a("queue", "set", ACCOUNT, "support", "--max-connected", "3")
        shown = self.admin_json("queue", "show", ACCOUNT, "support")
        self.assertEqual((shown["max_connected"], shown["average_duration"], shown["music_on_hold"],
                          shown["callers"]), (3, 180, "recorded", []))
        a("queue", "set", ACCOUNT, "support", "--no-music")
        self.assertEqual(self.admin_json("queue", "list", ACCOUNT)[0]["music_on_hold"], "built-in")
        a("queue", "remove", ACCOUNT, "support")
        self.assertEqual(await self.store.attendant.get_queues(ACCOUNT), [])
