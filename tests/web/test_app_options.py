"""Application options through the admin API: "choice" options take the choices the
applications declare, and a prompt uploaded for the default set is what the IVR plays."""

from __future__ import annotations

from urllib.parse import quote

from twisted.internet import reactor

from portaum_tx.convert.audio import pcm16_to_wav, read_au
from portaum_tx.ivr.apps import choice_option, registry
from portaum_tx.ivr.prompts import PromptLibrary, store_lookup
from portaum_tx.web import app_options
from tests.support import on_both_engines
from tests.web.support import WebNodeTestCase, run, tone


@on_both_engines
class ChoiceOptionTests(WebNodeTestCase):
    async def add_number(self, client, pattern, application, options):
        result = await client.request("POST", "/api/v1/admin/access-numbers", {
            "pattern": pattern, "application": application, "options": options})
        if result.status == 201:
            self.addCleanup(lambda: client.request(
                "DELETE", "/api/v1/admin/access-numbers/" + quote(pattern, safe="")))
        return result

    @run
    async def test_declared_choices_are_accepted_and_others_refused(self):
        client = self.client()
        await client.admin_sign_in()
        result = await self.add_number(client, "18005550100", "callback", {
            "authenticate_by": "dnis", "seconds_rounding_mode": "Up",
            "end_announce_type": "voice", "check_low_balance": "no_calls"})
        self.assertEqual(result.status, 201, result)
        self.assertEqual(result.json["options"], {
            "authenticate_by": "dnis", "seconds_rounding_mode": "up",
            "end_announce_type": "voice", "check_low_balance": "no_calls"})
        stored = await self.store.access_numbers.get_access_number_for("18005550100")
        self.assertEqual(stored.options["seconds_rounding_mode"], "up")
        refused = await self.add_number(client, "18005550101", "prepaid",
                                        {"check_low_balance": "sometimes"})
        self.assertEqual(refused.status, 400, refused)
        self.assertIn("check_low_balance", refused.body.decode())
        self.assertIn("none, disconnect, no_calls", refused.body.decode())
        apps = await client.request("GET", "/api/v1/admin/applications")
        pinless = next(a for a in apps.json["applications"] if a["name"] == "pinless")
        rounding = next(o for o in pinless["options"] if o["name"] == "seconds_rounding_mode")
        self.assertEqual((rounding["type"], rounding["choices"]), ("choice", ["none", "up"]))

    @run
    async def test_an_application_module_declaration_drives_the_admin_check(self):
        async def colours(call, context, options):
            pass
        colours.OPTIONS = (choice_option("colour", "red", ("red", "green"), "Which colour."),)
        registry.register("test-colours", colours)
        self.addCleanup(registry.unregister, "test-colours")
        self.assertNotIn("test-colours", app_options.APPLICATIONS)
        client = self.client()
        await client.admin_sign_in()
        good = await self.add_number(client, "18005550102", "test-colours", {"colour": "green"})
        self.assertEqual(good.status, 201, good)
        bad = await self.add_number(client, "18005550103", "test-colours", {"colour": "blue"})
        self.assertEqual(bad.status, 400, bad)
        self.assertIn("colour must be one of red, green", bad.body.decode())


@on_both_engines
class UploadedPromptTests(WebNodeTestCase):
    @run
    async def test_a_default_set_upload_is_what_the_ivr_plays(self):
        client = self.client()
        await client.admin_sign_in()
        uploaded = await client.request("PUT", "/api/v1/admin/prompts/default/en/welcome",
                                        raw=pcm16_to_wav(tone(0.5)))
        self.assertEqual(uploaded.status, 200, uploaded)
        library = PromptLibrary(store_lookup=store_lookup(self.store.prompts, reactor))
        prompt = await library.resolve("welcome", ["en"], "some_brand")
        self.assertEqual((prompt.source, prompt.brand), ("store", None))
        self.assertEqual(prompt.ulaw, read_au(await self.store.prompts.get_prompt("", "en", "welcome"))[1])
        shipped = await library.resolve("goodbye", ["en"])
        self.assertNotEqual(shipped.source, "store")
