"""Voicemail deposit flows on a FakeCall over a real store."""

import io

from twisted.trial import unittest

import numpy as np
import soundfile

from portaum_tx.ivr.apps import OptionError
from portaum_tx.ivr.fake import speech
from tests.ivr.test_voicemail_support import MAILBOX, VoicemailCase, run
from tests.support import on_both_engines

NUMBER = list(MAILBOX)
SYSTEM_GREETING = ["vm-the-person-at"] + NUMBER + ["vm-is-unavailable", "vm-leave-message"]


@on_both_engines
class DepositTests(VoicemailCase):
    def deposit(self, call, reason="unavailable", options=None, mailbox=MAILBOX):
        return run(self.run_app("voicemail", call, self.context(mailbox=mailbox, reason=reason), options))

    async def test_system_greeting_record_review_send_delivers_wav(self):
        call = self.make_call(calling_name="Ann Caller")
        call.speak(3.0, end="#")
        call.on_prompt("vm-deposit-options", press="1")
        await self.deposit(call)
        self.assertEqual(call.played, SYSTEM_GREETING + ["beep", "vm-deposit-options", "vm-message-sent", "goodbye"])
        self.assertEqual(call.event_names, ["answer", "record", "hangup"])
        [(info, message)] = await self.messages()
        self.assertEqual((info.kind, info.urgent), ("voice", False))
        self.assertEqual(message["X-Portaum-Caller"], "15557654321")
        [attachment] = list(message.iter_attachments())
        self.assertEqual(attachment.get_content_type(), "audio/wav")
        pcm, rate = soundfile.read(io.BytesIO(attachment.get_content()), dtype="int16")
        self.assertEqual(rate, 8000)
        self.assertEqual(len(pcm), 3 * 8000)
        self.assertTrue(np.array_equal(pcm, speech(3.0, 1)))
        self.assertEqual([(e.account_id, e.kind) for e in self.new_messages], [(MAILBOX, "voice")])
        self.assertEqual(call.unused_hooks, [])

    async def test_mp3_when_the_account_prefers_it(self):
        await self.accounts.set_preferences(MAILBOX, attachment_format="mp3")
        call = self.make_call()
        call.speak(2.0, end="hangup")
        await self.deposit(call)
        [(info, message)] = await self.messages()
        [attachment] = list(message.iter_attachments())
        self.assertEqual(attachment.get_content_type(), "audio/mpeg")
        from portaum_tx.convert.audio import decode_upload
        decoded = decode_upload(attachment.get_content(), normalise=False)
        self.assertLessEqual(abs(len(decoded) - 2 * 8000), 8000 * 0.1)
        self.assertEqual(message["X-Portaum-Duration"], "2")

    async def test_hang_up_while_recording_delivers_what_was_said(self):
        call = self.make_call()
        call.speak(4.0, end="hangup")
        await self.deposit(call)
        self.assertEqual(call.played, SYSTEM_GREETING + ["beep"])
        self.assertEqual(call.recordings[0].duration, 4.0)
        [(info, message)] = await self.messages()
        self.assertEqual(message["X-Portaum-Duration"], "4")
        self.assertNotIn("hangup", call.event_names)  # the caller hung up, not us
        self.assertEqual(call.hangup_reason, "caller")

    async def test_silence_ends_the_recording_and_sends_without_review(self):
        call = self.make_call()
        call.speak(2.5, end="silence")
        await self.deposit(call, options={"silence_seconds": 4})
        self.assertEqual(call.played, SYSTEM_GREETING + ["beep", "vm-message-sent", "goodbye"])
        self.assertEqual(call.recordings[0].ended_by, "silence")
        self.assertEqual(len(await self.messages()), 1)

    async def test_maximum_length(self):
        call = self.make_call()
        call.speak(30.0, end="#")
        await self.deposit(call, options={"max_message_seconds": 10})
        self.assertEqual(call.recordings[0].ended_by, "max_length")
        self.assertEqual(call.recordings[0].duration, 10.0)
        [(info, message)] = await self.messages()
        self.assertEqual(message["X-Portaum-Duration"], "10")

    async def test_too_short_is_discarded_and_caller_may_try_again(self):
        call = self.make_call()
        call.speak(0.5, end="#")
        call.speak(2.0, end="#")
        call.on_prompt("vm-deposit-options", press="1")
        await self.deposit(call)
        self.assertEqual(call.played, SYSTEM_GREETING + ["beep", "vm-message-too-short", "beep",
                                                         "vm-deposit-options", "vm-message-sent", "goodbye"])
        [(info, message)] = await self.messages()
        self.assertEqual(message["X-Portaum-Duration"], "2")

    async def test_too_short_then_hang_up_leaves_nothing(self):
        call = self.make_call()
        call.speak(0.4, end="hangup")
        await self.deposit(call)
        self.assertEqual(await self.messages(), [])
        self.assertEqual(self.new_messages, [])

    async def test_three_short_attempts_say_goodbye(self):
        call = self.make_call()
        for _ in range(3):
            call.speak(0.3, end="#")
        await self.deposit(call)
        self.assertEqual(call.played, SYSTEM_GREETING + ["beep", "vm-message-too-short"] * 3 + ["goodbye"])
        self.assertEqual(await self.messages(), [])

    async def test_review_listen_then_record_again_then_send(self):
        call = self.make_call()
        call.speak(2.0, end="#")
        call.speak(3.0, end="#")
        call.on_prompt("vm-deposit-options", press="2", occurrence=1)
        call.on_prompt("vm-deposit-options", press="3", occurrence=2)
        call.on_prompt("vm-deposit-options", press="1", occurrence=3)
        await self.deposit(call)
        self.assertEqual(call.played, SYSTEM_GREETING + [
            "beep", "vm-deposit-options", "audio:message", "vm-deposit-options",
            "beep", "vm-deposit-options", "vm-message-sent", "goodbye"])
        [(info, message)] = await self.messages()
        self.assertEqual(message["X-Portaum-Duration"], "3")

    async def test_review_invalid_key_and_timeouts_send(self):
        call = self.make_call()
        call.speak(2.0, end="#")
        call.on_prompt("vm-deposit-options", press="7")
        await self.deposit(call)
        self.assertEqual(call.played, SYSTEM_GREETING + [
            "beep", "vm-deposit-options", "invalid"] + ["vm-deposit-options"] * 3 + ["vm-message-sent", "goodbye"])
        self.assertEqual(len(await self.messages()), 1)

    async def test_hang_up_during_review_sends(self):
        call = self.make_call()
        call.speak(2.0, end="#")
        call.hang_up_on_prompt("vm-deposit-options", after=0.5)
        await self.deposit(call)
        self.assertEqual(len(await self.messages()), 1)
        self.assertEqual(call.played[-1], "vm-deposit-options")

    async def test_hang_up_during_greeting_leaves_nothing(self):
        call = self.make_call()
        call.hang_up_on_prompt("vm-is-unavailable", after=0.3)
        await self.deposit(call)
        self.assertEqual(call.played, SYSTEM_GREETING[:-1])
        self.assertEqual(await self.messages(), [])

    async def test_hang_up_during_beep(self):
        call = self.make_call()
        call.hang_up_on_prompt("beep", after=0.1)
        await self.deposit(call)
        self.assertEqual(call.event_names, ["answer"])
        self.assertEqual(await self.messages(), [])

    async def test_pound_skips_the_greeting(self):
        call = self.make_call()
        call.on_prompt("vm-the-person-at", press="#")
        call.speak(2.0, end="hangup")
        await self.deposit(call)
        self.assertEqual(call.played, ["vm-the-person-at", "beep"])
        self.assertEqual(len(await self.messages()), 1)

    async def test_personal_unavailable_greeting(self):
        await self.store_greeting("unavailable")
        await self.store_greeting("name")
        call = self.make_call()
        call.speak(2.0, end="hangup")
        await self.deposit(call)
        self.assertEqual(call.played, ["audio:greeting-unavailable", "beep"])
        self.assertEqual(call.played_audio[0].duration, 2.0)

    async def test_busy_reason_plays_the_busy_greeting(self):
        await self.store_greeting("unavailable")
        await self.store_greeting("busy")
        call = self.make_call()
        call.speak(2.0, end="hangup")
        await self.deposit(call, reason="busy")
        self.assertEqual(call.played, ["audio:greeting-busy", "beep"])

    async def test_busy_without_busy_greeting_uses_the_name(self):
        await self.store_greeting("unavailable")
        await self.store_greeting("name")
        call = self.make_call()
        call.speak(2.0, end="hangup")
        await self.deposit(call, reason="busy")
        self.assertEqual(call.played, ["audio:name", "vm-is-busy", "vm-leave-message", "beep"])

    async def test_greeting_choice_name_skips_personal_greeting(self):
        await self.store_greeting("unavailable")
        await self.store_greeting("name")
        await self.accounts.set_preferences(MAILBOX, greeting="name")
        call = self.make_call()
        call.speak(2.0, end="hangup")
        await self.deposit(call)
        self.assertEqual(call.played, ["audio:name", "vm-is-unavailable", "vm-leave-message", "beep"])

    async def test_greeting_choice_system_says_the_number(self):
        await self.store_greeting("unavailable")
        await self.store_greeting("name")
        await self.accounts.set_preferences(MAILBOX, greeting="system")
        call = self.make_call()
        call.speak(2.0, end="hangup")
        await self.deposit(call, reason="busy")
        self.assertEqual(call.played, ["vm-the-person-at"] + NUMBER + ["vm-is-busy", "vm-leave-message", "beep"])

    async def test_diverted_call_says_the_original_number(self):
        await self.accounts.add_alias("2000", MAILBOX)
        call = self.make_call(called="18005550000", original_called="2000", diversion_reason="no-answer")
        call.speak(2.0, end="hangup")
        await self.deposit(call)
        self.assertEqual(call.played, ["vm-the-person-at", "2", "0", "0", "0", "vm-is-unavailable",
                                       "vm-leave-message", "beep"])

    async def test_mailbox_full_before_recording(self):
        await self.leave_message(1.0)
        await self.ivr_store.db.execute("test", "UPDATE mailboxes SET quota_bytes = 10", ())
        call = self.make_call()
        await self.deposit(call)
        self.assertEqual(call.played, ["vm-mailbox-full"])
        self.assertEqual(call.event_names, ["answer", "hangup"])
        self.assertEqual(len(await self.messages()), 1)

    async def test_mailbox_full_at_delivery(self):
        call = self.make_call()
        call.speak(3.0, end="#")

        async def fill():
            await self.ivr_store.db.execute("test", "UPDATE mailboxes SET quota_bytes = 100", ())
        filled = []
        call.on_prompt("vm-deposit-options", press="1",
                       action=lambda: filled.append(run(fill())))
        await self.deposit(call)
        await filled[0]
        self.assertEqual(call.played[-2:], ["vm-deposit-options", "vm-mailbox-full"])
        self.assertEqual(await self.messages(), [])

    async def test_fax_tone_without_fax_application_is_logged_and_deposit_goes_on(self):
        self.registry.unregister("fax")     # a node without the fax application
        call = self.make_call()
        call.on_prompt("vm-leave-message", fax="CNG")
        call.speak(2.0, end="hangup")
        await self.deposit(call)
        self.assertEqual(call.fax_tones, ["CNG"])
        self.assertEqual(call.played, SYSTEM_GREETING + ["beep"])
        self.assertEqual(len(await self.messages()), 1)
        self.assertFalse(call.fax_detection)

    async def test_fax_tone_hands_the_call_to_the_fax_application(self):
        received = []

        async def fax(call, context, options):
            received.append((call.played[-1], context.mailbox))
            await call.hangup()
        self.registry.register("fax", fax, replace=True)
        call = self.make_call()
        call.on_prompt("vm-the-person-at", fax="CNG", after=0.5)
        await self.deposit(call)
        self.assertEqual(received, [("vm-the-person-at", MAILBOX)])
        self.assertEqual(call.played, ["vm-the-person-at"])
        self.assertEqual(await self.messages(), [])

    async def test_fax_tone_while_recording_hands_over_and_drops_the_audio(self):
        received = []

        async def fax(call, context, options):
            received.append(True)
            await call.hangup()
        self.registry.register("fax", fax, replace=True)
        call = self.make_call()
        call.speak(10.0, end="#")
        call.on_prompt("beep", fax="CNG", after=2.0)
        await self.deposit(call)
        self.assertEqual(received, [True])
        self.assertEqual(call.recordings[0].ended_by, "stopped")
        self.assertEqual(await self.messages(), [])

    async def test_access_number_deposit_asks_for_the_mailbox(self):
        call = self.make_call(called="800")
        call.on_prompt("enter-mailbox", press="999#", occurrence=1)
        call.on_prompt("enter-mailbox", press=MAILBOX + "#", occurrence=2)
        call.speak(2.0, end="hangup")
        await self.deposit(call, mailbox=None, reason=None)
        self.assertEqual(call.played, ["enter-mailbox", "vm-mailbox-unavailable", "enter-mailbox"]
                         + ["vm-the-person-at"] + NUMBER + ["vm-is-unavailable", "vm-leave-message", "beep"])
        self.assertEqual(len(await self.messages()), 1)

    async def test_access_number_deposit_gives_up_after_attempts(self):
        call = self.make_call(called="800")
        await self.deposit(call, mailbox=None, reason=None, options={"max_login_attempts": 2})
        self.assertEqual(call.played, ["enter-mailbox", "no-input", "enter-mailbox", "no-input",
                                       "too-many-attempts"])

    async def test_bad_option_is_named(self):
        from portaum_tx.ivr.apps.voicemail import DepositOptions
        with self.assertRaisesRegex(OptionError, "option max_message_seconds must be a number"):
            DepositOptions.parse({"max_message_seconds": "long"})
        with self.assertRaisesRegex(OptionError, "option review must be yes or no"):
            DepositOptions.parse({"review": "maybe"})
        call = self.make_call()
        await self.deposit(call, options={"silence_seconds": 0})  # logged, call ended
        self.assertEqual(call.event_names, ["reject"])


