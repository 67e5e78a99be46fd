"""The JSON API over real HTTP: authentication, authorization, validation,
the mailbox, settings, greetings, admin, and the OpenAPI document."""

from __future__ import annotations

import re
from urllib.parse import quote

import numpy as np

from portaum_tx.convert.audio import pcm16_to_mp3, read_au, ulaw_to_pcm16
from tests.support import on_both_engines
from tests.web.support import (ADMIN_PASSWORD, ALICE, ALICE_EMAIL, ALICE_PASSWORD, BOB,
                               BOB_EMAIL, BOB_PASSWORD, WebNodeTestCase, run, tone)


@on_both_engines
class AuthenticationTests(WebNodeTestCase):
    @run
    async def test_sign_in_by_account_id_and_by_email(self):
        client = self.client()
        result = await client.sign_in(ALICE, ALICE_PASSWORD)
        self.assertEqual(result.status, 200, result)
        self.assertEqual(result.json["account_id"], ALICE)
        cookie = result.header("Set-Cookie")
        self.assertIn("portaum_session=", cookie)
        self.assertIn("HttpOnly", cookie)
        self.assertIn("samesite=strict", cookie.lower())
        other = self.client()
        self.assertEqual((await other.sign_in(ALICE_EMAIL.upper(), ALICE_PASSWORD)).status, 200)
        session = await client.request("GET", "/api/v1/session")
        self.assertEqual(session.json["account_id"], ALICE)

    @run
    async def test_wrong_password_then_lockout_shared_with_mail(self):
        client = self.client()
        result = await client.sign_in(ALICE, "wrong")
        self.assertEqual(result.status, 401)
        self.assertEqual(result.json["error"]["code"], "unauthenticated")
        for _ in range(4):
            await client.sign_in(ALICE, "wrong")
        locked = await client.sign_in(ALICE, ALICE_PASSWORD)
        self.assertEqual(locked.status, 429, locked)
        self.assertTrue(int(locked.header("Retry-After")) > 0)
        # The lock is the account service's, which IMAP and POP3 also ask.
        from portaum_tx.accounts import LoginRefused
        with self.assertRaises(LoginRefused):
            await self.accounts.authenticate(ALICE, ALICE_PASSWORD, source="192.0.2.1")

    @run
    async def test_requests_without_session_are_refused(self):
        client = self.client()
        result = await client.request("GET", "/api/v1/folders")
        self.assertEqual(result.status, 401)
        self.assertEqual(result.header("Content-Type"), "application/json")
        self.assertEqual(result.json["error"]["code"], "unauthenticated")

    @run
    async def test_forged_or_tampered_cookie_is_refused(self):
        client = self.client()
        await client.sign_in(ALICE, ALICE_PASSWORD)
        token = next(c.value for c in client.http._cookiejar if c.name == "portaum_session")
        body, mac = token.split(".")
        forged = self.client()
        result = await forged.request("GET", "/api/v1/folders", headers={
            "Cookie": f"portaum_session={body[:-2]}xx.{mac}"})
        self.assertEqual(result.status, 401)

    @run
    async def test_changes_need_the_csrf_token(self):
        client = self.client()
        await client.sign_in(ALICE, ALICE_PASSWORD)
        result = await client.request("PATCH", "/api/v1/settings", {"language": "es"}, csrf=False)
        self.assertEqual(result.status, 403)
        self.assertEqual(result.json["error"]["code"], "csrf")
        client.csrf = "not-the-token"
        result = await client.request("PATCH", "/api/v1/settings", {"language": "es"})
        self.assertEqual(result.status, 403)

    @run
    async def test_sign_out_and_password_change_end_sessions(self):
        first, second = self.client(), self.client()
        await first.sign_in(ALICE, ALICE_PASSWORD)
        await second.sign_in(ALICE, ALICE_PASSWORD)
        changed = await first.request("POST", "/api/v1/settings/secrets", {
            "current_password": ALICE_PASSWORD, "password": "new-alice-pass"})
        self.assertEqual(changed.status, 200, changed)
        first.csrf = changed.json["csrf_token"]
        self.assertEqual((await first.request("GET", "/api/v1/folders")).status, 200)
        self.assertEqual((await second.request("GET", "/api/v1/folders")).status, 401)
        out = await first.request("DELETE", "/api/v1/session")
        self.assertEqual(out.status, 200)
        self.assertEqual((await first.request("GET", "/api/v1/folders")).status, 401)


