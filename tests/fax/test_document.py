import io
import os
import re
import shutil
import subprocess
import warnings

import numpy as np
from hypothesis import given, settings, strategies as st
from PIL import Image
from twisted.internet import task
from twisted.trial import unittest

from portaum_tx.fax.document import (
    FaxDocumentError, convert_received_fax, convert_received_fax_async, page_count,
    read_fax_pages, render_previews, write_pdf, write_tiff_f)
from portaum_tx.fax.receiver import FaxReceiver
from tests.fax.faxpeer import (
    FakeUdptlLink, T38Sender, dense_page, page_similarity, run_t38, text_page,
    write_document)

_SOURCE_CACHE = {}


def source_tiff(y_dpi=98):
    """A 3-page G4 document (text, dense, photo), generated once per run."""
    if y_dpi not in _SOURCE_CACHE:
        buffer = io.BytesIO()
        pages = write_document(buffer, y_dpi=y_dpi)
        _SOURCE_CACHE[y_dpi] = (buffer.getvalue(), pages)
    return _SOURCE_CACHE[y_dpi]


class SynchronousThreadPool:
    def callInThreadWithCallback(self, on_result, function, *args, **kwargs):
        try:
            result = function(*args, **kwargs)
        except BaseException as e:   # noqa: BLE001 - handed to the Deferred
            on_result(False, e)
        else:
            on_result(True, result)


class ImmediateReactor:
    def callFromThread(self, function, *args, **kwargs):
        function(*args, **kwargs)


class ReadTests(unittest.TestCase):
    def test_reads_pages_and_resolution(self):
        data, source = source_tiff(196)
        pages = read_fax_pages(data)
        self.assertEqual(len(pages), 3)
        self.assertEqual(page_count(data), 3)
        for page, original in zip(pages, source):
            self.assertEqual((page.x_dpi, page.y_dpi), (204, 196))
            self.assertEqual(page.image.mode, "1")
            self.assertEqual(page_similarity(page.image, original), 1.0)
        # 1728 px at 204 dpi is the 215 mm fax scan width.
        self.assertLess(abs(pages[0].width_points / 72 * 25.4 - 215.15), 0.01)

    def test_snaps_metric_resolution(self):
        buffer = io.BytesIO()
        text_page(200).save(buffer, format="TIFF", compression="group3",
                            dpi=(204.0, 195.58))
        [page] = read_fax_pages(buffer.getvalue())
        self.assertEqual(page.y_dpi, 196)

    def test_rejects_garbage(self):
        with self.assertRaisesRegex(FaxDocumentError, "not a readable TIFF"):
            read_fax_pages(b"not a tiff at all")

    def test_rejects_other_image_formats(self):
        buffer = io.BytesIO()
        Image.new("1", (64, 64)).save(buffer, format="PNG")
        with self.assertRaisesRegex(FaxDocumentError, "PNG, not TIFF"):
            read_fax_pages(buffer.getvalue())

    def test_rejects_missing_resolution(self):
        buffer = io.BytesIO()
        Image.new("1", (1728, 100), 1).save(buffer, format="TIFF", compression="group4")
        with self.assertRaisesRegex(FaxDocumentError, "resolution"):
            read_fax_pages(buffer.getvalue())

    @settings(max_examples=40, deadline=None)
    @given(st.data())
    def test_fuzz_damaged_tiff_only_fax_document_error(self, data):
        original, _ = source_tiff()
        damaged = bytearray(original[:data.draw(st.integers(0, len(original)))])
        for _ in range(data.draw(st.integers(0, 8))):
            if damaged:
                damaged[data.draw(st.integers(0, len(damaged) - 1))] = data.draw(
                    st.integers(0, 255))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")     # Pillow warns about damaged EXIF
                pages = read_fax_pages(bytes(damaged))
        except FaxDocumentError:
            return
        self.assertGreater(len(pages), 0)


class TiffFTests(unittest.TestCase):
    def check_tiff_f(self, compression, code, option_tag):
        data, source = source_tiff(196)
        tiff = write_tiff_f(read_fax_pages(data), compression)
        with Image.open(io.BytesIO(tiff)) as image:
            self.assertEqual(image.n_frames, 3)
            for index in range(3):
                image.seek(index)
                tags = image.tag_v2
                self.assertEqual(tags[259], code)
                self.assertEqual(tags[256], 1728)
                self.assertEqual((float(tags[282]), float(tags[283])), (204.0, 196.0))
                self.assertEqual(tags[296], 2)
                self.assertEqual(tags[297], (index, 3))
                self.assertEqual(tags[254], 2)
                self.assertEqual(tags[262], 0)
                self.assertEqual(tags[option_tag], 0)
                self.assertEqual(page_similarity(image, source[index]), 1.0)

    def test_group4(self):
        self.check_tiff_f("group4", 4, 293)

    def test_group3(self):
        self.check_tiff_f("group3", 3, 292)

    def test_tiffinfo_accepts_it_when_installed(self):
        # libtiff's own reader is the reference where libtiff-tools is present.
        tiffinfo = shutil.which("tiffinfo")
        data, _ = source_tiff()
        tiff = write_tiff_f(read_fax_pages(data))
        if tiffinfo is None:
            with Image.open(io.BytesIO(tiff)) as image:
                image.seek(2)
                image.load()
            return
        path = self.mktemp()
        with open(path, "wb") as out:
            out.write(tiff)
        report = subprocess.run([tiffinfo, "-D", path], capture_output=True, text=True)
        self.assertEqual(report.returncode, 0, report.stderr)
        self.assertNotIn("Error", report.stderr)

    def test_rejects_unknown_compression(self):
        data, _ = source_tiff()
        with self.assertRaises(ValueError):
            write_tiff_f(read_fax_pages(data), "jpeg")


