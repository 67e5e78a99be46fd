import os
import random

import numpy as np
from PIL import Image
from twisted.internet import task
from twisted.trial import unittest

from portaum_tx.fax import spandsp
from portaum_tx.fax.receiver import FaxReceiver
from portaum_tx.fax.t38sdp import EC_NONE, T38Params, answer_t38, parse_t38_attributes
from portaum_tx.fax.udptl import UdptlPacket, UdptlSender, build_udptl, parse_udptl
from tests.fax.faxpeer import (
    AudioSender, FakeUdptlLink, T38Sender, page_similarity, run_audio, run_t38,
    write_document)


def received_pages(path):
    image = Image.open(path)
    pages = []
    for index in range(image.n_frames):
        image.seek(index)
        pages.append(image.copy())
    return pages


class FaxReceptionMixin:
    def setUp(self):
        self.dir = self.mktemp()
        os.makedirs(self.dir)
        self.clock = task.Clock()

    def document(self, y_dpi=98):
        path = os.path.join(self.dir, f"source-{y_dpi}.tif")
        return path, write_document(path, y_dpi=y_dpi)

    def t38_pair(self, source, ecm, loss=0.0, reorder=0.0, **receiver_options):
        to_receiver = FakeUdptlLink(None, loss=loss, reorder=reorder, seed=11)
        to_sender = FakeUdptlLink(None, loss=loss, reorder=reorder, seed=12)
        receiver = FaxReceiver(self.clock, os.path.join(self.dir, "rx.tif"),
                               send_datagram=to_sender.send, ecm=ecm,
                               local_ident="PORTAUM", **receiver_options)
        sender = T38Sender(source, to_receiver.send, ecm=ecm)
        self.addCleanup(sender.close)
        to_receiver.deliver = receiver.feed_udptl
        to_sender.deliver = sender.feed_udptl
        return receiver, sender, to_receiver, to_sender

    def assertDocumentArrived(self, result, source_pages, x_dpi=204, y_dpi=98):
        self.assertTrue(result.complete, result.completion_text)
        self.assertEqual(result.completion_code, spandsp.T30_ERR_OK)
        self.assertEqual(result.pages, 3)
        self.assertEqual((result.x_dpi, result.y_dpi), (x_dpi, y_dpi))
        self.assertEqual(result.resolution, f"{x_dpi}x{y_dpi}")
        self.assertIn(result.bit_rate, (9600, 12000, 14400))
        pages = received_pages(result.tiff_path)
        self.assertEqual(len(pages), 3)
        for got, sent in zip(pages, source_pages):
            self.assertEqual(got.size, sent.size)
            self.assertGreater(page_similarity(got, sent), 0.98)


