"""Dial-by-name over a real store, in both modes, with each way of saying a name."""

from portaum_tx.convert.audio import pcm16_to_ulaw
from portaum_tx.ivr.call import TransferFailed
from portaum_tx.ivr.fake import speech
from tests.ivr.test_attendant_support import ATTENDANT, AttendantCase, recording
from tests.support import on_both_engines

JOHN_BROWN = ["letter-j", "letter-o", "letter-h", "letter-n", "letter-b", "letter-r", "letter-o",
              "letter-w", "letter-n"]


@on_both_engines
class DirectoryTests(AttendantCase):
    async def _open(self):
        await super()._open()
        await self.book.import_directory(ATTENDANT)
        await self.book.add_entry(ATTENDANT, "900", "Chief", "Brass", excluded=True)

    async def directory(self, call, **options):
        return await self.run_app("dial-by-name", call, options)

    async def test_several_matches_with_extensions(self):
        call = self.make_call()
        call.on_prompt("dir-intro", press="276")
        call.on_prompt("dir-make-selection", press="116")
        await self.directory(call)
        # 276 finds Asok, Broslavsky and Brown; Brass is excluded.
        listing = call.played[1:call.played.index("dir-make-selection")]
        self.assertEqual(listing[:5], ["press", "1", "0", "0", "to-reach"])
        self.assertIn(["press", "1", "4", "5", "to-reach"], [listing[i:i + 5] for i in range(len(listing))])
        self.assertEqual(listing[-14:], ["press", "1", "1", "6", "to-reach"] + JOHN_BROWN)
        self.assertEqual(self.transfers(call), ["116"])
        self.assertEqual(call.played[-1], "aa-transferring")

    async def test_several_matches_with_sequence_numbers(self):
        await self.ivr_store.attendant.set_hide_extensions(ATTENDANT, True)
        call = self.make_call()
        call.on_prompt("dir-intro", press="276")
        call.on_prompt("dir-make-selection", press="3")
        await self.directory(call)
        listing = call.played[1:call.played.index("dir-make-selection")]
        self.assertEqual([listing[i + 1] for i, item in enumerate(listing) if item == "press"], ["1", "2", "3"])
        self.assertNotIn("6", listing)  # no extension is said
        self.assertEqual(self.transfers(call), ["116"])

    async def test_one_match_is_said_and_transferred(self):
        call = self.make_call()
        call.on_prompt("dir-intro", press="278")  # nobody's surname starts with these
        call.on_prompt("dir-retry", press="227")
        call.on_prompt("dir-retry", occurrence=2, press="276")
        await self.directory(call)
        self.assertEqual(call.played.count("dir-no-match"), 2)
        self.assertEqual(call.played.count("dir-make-selection"), 2)  # the list, asked twice
        self.assertEqual(call.played[-1], "goodbye")
        self.assertEqual(self.transfers(call), [])
        call = self.make_call()
        await self.book.set_entry(ATTENDANT, "100", excluded=True)
        await self.book.set_entry(ATTENDANT, "145", excluded=True)
        call.on_prompt("dir-intro", press="276")
        await self.directory(call)
        self.assertEqual(call.played, ["dir-intro"] + JOHN_BROWN + ["aa-transferring"])
        self.assertEqual(self.transfers(call), ["116"])

    async def test_recorded_names(self):
        await self.ivr_store.attendant.store_directory_name(ATTENDANT, "116", recording(1.0))
        # Mary has no directory recording but recorded her voicemail name.
        await self.ivr_store.accounts.store_greeting("15551230145", "name", pcm16_to_ulaw(speech(1.0, 5)))
        call = self.make_call()
        call.on_prompt("dir-intro", press="276")
        call.on_prompt("dir-make-selection", press="145")
        await self.directory(call)
        self.assertIn("audio:name-116", call.played)
        self.assertIn("audio:name-145", call.played)
        self.assertIn("letter-k", call.played)  # Asok is spelled
        self.assertEqual(self.transfers(call), ["145"])

    async def test_star_exits_and_no_input_gives_up(self):
        call = self.make_call()
        call.on_prompt("dir-intro", press="2*")
        await self.directory(call)
        self.assertEqual(call.played, ["dir-intro", "goodbye"])
        call = self.make_call()
        await self.directory(call, directory_attempts=2)
        self.assertEqual(call.played, ["dir-intro", "dir-retry", "goodbye"])

    async def test_bad_selection_is_asked_again(self):
        call = self.make_call()
        call.on_prompt("dir-intro", press="276")
        call.on_prompt("dir-make-selection", press="999")
        call.on_prompt("dir-make-selection", occurrence=2, press="100")
        await self.directory(call)
        self.assertIn("invalid-try-again", call.played)
        self.assertEqual(self.transfers(call), ["100"])

    async def test_star_in_the_list_searches_again(self):
        call = self.make_call()
        call.on_prompt("dir-intro", press="276")
        call.on_prompt("dir-make-selection", press="*")
        call.on_prompt("dir-retry", press="*")
        await self.directory(call)
        self.assertEqual(call.played[-2:], ["dir-retry", "goodbye"])

    async def test_failed_transfer(self):
        call = self.make_call()
        call.transfer_outcome = TransferFailed("480")
        call.on_prompt("dir-intro", press="276")
        call.on_prompt("dir-make-selection", press="116")
        await self.directory(call)
        self.assertEqual(call.played[-3:], ["aa-transferring", "aa-transfer-failed", "goodbye"])
