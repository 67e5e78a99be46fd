"""Voicemail retrieval flows (own phone and PIN access) on a FakeCall over a real store."""

from portaum_tx.convert.audio import ulaw_to_pcm16
from portaum_tx.mailbox.flags import SEEN
from tests.ivr.test_voicemail_support import MAILBOX, PIN, VoicemailCase, run
from tests.support import on_both_engines

CALLER = list("15557654321")
ENVELOPE_TODAY_10AM = ["vm-received", "today", "at", "10", "am", "vm-from"] + CALLER


def login(call, pin=PIN):
    call.on_prompt("enter-mailbox", press=MAILBOX + "#")
    call.on_prompt("enter-pin", press=pin + "#")


@on_both_engines
class OwnPhoneTests(VoicemailCase):
    def access(self, call, options=None, name="voicemail-access"):
        return run(self.run_app(name, call, self.context(), options))

    def own_call(self, **kwargs):
        return self.make_call(calling=MAILBOX, called="*98", **kwargs)

    async def test_no_messages_then_exit(self):
        call = self.own_call()
        call.on_prompt("vm-main-menu", press="*")
        await self.access(call)
        self.assertEqual(call.played, ["vm-no-messages", "vm-main-menu", "goodbye"])
        self.assertEqual(call.event_names, ["answer", "hangup"])

    async def test_listen_save_delete(self):
        await self.leave_message(2.0)
        await self.leave_message(3.0, caller="2000")
        call = self.own_call()
        call.on_prompt("vm-main-menu", press="1", occurrence=1)
        call.on_prompt("vm-message-menu", press="2", occurrence=1)
        call.on_prompt("vm-message-menu", press="3", occurrence=2)
        call.on_prompt("vm-main-menu", press="*", occurrence=2)
        await self.access(call)
        self.assertEqual(call.played, [
            "you-have", "2", "vm-new-messages", "and", "0", "vm-saved-messages", "vm-main-menu",
            "vm-message", "1"] + ENVELOPE_TODAY_10AM + ["audio:message-1", "vm-message-menu", "vm-message-saved",
            "vm-message", "2", "vm-received", "today", "at", "10", "am", "vm-from", "2", "0", "0", "0",
            "audio:message-2", "vm-message-menu", "vm-message-deleted", "vm-no-more-messages",
            "vm-main-menu", "goodbye"])
        self.assertEqual([a.duration for a in call.played_audio], [2.0, 3.0])
        self.assertEqual(await self.messages("INBOX"), [])
        [(saved, _)] = await self.messages("Saved")
        self.assertTrue(saved.flags & SEEN)
        [(trashed, message)] = await self.messages("Trash")
        self.assertEqual(message["X-Portaum-Caller"], "2000")
        self.assertTrue(trashed.flags & SEEN)
        self.assertEqual(call.unused_hooks, [])

    async def test_listening_marks_seen_and_moves_to_saved_list(self):
        await self.leave_message(2.0)
        call = self.own_call()
        call.on_prompt("vm-main-menu", press="1", occurrence=1)
        call.on_prompt("vm-message-menu", press="*", occurrence=1)
        call.on_prompt("vm-main-menu", press="1", occurrence=2)
        call.on_prompt("vm-main-menu", press="2", occurrence=3)
        call.on_prompt("vm-message-menu", press="6", occurrence=2)
        call.on_prompt("vm-main-menu", press="*", occurrence=4)
        await self.access(call)
        after_first = call.played[call.played.index("vm-message-menu") + 1:]
        self.assertEqual(after_first, [
            "vm-main-menu", "vm-no-new-messages", "vm-main-menu", "vm-message", "1"] + ENVELOPE_TODAY_10AM
            + ["audio:message-1", "vm-message-menu", "vm-no-more-messages", "vm-main-menu", "goodbye"])
        [(info, _)] = await self.messages("INBOX")
        self.assertTrue(info.flags & SEEN)

    async def test_no_saved_messages(self):
        call = self.own_call()
        call.on_prompt("vm-main-menu", press="2", occurrence=1)
        call.on_prompt("vm-main-menu", press="*", occurrence=2)
        await self.access(call)
        self.assertEqual(call.played, ["vm-no-messages", "vm-main-menu", "vm-no-saved-messages",
                                       "vm-main-menu", "goodbye"])

    async def test_replay_envelope_previous_next(self):
        await self.leave_message(2.0)
        self.clock.advance(3600)
        await self.leave_message(1.5, caller=None)
        call = self.own_call()
        call.on_prompt("vm-main-menu", press="1", occurrence=1)
        for occurrence, key in enumerate("154646*", 1):
            call.on_prompt("vm-message-menu", press=key, occurrence=occurrence)
        call.on_prompt("vm-main-menu", press="*", occurrence=2)
        await self.access(call)
        first = ["vm-message", "1", "vm-received", "today", "at", "10", "am", "vm-from"] + CALLER
        second = ["vm-message", "2", "vm-received", "today", "at", "11", "am", "vm-from", "vm-unknown-caller"]
        self.assertEqual(call.played[call.played.index("vm-main-menu") + 1:], first + [
            "audio:message-1", "vm-message-menu",
            "audio:message-1", "vm-message-menu",                                     # 1 replay
            "vm-received", "today", "at", "10", "am", "vm-from"] + CALLER + [        # 5 envelope
            "vm-message-menu", "vm-first-message", "vm-message-menu"] + second + [   # 4 at first, 6
            "audio:message-2", "vm-message-menu"] + first + [                        # 4 previous
            "audio:message-1", "vm-message-menu"] + second + [                       # 6 next
            "audio:message-2", "vm-message-menu", "vm-main-menu", "goodbye"])        # * main menu

    async def test_urgent_messages_first(self):
        await self.leave_message(2.0)
        await self.leave_message(1.0, urgent=True)
        call = self.own_call()
        call.on_prompt("vm-main-menu", press="1")
        call.on_prompt("vm-message-menu", press="*")
        call.on_prompt("vm-main-menu", press="*", occurrence=2)
        await self.access(call)
        start = call.played.index("vm-message")
        self.assertEqual(call.played[start:start + 3], ["vm-message", "1", "vm-urgent-message"])
        self.assertEqual(call.played_audio[0].label, "message-2")

    async def test_fax_is_announced_and_email_is_not_listed(self):
        await self.mailboxes.deliver_fax(MAILBOX, document=b"%PDF-1.4 fax", document_format="pdf", pages=1,
                                         caller="15550007777")
        await self.mailboxes.deliver(MAILBOX, b"From: a@example.net\r\nSubject: hi\r\n\r\nhello\r\n")
        call = self.own_call()
        call.on_prompt("vm-main-menu", press="1")
        call.on_prompt("vm-message-menu", press="6")
        call.on_prompt("vm-main-menu", press="*", occurrence=2)
        await self.access(call)
        self.assertEqual(call.played[:7], ["you-have", "1", "vm-new-message", "and", "0", "vm-saved-messages",
                                           "vm-main-menu"])
        start = call.played.index("vm-from")
        self.assertEqual(call.played[start:], ["vm-from"] + list("15550007777") + [
            "vm-fax-message", "vm-message-menu", "vm-no-more-messages", "vm-main-menu", "goodbye"])
        fax = [info for info, _ in await self.messages() if info.kind == "fax"]
        self.assertTrue(fax[0].flags & SEEN)

    async def test_key_during_the_message_goes_to_the_message_menu(self):
        await self.leave_message(20.0)
        call = self.own_call()
        call.on_prompt("vm-main-menu", press="1")
        call.on_prompt("audio:message-1", press="3", after=1.0)
        call.on_prompt("vm-main-menu", press="*", occurrence=2)
        await self.access(call)
        self.assertEqual(call.played[-5:], ["audio:message-1", "vm-message-deleted", "vm-no-more-messages",
                                            "vm-main-menu", "goodbye"])
        self.assertEqual(len(await self.messages("Trash")), 1)

    async def test_main_menu_timeouts_and_invalid_key(self):
        call = self.own_call()
        call.on_prompt("vm-main-menu", press="7")
        await self.access(call)
        self.assertEqual(call.played, ["vm-no-messages", "vm-main-menu", "invalid"] + ["vm-main-menu"] * 3
                         + ["goodbye"])
        self.assertEqual(call.events[-1][1], "hangup")

    async def test_message_menu_timeout_returns_to_main_menu(self):
        await self.leave_message(2.0)
        call = self.own_call()
        call.on_prompt("vm-main-menu", press="1")
        call.on_prompt("vm-main-menu", press="*", occurrence=2)
        call.on_prompt("vm-message-menu", press="0")
        await self.access(call)
        self.assertEqual(call.played[-8:], ["audio:message-1", "vm-message-menu", "invalid"]
                         + ["vm-message-menu"] * 3 + ["vm-main-menu", "goodbye"])

    async def test_unknown_calling_number_asks_mailbox_and_pin(self):
        call = self.make_call(calling="15559999999", called="*98")
        login(call)
        call.on_prompt("vm-main-menu", press="*")
        await self.access(call)
        self.assertEqual(call.played, ["enter-mailbox", "enter-pin", "vm-no-messages", "vm-main-menu", "goodbye"])

    async def test_ask_pin_option(self):
        call = self.own_call()
        call.on_prompt("enter-pin", press="0000#", occurrence=1)
        call.on_prompt("enter-pin", press=PIN + "#", occurrence=2)
        call.on_prompt("vm-main-menu", press="*")
        await self.access(call, options={"ask_pin": "yes"})
        self.assertEqual(call.played, ["enter-pin", "pin-incorrect", "enter-pin", "vm-no-messages",
                                       "vm-main-menu", "goodbye"])

    async def test_spanish_account_hears_spanish_prompts(self):
        await self.accounts.set_preferences(MAILBOX, language="es")
        call = self.own_call()
        call.on_prompt("vm-main-menu", press="*")
        await self.access(call)
        self.assertEqual(call.languages, ["es", "en"])