class T38ReceptionTests(FaxReceptionMixin, unittest.TestCase):
    def test_ecm_over_lossy_reordering_link(self):
        source, pages = self.document()
        receiver, sender, to_r, to_s = self.t38_pair(source, ecm=True, loss=0.03, reorder=0.1)
        result = run_t38(self.clock, receiver, sender, to_r, to_s)
        self.assertDocumentArrived(result, pages)
        self.assertTrue(result.ecm)
        self.assertEqual(result.compression, "T.4 2-D")
        self.assertEqual(result.remote_ident, "+1 555 0100")
        self.assertEqual(result.mode, "t38")
        self.assertGreater(to_r.dropped, 0)
        self.assertGreater(receiver._udptl_in.stats.recovered, 0)
        self.assertEqual(receiver.rejected_ifps, 0)
        self.assertLess(abs(result.duration - self.clock.seconds()), 0.1)

    def test_without_ecm_fine_resolution(self):
        source, pages = self.document(y_dpi=196)
        receiver, sender, to_r, to_s = self.t38_pair(source, ecm=False, loss=0.01, reorder=0.05)
        result = run_t38(self.clock, receiver, sender, to_r, to_s)
        self.assertDocumentArrived(result, pages, y_dpi=196)
        self.assertFalse(result.ecm)

    def test_configured_from_sdp_fec_and_local_tcf(self):
        source, pages = self.document()
        params = answer_t38(parse_t38_attributes([
            ("T38FaxVersion", "0"), ("T38FaxRateManagement", "localTCF"),
            ("T38FaxMaxDatagram", "200"), ("T38FaxUdpEC", "t38UDPFEC")]))
        to_receiver = FakeUdptlLink(None, loss=0.02, seed=21)
        to_sender = FakeUdptlLink(None, loss=0.02, seed=22)
        receiver = FaxReceiver(self.clock, os.path.join(self.dir, "rx.tif"),
                               send_datagram=to_sender.send, t38=params)
        sender = T38Sender(source, to_receiver.send, udptl_mode="fec",
                           transferred_tcf=False)
        self.addCleanup(sender.close)
        to_receiver.deliver, to_sender.deliver = receiver.feed_udptl, sender.feed_udptl
        result = run_t38(self.clock, receiver, sender, to_receiver, to_sender)
        self.assertDocumentArrived(result, pages)
        # Packets rebuilt from parity were trimmed to their IFP length and accepted.
        self.assertGreater(receiver._udptl_in.stats.recovered, 0)
        self.assertEqual(receiver.rejected_ifps, 0)
        self.assertEqual(receiver._udptl_out.mode, "fec")

    def test_t6_compression(self):
        source, pages = self.document()
        receiver, sender, to_r, to_s = self.t38_pair(source, ecm=True)
        sender.terminal.t30.set_supported_compressions(spandsp.COMPRESSION_T6)
        result = run_t38(self.clock, receiver, sender, to_r, to_s)
        self.assertDocumentArrived(result, pages)
        # Negotiated on the line; spandsp stores pages in its own file coding.
        self.assertEqual(result.compression, "T.6")

    def test_sender_cut_off_in_phase_c_delivers_partial_document(self):
        source, pages = self.document()
        receiver, sender, to_r, to_s = self.t38_pair(source, ecm=False)
        cut_at = []

        def cut_during_second_page(tick):
            if sender.pages_sent == 1 and not cut_at:
                cut_at.append(tick)
            if cut_at and tick == cut_at[0] + 300 and not sender.stopped:
                sender.stop()
                to_r.cut = True
            if sender.stopped and tick == cut_at[0] + 400:
                receiver.stop()

        result = run_t38(self.clock, receiver, sender, to_r, to_s,
                         on_tick=cut_during_second_page)
        self.assertFalse(result.complete)
        self.assertIn("hung up", result.completion_text)
        # Page 1 arrived whole; spandsp 0.0.6 discards the unfinished page 2.
        self.assertEqual(result.pages, 1)
        received = received_pages(result.tiff_path)
        self.assertEqual(len(received), result.pages)
        self.assertGreater(page_similarity(received[0], pages[0]), 0.98)

    def test_garbage_and_truncated_datagrams_end_cleanly(self):
        receiver = FaxReceiver(self.clock, os.path.join(self.dir, "rx.tif"),
                               send_datagram=lambda datagram: None)
        rng = random.Random(5)
        good = build_udptl(UdptlPacket(0, b"\x00\x01", (b"\x02",)))
        for _ in range(300):
            receiver.feed_udptl(bytes(rng.randrange(256) for _ in range(rng.randrange(40))))
            receiver.feed_udptl(good[:rng.randrange(len(good))])
            receiver.tick()
            self.clock.advance(0.02)
        self.assertGreater(receiver.malformed_datagrams, 100)
        results = []
        receiver.done.addCallback(results.append)
        receiver.stop()
        receiver.stop()
        [result] = results
        self.assertFalse(result.complete)
        self.assertEqual(result.pages, 0)
        self.assertIsNone(result.tiff_path)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "rx.tif")))

    def test_overall_timeout_on_injected_clock(self):
        receiver = FaxReceiver(self.clock, os.path.join(self.dir, "rx.tif"),
                               send_datagram=lambda datagram: None, timeout=30)
        results = []
        receiver.done.addCallback(results.append)
        self.clock.advance(29)
        self.assertEqual(results, [])
        self.clock.advance(2)
        [result] = results
        self.assertFalse(result.complete)
        self.assertIn("timeout", result.completion_text)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_page_limit_ends_call_with_pages_so_far(self):
        source, pages = self.document()
        receiver, sender, to_r, to_s = self.t38_pair(source, ecm=True, max_pages=1)
        result = run_t38(self.clock, receiver, sender, to_r, to_s)
        self.assertFalse(result.complete)
        self.assertIn("page limit", result.completion_text)
        self.assertEqual(result.pages, 1)
        [page] = received_pages(result.tiff_path)
        self.assertGreater(page_similarity(page, pages[0]), 0.98)

    def test_without_udptl_error_correction_gaps_do_not_stall(self):
        source, pages = self.document()
        params = T38Params(error_correction=EC_NONE)
        to_receiver = FakeUdptlLink(None, loss=0.01, seed=31)
        to_sender = FakeUdptlLink(None, loss=0.01, seed=32)
        # Without ECM: spandsp 0.0.6 can lose its place in ECM when an unprotected
        # end-of-data packet is lost, so ECM needs UDPTL redundancy or FEC.
        receiver = FaxReceiver(self.clock, os.path.join(self.dir, "rx.tif"),
                               send_datagram=to_sender.send, t38=params, ecm=False)
        sender = T38Sender(source, to_receiver.send, ecm=False)
        sender.udptl_out = UdptlSender(redundancy=0)
        self.addCleanup(sender.close)
        to_receiver.deliver, to_sender.deliver = receiver.feed_udptl, sender.feed_udptl
        result = run_t38(self.clock, receiver, sender, to_receiver, to_sender)
        self.assertTrue(result.complete, result.completion_text)
        self.assertEqual(result.pages, 3)
        self.assertGreater(receiver._udptl_in.stats.lost, 0)
        # Non-ECM has no retransmission: lost packets cost a few scan lines at most.
        for got, sent in zip(received_pages(result.tiff_path), pages):
            self.assertEqual(got.width, 1728)
            self.assertGreater(got.height, 0.98 * sent.height)

    def test_held_packets_released_after_a_few_ticks(self):
        receiver = FaxReceiver(self.clock, os.path.join(self.dir, "rx.tif"),
                               send_datagram=lambda datagram: None)
        self.addCleanup(receiver.stop)
        receiver.feed_udptl(build_udptl(UdptlPacket(0, b"\x00\x00")))   # T.38 no-signal
        receiver.feed_udptl(build_udptl(UdptlPacket(2, b"\x00\x00")))
        self.assertTrue(receiver._udptl_in.holding)
        receiver.tick()
        receiver.tick()
        self.assertTrue(receiver._udptl_in.holding)
        receiver.tick()
        self.assertFalse(receiver._udptl_in.holding)
        self.assertEqual(receiver._udptl_in.stats.delivered, 2)

    def test_page_size_limit(self):
        source, pages = self.document()
        receiver, sender, to_r, to_s = self.t38_pair(source, ecm=False, max_page_rows=600)
        result = run_t38(self.clock, receiver, sender, to_r, to_s)
        self.assertFalse(result.complete)
        self.assertIn("page too large", result.completion_text)
        self.assertEqual(result.pages, 0)
        self.assertIsNone(result.tiff_path)

    def test_library_missing_is_reported(self):
        def missing(path=None):
            raise spandsp.FaxUnavailable("libspandsp not found (test)")

        self.patch(spandsp, "load_library", missing)
        with self.assertRaisesRegex(spandsp.FaxUnavailable, "not found"):
            FaxReceiver(self.clock, os.path.join(self.dir, "rx.tif"),
                        send_datagram=lambda datagram: None)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_transport_failure_ends_only_this_fax(self):
        def broken_transport(datagram):
            raise OSError("socket closed")

        receiver = FaxReceiver(self.clock, os.path.join(self.dir, "rx.tif"),
                               send_datagram=broken_transport)
        results = []
        receiver.done.addCallback(results.append)
        for _ in range(100):
            receiver.tick()          # must not raise into the media clock
        [result] = results
        self.assertFalse(result.complete)
        self.assertIn("fax engine error", result.completion_text)
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)

    def test_outgoing_datagrams_are_udptl(self):
        sent = []
        receiver = FaxReceiver(self.clock, os.path.join(self.dir, "rx.tif"),
                               send_datagram=sent.append)
        for _ in range(100):
            receiver.tick()
        # The called terminal announces itself (CED, then DIS) without being asked.
        self.assertTrue(sent)
        # Copies spandsp asks for repeat a datagram under the same sequence number.
        seqs = [parse_udptl(d).seq for d in sent]
        self.assertEqual(sorted(set(seqs)), list(range(len(set(seqs)))))
        self.assertEqual(seqs, sorted(seqs))
        self.assertLessEqual(max(seqs.count(s) for s in seqs), 3)
        receiver.stop()


