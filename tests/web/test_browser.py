"""The self-care and admin sites in headless Chromium: sign in, play a voice
message, open a fax, send an e-mail that arrives by IMAP, upload an MP3
greeting, record one with the (fake) microphone, configure an access number."""

from __future__ import annotations

import imaplib
import os
import tempfile

from twisted.internet import defer, reactor, threads

from portaum_tx.convert.audio import pcm16_to_mp3, read_au
from tests.web.browser import (clickable, console_errors, in_reactor, require_chromium,
                               screenshot, start_browser, status_text, stop_browser, visible, wait)
from tests.web.support import (ADMIN_PASSWORD, ALICE, ALICE_PASSWORD, BOB, BOB_EMAIL,
                               BOB_PASSWORD, WebNodeTestCase, tone)


class BrowserTestCase(WebNodeTestCase):
    width, height = 1280, 900

    async def _open(self):
        require_chromium()
        await super()._open()
        self.uids = await self.add_messages(ALICE)
        self.driver = await threads.deferToThread(start_browser, self.width, self.height)
        self.addCleanup(threads.deferToThread, stop_browser, self.driver)

    def scenario(self, function):
        """Run a blocking Selenium scenario in a thread."""
        return threads.deferToThread(function, self.driver)

    def sign_in(self, driver, login=ALICE, password=ALICE_PASSWORD):
        driver.get(self.base + "/")
        visible(driver, "#sign-in input[name=login]").send_keys(login)
        driver.find_element("css selector", "#sign-in input[name=password]").send_keys(password)
        screenshot(driver, "sign-in")
        driver.find_element("css selector", "#sign-in button[type=submit]").click()
        visible(driver, "#messages")


