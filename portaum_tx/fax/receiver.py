"""A fax reception driven by the call's 20 ms media tick.

The call layer creates one FaxReceiver per fax call, in T.38 mode (after the
re-INVITE to image/t38) or audio mode (G.711 decoded to 8 kHz int16), and drives
it from the shared media clock. spandsp does the T.30 work and writes the TIFF;
this class bounds the call and reports a FaxResult through `done`.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable

import numpy as np
from twisted.internet import defer
from twisted.logger import Logger

from portaum_tx.fax import spandsp
from portaum_tx.fax.t38sdp import RATE_TRANSFERRED_TCF, T38Params
from portaum_tx.fax.udptl import UdptlError, UdptlReceiver, UdptlSender

TICK_SAMPLES = 160           # 20 ms at 8 kHz
# Packets held behind a UDPTL gap are released after this many ticks: a gap the
# reorder window would only close with later traffic must not stall a handshake.
HOLD_TICKS = 3
MODE_T38 = "t38"
MODE_AUDIO = "audio"

# Internal reasons for ending a call early, reported in FaxResult.completion_text.
_LIMIT_PAGES = "page limit reached"
_LIMIT_PAGE_SIZE = "page too large"
_LIMIT_TIMEOUT = "overall fax timeout"
_HANG_UP = "call hung up"
_ENGINE_ERROR = "fax engine error"

# Post-message commands after which the sender has nothing more (EOP, PRI-EOP).
_T30_END_OF_PROCEDURE = (0x2E, 0x3E)


@dataclass(frozen=True)
class FaxResult:
    pages: int
    remote_ident: str
    bit_rate: int
    x_dpi: int
    y_dpi: int
    ecm: bool
    duration: float
    completion_code: int
    completion_text: str
    complete: bool
    tiff_path: str | None      # None when no page arrived
    mode: str
    compression: str = ""      # "T.4 1-D", "T.4 2-D" or "T.6"

    @property
    def resolution(self) -> str:
        return f"{self.x_dpi}x{self.y_dpi}"


class FaxReceiver:
    """Receives one fax into `tiff_path`.

    T.38 mode: the call layer passes every UDPTL datagram to feed_udptl() and sends
    what `send_datagram(bytes)` is given; tick() every 20 ms moves spandsp's timers.
    Audio mode: rx_audio(160 samples) returns the 160 samples to send; it is the
    tick (pass None for a lost packet), and tick() only watches the limits.
    `done` fires once with a FaxResult, also after stop() or a limit.
    """

    log = Logger()

    def __init__(self, clock, tiff_path: str, mode: str = MODE_T38,
                 send_datagram: Callable[[bytes], None] | None = None,
                 local_ident: str = "", ecm: bool = True,
                 max_pages: int = 50, max_page_rows: int = 8000,
                 max_page_bytes: int = 4 * 1024 * 1024, timeout: float = 900.0,
                 udptl_redundancy: int = 3, udptl_error_recovery: str = "redundancy",
                 max_datagram: int = 400, t38: T38Params | None = None, lib=None):
        if mode not in (MODE_T38, MODE_AUDIO):
            raise ValueError(f"unknown fax mode {mode!r}")
        if mode == MODE_T38 and send_datagram is None:
            raise ValueError("T.38 mode needs send_datagram")
        self.clock = clock
        self.mode = mode
        self.tiff_path = tiff_path
        self.max_pages = max_pages
        self.max_page_rows = max_page_rows
        self.max_page_bytes = max_page_bytes
        self.done: defer.Deferred = defer.Deferred()
        self.malformed_datagrams = 0
        self.rejected_ifps = 0      # well-framed UDPTL whose IFP spandsp refused
        self._send_datagram = send_datagram
        transferred_tcf = True
        t38_version = 0
        if t38 is not None:
            # The far end's SDP: how it wants error recovery and its datagram limit.
            udptl_redundancy = t38.udptl_redundancy
            udptl_error_recovery = t38.udptl_mode
            max_datagram = t38.max_datagram
            transferred_tcf = t38.rate_management == RATE_TRANSFERRED_TCF
            t38_version = t38.version
        self._lib = spandsp.load_library() if lib is None else lib
        self._started = clock.seconds()
        self._ticks = 0
        self._held_ticks = 0
        self._phase_e_code: int | None = None
        self._abort_reason: str | None = None
        self._remote_ident = ""
        self._pages = 0
        self._last_stats: spandsp.TransferStats | None = None
        self._finished = False

        if mode == MODE_T38:
            self._udptl_in = UdptlReceiver(t38_version=t38_version)
            self._udptl_out = UdptlSender(redundancy=udptl_redundancy,
                                          mode=udptl_error_recovery,
                                          max_datagram=max_datagram)
            self._terminal = spandsp.T38Terminal(False, self._send_ifp, lib=self._lib,
                                                 max_datagram=max_datagram,
                                                 transferred_tcf=transferred_tcf,
                                                 t38_version=t38_version)
        else:
            self._terminal = spandsp.AudioFax(False, lib=self._lib)
        t30 = self._terminal.t30
        if local_ident:
            t30.set_local_ident(local_ident)
        t30.set_ecm(ecm)
        t30.set_supported_compressions(spandsp.COMPRESSION_T4_1D | spandsp.COMPRESSION_T4_2D
                                       | spandsp.COMPRESSION_T6)
        t30.set_supported_resolutions(spandsp.RESOLUTION_STANDARD | spandsp.RESOLUTION_FINE
                                      | spandsp.RESOLUTION_SUPERFINE)
        t30.set_supported_image_sizes(
            spandsp.SIZE_215MM | spandsp.SIZE_255MM | spandsp.SIZE_303MM
            | spandsp.LENGTH_UNLIMITED | spandsp.LENGTH_A4 | spandsp.LENGTH_B4
            | spandsp.LENGTH_US_LETTER | spandsp.LENGTH_US_LEGAL)
        t30.set_rx_file(tiff_path)
        t30.set_phase_b_handler(self._on_phase_b)
        t30.set_phase_d_handler(self._on_phase_d)
        t30.set_phase_e_handler(self._on_phase_e)
        self._timeout_call = clock.callLater(timeout, self._on_timeout)

    # --- driven by the call layer -----------------------------------------

    def feed_udptl(self, datagram: bytes) -> None:
        if self._finished:
            return
        try:
            packets = self._udptl_in.receive(datagram)
        except UdptlError as e:
            self.malformed_datagrams += 1
            if self.malformed_datagrams <= 5:
                self.log.info("fax: dropping malformed UDPTL datagram: {error}", error=str(e))
            return
        with self._contained():
            self._deliver_ifps(packets)

    def rx_audio(self, samples: np.ndarray | None) -> np.ndarray:
        """One tick of received audio in, one tick to send out.

        Pass None when the tick's packet was lost: spandsp then fills the gap
        itself, which upsets its modems far less than a block of silence.
        """
        count = TICK_SAMPLES if samples is None else len(samples)
        if self._finished:
            return np.zeros(count, dtype=np.int16)
        out = np.zeros(count, dtype=np.int16)
        with self._contained():
            if samples is None:
                self._terminal.rx_missing(count)
            else:
                self._terminal.rx(samples)
            out = self._terminal.tx(count)
            self._ticks += 1
            self._after_spandsp()
        return out

    def tick(self) -> None:
        if self._finished:
            return
        with self._contained():
            self._tick()

    def stop(self) -> None:
        """Hang-up: end now and deliver whatever pages arrived, marked incomplete."""
        self._abort(_HANG_UP)

    # --- internals ---------------------------------------------------------

    @contextmanager
    def _contained(self):
        """A failure inside one fax call ends that call, never the shared media tick."""
        try:
            yield
        except Exception:   # noqa: BLE001 - reported through done and the log
            self.log.failure("fax reception failed")
            self._abort(_ENGINE_ERROR)

    def _deliver_ifps(self, packets) -> None:
        for seq, ifp in packets:
            if not self._terminal.rx_ifp(ifp, seq):
                self.rejected_ifps += 1
            if self._phase_e_code is not None:
                break
        self._after_spandsp()

    def _tick(self) -> None:
        if self.mode == MODE_T38:
            if self._udptl_in.holding:
                self._held_ticks += 1
                if self._held_ticks >= HOLD_TICKS:
                    self._held_ticks = 0
                    self._deliver_ifps(self._udptl_in.flush())
                    if self._finished:
                        return
            else:
                self._held_ticks = 0
            self._terminal.advance(TICK_SAMPLES)
            self._ticks += 1
        self._after_spandsp()

    # --- spandsp callbacks: record only, act after spandsp returns ------------

    def _send_ifp(self, ifp: bytes, count: int) -> None:
        # spandsp asks for some packets to be sent several times: copies keep one
        # sequence number, so a lost copy is not a gap and the far end drops the rest.
        datagram = self._udptl_out.packetize(ifp)
        for _ in range(max(1, min(count, 3))):
            self._send_datagram(datagram)

    def _on_phase_b(self, frame_type: int) -> None:
        self._remote_ident = self._terminal.t30.remote_ident()

    def _on_phase_d(self, frame_type: int) -> None:
        stats = self._terminal.t30.stats()
        self._last_stats = stats
        self._pages = stats.pages_rx
        last_page = (frame_type & 0xFE) in _T30_END_OF_PROCEDURE
        over = stats.pages_rx > self.max_pages or (
            stats.pages_rx == self.max_pages and not last_page)
        if over and self._abort_reason is None:
            self._abort_reason = _LIMIT_PAGES

    def _on_phase_e(self, completion_code: int) -> None:
        if self._phase_e_code is None:
            self._phase_e_code = completion_code

    # --- bookkeeping -------------------------------------------------------

    def _after_spandsp(self) -> None:
        if self._phase_e_code is not None:
            self._finish()
            return
        if self._abort_reason is not None:
            self._abort(self._abort_reason)
            return
        # The page in progress is checked once a second: cheap and still bounded.
        if self._ticks % 50 == 0:
            stats = self._terminal.t30.stats()
            if stats.length > self.max_page_rows or stats.image_size > self.max_page_bytes:
                self._abort(_LIMIT_PAGE_SIZE)

    def _on_timeout(self) -> None:
        self._timeout_call = None
        self._abort(_LIMIT_TIMEOUT)

    def _abort(self, reason: str) -> None:
        if self._finished:
            return
        self._abort_reason = reason
        if self._phase_e_code is None:
            try:
                self._terminal.t30.terminate()
            except Exception:   # noqa: BLE001 - the call is ending either way
                self.log.failure("fax: terminating T.30 failed")
            if self._phase_e_code is None:
                self._phase_e_code = spandsp.T30_ERR_CALLDROPPED
        self._finish()

    def _finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        if self._timeout_call is not None and self._timeout_call.active():
            self._timeout_call.cancel()
        self._timeout_call = None
        stats, remote_ident = self._last_stats, self._remote_ident
        try:
            t30 = self._terminal.t30
            stats = t30.stats()
            remote_ident = t30.remote_ident() or remote_ident
        except Exception:   # noqa: BLE001 - report what is known rather than nothing
            self.log.failure("fax: reading final T.30 statistics failed")
        finally:
            # Closing frees spandsp's state, which also closes the TIFF it wrote.
            self._terminal.close()
        pages = max(stats.pages_rx if stats else 0, self._pages)
        code = self._phase_e_code
        text = spandsp.completion_code_text(code, self._lib)
        if self._abort_reason is not None:
            text = f"{self._abort_reason} ({text})"
        tiff_path = self.tiff_path if pages > 0 and os.path.exists(self.tiff_path) else None
        if tiff_path is None and os.path.exists(self.tiff_path):
            os.unlink(self.tiff_path)
        # Resolution is that of the pages; after a hang-up spandsp may have reset it.
        page_stats = stats if stats and stats.x_dpi else self._last_stats
        result = FaxResult(
            pages=pages, remote_ident=remote_ident,
            bit_rate=stats.bit_rate if stats else 0,
            x_dpi=page_stats.x_dpi if page_stats else 0,
            y_dpi=page_stats.y_dpi if page_stats else 0,
            ecm=bool(stats and stats.ecm),
            duration=self.clock.seconds() - self._started,
            completion_code=code, completion_text=text,
            complete=(code == spandsp.T30_ERR_OK and self._abort_reason is None
                      and pages > 0),
            tiff_path=tiff_path, mode=self.mode,
            compression=spandsp.T4_COMPRESSION_NAMES.get(
                page_stats.encoding if page_stats else 0, ""))
        self.log.info("fax received: {pages} page(s) from {ident!r}, {text}",
                      pages=pages, ident=remote_ident, text=text)
        self.done.callback(result)
