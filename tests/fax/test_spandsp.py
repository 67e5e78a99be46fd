import numpy as np
from twisted.trial import unittest

from portaum_tx.fax import spandsp


class LibraryTests(unittest.TestCase):
    def test_missing_library_is_fax_unavailable_with_reason(self):
        with self.assertRaises(spandsp.FaxUnavailable) as caught:
            spandsp.load_library("/nonexistent/libspandsp.so.2")
        self.assertIn("/nonexistent/libspandsp.so.2", str(caught.exception))
        self.assertIn("libspandsp2", str(caught.exception))

    def test_wrong_library_is_fax_unavailable(self):
        with self.assertRaisesRegex(spandsp.FaxUnavailable, "lacks a needed function"):
            spandsp.load_library("libm.so.6")

    def test_completion_codes(self):
        self.assertEqual(spandsp.completion_code_text(spandsp.T30_ERR_OK), "OK")
        self.assertIn("dropped", spandsp.completion_code_text(spandsp.T30_ERR_CALLDROPPED))


class TerminalTests(unittest.TestCase):
    def test_t38_pair_exchange_capabilities(self):
        # Two terminals wired back to back: the caller learns the answerer's ident.
        to_calling, to_called = [], []
        calling = spandsp.T38Terminal(True, lambda ifp, count: to_called.append(ifp))
        called = spandsp.T38Terminal(False, lambda ifp, count: to_calling.append(ifp))
        self.addCleanup(calling.close)
        self.addCleanup(called.close)
        called.t30.set_local_ident("ANSWER 1")
        seen = []
        calling.t30.set_phase_b_handler(lambda frame: seen.append(calling.t30.remote_ident()))
        sequence = {"calling": 0, "called": 0}
        for _ in range(500):
            for ifp in to_calling:
                calling.rx_ifp(ifp, sequence["calling"])
                sequence["calling"] += 1
            for ifp in to_called:
                called.rx_ifp(ifp, sequence["called"])
                sequence["called"] += 1
            to_calling.clear()
            to_called.clear()
            calling.advance(160)
            called.advance(160)
            if seen:
                break
        self.assertEqual(seen, ["ANSWER 1"])

    def test_callback_exception_reaches_caller(self):
        def broken(ifp, count):
            raise ZeroDivisionError("from the transport")

        terminal = spandsp.T38Terminal(False, broken)
        self.addCleanup(terminal.close)
        with self.assertRaises(ZeroDivisionError):
            for _ in range(100):
                terminal.advance(160)

    def test_closed_state_is_not_touched(self):
        fax = spandsp.AudioFax(False)
        fax.close()
        fax.close()
        self.assertFalse(fax.tx(160).any())
        fax.rx(np.zeros(160, np.int16))
        with self.assertRaises(spandsp.SpandspError):
            fax.t30.stats()

    def test_audio_tx_fills_the_buffer(self):
        fax = spandsp.AudioFax(False)
        self.addCleanup(fax.close)
        chunks = [fax.tx(160) for _ in range(100)]
        self.assertTrue(all(chunk.shape == (160,) for chunk in chunks))
        self.assertTrue(any(chunk.any() for chunk in chunks))