class SubscriberBrowserTests(BrowserTestCase):
    def test_sign_in_and_play_voice_message(self):
        def run(driver):
            driver.get(self.base + "/")
            visible(driver, "#sign-in input[name=login]").send_keys(ALICE)
            driver.find_element("css selector", "#sign-in input[name=password]").send_keys("wrong")
            driver.find_element("css selector", "#sign-in button[type=submit]").click()
            self.assertIn("wrong", status_text(driver, "wrong"))
            self.sign_in(driver)
            rows = driver.find_elements("css selector", "#messages li")
            self.assertEqual(len(rows), 4)
            self.assertEqual(sorted(r.get_attribute("data-kind") for r in rows),
                             ["email", "fax", "fax", "voice"])
            screenshot(driver, "inbox")
            driver.find_element("css selector", "#messages li[data-kind=voice] a").click()
            audio = visible(driver, "#voice-player")
            playing = driver.execute_async_script("""
                const [audio, done] = arguments;
                audio.addEventListener('playing', () => done('playing'), {once: true});
                audio.addEventListener('error', () => done('error ' + audio.error.code), {once: true});
                audio.play().catch((e) => done('refused ' + e.message));
            """, audio)
            self.assertEqual(playing, "playing")
            wait(driver, lambda d: d.execute_script("return arguments[0].currentTime > 0.2", audio))
            # Seeking works because the audio is served with byte ranges.
            seeked = driver.execute_async_script("""
                const [audio, done] = arguments;
                audio.addEventListener('seeked', () => done(audio.currentTime), {once: true});
                audio.currentTime = 2.0;
            """, audio)
            self.assertGreaterEqual(seeked, 1.9)
            self.assertTrue(driver.execute_script(
                "return arguments[0].seekable.length > 0 && arguments[0].seekable.end(0) > 2.5", audio))
            wait(driver, lambda d: d.find_element("id", "toggle-seen").text == "Mark as new")
            screenshot(driver, "voice-message")
            self.assertEqual(console_errors(driver), [])

        yield_ = self.scenario(run)
        return yield_.addCallback(lambda _: defer.ensureDeferred(self._voice_seen()))

    async def _voice_seen(self):
        counts = await self.mailboxes.message_counts(ALICE)
        self.assertEqual(counts["voice"]["new"], 0, counts)

    def test_open_fax_and_html_mail(self):
        def run(driver):
            self.sign_in(driver)
            driver.find_element("css selector", f"#messages li[data-uid='{self.uids['fax']}'] a").click()
            visible(driver, "#fax-pages img")
            wait(driver, lambda d: d.execute_script(
                "return [...document.querySelectorAll('#fax-pages img')]"
                ".every(i => i.complete && i.naturalWidth > 0)"))
            self.assertEqual(len(driver.find_elements("css selector", "#fax-pages img")), 2)
            screenshot(driver, "fax")
            pdf = driver.execute_async_script("""
                const done = arguments[0];
                fetch(document.getElementById('fax-pdf').href).then(async (r) =>
                  done([r.headers.get('content-type'), new TextDecoder().decode(
                    (await r.arrayBuffer()).slice(0, 4))]));
            """)
            self.assertEqual(pdf, ["application/pdf", "%PDF"])
            driver.get(self.base + f"/#/message/INBOX/{self.uids['email']}")
            frame = visible(driver, "#mail-html")
            self.assertEqual(frame.get_attribute("sandbox"), "allow-popups allow-popups-to-escape-sandbox")
            wait(driver, lambda d: d.execute_script(
                "return performance.getEntriesByType('resource').some(e => e.name.includes('/html'))"))
            self.assertFalse(driver.execute_script(
                "return performance.getEntriesByType('resource').some(e => e.name.includes('tracker'))"))
            screenshot(driver, "email")
        return self.scenario(run)

    def test_send_email_that_arrives_by_imap(self):
        from portaum_tx.imap.server import IMAPServerFactory
        factory = IMAPServerFactory(accounts=self.accounts, mailboxes=self.mailboxes,
                                    events=self.events, clock=reactor, allow_plaintext_auth=True)
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)

        def run(driver):
            self.sign_in(driver)
            clickable(driver, "#nav a[data-nav=compose]").click()
            visible(driver, "#compose-to").send_keys(BOB_EMAIL)
            driver.find_element("id", "compose-subject").send_keys("Lunch on Friday")
            driver.find_element("id", "compose-text").send_keys("Shall we meet at noon?")
            screenshot(driver, "compose")
            driver.find_element("id", "send").click()
            status_text(driver, "Message sent")
            visible(driver, "#messages")
            self.assertIn("Lunch on Friday", driver.find_element("id", "messages").text)
            client = imaplib.IMAP4("127.0.0.1", port.getHost().port)
            try:
                client.login(BOB, BOB_PASSWORD)
                client.select("INBOX")
                _, found = client.search(None, "SUBJECT", '"Lunch on Friday"')
                self.assertEqual(len(found[0].split()), 1)
                _, data = client.fetch(found[0].split()[0], "(BODY[TEXT])")
                self.assertIn(b"Shall we meet at noon?", data[0][1])
            finally:
                client.logout()
        return self.scenario(run)

    def test_upload_mp3_greeting_and_record_one(self):
        directory = tempfile.mkdtemp(prefix="portaum-greeting-")
        self.addCleanup(__import__("shutil").rmtree, directory, True)
        path = os.path.join(directory, "greeting.mp3")
        with open(path, "wb") as out:
            out.write(pcm16_to_mp3(tone(2.5, 500)))

        def run(driver):
            self.sign_in(driver)
            clickable(driver, "#nav a[data-nav=greetings]").click()
            visible(driver, "#upload-unavailable").send_keys(path)
            status_text(driver, "Unavailable greeting saved")
            visible(driver, "#greeting-unavailable audio")
            stored = in_reactor(self.store.accounts.get_greeting, ALICE, "unavailable")
            self.assertLess(abs(len(stored) / 8000 - 2.5), 0.2)   # headerless 8 kHz u-law
            # The fake microphone plays a beep: record about a second of it.
            clickable(driver, "#record-name").click()
            status_text(driver, "Recording")
            # A recording takes real time: let the browser record for 1.2 s.
            driver.execute_async_script("setTimeout(arguments[0], 1200)")
            clickable(driver, "#record-name").click()
            status_text(driver, "Your name saved")
            name = in_reactor(self.store.accounts.get_greeting, ALICE, "name")
            self.assertGreater(len(name), 4000)
            select = driver.find_element("id", "set-greeting")
            from selenium.webdriver.support.ui import Select
            Select(select).select_by_value("personal")
            driver.find_element("css selector", "#greeting-choice button[type=submit]").click()
            status_text(driver, "Saved")
            screenshot(driver, "greetings")
        return self.scenario(run).addCallback(lambda _: defer.ensureDeferred(self._personal()))

    async def _personal(self):
        account = await self.store.accounts.get_account(ALICE)
        self.assertEqual(account.greeting, "personal")

    def test_settings(self):
        def run(driver):
            self.sign_in(driver)
            clickable(driver, "#nav a[data-nav=settings]").click()
            from selenium.webdriver.support.ui import Select
            Select(visible(driver, "#set-attachment_format")).select_by_value("mp3")
            zone = driver.find_element("id", "set-timezone")
            zone.clear()
            zone.send_keys("Europe/Madrid")
            driver.find_element("css selector", "#settings button[type=submit]").click()
            status_text(driver, "Settings saved")
            zone.clear()
            zone.send_keys("Nowhere/Special")
            driver.find_element("css selector", "#settings button[type=submit]").click()
            self.assertIn("unknown time zone", status_text(driver, "time zone"))
            screenshot(driver, "settings")
        return self.scenario(run).addCallback(lambda _: defer.ensureDeferred(self._settings_saved()))

    async def _settings_saved(self):
        account = await self.store.accounts.get_account(ALICE)
        self.assertEqual((account.attachment_format, account.timezone), ("mp3", "Europe/Madrid"))


