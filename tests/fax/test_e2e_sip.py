"""End to end: libspandsp sends a 3-page fax to the server over real SIP/UDPTL/RTP on loopback.

The pages (a text page, a dense page, a photo-like page) must arrive in the mailbox, in
the account's format, each close to its source page; the PDF is rendered back to images
with pdftoppm to prove it opens. Each call runs in real time (about 30-90 s).
"""

from __future__ import annotations

import email
import email.policy
import io
import os
import subprocess
import tempfile

from PIL import Image
from twisted.internet import defer, reactor, task

from portaum_tx.accounts import AccountService
from portaum_tx.fax import spandsp
from portaum_tx.mailbox.events import EventBus, NewMessage
from portaum_tx.mailbox.service import MailboxService
from portaum_tx.store import Store
from tests.fax.e2e_harness import CallingFax, FaxServer
from tests.fax.faxpeer import (
    A4_ROWS_STANDARD, dense_page, page_similarity, photo_page, text_page, write_document)
from tests.support import StoreTestCase, program, require_peer

def _spandsp_available() -> str:
    try:
        spandsp.load_library()
    except spandsp.FaxUnavailable as e:
        return str(e)
    return ""


def tiff_pages(data: bytes) -> list:
    image = Image.open(io.BytesIO(data))
    pages = []
    for index in range(image.n_frames):
        image.seek(index)
        pages.append(image.copy())
    return pages


def pdf_pages(data: bytes, dpi: int = 204) -> list:
    """Render the PDF with pdftoppm (poppler): a PDF a common viewer opens."""
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "fax.pdf")
        with open(path, "wb") as out:
            out.write(data)
        subprocess.run(["pdftoppm", "-r", str(dpi), "-gray", path,
                        os.path.join(directory, "page")], check=True, timeout=120)
        names = sorted(n for n in os.listdir(directory) if n.startswith("page"))
        return [Image.open(os.path.join(directory, n)).convert("L").copy() for n in names]


def similarity_to_source(got: Image.Image, source: Image.Image) -> float:
    """Pixels against the source page; a PDF render is scaled back to the fax grid."""
    if got.size != source.size:
        got = got.resize(source.size, Image.Resampling.BOX)
    return page_similarity(got.point(lambda v: 255 if v >= 128 else 0), source)


MAILBOX_PDF = "15551230001"
MAILBOX_TIFF = "15551230002"


def e2e_pages(y_dpi=98):
    """A standard A4 text page, a dense page and a photo-like page (the dense and photo
    pages shortened so that a call over real time stays near a minute)."""
    rows = A4_ROWS_STANDARD if y_dpi == 98 else 2 * A4_ROWS_STANDARD
    return [text_page(rows), dense_page(300), photo_page(330)]


class FaxEndToEndCase(StoreTestCase):
    timeout = 400

    async def _open(self):
        reason = _spandsp_available()
        require_peer("libspandsp", not reason, reason)
        require_peer("pdftoppm", program("pdftoppm") is not None, "install poppler-utils")
        await super()._open()
        self.ivr_store = Store(self.store.db, reactor)
        self.events = EventBus(self.ivr_store)
        self.addCleanup(self.events.close)
        self.new_messages = []
        self.events.subscribe(NewMessage, self.new_messages.append)
        self.mailboxes = MailboxService(self.ivr_store, self.events, reactor, domain="example.net")
        self.accounts = AccountService(self.ivr_store, reactor)
        await self.ivr_store.accounts.add_customer("acme")
        for mailbox, fax_format in ((MAILBOX_PDF, "pdf"), (MAILBOX_TIFF, "tiff")):
            await self.accounts.create_account(mailbox, "acme", pin="4321")
            await self.accounts.set_preferences(mailbox, fax_format=fax_format)
        self.directory = self.mktemp()
        os.makedirs(self.directory)
        self.sources = e2e_pages()
        self.source = os.path.join(self.directory, "source.tif")
        write_document(self.source, pages=self.sources)

    async def fax_calls(self, calls):
        """Place the calls at once: ``calls`` maps a mailbox to (application options,
        CallingFax options). Returns the machines once every call's application ended."""
        server = FaxServer(self.ivr_store, self.mailboxes, self.accounts,
                           {mailbox: (mailbox, options) for mailbox, (options, _) in calls.items()})
        await server.start()
        self.addCleanup(lambda: defer.ensureDeferred(server.stop()))
        machines = {}
        for mailbox, (_, caller_options) in calls.items():
            machine = CallingFax(self.source, **caller_options)
            self.addCleanup(lambda m=machine: defer.ensureDeferred(m.close()))
            await machine.call(server.port, mailbox)
            machines[mailbox] = machine
        for mailbox in calls:
            await server.ended(mailbox)
        # The sending machine reports its own end once its DCN is out: give it a moment
        # (it keeps ticking after our BYE, as a machine finishing its procedure does).
        for _ in range(100):
            if all(m.completion is not None or m.cut for m in machines.values()):
                break
            await task.deferLater(reactor, 0.1, lambda: None)
        self.server = server
        return machines

    async def delivered(self, mailbox):
        box = await self.mailboxes.open(mailbox)
        inbox = await box.folder("INBOX")
        infos = await box.message_infos(inbox)
        data = await box.message_data(inbox, [i.uid for i in infos])
        return [(info, email.message_from_bytes(data[info.uid], policy=email.policy.default))
                for info in infos]

    def attachment(self, message):
        parts = list(message.iter_attachments())
        self.assertEqual(len(parts), 1)
        return parts[0].get_content_type(), parts[0].get_payload(decode=True)

    def assertPagesMatch(self, got, sources, threshold=0.97):
        self.assertEqual(len(got), len(sources))
        for number, (page, source) in enumerate(zip(got, sources), 1):
            score = similarity_to_source(page, source)
            self.assertGreater(score, threshold, f"page {number} similarity {score:.4f}")

    async def assertFaxDelivered(self, mailbox, machine, fax_format, pages=3, complete=True):
        messages = await self.delivered(mailbox)
        self.assertEqual(len(messages), 1, f"messages in {mailbox}")
        info, message = messages[0]
        self.assertEqual(info.kind, "fax")
        subject = message["Subject"]
        self.assertIn(f"{pages} page", subject)
        self.assertIn("+1 555 0", subject)      # the sender's station ID
        if complete:
            self.assertNotIn("incomplete", subject.lower())
        kind, data = self.attachment(message)
        if fax_format == "pdf":
            self.assertEqual(kind, "application/pdf")
            got = pdf_pages(data)
        else:
            self.assertEqual(kind, "image/tiff")
            got = tiff_pages(data)
        self.assertPagesMatch(got, self.sources[:pages])
        return subject


