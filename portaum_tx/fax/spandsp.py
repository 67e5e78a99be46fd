"""ctypes binding to the parts of libspandsp (0.0.6 ABI) that receive and send faxes.

Only the opaque-pointer API and accessor functions are used; the one struct we
read, t30_stats_t, is a public output struct of t30_get_transfer_statistics.
Callbacks are ctypes function objects owned by the Python wrapper, which frees
the spandsp state before dropping them, so C never calls a collected trampoline.

Runtime needs only the shared library (Debian libspandsp2), no headers.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from dataclasses import dataclass
from typing import Callable

import numpy as np

SAMPLE_RATE = 8000


class FaxUnavailable(RuntimeError):
    """libspandsp cannot be used; the message says why."""


class SpandspError(RuntimeError):
    """A spandsp call failed."""


# --- constants from the spandsp 0.0.6 headers ------------------------------

T30_ERR_OK = 0
T30_ERR_CALLDROPPED = 49

SUPPORT_V27TER, SUPPORT_V29, SUPPORT_V17 = 0x01, 0x02, 0x04

COMPRESSION_T4_1D, COMPRESSION_T4_2D, COMPRESSION_T6 = 0x02, 0x04, 0x08

RESOLUTION_STANDARD, RESOLUTION_FINE, RESOLUTION_SUPERFINE = 0x01, 0x02, 0x04
RESOLUTION_R8 = 0x20000
RESOLUTION_R16 = 0x40000

SIZE_215MM, SIZE_255MM, SIZE_303MM = 0x01, 0x02, 0x04
LENGTH_UNLIMITED, LENGTH_A4, LENGTH_B4 = 0x10000, 0x20000, 0x40000
LENGTH_US_LETTER, LENGTH_US_LEGAL = 0x80000, 0x100000

T38_TERMINAL_OPTION_NO_PACING = 0x01
T38_RATE_LOCAL_TCF, T38_RATE_TRANSFERRED_TCF = 1, 2

T4_COMPRESSION_NAMES = {1: "T.4 1-D", 2: "T.4 2-D", 3: "T.6"}

# t30_stats_t resolutions are pixels per metre.
PIXELS_PER_METRE_PER_DPI = 1 / 0.0254


class T30Stats(ctypes.Structure):
    # The 0.0.6 layout, plus spare room so a library with a longer struct cannot
    # write past our buffer.
    _fields_ = [(name, ctypes.c_int) for name in (
        "bit_rate", "error_correcting_mode", "pages_tx", "pages_rx", "pages_in_file",
        "x_resolution", "y_resolution", "width", "length", "image_size", "encoding",
        "bad_rows", "longest_bad_row_run", "error_correcting_mode_retries",
        "current_status")] + [("_spare", ctypes.c_int * 64)]


@dataclass(frozen=True)
class TransferStats:
    bit_rate: int
    ecm: bool
    pages_tx: int
    pages_rx: int
    x_dpi: int
    y_dpi: int
    width: int
    length: int
    image_size: int
    encoding: int
    bad_rows: int
    status: int


# --- library loading -------------------------------------------------------

_P = ctypes.c_void_p
_INT = ctypes.c_int
_STR = ctypes.c_char_p

PhaseBHandler = ctypes.CFUNCTYPE(_INT, _P, _P, _INT)
PhaseDHandler = ctypes.CFUNCTYPE(_INT, _P, _P, _INT)
PhaseEHandler = ctypes.CFUNCTYPE(None, _P, _P, _INT)
DocumentHandler = ctypes.CFUNCTYPE(_INT, _P, _P, _INT)
T38TxPacketHandler = ctypes.CFUNCTYPE(_INT, _P, _P, ctypes.POINTER(ctypes.c_uint8), _INT, _INT)

_SIGNATURES = {
    "t38_terminal_init": (_P, [_P, _INT, T38TxPacketHandler, _P]),
    "t38_terminal_free": (_INT, [_P]),
    "t38_terminal_send_timeout": (_INT, [_P, _INT]),
    "t38_terminal_set_config": (None, [_P, _INT]),
    "t38_terminal_set_tep_mode": (None, [_P, _INT]),
    "t38_terminal_get_t30_state": (_P, [_P]),
    "t38_terminal_get_t38_core_state": (_P, [_P]),
    "t38_core_rx_ifp_packet": (_INT, [_P, ctypes.c_char_p, _INT, ctypes.c_uint16]),
    "t38_set_t38_version": (None, [_P, _INT]),
    "t38_set_max_datagram_size": (None, [_P, _INT]),
    "t38_set_data_rate_management_method": (None, [_P, _INT]),
    "t38_set_fill_bit_removal": (None, [_P, _INT]),
    "t38_set_redundancy_control": (None, [_P, _INT, _INT]),
    "fax_init": (_P, [_P, _INT]),
    "fax_free": (_INT, [_P]),
    "fax_rx": (_INT, [_P, ctypes.POINTER(ctypes.c_int16), _INT]),
    "fax_rx_fillin": (_INT, [_P, _INT]),
    "fax_tx": (_INT, [_P, ctypes.POINTER(ctypes.c_int16), _INT]),
    "fax_set_transmit_on_idle": (None, [_P, _INT]),
    "fax_set_tep_mode": (None, [_P, _INT]),
    "fax_get_t30_state": (_P, [_P]),
    "t30_set_tx_ident": (_INT, [_P, _STR]),
    "t30_get_rx_ident": (_STR, [_P]),
    "t30_set_tx_page_header_info": (_INT, [_P, _STR]),
    "t30_set_ecm_capability": (_INT, [_P, _INT]),
    "t30_set_supported_modems": (_INT, [_P, _INT]),
    "t30_set_supported_compressions": (_INT, [_P, _INT]),
    "t30_set_supported_resolutions": (_INT, [_P, _INT]),
    "t30_set_supported_image_sizes": (_INT, [_P, _INT]),
    "t30_set_rx_file": (None, [_P, _STR, _INT]),
    "t30_set_tx_file": (None, [_P, _STR, _INT, _INT]),
    "t30_set_phase_b_handler": (None, [_P, PhaseBHandler, _P]),
    "t30_set_phase_d_handler": (None, [_P, PhaseDHandler, _P]),
    "t30_set_phase_e_handler": (None, [_P, PhaseEHandler, _P]),
    "t30_set_document_handler": (None, [_P, DocumentHandler, _P]),
    "t30_get_transfer_statistics": (None, [_P, ctypes.POINTER(T30Stats)]),
    "t30_completion_code_to_str": (_STR, [_INT]),
    "t30_call_active": (_INT, [_P]),
    "t30_terminate": (None, [_P]),
}

_library: ctypes.CDLL | None = None


def load_library(path: str | None = None) -> ctypes.CDLL:
    """Load libspandsp once and declare the functions used; FaxUnavailable if not."""
    global _library
    if path is None and _library is not None:
        return _library
    candidates = [path] if path else [
        "libspandsp.so.2", ctypes.util.find_library("spandsp")]
    reasons = []
    for candidate in candidates:
        if not candidate:
            continue
        try:
            lib = ctypes.CDLL(candidate)
        except OSError as e:
            reasons.append(f"{candidate}: {e}")
            continue
        try:
            for name, (restype, argtypes) in _SIGNATURES.items():
                function = getattr(lib, name)
                function.restype = restype
                function.argtypes = argtypes
        except AttributeError as e:
            raise FaxUnavailable(
                f"{candidate} lacks a needed function ({e}); spandsp 0.0.6 or later is required")
        if path is None:
            _library = lib
        return lib
    raise FaxUnavailable(
        "libspandsp not found (install the Debian package libspandsp2): "
        + ("; ".join(reasons) or "no candidate library name"))


def completion_code_text(code: int, lib: ctypes.CDLL | None = None) -> str:
    text = (lib or load_library()).t30_completion_code_to_str(code)
    return text.decode("latin-1") if text else f"code {code}"


# --- T.30 ------------------------------------------------------------------

def _proceed(handler, result) -> int:
    """Phase B/D handlers answer T30_ERR_OK to let the call continue."""
    handler(result)
    return T30_ERR_OK


class T30:
    """The T.30 session inside a T.38 terminal or an audio fax; not owned."""

    def __init__(self, lib: ctypes.CDLL, state: int, owner):
        self._lib = lib
        self._state = state
        self._owner = owner      # keeps callbacks alive and guards use after close

    def _s(self):
        if self._owner.closed:
            raise SpandspError("fax state already closed")
        return self._state

    def set_local_ident(self, ident: str) -> None:
        # T.30 idents are at most 20 printable characters.
        clean = "".join(c for c in ident if " " <= c <= "~")[:20]
        self._lib.t30_set_tx_ident(self._s(), clean.encode("ascii"))

    def set_page_header(self, text: str | None) -> None:
        self._lib.t30_set_tx_page_header_info(
            self._s(), None if text is None else text[:50].encode("ascii", "replace"))

    def set_ecm(self, enabled: bool) -> None:
        self._lib.t30_set_ecm_capability(self._s(), int(enabled))

    def set_supported_modems(self, modems: int) -> None:
        self._lib.t30_set_supported_modems(self._s(), modems)

    def set_supported_compressions(self, compressions: int) -> None:
        self._lib.t30_set_supported_compressions(self._s(), compressions)

    def set_supported_resolutions(self, resolutions: int) -> None:
        self._lib.t30_set_supported_resolutions(self._s(), resolutions)

    def set_supported_image_sizes(self, sizes: int) -> None:
        self._lib.t30_set_supported_image_sizes(self._s(), sizes)

    def set_rx_file(self, path: str, stop_page: int = -1) -> None:
        self._lib.t30_set_rx_file(self._s(), path.encode(), stop_page)

    def set_tx_file(self, path: str, start_page: int = -1, stop_page: int = -1) -> None:
        self._lib.t30_set_tx_file(self._s(), path.encode(), start_page, stop_page)

    def _install(self, setter: str, prototype, handler, wrap):
        callback = prototype(wrap(handler)) if handler else ctypes.cast(None, prototype)
        self._owner._callbacks[setter] = callback
        getattr(self._lib, setter)(self._s(), callback, None)

    def set_phase_b_handler(self, handler: Callable[[int], None] | None) -> None:
        """handler(frame_type) after the capabilities exchange (remote ident known)."""
        self._install("t30_set_phase_b_handler", PhaseBHandler, handler,
                      lambda h: self._owner._guard(lambda s, u, result: _proceed(h, result), 0))

    def set_phase_d_handler(self, handler: Callable[[int], None] | None) -> None:
        """handler(frame_type) after each page (MPS, EOP ...)."""
        self._install("t30_set_phase_d_handler", PhaseDHandler, handler,
                      lambda h: self._owner._guard(lambda s, u, result: _proceed(h, result), 0))

    def set_phase_e_handler(self, handler: Callable[[int], None] | None) -> None:
        """handler(completion_code) once the call is over."""
        self._install("t30_set_phase_e_handler", PhaseEHandler, handler,
                      lambda h: self._owner._guard(lambda s, u, code: h(code), None))

    def set_document_handler(self, handler: Callable[[int], int] | None) -> None:
        """handler(status) at end of document; returns nonzero to send another."""
        self._install("t30_set_document_handler", DocumentHandler, handler,
                      lambda h: self._owner._guard(lambda s, u, status: int(h(status) or 0), 0))

    def remote_ident(self) -> str:
        ident = self._lib.t30_get_rx_ident(self._s())
        return ident.decode("latin-1").strip() if ident else ""

    def stats(self) -> TransferStats:
        raw = T30Stats()
        self._lib.t30_get_transfer_statistics(self._s(), ctypes.byref(raw))
        return TransferStats(
            bit_rate=raw.bit_rate, ecm=bool(raw.error_correcting_mode),
            pages_tx=raw.pages_tx, pages_rx=raw.pages_rx,
            x_dpi=round(raw.x_resolution / PIXELS_PER_METRE_PER_DPI),
            y_dpi=round(raw.y_resolution / PIXELS_PER_METRE_PER_DPI),
            width=raw.width, length=raw.length, image_size=raw.image_size,
            encoding=raw.encoding, bad_rows=raw.bad_rows, status=raw.current_status)

    def call_active(self) -> bool:
        return bool(self._lib.t30_call_active(self._s()))

    def terminate(self) -> None:
        """Abort the call; a page in progress is closed into the file, phase E runs."""
        self._lib.t30_terminate(self._s())


class _SpandspObject:
    def __init__(self, lib):
        self.closed = True          # until the C state exists
        self._state = None
        self._lib = lib if lib is not None else load_library()
        self._callbacks: dict[str, object] = {}
        self.callback_errors: list[BaseException] = []

    def _guard(self, function, failure_value):
        """Exceptions must not unwind through C: keep them for the caller."""
        def trampoline(*args):
            try:
                return function(*args)
            except BaseException as e:   # noqa: BLE001 - re-raised by check_callbacks
                self.callback_errors.append(e)
                return failure_value
        return trampoline

    def check_callbacks(self) -> None:
        if self.callback_errors:
            error = self.callback_errors[0]
            self.callback_errors.clear()
            raise error

    def __del__(self):
        try:
            self.close()
        except Exception:   # noqa: BLE001 - interpreter shutdown
            pass


# --- T.38 terminal ---------------------------------------------------------

class T38Terminal(_SpandspObject):
    """A fax terminal speaking T.38 IFP packets.

    send_ifp(ifp_bytes, count) is called for each packet spandsp emits; count is how
    many times spandsp would like it sent (indicators are repeated for safety).
    """

    def __init__(self, calling: bool, send_ifp: Callable[[bytes, int], None],
                 lib: ctypes.CDLL | None = None, paced: bool = True,
                 max_datagram: int = 400, transferred_tcf: bool = True,
                 t38_version: int = 0):
        super().__init__(lib)
        self._send_ifp = send_ifp
        self._tx = T38TxPacketHandler(self._guard(self._on_tx, -1))
        self._state = self._lib.t38_terminal_init(None, int(calling), self._tx, None)
        if not self._state:
            raise SpandspError("t38_terminal_init failed")
        self.closed = False
        self._core = self._lib.t38_terminal_get_t38_core_state(self._state)
        self._lib.t38_terminal_set_config(
            self._state, 0 if paced else T38_TERMINAL_OPTION_NO_PACING)
        self._lib.t38_set_t38_version(self._core, t38_version)
        self._lib.t38_set_max_datagram_size(self._core, max_datagram)
        self._lib.t38_set_data_rate_management_method(
            self._core, T38_RATE_TRANSFERRED_TCF if transferred_tcf else T38_RATE_LOCAL_TCF)
        self.t30 = T30(self._lib, self._lib.t38_terminal_get_t30_state(self._state), self)

    def _on_tx(self, core, user_data, buf, length, count):
        self._send_ifp(ctypes.string_at(buf, length), count)
        return 0

    def rx_ifp(self, ifp: bytes, seq: int) -> bool:
        """Hand one IFP packet to spandsp; False if it rejected the packet as malformed."""
        if self.closed:
            return False
        status = self._lib.t38_core_rx_ifp_packet(self._core, bytes(ifp), len(ifp),
                                                  seq & 0xFFFF)
        self.check_callbacks()
        return status == 0

    def advance(self, samples: int) -> bool:
        """Move spandsp's clock on by `samples` (8 kHz); True once the call is over."""
        if self.closed:
            return True
        finished = self._lib.t38_terminal_send_timeout(self._state, samples)
        self.check_callbacks()
        return bool(finished)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self._state:
                self._lib.t38_terminal_free(self._state)
            self._state = None