@on_both_engines
class AuthorizationTests(WebNodeTestCase):
    @run
    async def test_one_subscriber_never_sees_anothers_messages(self):
        uids = await self.add_messages(ALICE)
        bob = self.client()
        await bob.sign_in(BOB, BOB_PASSWORD)
        listing = await bob.request("GET", "/api/v1/folders/INBOX/messages")
        self.assertEqual(listing.status, 200)
        self.assertEqual(listing.json["messages"], [])
        for uid in uids.values():
            for suffix in ("", "/raw", "/audio", "/parts/1", "/html", "/document", "/pages/1"):
                result = await bob.request("GET", f"/api/v1/folders/INBOX/messages/{uid}{suffix}")
                self.assertEqual(result.status, 404, (suffix, result))
            for method, suffix, body in (("PATCH", "", {"seen": True}), ("DELETE", "", None),
                                         ("POST", "/move", {"to": "Saved"})):
                result = await bob.request(method, f"/api/v1/folders/INBOX/messages/{uid}{suffix}", body)
                self.assertEqual(result.status, 404, (method, result))
        # Forwarding someone else's message is refused too.
        result = await bob.request("POST", "/api/v1/messages", {
            "to": [BOB_EMAIL], "forward_folder": "INBOX", "forward_uid": uids["voice"]})
        self.assertEqual(result.status, 404)
        alice = self.client()
        await alice.sign_in(ALICE, ALICE_PASSWORD)
        mine = await alice.request("GET", "/api/v1/folders/INBOX/messages")
        self.assertEqual(len(mine.json["messages"]), 4)

    @run
    async def test_subscriber_never_reaches_admin_endpoints(self):
        client = self.client()
        await client.sign_in(ALICE, ALICE_PASSWORD)
        from portaum_tx.web.admin import ROUTES
        for route in ROUTES:
            if route.access != "admin":
                continue
            path = re.sub(r"{\w+}", "x", route.path)
            result = await client.request(route.method, path, {} if route.body is not None else None)
            self.assertEqual(result.status, 403, (route.method, path, result))
            self.assertEqual(result.json["error"]["code"], "forbidden")
        # A subscriber's cookie presented as the admin cookie is not accepted either.
        token = next(c.value for c in client.http._cookiejar if c.name == "portaum_session")
        other = self.client()
        result = await other.request("GET", "/api/v1/admin/customers",
                                     headers={"Cookie": f"portaum_admin={token}"})
        self.assertEqual(result.status, 403)

    @run
    async def test_admin_sign_in_and_lockout(self):
        client = self.client()
        self.assertEqual((await client.admin_sign_in("wrong")).status, 401)
        self.assertEqual((await client.request("GET", "/api/v1/admin/customers")).status, 401)
        result = await client.admin_sign_in()
        self.assertEqual(result.status, 200, result)
        customers = await client.request("GET", "/api/v1/admin/customers")
        self.assertEqual(customers.json["customers"][0]["accounts"], 2)
        intruder = self.client()
        for _ in range(5):
            await intruder.admin_sign_in("guess")
        self.assertEqual((await intruder.admin_sign_in(ADMIN_PASSWORD)).status, 429)