class T38EndToEndTests(FaxEndToEndCase):
    def test_t38_both_directions_of_the_switch_ecm_on_and_off(self):
        """Call 1: we re-INVITE to T.38, ECM on, PDF, garbage UDPTL mixed in.
        Call 2: we wait and the sender re-INVITEs to T.38, ECM off, TIFF."""
        return defer.ensureDeferred(self._t38())

    async def _t38(self):
        machines = await self.fax_calls({
            MAILBOX_PDF: ({"t38": "yes", "ecm": "yes"}, {"t38": True, "ecm": True,
                                                          "garbage": True}),
            MAILBOX_TIFF: ({"t38": "yes", "t38_request": "no"},
                           {"t38": True, "ecm": False, "reinvite_first": True}),
        })
        for mailbox, fax_format in ((MAILBOX_PDF, "pdf"), (MAILBOX_TIFF, "tiff")):
            machine = machines[mailbox]
            self.assertEqual(machine.mode, "t38", mailbox)
            self.assertEqual(machine.completion, spandsp.T30_ERR_OK, mailbox)
            self.assertEqual(machine.pages_sent, 3)
            await self.assertFaxDelivered(mailbox, machine, fax_format)
        self.assertGreater(machines[MAILBOX_PDF].garbage_sent, 0)
        self.assertIsNone(machines[MAILBOX_TIFF].reinvite_error)
        self.assertEqual(len(self.new_messages), 2)


class G711EndToEndTests(FaxEndToEndCase):
    def test_g711_after_t38_refused_and_with_t38_off(self):
        """Call 1: the sender refuses our T.38 re-INVITE (488), ECM on, PDF.
        Call 2: T.38 off on the access number, ECM off, TIFF."""
        return defer.ensureDeferred(self._g711())

    async def _g711(self):
        machines = await self.fax_calls({
            MAILBOX_PDF: ({"t38": "yes", "ecm": "yes"}, {"t38": False, "ecm": True}),
            MAILBOX_TIFF: ({"t38": "no"}, {"t38": False, "ecm": False}),
        })
        for mailbox, fax_format in ((MAILBOX_PDF, "pdf"), (MAILBOX_TIFF, "tiff")):
            machine = machines[mailbox]
            self.assertEqual(machine.mode, "audio", mailbox)
            self.assertEqual(machine.completion, spandsp.T30_ERR_OK, mailbox)
            await self.assertFaxDelivered(mailbox, machine, fax_format)


class InterruptedFaxTests(FaxEndToEndCase):
    def test_sender_stops_in_phase_c_partial_document_delivered(self):
        """A re-INVITE storm during page 1 leaves the fax running; the sender goes silent
        during page 2 and hangs up: page 1 is delivered, marked incomplete."""
        return defer.ensureDeferred(self._interrupted())

    async def _interrupted(self):
        machines = await self.fax_calls({
            MAILBOX_PDF: ({"t38": "yes"}, {"t38": True, "ecm": True, "cut_after_pages": 1,
                                            "cut_hangup_delay": 5.0, "reinvite_storm": 8}),
        })
        self.assertEqual(machines[MAILBOX_PDF].storm_answers, [True] * 8)
        self.assertEqual(machines[MAILBOX_PDF].mode, "t38")
        self.assertTrue(machines[MAILBOX_PDF].cut)
        subject = await self.assertFaxDelivered(MAILBOX_PDF, machines[MAILBOX_PDF], "pdf",
                                                pages=1, complete=False)
        self.assertIn("incomplete", subject.lower())