class PdfTests(unittest.TestCase):
    def test_pdf_renders_back_to_the_pages(self):
        data, source = source_tiff()
        pdf = write_pdf(read_fax_pages(data), title="Fax from +1 555 0100")
        self.assertTrue(pdf.startswith(b"%PDF-"))
        directory = self.mktemp()
        os.makedirs(directory)
        path = os.path.join(directory, "fax.pdf")
        with open(path, "wb") as out:
            out.write(pdf)
        pdftoppm = shutil.which("pdftoppm")
        self.assertIsNotNone(pdftoppm, "pdftoppm (Debian poppler-utils) is needed")
        # Rendered at twice the fax resolution without anti-aliasing, every other
        # pixel is one fax pixel (at 1x, rounding shifts columns in dense pages).
        subprocess.run([pdftoppm, "-scale-to-x", "3456", "-scale-to-y", "2286", "-gray",
                        "-aa", "no", "-aaVector", "no", path, os.path.join(directory, "page")],
                       check=True, capture_output=True)
        rendered = sorted(f for f in os.listdir(directory) if f.startswith("page"))
        self.assertEqual(len(rendered), 3)
        for name, original in zip(rendered, source):
            with Image.open(os.path.join(directory, name)) as image:
                self.assertEqual(image.size, (3456, 2286))
                pixels = np.asarray(image)[::2, ::2] >= 128
            bitmap = Image.fromarray(pixels)
            self.assertGreater(page_similarity(bitmap, original), 0.98)

    def test_page_size_follows_resolution(self):
        pages = read_fax_pages(source_tiff(196)[0])
        pdf = write_pdf(pages[:1])
        # 1728/204 in x 2286/196 in: A4 paper scanned at fine resolution.
        box = re.search(rb"/MediaBox\s*\[\s*0 0 ([0-9.]+) ([0-9.]+)\s*\]", pdf)
        self.assertIsNotNone(box)
        width, height = (float(v) for v in box.groups())
        self.assertLess(abs(width - 1728 / 204 * 72), 0.01)
        self.assertLess(abs(height - 2286 / 196 * 72), 0.01)


class PreviewTests(unittest.TestCase):
    def test_previews_are_png_with_corrected_aspect(self):
        for y_dpi in (98, 196):
            previews = render_previews(read_fax_pages(source_tiff(y_dpi)[0]), width=425)
            self.assertEqual(len(previews), 3)
            with Image.open(io.BytesIO(previews[0])) as image:
                self.assertEqual(image.format, "PNG")
                self.assertEqual(image.width, 425)
                # A4 proportions whatever the vertical resolution.
                self.assertAlmostEqual(image.height / image.width, 839.76 / 609.88, places=2)


class ConvertTests(unittest.TestCase):
    def test_async_wrapper_runs_in_the_pool(self):
        data, _ = source_tiff()
        results = []
        convert_received_fax_async(ImmediateReactor(), SynchronousThreadPool(), data,
                                   compression="group3").addCallback(results.append)
        [converted] = results
        self.assertEqual(converted.pages, 3)
        self.assertEqual(page_count(converted.tiff), 3)
        self.assertTrue(converted.pdf.startswith(b"%PDF-"))
        self.assertEqual(len(converted.previews), 3)

    def test_async_wrapper_reports_bad_input(self):
        failures = []
        convert_received_fax_async(ImmediateReactor(), SynchronousThreadPool(),
                                   b"garbage").addErrback(failures.append)
        [failure] = failures
        failure.trap(FaxDocumentError)

    def test_document_received_by_t38_converts(self):
        # The real input: the TIFF spandsp wrote while receiving a fax.
        directory = self.mktemp()
        os.makedirs(directory)
        source = os.path.join(directory, "source.tif")
        sent = [text_page(1143), dense_page(1143)]
        write_document(source, pages=sent)
        clock = task.Clock()
        to_receiver, to_sender = FakeUdptlLink(None), FakeUdptlLink(None)
        receiver = FaxReceiver(clock, os.path.join(directory, "rx.tif"),
                               send_datagram=to_sender.send)
        sender = T38Sender(source, to_receiver.send)
        self.addCleanup(sender.close)
        to_receiver.deliver, to_sender.deliver = receiver.feed_udptl, sender.feed_udptl
        result = run_t38(clock, receiver, sender, to_receiver, to_sender)
        self.assertTrue(result.complete)
        converted = convert_received_fax(result.tiff_path)
        self.assertEqual(converted.pages, 2)
        for page, original in zip(read_fax_pages(converted.tiff), sent):
            self.assertEqual((page.x_dpi, page.y_dpi), (204, 98))
            self.assertGreater(page_similarity(page.image, original), 0.98)