@on_both_engines
class PinAccessTests(VoicemailCase):
    def access(self, call, options=None):
        return run(self.run_app("voicemail-pin", call, self.context(), options))

    async def test_mailbox_and_pin(self):
        call = self.make_call(called="18005550000")
        login(call)
        call.on_prompt("vm-main-menu", press="*")
        await self.access(call)
        self.assertEqual(call.played, ["enter-mailbox", "enter-pin", "vm-no-messages", "vm-main-menu", "goodbye"])

    async def test_wrong_pin_until_attempts_run_out(self):
        call = self.make_call()
        login(call, pin="1111")
        call.on_prompt("enter-mailbox", press=MAILBOX + "#", occurrence=2)
        call.on_prompt("enter-pin", press="2222#", occurrence=2)
        await self.access(call, options={"max_login_attempts": 2})
        self.assertEqual(call.played, ["enter-mailbox", "enter-pin", "login-incorrect",
                                       "enter-mailbox", "enter-pin", "login-incorrect", "too-many-attempts"])
        self.assertEqual(call.event_names, ["answer", "hangup"])

    async def test_no_input_counts_as_an_attempt(self):
        call = self.make_call()
        await self.access(call, options={"max_login_attempts": 2})
        self.assertEqual(call.played, ["enter-mailbox", "no-input", "enter-mailbox", "no-input",
                                       "too-many-attempts"])

    async def test_unknown_mailbox_is_refused_like_a_wrong_pin(self):
        call = self.make_call()
        call.on_prompt("enter-mailbox", press="999#")
        call.on_prompt("enter-pin", press="1234#")
        await self.access(call, options={"max_login_attempts": 1})
        self.assertEqual(call.played, ["enter-mailbox", "enter-pin", "login-incorrect", "too-many-attempts"])

    async def test_lockout_persists_across_calls_and_expires(self):
        first = self.make_call()
        for occurrence in (1, 2, 3):
            first.on_prompt("enter-mailbox", press=MAILBOX + "#", occurrence=occurrence)
            first.on_prompt("enter-pin", press="9999#", occurrence=occurrence)
        await self.access(first)
        self.assertEqual(first.played[-1], "too-many-attempts")

        second = self.make_call()
        for occurrence in (1, 2):
            second.on_prompt("enter-mailbox", press=MAILBOX + "#", occurrence=occurrence)
            second.on_prompt("enter-pin", press="9999#", occurrence=occurrence)
        await self.access(second)
        self.assertEqual(second.played, ["enter-mailbox", "enter-pin", "login-incorrect",
                                         "enter-mailbox", "enter-pin", "vm-mailbox-locked"])

        third = self.make_call(calling="15550000000")  # another phone, the right PIN
        login(third)
        await self.access(third)
        self.assertEqual(third.played, ["enter-mailbox", "enter-pin", "vm-mailbox-locked"])

        self.clock.advance(self.accounts.LOCK_FOR + 1)
        fourth = self.make_call(calling="15550000000")
        login(fourth)
        fourth.on_prompt("vm-main-menu", press="*")
        await self.access(fourth)
        self.assertEqual(fourth.played, ["enter-mailbox", "enter-pin", "vm-no-messages", "vm-main-menu", "goodbye"])

    async def test_mailbox_without_unified_messaging(self):
        await self.accounts.set_preferences(MAILBOX, um_enabled=False)
        call = self.make_call()
        login(call)
        await self.access(call)
        self.assertEqual(call.played, ["enter-mailbox", "enter-pin", "vm-mailbox-unavailable"])