class AudioReceptionTests(FaxReceptionMixin, unittest.TestCase):
    def run_audio_fax(self, ecm, **line):
        source, pages = self.document()
        receiver = FaxReceiver(self.clock, os.path.join(self.dir, "rx.tif"), mode="audio",
                               ecm=ecm, local_ident="PORTAUM")
        sender = AudioSender(source, ecm=ecm)
        self.addCleanup(sender.close)
        return run_audio(self.clock, receiver, sender, **line), pages

    def test_audio_with_lost_packets_filled_in(self):
        # 1 % of packets lost; spandsp's fill-in keeps the modems going. (Feeding
        # silence instead fails this call: see rx_audio.)
        result, pages = self.run_audio_fax(ecm=False, loss=0.01, seed=3)
        self.assertTrue(result.complete, result.completion_text)
        self.assertEqual(result.pages, 3)
        for got, sent in zip(received_pages(result.tiff_path), pages):
            self.assertEqual(got.width, 1728)
            self.assertGreater(got.height, 0.98 * sent.height)

    def test_audio_ecm_with_lost_packets(self):
        result, pages = self.run_audio_fax(ecm=True, loss=0.002, seed=1)
        self.assertDocumentArrived(result, pages)

    def test_audio_with_ecm(self):
        result, pages = self.run_audio_fax(ecm=True)
        self.assertDocumentArrived(result, pages)
        self.assertTrue(result.ecm)
        self.assertEqual(result.remote_ident, "+1 555 0200")
        self.assertEqual(result.mode, "audio")

    def test_audio_without_ecm(self):
        result, pages = self.run_audio_fax(ecm=False)
        self.assertDocumentArrived(result, pages)
        self.assertFalse(result.ecm)

    def test_audio_output_is_one_tick_of_int16(self):
        receiver = FaxReceiver(self.clock, os.path.join(self.dir, "rx.tif"), mode="audio")
        out = receiver.rx_audio(np.zeros(160, dtype=np.int16))
        self.assertEqual((out.dtype, out.shape), (np.dtype(np.int16), (160,)))
        # CED (2100 Hz answer tone) starts after a short pause: energy appears.
        energy = sum(float(np.abs(receiver.rx_audio(np.zeros(160, np.int16))).sum())
                     for _ in range(50))
        self.assertGreater(energy, 0)
        receiver.stop()
        self.assertFalse(receiver.rx_audio(np.zeros(160, np.int16)).any())
