"""The auto attendant over a real store: every event and every action."""

from portaum_tx.ivr.apps.auto_attendant import MAX_HOPS
from portaum_tx.ivr.attendant import EventAction as A, MenuError
from portaum_tx.ivr.call import TransferFailed
from portaum_tx.ivr.fake import FakeCall
from tests.ivr.test_attendant_support import ATTENDANT, AttendantCase, recording
from tests.support import on_both_engines

MENU = ["aa-welcome", "aa-enter-extension"]


@on_both_engines
class EventTests(AttendantCase):
    async def attendant(self, call, **options):
        return await self.run_app("auto-attendant", call, options)

    async def test_key_transfers_with_default_prompts(self):
        await self.book.set_menu(ATTENDANT, "ROOT", events={"1": A("transfer", "116")})
        call = self.make_call()
        call.on_prompt("aa-enter-extension", press="1")
        await self.attendant(call)
        self.assertEqual(call.event_names[0], "answer")
        self.assertEqual(call.played, MENU)
        self.assertEqual(self.transfers(call), ["116"])

    async def test_every_key_reaches_its_event(self):
        keys = "0123456789*#"
        await self.book.set_menu(ATTENDANT, "ROOT",
                                 events={k: A("transfer", f"20{n}") for n, k in enumerate(keys)})
        for n, key in enumerate(keys):
            call = self.make_call()
            call.on_prompt("aa-enter-extension", press=key)
            await self.attendant(call)
            self.assertEqual(self.transfers(call), [f"20{n}"], key)

    async def test_default_action_plays_default_prompt_and_the_menu_again(self):
        call = self.make_call()
        call.on_prompt("aa-enter-extension", press="5")
        call.on_prompt("aa-enter-extension", occurrence=2, hangup=True)
        await self.attendant(call)
        self.assertEqual(call.played, MENU + ["no-input", "aa-enter-extension"])

    async def test_timeouts_repeat_then_goodbye(self):
        call = self.make_call()
        await self.attendant(call, max_timeouts=2, menu_timeout=4)
        self.assertEqual(call.played, MENU + ["silence:4000", "no-input", "aa-enter-extension",
                                              "silence:4000", "no-input", "goodbye"])
        self.assertEqual(call.event_names[-1], "hangup")

    async def test_timeout_event_action(self):
        await self.book.set_menu(ATTENDANT, "ROOT", events={"timeout": A("transfer", "100")})
        call = self.make_call()
        await self.attendant(call)
        self.assertEqual(call.played, MENU + ["silence:5000"])
        self.assertEqual(self.transfers(call), ["100"])
        self.assertEqual(call.clock.seconds() - call.events[0][0], 7.0)

    async def test_fax_tone_reaches_fax_reception_for_the_mailbox(self):
        received = []

        async def fax(call, context, options):
            received.append(context.mailbox)
            await call.hangup()
        self.registry.register("fax", fax, replace=True)
        await self.book.set_menu(ATTENDANT, "ROOT", events={"fax": A("transfer_voicemail")})
        call = self.make_call()
        call.on_prompt("aa-enter-extension", fax="CNG", after=0.5)
        await self.attendant(call)
        self.assertEqual(received, [ATTENDANT])
        self.assertEqual(call.played, MENU)
        self.assertFalse(call.fax_detection)

    async def test_fax_tone_during_the_intro(self):
        received = []

        async def fax(call, context, options):
            received.append(context.mailbox)
            await call.hangup()
        self.registry.register("fax", fax, replace=True)
        await self.book.set_menu(ATTENDANT, "ROOT", events={"fax": A("transfer_voicemail", "15551230116")})
        call = self.make_call()
        call.on_prompt("aa-welcome", fax="CNG")
        await self.attendant(call)
        self.assertEqual(received, ["15551230116"])
        self.assertEqual(call.played, ["aa-welcome"])

    async def test_fax_with_default_action_goes_back_to_the_menu(self):
        call = self.make_call()
        call.on_prompt("aa-enter-extension", fax="CNG")
        call.on_prompt("aa-enter-extension", occurrence=2, hangup=True)
        await self.attendant(call)
        self.assertEqual(call.played, MENU + ["no-input", "aa-enter-extension"])

    async def test_not_active_default_plays_unavailable_and_goodbye(self):
        # Friday 10:00 in New York: a weekend-only ROOT is not active.
        await self.book.set_menu(ATTENDANT, "ROOT", period="wd{sa su}")
        call = self.make_call()
        await self.attendant(call)
        self.assertEqual(call.played, ["aa-closed", "goodbye"])

    async def test_not_active_leads_to_another_menu(self):
        await self.book.add_menu(ATTENDANT, "AfterHours", events={"0": A("transfer_voicemail")})
        await self.book.set_menu(ATTENDANT, "ROOT", period="hr{6pm-8am}",
                                 events={"not_active": A("menu", "AfterHours")})
        vm = []

        async def voicemail(call, context, options):
            vm.append((context.mailbox, context.reason))
            await call.hangup()
        self.registry.register("voicemail", voicemail, replace=True)
        call = self.make_call()
        call.on_prompt("aa-enter-extension", press="0")
        await self.attendant(call)
        self.assertEqual(call.played, MENU)
        self.assertEqual(vm, [(ATTENDANT, "unavailable")])

    async def test_menus_that_lead_into_each_other_let_the_caller_go(self):
        await self.book.add_menu(ATTENDANT, "Night", period="none")
        await self.book.set_menu(ATTENDANT, "ROOT", period="none", events={"not_active": A("menu", "Night")})
        await self.book.set_menu(ATTENDANT, "Night", events={"not_active": A("menu", "ROOT")})
        call = self.make_call()
        await self.attendant(call)
        self.assertEqual(call.played, ["aa-closed", "goodbye"])

    async def test_hop_limit_is_reset_by_a_key(self):
        self.assertGreater(MAX_HOPS, 2)
        await self.book.add_menu(ATTENDANT, "Sales", events={"*": A("menu", "ROOT")})
        await self.book.set_menu(ATTENDANT, "ROOT", events={"2": A("menu", "Sales")})
        call = self.make_call()
        for n in range(1, MAX_HOPS + 3):
            call.on_prompt("aa-enter-extension", press="2" if n % 2 else "*", occurrence=n)
        call.on_prompt("aa-enter-extension", occurrence=MAX_HOPS + 3, hangup=True)
        await self.attendant(call)
        # Intro once per menu, then only Menu prompts, back and forth.
        self.assertEqual(call.played[:4], ["aa-welcome", "aa-enter-extension", "aa-welcome", "aa-enter-extension"])
        self.assertEqual(call.played[4:], ["aa-enter-extension"] * (MAX_HOPS + 1))