class PromptCoverageTests(unittest.TestCase):
    """Every prompt the voicemail applications name is rendered in each shipped language and
    explained in docs/voicemail.md."""

    def test_prompts_exist_and_are_documented(self):
        import re
        from pathlib import Path
        from portaum_tx.ivr.prompts import PromptLibrary, load_catalog
        root = Path(__file__).resolve().parents[2]
        catalog = load_catalog()
        sources = [root / "portaum_tx/ivr/apps/voicemail.py", root / "portaum_tx/ivr/apps/voicemail_access.py"]
        names = {m for path in sources for m in re.findall(r'"([a-z][a-z0-9-]+)"', path.read_text())
                 if m in catalog}
        names |= {"lang-en", "lang-es"}
        self.assertGreater(len(names), 50)
        library = PromptLibrary()
        docs = (root / "docs/voicemail.md").read_text()
        for name in sorted(names):
            for language in ("en", "es"):
                self.assertTrue(library.file_path(name, language).is_file(), f"{language}/{name}.au")
            if name.startswith("vm-") or name in ("enter-mailbox", "enter-pin", "login-incorrect"):
                self.assertTrue(f"`{name}`" in docs, f"{name} is not in docs/voicemail.md")


class OptionFuzzTests(unittest.TestCase):
    def test_any_option_value_is_accepted_or_named(self):
        from hypothesis import given, settings, strategies as st
        from portaum_tx.ivr.apps.voicemail import DepositOptions
        from portaum_tx.ivr.apps.voicemail_access import AccessOptions

        names = ["max_message_seconds", "min_message_seconds", "silence_seconds", "review",
                 "max_login_attempts", "fax_application", "ask_pin", "min_pin_length", "max_pin_length",
                 "max_greeting_seconds", "max_name_seconds"]
        values = st.one_of(st.none(), st.booleans(), st.integers(-5, 5000), st.floats(allow_nan=True),
                           st.text(max_size=8), st.lists(st.integers(), max_size=2))

        @settings(max_examples=200, deadline=None)
        @given(st.dictionaries(st.sampled_from(names), values, max_size=4))
        def check(options):
            for parser in (DepositOptions.parse, AccessOptions.parse):
                try:
                    parser(options)
                except OptionError as e:
                    self.assertTrue(any(f"option {name}" in str(e) for name in options), str(e))

        check()
