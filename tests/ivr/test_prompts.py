import os
from pathlib import Path

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial import unittest

from portaum_tx.convert.audio import make_au, read_au
from portaum_tx.ivr import say
from portaum_tx.ivr.prompts import (
    Prompt, PromptError, PromptFormatError, PromptLibrary, PromptNameError, PromptNotFound,
    default_prompt_dir, language_preferences, load_catalog, store_lookup,
)

PROMPT_DIR = default_prompt_dir()
# Prompts the applications are written against; the catalog must keep them.
APPLICATION_PROMPTS = """
welcome goodbye invalid invalid-try-again too-many-attempts enter-pin enter-mailbox enter-card-number
enter-password enter-destination login-incorrect press for to-reach you-have followed-by-pound
vm-greeting-default vm-the-person-at vm-is-unavailable vm-is-busy vm-record-after-tone vm-mailbox-full
vm-new-message vm-new-messages vm-saved-message vm-saved-messages vm-no-messages vm-main-menu
vm-message-menu vm-settings-menu vm-message-saved vm-message-deleted vm-received vm-from
vm-record-unavailable-greeting vm-record-busy-greeting vm-record-name vm-enter-new-pin vm-pin-changed
aa-welcome aa-enter-extension aa-transferring aa-closed dir-intro dir-no-match dir-retry dir-extension
queue-welcome queue-your-position queue-estimated-wait your-balance-is pp-insufficient-funds
pp-you-can-talk pp-disconnect-in pp-max-dial-attempts cb-will-call-back enter-voucher voucher-invalid
account-credited your-new-balance-is pt-enter-code pt-call-not-authorized conf-enter-code
conf-host-not-joined conf-joining conf-ended fax-not-available fwd-menu hol-menu moh
""".split()


def ulaw_au(samples=800, byte=0x7F):
    return make_au(bytes([byte]) * samples)


class ShippedPromptTests(unittest.TestCase):
    """The committed prompt set matches the catalog, and every saying can be played."""

    def setUp(self):
        self.catalog = load_catalog()

    def languages(self):
        return sorted(p.name for p in PROMPT_DIR.iterdir() if p.is_dir() and p.name != "brands")

    def test_english_and_spanish_are_shipped(self):
        self.assertEqual(self.languages(), ["en", "es"])

    def test_every_catalog_text_has_its_file_and_no_file_is_stray(self):
        for lang in self.languages():
            wanted = {name for name, texts in self.catalog.items() if lang in texts}
            present = {p.stem for p in (PROMPT_DIR / lang).glob("*.au")}
            self.assertEqual(wanted - present, set(), f"missing in {lang}")
            self.assertEqual(present - wanted, set(), f"not in the catalog, {lang}")

    def test_every_file_is_ulaw_8k_mono_of_sensible_length(self):
        library = PromptLibrary(PROMPT_DIR)
        for lang in self.languages():
            for path in (PROMPT_DIR / lang).glob("*.au"):
                header, _ = read_au(path.read_bytes())
                self.assertEqual((header.encoding, header.sample_rate, header.channels), (1, 8000, 1), path)
                seconds = len(library.load_file(path)) / 8000
                self.assertTrue(0.1 < seconds < 30, f"{path}: {seconds} s")

    def test_every_name_a_sayer_can_return_is_a_prompt_of_its_language(self):
        self.assertEqual(say.available_languages(), ["en", "es"])
        for lang in say.available_languages():
            sayer = say.get_sayer(lang)
            self.assertEqual(sayer.language, lang)
            missing = sorted(n for n in sayer.vocabulary if not (PROMPT_DIR / lang / f"{n}.au").is_file())
            self.assertEqual(missing, [], lang)

    def test_only_language_specific_words_are_missing_from_the_other_language(self):
        en = {n for n, t in self.catalog.items() if "en" in t}
        es = {n for n, t in self.catalog.items() if "es" in t}
        self.assertLessEqual(en - es, say.get_sayer("en").vocabulary | {"oclock"})
        self.assertLessEqual(es - en, say.get_sayer("es").vocabulary)

    def test_application_prompts_exist_in_both_languages(self):
        for name in APPLICATION_PROMPTS:
            self.assertEqual(set(self.catalog.get(name, {})), {"en", "es"}, name)