@on_both_engines
class ValidationTests(WebNodeTestCase):
    @run
    async def test_bad_bodies_get_clear_json_errors(self):
        client = self.client()
        await client.sign_in(ALICE, ALICE_PASSWORD)
        cases = [
            ({"language": 5}, "language", "must be a string"),
            ({"colour": "blue"}, "colour", "unknown field"),
            ({"attachment_format": "ogg"}, "attachment_format", "must be one of wav, mp3"),
            ({"timezone": "Mars/Olympus"}, "timezone", "unknown time zone"),
            ({"forward_address": "not-an-address"}, "forward_address", "not an e-mail address"),
            ({"language": "fr"}, "language", "must be one of"),
        ]
        for body, field, text in cases:
            result = await client.request("PATCH", "/api/v1/settings", body)
            self.assertEqual(result.status, 400, (body, result))
            self.assertEqual(result.json["error"]["field"], field, result)
            self.assertIn(text, result.json["error"]["message"])
        result = await client.request("PATCH", "/api/v1/settings", raw=b"{not json",
                                      headers={"Content-Type": "application/json"})
        self.assertEqual(result.status, 400)
        self.assertIn("not valid JSON", result.json["error"]["message"])
        result = await client.request("PATCH", "/api/v1/settings", raw=b"language=es",
                                      headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(result.status, 415)
        result = await client.request("GET", "/api/v1/folders/INBOX/messages/abc")
        self.assertEqual(result.status, 400)
        self.assertEqual(result.json["error"]["field"], "uid")
        result = await client.request("PUT", "/api/v1/folders")
        self.assertEqual(result.status, 405)
        self.assertEqual(result.header("Allow"), "GET")
        result = await client.request("GET", "/api/v1/nothing-here")
        self.assertEqual(result.status, 404)
        self.assertEqual(result.json["error"]["code"], "no_route")

    @run
    async def test_pin_and_password_rules(self):
        client = self.client()
        await client.sign_in(ALICE, ALICE_PASSWORD)
        wrong = await client.request("POST", "/api/v1/settings/secrets",
                                     {"current_password": "nope", "pin": "4321"})
        self.assertEqual(wrong.status, 403)
        short = await client.request("POST", "/api/v1/settings/secrets",
                                     {"current_password": ALICE_PASSWORD, "pin": "12"})
        self.assertEqual(short.status, 400)
        self.assertIn("PIN must be", short.json["error"]["message"])
        weak = await client.request("POST", "/api/v1/settings/secrets",
                                    {"current_password": ALICE_PASSWORD, "password": "abc"})
        self.assertEqual(weak.status, 400)
        self.assertEqual(weak.json["error"]["field"], "password")
        ok = await client.request("POST", "/api/v1/settings/secrets",
                                  {"current_password": ALICE_PASSWORD, "pin": "987654"})
        self.assertEqual(ok.status, 200, ok)
        account = await self.accounts.authenticate(ALICE, "987654", kind="pin")
        self.assertEqual(account.id, ALICE)

    @run
    async def test_admin_validation_reuses_the_provisioning_rules(self):
        client = self.client()
        await client.admin_sign_in()
        result = await client.request("POST", "/api/v1/admin/accounts",
                                      {"id": "not-a-number", "customer": "Smart Calls, Ltd."})
        self.assertEqual(result.status, 400)
        self.assertIn("account ID must be a phone number", result.json["error"]["message"])
        result = await client.request("POST", "/api/v1/admin/accounts",
                                      {"id": ALICE, "customer": "Smart Calls, Ltd."})
        self.assertEqual(result.status, 409)
        result = await client.request("POST", "/api/v1/admin/accounts",
                                      {"id": "12065550000", "customer": "Nobody"})
        self.assertEqual(result.status, 404)
        result = await client.request("POST", "/api/v1/admin/access-numbers",
                                      {"pattern": "18005551234", "application": "prepaid",
                                       "options": {"announce_balance": "perhaps"}})
        self.assertEqual(result.status, 400)
        self.assertIn("announce_balance must be yes or no", result.json["error"]["message"])
        result = await client.request("POST", "/api/v1/admin/access-numbers",
                                      {"pattern": "1800 555", "application": "prepaid"})
        self.assertEqual(result.status, 400)
        self.assertEqual(result.json["error"]["field"], "pattern")


@on_both_engines
class MailboxTests(WebNodeTestCase):
    async def signed_in(self):
        self.uids = await self.add_messages(ALICE)
        client = self.client()
        await client.sign_in(ALICE, ALICE_PASSWORD)
        return client

    @run
    async def test_list_shows_kind_sender_duration_pages(self):
        client = await self.signed_in()
        folders = await client.request("GET", "/api/v1/folders")
        inbox = next(f for f in folders.json["folders"] if f["name"] == "INBOX")
        self.assertEqual((inbox["messages"], inbox["unseen"]), (4, 4))
        rows = {r["uid"]: r for r in (await client.request(
            "GET", "/api/v1/folders/INBOX/messages")).json["messages"]}
        voice = rows[self.uids["voice"]]
        self.assertEqual((voice["kind"], voice["from"], voice["duration"], voice["seen"]),
                         ("voice", "12065550101", 3, False))
        fax = rows[self.uids["fax"]]
        self.assertEqual((fax["kind"], fax["pages"]), ("fax", 2))
        self.assertEqual(rows[self.uids["email"]]["kind"], "email")
        self.assertEqual(rows[self.uids["email"]]["subject"], "Spring newsletter")
        page = await client.request("GET", "/api/v1/folders/INBOX/messages?limit=3")
        self.assertEqual(len(page.json["messages"]), 3)
        self.assertTrue(page.json["more"])
        rest = await client.request(
            "GET", f"/api/v1/folders/INBOX/messages?limit=3&before={page.json['next_before']}")
        self.assertEqual(len(rest.json["messages"]), 1)

    @run
    async def test_voice_audio_supports_ranges(self):
        client = await self.signed_in()
        uid = self.uids["voice"]
        whole = await client.request("GET", f"/api/v1/folders/INBOX/messages/{uid}/audio")
        self.assertEqual(whole.status, 200)
        self.assertEqual(whole.header("Content-Type"), "audio/wav")
        self.assertEqual(whole.header("Accept-Ranges"), "bytes")
        self.assertTrue(whole.body.startswith(b"RIFF"))
        part = await client.request("GET", f"/api/v1/folders/INBOX/messages/{uid}/audio",
                                    headers={"Range": "bytes=100-199"})
        self.assertEqual(part.status, 206)
        self.assertEqual(part.body, whole.body[100:200])
        self.assertEqual(part.header("Content-Range"), f"bytes 100-199/{len(whole.body)}")
        tail = await client.request("GET", f"/api/v1/folders/INBOX/messages/{uid}/audio",
                                    headers={"Range": "bytes=-10"})
        self.assertEqual(tail.body, whole.body[-10:])
        beyond = await client.request("GET", f"/api/v1/folders/INBOX/messages/{uid}/audio",
                                      headers={"Range": f"bytes={len(whole.body)}-"})
        self.assertEqual(beyond.status, 416)

    @run
    async def test_fax_pages_and_pdf(self):
        await self._fax_pages((("fax", 2),))

    @run
    async def test_pdf_fax_pages_need_poppler(self):
        import shutil
        from tests.support import require_peer
        require_peer("pdftoppm", shutil.which("pdftoppm") is not None,
                     "apt-get install poppler-utils (page images of faxes kept as PDF)")
        await self._fax_pages((("pdf_fax", 1),))

    async def _fax_pages(self, cases):
        client = await self.signed_in()
        for key, pages in cases:
            uid = self.uids[key]
            detail = await client.request("GET", f"/api/v1/folders/INBOX/messages/{uid}")
            self.assertEqual(detail.json["pages"], pages, detail)
            image = await client.request("GET", f"/api/v1/folders/INBOX/messages/{uid}/pages/1")
            self.assertEqual(image.header("Content-Type"), "image/png")
            self.assertTrue(image.body.startswith(b"\x89PNG"))
            missing = await client.request(
                "GET", f"/api/v1/folders/INBOX/messages/{uid}/pages/{pages + 1}")
            self.assertEqual(missing.status, 404)
            pdf = await client.request("GET", f"/api/v1/folders/INBOX/messages/{uid}/document")
            self.assertEqual(pdf.header("Content-Type"), "application/pdf")
            self.assertTrue(pdf.body.startswith(b"%PDF"))

    @run
    async def test_html_email_is_sanitized_and_sandboxed(self):
        client = await self.signed_in()
        uid = self.uids["email"]
        detail = await client.request("GET", f"/api/v1/folders/INBOX/messages/{uid}")
        self.assertTrue(detail.json["has_html"])
        self.assertIn("Plain version", detail.json["text"])
        html = await client.request("GET", f"/api/v1/folders/INBOX/messages/{uid}/html")
        page = html.body.decode()
        self.assertNotIn("<script", page)
        self.assertNotIn("onclick", page)
        self.assertNotIn("javascript:", page)
        self.assertNotIn("tracker.example.com", page)
        self.assertIn("<b>friend</b>", page)
        self.assertIn('href="https://example.org/"', page)
        policy = html.header("Content-Security-Policy")
        self.assertTrue(policy.startswith("sandbox"))
        self.assertIn("img-src data:;", policy)
        self.assertEqual(html.header("X-Blocked-Images"), "1")
        shown = await client.request("GET", f"/api/v1/folders/INBOX/messages/{uid}/html?images=1")
        self.assertIn("tracker.example.com", shown.body.decode())

    @run
    async def test_mark_move_delete_download(self):
        client = await self.signed_in()
        uid = self.uids["voice"]
        path = f"/api/v1/folders/INBOX/messages/{uid}"
        self.assertTrue((await client.request("PATCH", path, {"seen": True})).json["seen"])
        counts = await self.mailboxes.message_counts(ALICE)
        self.assertEqual(counts["voice"]["new"], 0, counts)
        self.assertFalse((await client.request("PATCH", path, {"seen": False})).json["seen"])
        self.assertEqual((await self.mailboxes.message_counts(ALICE))["voice"]["new"], 1)
        raw = await client.request("GET", path + "/raw")
        self.assertIn(b"Message-Context: voice-message", raw.body)
        self.assertIn("attachment", raw.header("Content-Disposition"))
        moved = await client.request("POST", path + "/move", {"to": "Saved"})
        self.assertEqual(moved.json["folder"], "Saved")
        self.assertEqual((await client.request("GET", path)).status, 404)
        saved = f"/api/v1/folders/Saved/messages/{moved.json['uid']}"
        trashed = await client.request("DELETE", saved)
        self.assertEqual(trashed.json["folder"], "Trash")
        gone = await client.request("DELETE", f"/api/v1/folders/Trash/messages/{trashed.json['uid']}")
        self.assertTrue(gone.json["deleted"])
        trash = await client.request("GET", "/api/v1/folders/Trash/messages")
        self.assertEqual(trash.json["messages"], [])

    @run
    async def test_send_to_local_recipient_with_copy_in_sent(self):
        client = await self.signed_in()
        result = await client.request("POST", "/api/v1/messages", {
            "to": [f"Bob <{BOB_EMAIL}>"], "subject": "Lunch", "text": "At noon?"})
        self.assertEqual(result.status, 201, result)
        self.assertEqual(result.json["delivered"], [BOB_EMAIL])
        sent = await client.request("GET", "/api/v1/folders/Sent/messages")
        self.assertEqual(sent.json["messages"][0]["subject"], "Lunch")
        self.assertTrue(sent.json["messages"][0]["seen"])
        bob = await self.mailboxes.open(BOB)
        inbox = await bob.folder("INBOX")
        [info] = await bob.message_infos(inbox)
        data = (await bob.message_data(inbox, [info.uid]))[info.uid]
        self.assertIn(b"From: alice@example.net", data)
        self.assertIn(b"At noon?", data)

    @run
    async def test_forward_voice_message_and_reply(self):
        client = await self.signed_in()
        forwarded = await client.request("POST", "/api/v1/messages", {
            "to": [BOB_EMAIL], "subject": "Listen", "text": "From Mark",
            "forward_folder": "INBOX", "forward_uid": self.uids["voice"]})
        self.assertEqual(forwarded.status, 201, forwarded)
        bob = await self.mailboxes.open(BOB)
        inbox = await bob.folder("INBOX")
        [info] = await bob.message_infos(inbox)
        data = (await bob.message_data(inbox, [info.uid]))[info.uid]
        self.assertIn(b"Content-Type: audio/wav", data)
        replied = await client.request("POST", "/api/v1/messages", {
            "to": [BOB_EMAIL], "subject": "Re: Spring newsletter", "text": "thanks",
            "reply_folder": "INBOX", "reply_uid": self.uids["email"]})
        self.assertEqual(replied.status, 201)
        row = await client.request("GET", f"/api/v1/folders/INBOX/messages/{self.uids['email']}")
        self.assertTrue(row.json["answered"])

    @run
    async def test_remote_recipient_goes_to_the_outbound_queue(self):
        from twisted.internet import task
        from portaum_tx.smtp.queue import OutboundQueue

        class Relay:
            sent = []

            async def send(self, sender, recipient, data):
                self.sent.append((sender, recipient, data))
        relay = Relay()
        queue = OutboundQueue(self.store.outbound, relay, task.Clock(), node_name="test-node",
                              hostname="example.net", retry_for=3600,
                              from_address="portaum@example.net")
        self.node.services["smtp"] = type("SMTP", (), {"queue": queue})()
        client = await self.signed_in()
        result = await client.request("POST", "/api/v1/messages", {
            "to": [BOB_EMAIL, "Carol <carol@elsewhere.example>"], "subject": "Out", "text": "there"})
        self.assertEqual(result.status, 201, result)
        self.assertEqual((result.json["delivered"], result.json["queued"]),
                         ([BOB_EMAIL], ["carol@elsewhere.example"]))
        [item] = await self.store.outbound.get_outbound()
        self.assertEqual((item.sender, item.recipient), (ALICE_EMAIL, "carol@elsewhere.example"))
        await queue.run_once()
        self.assertEqual([(s, r) for s, r, _ in relay.sent], [(ALICE_EMAIL, "carol@elsewhere.example")])
        self.assertIn(b"Subject: Out", relay.sent[0][2])
        sent = await client.request("GET", "/api/v1/folders/Sent/messages")
        self.assertEqual(sent.json["messages"][0]["subject"], "Out")

    @run
    async def test_remote_recipient_without_outbound_queue_is_refused_whole(self):
        client = await self.signed_in()
        result = await client.request("POST", "/api/v1/messages", {
            "to": [BOB_EMAIL, "someone@elsewhere.example"], "subject": "x", "text": "y"})
        self.assertEqual(result.status, 503)
        self.assertIn("someone@elsewhere.example", result.json["error"]["message"])
        bob = await self.mailboxes.open(BOB)
        self.assertEqual(await bob.message_infos(await bob.folder("INBOX")), [])
        bad = await client.request("POST", "/api/v1/messages", {"to": ["no address"], "text": "y"})
        self.assertEqual(bad.status, 400)


@on_both_engines
class GreetingTests(WebNodeTestCase):
    @run
    async def test_mp3_greeting_is_converted_and_stored_for_the_ivr(self):
        client = self.client()
        await client.sign_in(ALICE, ALICE_PASSWORD)
        mp3 = pcm16_to_mp3(tone(2.0, 600))
        result = await client.request("PUT", "/api/v1/greetings/unavailable", raw=mp3,
                                      headers={"Content-Type": "audio/mpeg"})
        self.assertEqual(result.status, 200, result)
        # Stored as the IVR keeps greetings: headerless 8 kHz u-law.
        stored = await self.store.accounts.get_greeting(ALICE, "unavailable")
        self.assertNotEqual(stored[:4], b".snd")
        self.assertLess(abs(len(stored) / 8000 - 2.0), 0.15)
        pcm = ulaw_to_pcm16(stored)
        self.assertGreater(float(abs(pcm.astype(float)).mean()), 1000)
        spectrum = abs(np.fft.rfft(pcm[4000:12000].astype(float)))  # 8000 samples: 1 Hz bins
        self.assertLess(abs(int(spectrum.argmax()) - 600), 5)          # still the 600 Hz tone
        listing = await client.request("GET", "/api/v1/greetings")
        present = {g["kind"]: g["present"] for g in listing.json["greetings"]}
        self.assertEqual(present, {"unavailable": True, "busy": False, "name": False})
        wav = await client.request("GET", "/api/v1/greetings/unavailable")
        self.assertTrue(wav.body.startswith(b"RIFF"))
        chosen = await client.request("PATCH", "/api/v1/settings", {"greeting": "personal"})
        self.assertEqual(chosen.json["greeting"], "personal")

    @run
    async def test_voicemail_deposit_plays_the_uploaded_greeting(self):
        """The contract with the IVR: what the web stores is what deposit plays."""
        import types
        from portaum_tx.ivr.apps.voicemail import greeting_items
        client = self.client()
        await client.sign_in(ALICE, ALICE_PASSWORD)
        await client.request("PUT", "/api/v1/greetings/unavailable", raw=pcm16_to_mp3(tone(2.0, 600)))
        await client.request("PATCH", "/api/v1/settings", {"greeting": "personal"})
        account = await self.store.accounts.get_account(ALICE)
        context = types.SimpleNamespace(store=self.store)
        [audio] = await greeting_items(None, context, account, "no-answer", ALICE)
        self.assertEqual(audio.label, "greeting-unavailable")
        self.assertLess(abs(audio.duration - 2.0), 0.15)
        stored = await self.store.accounts.get_greeting(ALICE, "unavailable")
        self.assertEqual(len(audio.pcm), len(stored))  # every byte is a sample: no header played
        spectrum = abs(np.fft.rfft(audio.pcm[4000:12000].astype(float)))
        self.assertLess(abs(int(spectrum.argmax()) - 600), 5)

    @run
    async def test_not_audio_is_refused(self):
        client = self.client()
        await client.sign_in(ALICE, ALICE_PASSWORD)
        result = await client.request("PUT", "/api/v1/greetings/busy", raw=b"%PDF-1.4 not audio")
        self.assertEqual(result.status, 415)
        self.assertEqual(result.json["error"]["code"], "unsupported_audio")
        result = await client.request("PUT", "/api/v1/greetings/holiday", raw=b"x")
        self.assertEqual(result.status, 404)
        self.assertIsNone(await self.store.accounts.get_greeting(ALICE, "busy"))


@on_both_engines
class AdminTests(WebNodeTestCase):
    @run
    async def test_provisioning_round_trip(self):
        client = self.client()
        await client.admin_sign_in()
        self.assertEqual((await client.request("POST", "/api/v1/admin/customers",
                                               {"name": "Acme"})).status, 201)
        created = await client.request("POST", "/api/v1/admin/accounts", {
            "id": "15550001111", "customer": "Acme", "password": "acme-pass-1", "pin": "2468",
            "email": "ops@acme.example", "quota": "20M"})
        self.assertEqual(created.status, 201, created)
        self.assertEqual(created.json["quota_bytes"], 20 * 1024 * 1024)
        changed = await client.request("PATCH", "/api/v1/admin/accounts/15550001111",
                                       {"language": "es", "forward_mode": "copy"})
        self.assertEqual(changed.json["language"], "es")
        alias = await client.request("POST", "/api/v1/admin/aliases",
                                     {"alias": "1555#77", "account": "15550001111"})
        self.assertEqual(alias.status, 201)
        aliases = await client.request("GET", "/api/v1/admin/aliases?account=15550001111")
        self.assertEqual([a["alias"] for a in aliases.json["aliases"]], ["1555#77"])
        removed = await client.request("DELETE", "/api/v1/admin/aliases/" + quote("1555#77", safe=""))
        self.assertEqual(removed.status, 200, removed)
        number = await client.request("POST", "/api/v1/admin/access-numbers", {
            "pattern": "AD%", "application": "prepaid",
            "options": {"announce_balance": True, "minimum_card_length": "10"}})
        self.assertEqual(number.status, 201, number)
        self.assertEqual(number.json["options"], {"announce_balance": "yes",
                                                  "minimum_card_length": "10"})
        path = "/api/v1/admin/access-numbers/" + quote("AD%", safe="")
        patched = await client.request("PATCH", path, {"unset": ["announce_balance"]})
        self.assertEqual(patched.json["options"], {"minimum_card_length": "10"})
        apps = await client.request("GET", "/api/v1/admin/applications")
        prepaid = next(a for a in apps.json["applications"] if a["name"] == "prepaid")
        card = next(o for o in prepaid["options"] if o["name"] == "minimum_card_length")
        self.assertEqual(card["default"], 11)
        self.assertTrue(all(o["help"] for a in apps.json["applications"] for o in a["options"]))
        self.assertEqual((await client.request("DELETE", path)).status, 200)
        self.assertEqual((await client.request("DELETE", "/api/v1/admin/accounts/15550001111")).status, 200)
        self.assertEqual((await client.request("DELETE", "/api/v1/admin/customers/Acme")).status, 200)

    @run
    async def test_active_calls_view(self):
        client = self.client()
        await client.admin_sign_in()
        missing = await client.request("GET", "/api/v1/admin/calls")
        self.assertEqual(missing.status, 503)
        self.assertEqual(missing.json["error"]["code"], "no_call_view")

        class Call:
            call_id, calling, calling_name, called = "abc@host", "12065550101", "Mark", "18005550100"
            original_called, diversion_reason, answered = "", "", True
        self.node.services["sip"] = type("Sip", (), {"calls": {Call()}})()
        calls = await client.request("GET", "/api/v1/admin/calls")
        self.assertEqual(calls.json["node"], "test-node")
        self.assertEqual(calls.json["calls"], [{
            "call_id": "abc@host", "caller": "12065550101", "caller_name": "Mark",
            "called": "18005550100", "original_called": None, "diversion_reason": None,
            "answered": True}])

    @run
    async def test_prompt_upload_play_replace(self):
        client = self.client()
        await client.admin_sign_in()
        path = "/api/v1/admin/prompts/my_company/en/welcome"
        first = await client.request("PUT", path, raw=pcm16_to_mp3(tone(1.0)))
        self.assertEqual(first.status, 200, first)
        stored = await self.store.prompts.get_prompt("my_company", "en", "welcome")
        self.assertEqual(read_au(stored)[0].encoding, 1)
        played = await client.request("GET", path)
        self.assertTrue(played.body.startswith(b"RIFF"))
        from portaum_tx.convert.audio import pcm16_to_wav
        await client.request("PUT", path, raw=pcm16_to_wav(tone(2.0)))
        listing = await client.request("GET", "/api/v1/admin/prompts?brand=my_company")
        self.assertEqual(listing.json["prompts"][0]["seconds"], 2.0)
        default = await client.request("PUT", "/api/v1/admin/prompts/default/es/welcome",
                                       raw=pcm16_to_wav(tone(0.5)))
        self.assertEqual(default.status, 200)
        self.assertIsNotNone(await self.store.prompts.get_prompt("", "es", "welcome"))
        bad = await client.request("PUT", "/api/v1/admin/prompts/..%2Fetc/en/welcome", raw=b"x")
        self.assertEqual(bad.status, 400)


class OpenApiTests(WebNodeTestCase):
    @run
    async def test_document_matches_the_routes(self):
        client = self.client()
        result = await client.request("GET", "/openapi.json")
        self.assertEqual(result.status, 200)
        document = result.json
        self.assertEqual(document["openapi"], "3.0.3")
        from portaum_tx.web.frontend import all_routes
        served = {(r.method.lower(), r.path) for r in all_routes()}
        documented = {(method, path) for path, ops in document["paths"].items() for method in ops}
        self.assertEqual(served, documented)
        # Every documented operation answers at its path: never "no such endpoint" (404
        # no_route) nor "method not allowed", whatever the auth outcome.
        await client.sign_in(ALICE, ALICE_PASSWORD)
        for path, operations in document["paths"].items():
            concrete = re.sub(r"{\w+}", "1", path)
            for method, operation in operations.items():
                names = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
                self.assertEqual(names, set(re.findall(r"{(\w+)}", path)))
                response = await client.request(method.upper(), concrete,
                                                {} if "requestBody" in operation else None)
                code = response.json.get("error", {}).get("code") if response.header(
                    "Content-Type") == "application/json" and response.body.startswith(b"{") else None
                self.assertNotIn(code, ("no_route", "method_not_allowed"), (method, path, response))
                self.assertNotEqual(response.status, 500, (method, path, response))


@on_both_engines
class AttendantTests(WebNodeTestCase):
    @run
    async def test_two_menus_with_a_night_period(self):
        client = self.client()
        await client.sign_in(ALICE, ALICE_PASSWORD)
        start = await client.request("GET", "/api/v1/attendant")
        self.assertEqual([m["name"] for m in start.json["menus"]], ["ROOT"])
        self.assertIn("not_active", start.json["events"])
        words = await client.request("GET", "/api/v1/attendant/period?text=" + quote("wd{mo-fr} hr{8am-4pm}"))
        self.assertEqual(words.json["period"], "hr{8am-4pm} wd{mo-fr}")
        self.assertIn("From 8:00am until 5:00pm", words.json["description"])
        bad = await client.request("GET", "/api/v1/attendant/period?text=" + quote("hr{25}"))
        self.assertEqual(bad.status, 400)
        night = await client.request("POST", "/api/v1/attendant/menus",
                                     {"name": "Night", "period": "hr{6pm-7am}"})
        self.assertEqual(night.status, 201, night)
        root = await client.request("PATCH", "/api/v1/attendant/menus/ROOT", {
            "period": "hr{8am-4pm} wd{mo-fr}",
            "events": {"not_active": {"action": "menu", "target": "Night"},
                       "1": {"action": "transfer", "target": "1001", "play_before": True},
                       "0": {"action": "transfer_extension", "max_digits": 3}}})
        self.assertEqual(root.status, 200, root)
        self.assertEqual(root.json["events"]["not_active"], {"action": "menu", "target": "Night"})
        dangling = await client.request("PATCH", "/api/v1/attendant/menus/ROOT", {
            "events": {"2": {"action": "menu", "target": "Lunch"}}})
        self.assertEqual(dangling.status, 400)
        self.assertIn("no menu 'Lunch'", dangling.json["error"]["message"])
        in_use = await client.request("DELETE", "/api/v1/attendant/menus/Night")
        self.assertEqual(in_use.status, 409)
        from portaum_tx.ivr.attendant import AttendantBook
        menus = {m.name: m for m in await AttendantBook(self.store).menus(ALICE)}
        self.assertEqual(menus["ROOT"].period, "hr{8am-4pm} wd{mo-fr}")
        self.assertEqual(menus["ROOT"].action_for("not_active").target, "Night")
        self.assertEqual(menus["Night"].period, "hr{6pm-7am}")
        prompt = await client.request("PUT", "/api/v1/attendant/menus/Night/prompts/intro",
                                      raw=pcm16_to_mp3(tone(1.0)))
        self.assertEqual(prompt.status, 200, prompt)
        stored = await self.store.attendant.get_attendant_prompt(ALICE, "menu:Night", "intro")
        self.assertEqual(read_au(stored)[0].encoding, 1)
        # Bob's attendant is his own.
        bob = self.client()
        await bob.sign_in(BOB, BOB_PASSWORD)
        self.assertEqual([m["name"] for m in (await bob.request("GET", "/api/v1/attendant")).json["menus"]],
                         ["ROOT"])
        self.assertEqual((await bob.request("GET", "/api/v1/attendant/menus/Night/prompts/intro")).status, 404)

    @run
    async def test_queues_and_directory(self):
        client = self.client()
        await client.sign_in(ALICE, ALICE_PASSWORD)
        queue = await client.request("POST", "/api/v1/attendant/queues", {
            "name": "support", "destination": "1002", "max_connected": 2})
        self.assertEqual(queue.status, 201, queue)
        bad = await client.request("POST", "/api/v1/attendant/queues", {"name": "x", "destination": "abc"})
        self.assertEqual(bad.status, 400)
        entry = await client.request("POST", "/api/v1/attendant/directory", {
            "extension": "101", "first_name": "Rachel", "last_name": "Green"})
        self.assertEqual(entry.status, 201, entry)
        named = await client.request("PUT", "/api/v1/attendant/directory/101/name",
                                     raw=pcm16_to_mp3(tone(0.8)))
        self.assertEqual(named.status, 200)
        listing = (await client.request("GET", "/api/v1/attendant")).json
        self.assertEqual(listing["directory"][0]["name_recorded"], True)
        self.assertEqual(listing["queues"][0]["max_connected"], 2)
        nameless = await client.request("POST", "/api/v1/attendant/directory",
                                        {"extension": "102", "last_name": "123"})
        self.assertEqual(nameless.status, 400)