@on_both_engines
class ActionTests(AttendantCase):
    async def attendant(self, call, **options):
        return await self.run_app("auto-attendant", call, options)

    async def test_transfer_to_e164_with_play_before(self):
        await self.book.set_menu(ATTENDANT, "ROOT", events={"1": A("transfer_e164", "16045551234", play_before=True)})
        call = self.make_call()
        call.on_prompt("aa-enter-extension", press="1")
        await self.attendant(call)
        self.assertEqual(call.played, MENU + ["aa-transferring"])
        self.assertEqual(self.transfers(call), ["16045551234"])

    async def test_play_before_uses_the_recorded_prompt(self):
        await self.book.set_menu(ATTENDANT, "ROOT", events={"4": A("disconnect", play_before=True)})
        await self.ivr_store.attendant.store_attendant_prompt(ATTENDANT, "menu:ROOT", "before-4", recording(0.5))
        call = self.make_call()
        call.on_prompt("aa-enter-extension", press="4")
        await self.attendant(call)
        self.assertEqual(call.played, MENU + ["audio:ROOT-before-4"])
        self.assertEqual(call.event_names[-1], "hangup")

    async def test_recorded_menu_prompts_replace_the_defaults(self):
        for kind in ("intro", "menu", "timeout"):
            await self.ivr_store.attendant.store_attendant_prompt(ATTENDANT, "menu:ROOT", kind, recording(2.0))
        call = self.make_call()
        call.on_prompt("audio:ROOT-menu", press="7")
        call.on_prompt("audio:ROOT-menu", occurrence=2, hangup=True)
        await self.attendant(call)
        self.assertEqual(call.played, ["audio:ROOT-intro", "audio:ROOT-menu", "audio:ROOT-timeout",
                                       "audio:ROOT-menu"])

    async def test_failed_transfer_returns_to_the_menu(self):
        await self.book.set_menu(ATTENDANT, "ROOT", events={"1": A("transfer", "116")})
        call = self.make_call()
        call.transfer_outcome = TransferFailed("486 Busy Here")
        call.on_prompt("aa-enter-extension", press="1")
        call.on_prompt("aa-enter-extension", occurrence=2, hangup=True)
        await self.attendant(call)
        self.assertEqual(call.played, MENU + ["aa-transfer-failed", "aa-enter-extension"])
        self.assertEqual(self.transfers(call), ["116"])

    async def test_transfer_to_extension_starts_with_the_key(self):
        await self.book.set_menu(ATTENDANT, "ROOT", events={k: A("transfer_extension", max_digits=3) for k in "123"})
        call = self.make_call()
        call.on_prompt("aa-enter-extension", press="145")
        await self.attendant(call)
        self.assertEqual(self.transfers(call), ["145"])

    async def test_transfer_to_extension_ends_with_pound_or_the_timeout(self):
        await self.book.set_menu(ATTENDANT, "ROOT", events={"1": A("transfer_extension", max_digits=4)})
        call = self.make_call()
        call.on_prompt("aa-enter-extension", press="12#")
        await self.attendant(call)
        self.assertEqual(self.transfers(call), ["12"])
        call = self.make_call()
        call.on_prompt("aa-enter-extension", press="116")
        await self.attendant(call, extension_timeout=2)
        self.assertEqual(self.transfers(call), ["116"])

    async def test_transfer_to_extension_refuses_too_many_digits(self):
        await self.book.set_menu(ATTENDANT, "ROOT", events={"1": A("transfer_extension", max_digits=3)})
        call = self.make_call()
        call.on_prompt("aa-enter-extension", press="1900")
        call.on_prompt("aa-enter-extension", occurrence=2, hangup=True)
        await self.attendant(call)
        self.assertEqual(self.transfers(call), [])
        self.assertEqual(call.played, MENU + ["aa-invalid-extension", "aa-enter-extension"])

    async def test_transfer_to_extension_from_star_asks_for_it(self):
        await self.book.set_menu(ATTENDANT, "ROOT", events={"*": A("transfer_extension", max_digits=3)})
        call = self.make_call()
        call.on_prompt("aa-enter-extension", press="*")
        call.on_prompt("aa-enter-extension", occurrence=2, press="100#")
        await self.attendant(call)
        self.assertEqual(call.played, MENU + ["aa-enter-extension"])
        self.assertEqual(self.transfers(call), ["100"])

    async def test_transfer_to_voicemail_of_another_mailbox(self):
        vm = []

        async def voicemail(call, context, options):
            vm.append((context.mailbox, options.get("max_timeouts")))
            await call.hangup()
        self.registry.register("voicemail", voicemail, replace=True)
        await self.book.set_menu(ATTENDANT, "ROOT", events={"8": A("transfer_voicemail", "15551230145")})
        call = self.make_call()
        call.on_prompt("aa-enter-extension", press="8")
        await self.attendant(call, max_timeouts=3)
        self.assertEqual(vm, [("15551230145", 3)])

    async def test_menu_action_intro_once_per_menu(self):
        await self.book.add_menu(ATTENDANT, "Sales", events={"*": A("menu", "ROOT"), "1": A("transfer", "145")})
        await self.book.set_menu(ATTENDANT, "ROOT", events={"2": A("menu", "Sales")})
        await self.ivr_store.attendant.store_attendant_prompt(ATTENDANT, "menu:Sales", "intro", recording(1.0))
        await self.ivr_store.attendant.store_attendant_prompt(ATTENDANT, "menu:Sales", "menu", recording(1.0, 4))
        call = self.make_call()
        call.on_prompt("aa-enter-extension", press="2")
        call.on_prompt("audio:Sales-menu", press="*")
        call.on_prompt("aa-enter-extension", occurrence=2, press="2")
        call.on_prompt("audio:Sales-menu", occurrence=2, press="1")
        await self.attendant(call)
        self.assertEqual(call.played, MENU + ["audio:Sales-intro", "audio:Sales-menu", "aa-enter-extension",
                                              "audio:Sales-menu"])
        self.assertEqual(self.transfers(call), ["145"])

    async def test_directory_action(self):
        await self.book.import_directory(ATTENDANT)
        await self.book.set_menu(ATTENDANT, "ROOT", events={"9": A("directory")})
        call = self.make_call()
        call.on_prompt("aa-enter-extension", press="9")
        call.on_prompt("dir-intro", press="266")  # C-O-O: nobody
        call.on_prompt("dir-retry", press="276")
        call.on_prompt("dir-make-selection", press="116")
        await self.attendant(call)
        self.assertEqual(self.transfers(call), ["116"])
        self.assertEqual(call.played[-1], "aa-transferring")
        self.assertIn("dir-no-match", call.played)

    async def test_directory_star_comes_back_to_the_menu(self):
        await self.book.set_menu(ATTENDANT, "ROOT", events={"9": A("directory")})
        call = self.make_call()
        call.on_prompt("aa-enter-extension", press="9")
        call.on_prompt("dir-intro", press="*")
        call.on_prompt("aa-enter-extension", occurrence=2, hangup=True)
        await self.attendant(call)
        self.assertEqual(call.played, MENU + ["dir-intro", "aa-enter-extension"])

    async def test_queue_action_bridges_to_the_destination(self):
        await self.book.add_queue(ATTENDANT, "support", "200", 1, 120)
        await self.book.set_menu(ATTENDANT, "ROOT", events={"3": A("queue", "support")})
        call = self.make_call()
        agent = FakeCall(self.clock, called="200")
        call.dial_outcomes["200"] = agent
        call.on_prompt("aa-enter-extension", press="3")
        call.on_prompt("queue-connecting", action=lambda: agent.hang_up(at=self.clock.seconds() + 60))
        await self.attendant(call)
        self.assertEqual(call.played, MENU + ["queue-connecting"])
        self.assertEqual([what for what in call.event_names if what in ("dial", "bridge", "hangup")],
                         ["dial", "bridge", "hangup"])
        queue = await self.ivr_store.attendant.get_queue(ATTENDANT, "support")
        self.assertEqual(queue.connected, 0)
        self.assertEqual(await self.ivr_store.attendant.get_queue_callers(queue.id), [])

    async def test_disconnect(self):
        await self.book.set_menu(ATTENDANT, "ROOT", events={"#": A("disconnect")})
        call = self.make_call()
        call.on_prompt("aa-enter-extension", press="#")
        await self.attendant(call)
        self.assertEqual(call.played, MENU)
        self.assertEqual(call.event_names, ["answer", "hangup"])

    async def test_caller_hanging_up_ends_quietly(self):
        call = self.make_call()
        call.hang_up_on_prompt("aa-welcome", after=0.3)
        await self.attendant(call)
        self.assertEqual(call.hangup_reason, "caller")

    async def test_account_option_and_alias(self):
        await self.accounts.add_alias("5551234", ATTENDANT)
        await self.book.set_menu(ATTENDANT, "ROOT", events={"1": A("transfer", "116")})
        call = self.make_call(called="5551234")
        call.on_prompt("aa-enter-extension", press="1")
        await self.attendant(call)
        self.assertEqual(self.transfers(call), ["116"])
        call = self.make_call(called="000")
        call.on_prompt("aa-enter-extension", press="1")
        await self.attendant(call, account=ATTENDANT)
        self.assertEqual(self.transfers(call), ["116"])