class AttendantBrowserTests(BrowserTestCase):
    def test_build_a_two_menu_attendant_with_a_night_period(self):
        def run(driver):
            from selenium.webdriver.support.ui import Select
            self.sign_in(driver)
            clickable(driver, "#nav a[data-nav=attendant]").click()
            visible(driver, "#new-menu-name").send_keys("Night")
            driver.find_element("css selector", "#new-menu button[type=submit]").click()
            status_text(driver, "Menu Night added")
            # ROOT: office hours built with the period builder, shown in words.
            visible(driver, "#menu-ROOT #pb-ROOT-open").click()
            Select(visible(driver, "#pb-ROOT-from")).select_by_visible_text("8am")
            Select(driver.find_element("id", "pb-ROOT-until")).select_by_visible_text("5pm")
            for day in ("mo", "tu", "we", "th", "fr"):
                driver.find_element("id", f"pb-ROOT-wd-{day}").click()
            driver.find_element("id", "pb-ROOT-replace").click()
            self.assertEqual(driver.find_element("id", "period-ROOT").get_attribute("value"),
                             "hr{8am-4pm} wd{mo-fr}")
            wait(driver, lambda d: "From 8:00am until 5:00pm" in d.find_element("id", "period-words-ROOT").text)
            self.assertIn("Monday-Friday", driver.find_element("id", "period-words-ROOT").text)
            root = driver.find_element("id", "menu-ROOT")
            Select(root.find_element("name", "action-not_active")).select_by_value("menu")
            root.find_element("name", "target-not_active").send_keys("Night")
            Select(root.find_element("name", "action-1")).select_by_value("transfer")
            root.find_element("name", "target-1").send_keys("1001")
            Select(root.find_element("name", "action-0")).select_by_value("transfer_extension")
            root.find_element("name", "digits-0").send_keys("3")
            root.find_element("id", "save-ROOT").click()
            status_text(driver, "Menu ROOT saved")
            # Night: from 6pm until 8am, typed as text and read back by the builder.
            period = visible(driver, "#period-Night")
            period.send_keys("hr{6pm-7am}")
            wait(driver, lambda d: "From 6:00pm until 8:00am" in d.find_element("id", "period-words-Night").text)
            night = driver.find_element("id", "menu-Night")
            Select(night.find_element("name", "action-0")).select_by_value("transfer_voicemail")
            night.find_element("id", "save-Night").click()
            status_text(driver, "Menu Night saved")
            visible(driver, "#menu-Night #pb-Night-open").click()
            self.assertEqual(Select(visible(driver, "#pb-Night-from")).first_selected_option.text, "6pm")
            self.assertEqual(Select(driver.find_element("id", "pb-Night-until")).first_selected_option.text, "8am")
            # A wrong period is refused with the parser's own words.
            period = driver.find_element("id", "period-Night")
            period.clear()
            period.send_keys("hr{25}")
            wait(driver, lambda d: "error-text" in d.find_element("id", "period-words-Night").get_attribute("class"))
            period.clear()
            period.send_keys("hr{6pm-7am}")
            driver.execute_script("document.getElementById('menu-ROOT').scrollIntoView()")
            screenshot(driver, "attendant")
            # the one refusal expected: hr{25} checked while it was typed
            self.assertEqual([e for e in console_errors(driver) if "/attendant/period?" not in e], [])
        return self.scenario(run).addCallback(lambda _: defer.ensureDeferred(self._attendant_saved()))

    async def _attendant_saved(self):
        from portaum_tx.ivr.attendant import AttendantBook
        menus = {m.name: m for m in await AttendantBook(self.store).menus(ALICE)}
        self.assertEqual(sorted(menus), ["Night", "ROOT"])
        root, night = menus["ROOT"], menus["Night"]
        self.assertEqual(root.period, "hr{8am-4pm} wd{mo-fr}")
        self.assertEqual((root.action_for("not_active").action, root.action_for("not_active").target),
                         ("menu", "Night"))
        self.assertEqual((root.action_for("1").action, root.action_for("1").target), ("transfer", "1001"))
        self.assertEqual((root.action_for("0").action, root.action_for("0").max_digits),
                         ("transfer_extension", 3))
        self.assertEqual(night.period, "hr{6pm-7am}")
        self.assertEqual(night.action_for("0").action, "transfer_voicemail")
        import datetime as dt
        tuesday_night = dt.datetime(2026, 3, 3, 22, 0, tzinfo=dt.timezone.utc)
        tuesday_morning = dt.datetime(2026, 3, 3, 10, 0, tzinfo=dt.timezone.utc)
        self.assertFalse(root.is_active(tuesday_night, "UTC"))
        self.assertTrue(night.is_active(tuesday_night, "UTC"))
        self.assertTrue(root.is_active(tuesday_morning, "UTC"))