class MusicOnHoldTests(unittest.TestCase):
    """The shipped music on hold is what scripts/make_moh.py synthesises, and loops."""

    def setUp(self):
        import importlib.util
        spec = importlib.util.spec_from_file_location(
            "make_moh", PROMPT_DIR.parent / "scripts" / "make_moh.py")
        self.script = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(self.script)

    def test_shipped_files_are_the_scripts_output(self):
        rendered = self.script.render()
        for lang in ("en", "es"):
            self.assertEqual((PROMPT_DIR / lang / "moh.au").read_bytes(), rendered, lang)

    def test_level_and_seamless_loop(self):
        import numpy as np
        from portaum_tx.convert.audio import ulaw_to_pcm16
        pcm = ulaw_to_pcm16(read_au((PROMPT_DIR / "en" / "moh.au").read_bytes())[1]).astype(float)
        self.assertTrue(15 < len(pcm) / 8000 < 30)
        self.assertLess(np.abs(pcm).max(), 32767 * 10 ** (-8 / 20))    # quieter than prompts
        rms = np.sqrt(np.mean(pcm ** 2))
        self.assertGreater(rms, 32767 * 10 ** (-30 / 20))
        # across the seam the signal moves no more than it does elsewhere
        steps = np.abs(np.diff(pcm))
        self.assertLessEqual(abs(pcm[0] - pcm[-1]), np.percentile(steps, 99.9))
        # every second has music in it: no gap on hold
        seconds = pcm[: len(pcm) // 8000 * 8000].reshape(-1, 8000)
        self.assertTrue((np.sqrt(np.mean(seconds ** 2, axis=1)) > rms / 4).all())

    def test_a_tune_note_is_where_it_is_written(self):
        self.assertAlmostEqual(self.script.frequency("A4"), 440.0)
        self.assertAlmostEqual(self.script.frequency("C4"), 261.6256, places=3)
        self.assertAlmostEqual(self.script.frequency("E6"), 1318.51, places=1)


class CatalogParsingTests(unittest.TestCase):
    def write(self, text):
        path = Path(self.mktemp())
        path.write_text(text, encoding="utf-8")
        return path

    def test_parses_and_drops_empty_texts(self):
        path = self.write("# comment\nname\ten\tes\nhello\tHello\tHola\nhundred\thundred\t\n")
        self.assertEqual(load_catalog(path), {"hello": {"en": "Hello", "es": "Hola"}, "hundred": {"en": "hundred"}})

    def test_errors_name_the_line(self):
        for text, line in (("hello\tHello\n", ":1:"), ("name\ten\nx\ta\nx\tb\n", ":3:"),
                           ("name\ten\n../x\ta\n", ":2:")):
            error = self.assertRaises(PromptError, load_catalog, self.write(text))
            self.assertIn(line, str(error))


class LanguagePreferenceTests(unittest.TestCase):
    def test_account_language_first_unless_access_list_preferred(self):
        self.assertEqual(language_preferences("es", ["fr", "de"]), ["es", "fr", "de", "en"])
        self.assertEqual(language_preferences("es", ["fr", "de"], access_list_preferred=True),
                         ["fr", "de", "es", "en"])

    def test_regional_codes_duplicates_and_blanks(self):
        self.assertEqual(language_preferences("es_MX", ["", "es", "EN"]), ["es-mx", "es", "en"])
        self.assertEqual(language_preferences(None), ["en"])
        self.assertEqual(language_preferences(None, ["fr"], fallback="es"), ["fr", "es"])


class LibraryTests(unittest.TestCase):
    def setUp(self):
        self.root = Path(self.mktemp())
        for rel, byte in (("en/hello.au", 1), ("es/hello.au", 2), ("en/only-en.au", 3),
                          ("brands/acme/es/hello.au", 4), ("brands/acme/en/bye.au", 5), ("en/bye.au", 6)):
            path = self.root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(ulaw_au(byte=byte))
        self.library = PromptLibrary(self.root)

    def resolve(self, *args, library=None):
        return self.successResultOf(defer.Deferred.fromCoroutine((library or self.library).resolve(*args)))

    def test_language_order(self):
        prompt = self.resolve("hello", ["es", "en"])
        self.assertEqual((prompt.language, prompt.brand, prompt.ulaw[:1]), ("es", None, b"\x02"))
        self.assertEqual(self.resolve("hello", ["en", "es"]).ulaw[:1], b"\x01")
        self.assertEqual(self.resolve("only-en", ["es", "en"]).language, "en")
        self.assertEqual(self.resolve("hello", ["fr", "es"]).language, "es")

    def test_brand_before_default_within_a_language(self):
        prompt = self.resolve("hello", ["es", "en"], "acme")
        self.assertEqual((prompt.language, prompt.brand, prompt.ulaw[:1]), ("es", "acme", b"\x04"))
        self.assertEqual(prompt.source, str(self.root / "brands/acme/es/hello.au"))
        # an earlier language's default beats a later language's brand prompt
        prompt = self.resolve("bye", ["es", "en"], "acme")
        self.assertEqual((prompt.language, prompt.brand), ("en", "acme"))
        prompt = self.resolve("hello", ["en"], "other")
        self.assertEqual((prompt.brand, prompt.ulaw[:1]), (None, b"\x01"))

    def test_find_file(self):
        self.assertEqual(self.library.find_file("hello", ["es"], "acme"), self.root / "brands/acme/es/hello.au")
        self.assertEqual(self.library.find_file("hello", ["en"]), self.root / "en/hello.au")

    def test_not_found_names_what_was_tried(self):
        failure = self.failureResultOf(defer.Deferred.fromCoroutine(
            self.library.resolve("nope", ["es", "en"], "acme")), PromptNotFound)
        error = failure.value
        self.assertEqual((error.name, error.languages, error.brand), ("nope", ["es", "en"], "acme"))
        self.assertIn("'nope'", str(error))
        self.assertIn("['es', 'en']", str(error))
        self.assertRaises(PromptNotFound, self.library.find_file, "nope", ["en"])

    def test_names_cannot_escape_the_prompt_directory(self):
        for name, brand in (("../en/hello", None), ("hello", "../x"), ("a/b", None), ("", None)):
            self.failureResultOf(defer.Deferred.fromCoroutine(self.library.resolve(name, ["en"], brand)),
                                 PromptNameError)
        self.failureResultOf(defer.Deferred.fromCoroutine(self.library.resolve("hello", ["../en"])),
                             PromptNameError)

    def test_rejects_files_that_are_not_ulaw_8k_mono(self):
        bad = {
            "pcm16": make_au(b"\0" * 10)[:12] + (3).to_bytes(4, "big") + make_au(b"\0" * 10)[16:],
            "stereo": make_au(b"\0" * 10)[:20] + (2).to_bytes(4, "big") + b"\0" * 10,
            "wav": b"RIFF\x24\0\0\0WAVEfmt " + b"\0" * 40,
            "truncated": make_au(b"\x7f" * 100)[:60],
            "short": b".snd",
        }
        for name, data in bad.items():
            (self.root / "en" / f"{name}.au").write_bytes(data)
            failure = self.failureResultOf(defer.Deferred.fromCoroutine(self.library.resolve(name, ["en"])),
                                           PromptFormatError)
            self.assertIn(f"{name}.au", str(failure.value))
        error = self.assertRaises(PromptFormatError, self.library.load_file, self.root / "en" / "pcm16.au")
        self.assertIn("encoding 3", str(error))

    def test_loads_are_cached_until_the_file_changes(self):
        path = self.root / "en" / "hello.au"
        first = self.library.load_file(path)
        self.assertIs(self.library.load_file(path), first)
        path.write_bytes(ulaw_au(samples=1600, byte=9))
        os.utime(path, ns=(1, 1))
        reloaded = self.library.load_file(path)
        self.assertEqual((len(reloaded), reloaded[:1]), (1600, b"\x09"))

    def test_missing_file_names_the_path(self):
        error = self.assertRaises(PromptNotFound, self.library.load_file, self.root / "en" / "gone.au")
        self.assertIn("gone.au' does not exist", str(error))

    def test_preload_fills_the_cache(self):
        self.assertEqual(self.library.preload(["en"]), 3)
        self.assertEqual(len(self.library._cache), 3)
        self.assertEqual(self.library.preload(), 4)

    def test_cache_is_bounded(self):
        library = PromptLibrary(self.root, cache_bytes=1000)
        library.load_file(self.root / "en" / "hello.au")
        library.load_file(self.root / "es" / "hello.au")
        self.assertEqual(len(library._cache), 1)
        self.assertLessEqual(library._cached_bytes, 1000)

    def test_store_lookup_comes_first_at_each_level(self):
        calls = []

        def lookup(name, language, brand):
            calls.append((name, language, brand))
            return ulaw_au(byte=7) if (language, brand) == ("en", None) else None

        library = PromptLibrary(self.root, store_lookup=lookup)
        prompt = self.resolve("only-en", ["es", "en"], "acme", library=library)
        self.assertEqual((prompt.source, prompt.language, prompt.brand, prompt.ulaw[:1]),
                         ("store", "en", None, b"\x07"))
        self.assertEqual(calls, [("only-en", "es", "acme"), ("only-en", "es", None), ("only-en", "en", "acme"),
                                 ("only-en", "en", None)])
        # a file of the brand level wins over an upload at the default level
        self.assertEqual(self.resolve("bye", ["en"], "acme", library=library).ulaw[:1], b"\x05")

    def test_store_lookup_may_be_asynchronous(self):
        pending = defer.Deferred()

        async def lookup(name, language, brand):
            return await pending if name == "custom" else None

        library = PromptLibrary(self.root, store_lookup=lookup)
        d = defer.Deferred.fromCoroutine(library.resolve("custom", ["en"]))
        self.assertNoResult(d)
        pending.callback(ulaw_au(samples=8000))
        prompt = self.successResultOf(d)
        self.assertIsInstance(prompt, Prompt)
        self.assertEqual(prompt.duration, 1.0)

        deferred_library = PromptLibrary(self.root, store_lookup=lambda *a: defer.succeed(None))
        self.assertEqual(self.resolve("hello", ["en"], library=deferred_library).source,
                         str(self.root / "en/hello.au"))

    def test_store_hook_finds_default_uploads_under_the_empty_brand(self):
        class PromptStore:
            def __init__(self):
                self.rows = {("", "en", "hello"): ulaw_au(byte=9), ("acme", "en", "bye"): ulaw_au(byte=8)}
                self.asked = []

            async def get_prompt(self, brand, language, name):
                self.asked.append((brand, language, name))
                return self.rows.get((brand, language, name))

        store, clock = PromptStore(), Clock()
        library = PromptLibrary(self.root, store_lookup=store_lookup(store, clock, ttl=30))
        prompt = self.resolve("hello", ["en"], "acme", library=library)
        self.assertEqual((prompt.source, prompt.brand, prompt.ulaw[:1]), ("store", None, b"\x09"))
        self.assertEqual(store.asked, [("acme", "en", "hello"), ("", "en", "hello")])
        self.assertEqual(self.resolve("bye", ["en"], "acme", library=library).ulaw[:1], b"\x08")
        # answers are kept for the TTL, then asked again (an upload on another node shows)
        asked = len(store.asked)
        self.resolve("hello", ["en"], "acme", library=library)
        self.assertEqual(len(store.asked), asked)
        store.rows[("", "en", "hello")] = ulaw_au(byte=3)
        clock.advance(31)
        self.assertEqual(self.resolve("hello", ["en"], library=library).ulaw[:1], b"\x03")

    def test_bad_upload_from_the_store_is_a_format_error(self):
        library = PromptLibrary(self.root, store_lookup=lambda *a: b"\x89PNG....")
        failure = self.failureResultOf(defer.Deferred.fromCoroutine(library.resolve("hello", ["en"])),
                                       PromptFormatError)
        self.assertIn("uploaded prompt 'hello'", str(failure.value))

    def test_resolve_all_plays_a_saying(self):
        library = PromptLibrary()
        names = say.get_sayer("es").duration(349)
        prompts = self.successResultOf(defer.Deferred.fromCoroutine(library.resolve_all(names, ["es", "en"])))
        self.assertEqual([p.name for p in prompts], names)
        self.assertEqual({p.language for p in prompts}, {"es"})
        self.assertTrue(all(len(p.ulaw) > 800 for p in prompts))