@on_both_engines
class BookTests(AttendantCase):
    async def test_root_is_always_there_and_cannot_go(self):
        self.assertEqual([m.name for m in await self.book.menus(ATTENDANT)], ["ROOT"])
        with self.assertRaisesRegex(MenuError, "ROOT menu cannot be removed"):
            await self.book.remove_menu(ATTENDANT, "ROOT")
        with self.assertRaisesRegex(MenuError, "ROOT menu cannot be renamed"):
            await self.book.set_menu(ATTENDANT, "ROOT", new_name="Main")

    async def test_no_dangling_references(self):
        with self.assertRaisesRegex(MenuError, "menu ROOT, event 1: there is no menu 'Sales'"):
            await self.book.set_menu(ATTENDANT, "ROOT", events={"1": A("menu", "Sales")})
        with self.assertRaisesRegex(MenuError, "there is no queue 'support'"):
            await self.book.set_menu(ATTENDANT, "ROOT", events={"1": A("queue", "support")})
        with self.assertRaisesRegex(MenuError, "there is no account '19990000000'"):
            await self.book.set_menu(ATTENDANT, "ROOT", events={"1": A("transfer_voicemail", "19990000000")})
        self.assertEqual(await self.ivr_store.attendant.get_menus(ATTENDANT), [])
        await self.book.add_menu(ATTENDANT, "Sales")
        await self.book.add_queue(ATTENDANT, "support", "200")
        await self.book.set_menu(ATTENDANT, "ROOT", events={"1": A("menu", "Sales"), "2": A("queue", "support")})
        with self.assertRaisesRegex(MenuError, "menu Sales is still used by menu ROOT, event 1"):
            await self.book.remove_menu(ATTENDANT, "Sales")
        with self.assertRaisesRegex(MenuError, "queue support is still used by menu ROOT, event 2"):
            await self.book.remove_queue(ATTENDANT, "support")
        with self.assertRaisesRegex(MenuError, "already has a menu 'sales'"):
            await self.book.add_menu(ATTENDANT, "sales")

    async def test_rename_carries_references_and_prompts(self):
        await self.book.add_menu(ATTENDANT, "Sales", "wd{mo-fr}")
        await self.book.set_menu(ATTENDANT, "ROOT", events={"1": A("menu", "Sales")})
        await self.ivr_store.attendant.store_attendant_prompt(ATTENDANT, "menu:Sales", "intro", b"x")
        renamed = await self.book.set_menu(ATTENDANT, "Sales", new_name="Sellers", period="")
        self.assertEqual((renamed.name, renamed.period), ("Sellers", ""))
        root = await self.book.menu(ATTENDANT, "ROOT")
        self.assertEqual(root.action_for("1"), A("menu", "Sellers"))
        self.assertEqual(await self.ivr_store.attendant.get_attendant_prompt(ATTENDANT, "menu:Sellers", "intro"), b"x")
        # Clearing an event back to Default removes it from the table.
        cleared = await self.book.set_menu(ATTENDANT, "ROOT", events={"1": A()})
        self.assertEqual(dict(cleared.events), {})
        await self.book.remove_menu(ATTENDANT, "Sellers")
        self.assertEqual([m.name for m in await self.book.menus(ATTENDANT)], ["ROOT"])

    async def test_import_directory_from_the_customer_accounts(self):
        await self.accounts.create_account("15551230999", "SmartDesign")
        added = await self.book.import_directory(ATTENDANT)
        self.assertEqual(sorted((e.extension, e.first_name, e.last_name, e.excluded) for e in added),
                         [("100", "Cecil", "Asok", False), ("116", "John", "Brown", False),
                          ("145", "Mary", "Broslavsky", False), ("15551230999", "", "", True)])
        self.assertEqual(await self.book.import_directory(ATTENDANT), [])
        entry = await self.book.set_entry(ATTENDANT, "15551230999", last_name="Doe", excluded=False)
        self.assertEqual((entry.last_name, entry.excluded), ("Doe", False))