@on_both_engines
class SettingsTests(VoicemailCase):
    def settings_call(self, *keys):
        """Signed in from the own phone, straight into settings; then ``keys`` at each
        settings menu in turn, then * twice to leave."""
        call = self.make_call(calling=MAILBOX, called="*98")
        call.on_prompt("vm-main-menu", press="9", occurrence=1)
        for occurrence, key in enumerate(list(keys) + ["*"], 1):
            call.on_prompt("vm-settings-menu", press=key, occurrence=occurrence)
        call.on_prompt("vm-main-menu", press="*", occurrence=2)
        return call

    def access(self, call):
        return run(self.run_app("voicemail-access", call, self.context(), {}))

    async def account(self):
        return await self.ivr_store.accounts.get_account(MAILBOX)

    async def test_record_unavailable_greeting_and_keep_it(self):
        await self.accounts.set_preferences(MAILBOX, greeting="system")
        call = self.settings_call("1")
        call.speak(3.0, end="#")
        call.on_prompt("vm-greeting-options", press="1")
        await self.access(call)
        self.assertEqual(call.played, [
            "vm-no-messages", "vm-main-menu", "vm-settings-menu",
            "vm-record-unavailable-greeting", "beep", "vm-greeting-options", "vm-greeting-saved",
            "vm-settings-menu", "vm-main-menu", "goodbye"])
        stored = await self.ivr_store.accounts.get_greeting(MAILBOX, "unavailable")
        self.assertEqual(len(ulaw_to_pcm16(stored)), 3 * 8000)
        self.assertEqual((await self.account()).greeting, "personal")

    async def test_listen_record_again_then_keep_busy_greeting(self):
        call = self.settings_call("2")
        call.speak(2.0, end="#")
        call.speak(4.0, end="#")
        for occurrence, key in enumerate("231", 1):
            call.on_prompt("vm-greeting-options", press=key, occurrence=occurrence)
        await self.access(call)
        start = call.played.index("vm-record-busy-greeting")
        self.assertEqual(call.played[start:start + 9], [
            "vm-record-busy-greeting", "beep", "vm-greeting-options", "audio:new-busy",
            "vm-greeting-options", "vm-record-busy-greeting", "beep", "vm-greeting-options",
            "vm-greeting-saved"])
        stored = await self.ivr_store.accounts.get_greeting(MAILBOX, "busy")
        self.assertEqual(len(ulaw_to_pcm16(stored)), 4 * 8000)

    async def test_use_system_greeting_removes_the_greeting(self):
        await self.store_greeting("unavailable")
        call = self.settings_call("1")
        call.speak(2.0, end="#")
        call.on_prompt("vm-greeting-options", press="4")
        await self.access(call)
        self.assertIn("vm-greeting-removed", call.played)
        self.assertIsNone(await self.ivr_store.accounts.get_greeting(MAILBOX, "unavailable"))

    async def test_record_name(self):
        call = self.settings_call("3")
        call.speak(1.5, end="#")
        call.on_prompt("vm-greeting-options", press="1")
        await self.access(call)
        self.assertIn("vm-name-saved", call.played)
        self.assertIsNotNone(await self.ivr_store.accounts.get_greeting(MAILBOX, "name"))
        self.assertEqual(call.events[1][2][0], 10.0)  # the name's maximum length

    async def test_too_short_greeting_is_recorded_again(self):
        call = self.settings_call("3")
        call.speak(0.3, end="#")
        call.speak(1.5, end="#")
        call.on_prompt("vm-greeting-options", press="1")
        await self.access(call)
        start = call.played.index("vm-record-name")
        self.assertEqual(call.played[start:start + 6], ["vm-record-name", "beep", "vm-message-too-short",
                                                        "vm-record-name", "beep", "vm-greeting-options"])

    async def test_greeting_options_timeout_keeps_nothing(self):
        call = self.settings_call("1")
        call.speak(2.0, end="#")
        await self.access(call)
        start = call.played.index("vm-greeting-options")
        self.assertEqual(call.played[start:start + 4], ["vm-greeting-options"] * 3 + ["vm-settings-menu"])
        self.assertIsNone(await self.ivr_store.accounts.get_greeting(MAILBOX, "unavailable"))

    async def test_change_pin_with_length_rules_and_confirmation(self):
        call = self.settings_call("4")
        call.on_prompt("vm-enter-new-pin", press="12#", occurrence=1)        # too short
        call.on_prompt("vm-enter-new-pin", press="55667#", occurrence=2)
        call.on_prompt("vm-reenter-new-pin", press="55668#", occurrence=1)   # mismatch
        call.on_prompt("vm-enter-new-pin", press="55667#", occurrence=3)
        call.on_prompt("vm-reenter-new-pin", press="55667#", occurrence=2)
        await self.access(call)
        start = call.played.index("vm-enter-new-pin")
        self.assertEqual(call.played[start:start + 8], [
            "vm-enter-new-pin", "vm-pin-invalid", "vm-enter-new-pin", "vm-reenter-new-pin",
            "vm-pins-do-not-match", "vm-enter-new-pin", "vm-reenter-new-pin", "vm-pin-changed"])
        account = await self.accounts.authenticate(MAILBOX, "55667", kind="pin")
        self.assertEqual(account.id, MAILBOX)

    async def test_pin_longer_than_allowed_is_invalid(self):
        call = self.settings_call("4")
        for occurrence in (1, 2, 3):
            call.on_prompt("vm-enter-new-pin", press="12345678901#", occurrence=occurrence)
        await self.access(call)
        self.assertEqual(call.played.count("vm-pin-invalid"), 3)
        await self.accounts.authenticate(MAILBOX, PIN, kind="pin")  # unchanged

    async def test_choose_language(self):
        call = self.settings_call("5")
        call.on_prompt("lang-es", press="2")
        await self.access(call)
        start = call.played.index("vm-settings-menu") + 1
        self.assertEqual(call.played[start:start + 8], ["for", "lang-en", "press", "1", "for", "lang-es",
                                                        "language-changed", "vm-settings-menu"])
        self.assertEqual((await self.account()).language, "es")
        self.assertEqual(call.languages[0], "es")

    async def test_choose_greeting(self):
        call = self.settings_call("6")
        call.on_prompt("vm-choose-greeting", press="2")
        await self.access(call)
        self.assertIn("settings-saved", call.played)
        self.assertEqual((await self.account()).greeting, "name")

    async def test_settings_invalid_key_and_full_menu(self):
        call = self.settings_call("8")
        await self.access(call)
        start = call.played.index("vm-settings-menu")
        self.assertEqual(call.played[start:start + 5], ["vm-settings-menu", "invalid", "vm-settings-menu",
                                                        "vm-main-menu", "goodbye"])

    async def test_settings_menu_timeout_plays_both_parts(self):
        call = self.make_call(calling=MAILBOX, called="*98")
        call.on_prompt("vm-main-menu", press="9", occurrence=1)
        call.on_prompt("vm-main-menu", press="*", occurrence=2)
        await self.access(call)
        self.assertEqual(call.played[2:], ["vm-settings-menu", "vm-settings-more"] * 3 + ["vm-main-menu", "goodbye"])