class PhoneBrowserTests(BrowserTestCase):
    width, height = 390, 844

    def test_inbox_fits_a_phone_screen(self):
        def run(driver):
            self.sign_in(driver)
            overflow = driver.execute_script(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
            self.assertLessEqual(overflow, 0)
            screenshot(driver, "phone-inbox")
            driver.find_element("css selector", "#messages li[data-kind=voice] a").click()
            visible(driver, "#voice-player")
            self.assertLessEqual(driver.execute_script(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth"), 0)
            screenshot(driver, "phone-voice-message")
        return self.scenario(run)


class AdminBrowserTests(BrowserTestCase):
    def test_operator_configures_an_access_number_and_uploads_a_prompt(self):
        directory = tempfile.mkdtemp(prefix="portaum-prompt-")
        self.addCleanup(__import__("shutil").rmtree, directory, True)
        path = os.path.join(directory, "welcome.mp3")
        with open(path, "wb") as out:
            out.write(pcm16_to_mp3(tone(1.0, 700)))

        def run(driver):
            from selenium.webdriver.support.ui import Select
            # A subscriber session does not open the admin site.
            self.sign_in(driver)
            driver.get(self.base + "/admin/")
            password = visible(driver, "#admin-sign-in input[name=password]")
            password.send_keys(ADMIN_PASSWORD)
            screenshot(driver, "admin-sign-in")
            driver.find_element("css selector", "#admin-sign-in button[type=submit]").click()
            visible(driver, "table")
            screenshot(driver, "admin-customers")
            clickable(driver, "#nav a[data-nav=numbers]").click()
            form = visible(driver, "#number-form")
            form.find_element("name", "pattern").send_keys("18005550100")
            Select(driver.find_element("id", "number-application")).select_by_value("prepaid")
            visible(driver, "#option-fields [name='option:announce_balance']")
            Select(driver.find_element("css selector", "[name='option:announce_balance']")).select_by_value("yes")
            driver.find_element("css selector", "[name='option:maximum_card_length']").send_keys("12")
            screenshot(driver, "admin-access-number")
            driver.find_element("css selector", "#number-form button[type=submit]").click()
            status_text(driver, "Access number 18005550100 created")
            number = in_reactor(self.store.access_numbers.get_access_number, "18005550100")
            self.assertEqual(number.application, "prepaid")
            self.assertEqual(number.options, {"announce_balance": "yes", "maximum_card_length": "12"})
            clickable(driver, "#nav a[data-nav=prompts]").click()
            form = visible(driver, "#prompt-upload")
            form.find_element("name", "name").send_keys("welcome")
            driver.find_element("id", "prompt-file").send_keys(path)
            form.find_element("css selector", "button[type=submit]").click()
            status_text(driver, "Prompt welcome saved")
            visible(driver, "table audio")
            screenshot(driver, "admin-prompts")
            stored = in_reactor(self.store.prompts.get_prompt, "", "en", "welcome")
            self.assertEqual(read_au(stored)[0].encoding, 1)
            self.assertEqual(console_errors(driver), [])
        return self.scenario(run)