# --- audio (G.711 after decoding) -------------------------------------------

class AudioFax(_SpandspObject):
    """A fax terminal with its own V.21/V.27ter/V.29/V.17 modems, on 8 kHz int16 audio."""

    def __init__(self, calling: bool, lib: ctypes.CDLL | None = None):
        super().__init__(lib)
        self._state = self._lib.fax_init(None, int(calling))
        if not self._state:
            raise SpandspError("fax_init failed")
        self.closed = False
        # Always produce a full buffer, silence when idle, so the RTP stream keeps timing.
        self._lib.fax_set_transmit_on_idle(self._state, 1)
        self.t30 = T30(self._lib, self._lib.fax_get_t30_state(self._state), self)

    def rx(self, samples: np.ndarray) -> None:
        if self.closed:
            return
        buffer = np.ascontiguousarray(samples, dtype=np.int16)
        self._lib.fax_rx(self._state, buffer.ctypes.data_as(ctypes.POINTER(ctypes.c_int16)),
                         len(buffer))
        self.check_callbacks()

    def rx_missing(self, count: int) -> None:
        """`count` samples were lost in transit: let the modems coast over the gap."""
        if self.closed:
            return
        self._lib.fax_rx_fillin(self._state, count)
        self.check_callbacks()

    def tx(self, count: int) -> np.ndarray:
        buffer = np.zeros(count, dtype=np.int16)
        if self.closed:
            return buffer
        made = self._lib.fax_tx(self._state,
                                buffer.ctypes.data_as(ctypes.POINTER(ctypes.c_int16)), count)
        self.check_callbacks()
        if made < count:
            buffer[max(made, 0):] = 0
        return buffer

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self._state:
                self._lib.fax_free(self._state)
            self._state = None