@on_both_engines
class HangUpEverywhereTests(VoicemailCase):
    """The caller hangs up at each step: the application ends at once, leaves no timer and
    writes nothing half-done."""

    async def flow(self, prompt, occurrence=1, after=0.3):
        await self.leave_message(2.0)
        call = self.make_call(calling="15559999999", called="800")
        login(call)
        call.on_prompt("vm-main-menu", press="1", occurrence=1)
        call.on_prompt("vm-message-menu", press="*", occurrence=1)
        call.on_prompt("vm-main-menu", press="9", occurrence=2)
        call.on_prompt("vm-settings-menu", press="1", occurrence=1)
        call.speak(2.0, end="#")
        call.on_prompt("vm-greeting-options", press="3", occurrence=1)
        call.on_prompt("vm-settings-menu", press="4", occurrence=2)
        call.on_prompt("vm-enter-new-pin", press="8888#")
        call.on_prompt("vm-reenter-new-pin", press="8888#")
        call.on_prompt("vm-settings-menu", press="*", occurrence=3)
        call.on_prompt("vm-main-menu", press="*", occurrence=3)
        call.hang_up_on_prompt(prompt, occurrence, after)
        await run(self.run_app("voicemail-pin", call, self.context(), {}))
        self.assertEqual(call.hangup_reason, "caller")
        self.assertEqual(call.played.count(prompt), occurrence)
        self.assertNotIn("hangup", call.event_names)
        return call

    async def test_full_flow_without_hang_up(self):
        call = await self.flow("goodbye", after=0.5)
        self.assertIn("vm-pin-changed", call.played)

    async def check_step(self, prompt, occurrence):
        await self.flow(prompt, occurrence)
        self.assertIsNone(await self.ivr_store.accounts.get_greeting(MAILBOX, "unavailable"))
        await self.accounts.authenticate(MAILBOX, PIN, kind="pin")  # PIN unchanged
        [(info, _)] = await self.messages("INBOX")
        before_listening = (prompt, occurrence) in BEFORE_LISTENING
        self.assertEqual(bool(info.flags & SEEN), not before_listening)

    async def test_hang_up_while_recording_a_greeting_keeps_nothing(self):
        call = self.make_call(calling=MAILBOX, called="*98")
        call.on_prompt("vm-main-menu", press="9")
        call.on_prompt("vm-settings-menu", press="1")
        call.speak(3.0, end="hangup")
        await run(self.run_app("voicemail-access", call, self.context(), {}))
        self.assertEqual(call.recordings[0].duration, 3.0)
        self.assertIsNone(await self.ivr_store.accounts.get_greeting(MAILBOX, "unavailable"))



BEFORE_LISTENING = {("enter-mailbox", 1), ("enter-pin", 1), ("you-have", 1), ("vm-main-menu", 1),
                    ("vm-message", 1)}
HANG_UP_STEPS = [("enter-mailbox", 1), ("enter-pin", 1), ("you-have", 1), ("vm-main-menu", 1),
                 ("vm-message", 1), ("audio:message-1", 1), ("vm-message-menu", 1), ("vm-main-menu", 2),
                 ("vm-settings-menu", 1), ("vm-record-unavailable-greeting", 1), ("beep", 1),
                 ("vm-greeting-options", 1), ("vm-record-unavailable-greeting", 2), ("beep", 2),
                 ("vm-settings-menu", 2), ("vm-enter-new-pin", 1), ("vm-reenter-new-pin", 1)]


def _step_test(prompt, occurrence):
    def test(self):
        return run(self.check_step(prompt, occurrence))
    test.__name__ = f"test_hang_up_at_{prompt.replace('-', '_').replace(':', '_')}_{occurrence}"
    return test


for _prompt, _occurrence in HANG_UP_STEPS:
    _test = _step_test(_prompt, _occurrence)
    setattr(HangUpEverywhereTests, _test.__name__, _test)
