"""The calling fax machine for tests: spandsp sending a generated document.

Everything runs in-process on a task.Clock: a fake UDPTL link with loss and
reordering for T.38, and a sample-exact audio loop for G.711-style fax.
"""

import io
import random

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from portaum_tx.fax import spandsp
from portaum_tx.fax.receiver import TICK_SAMPLES
from portaum_tx.fax.udptl import UdptlReceiver, UdptlSender

PAGE_WIDTH = 1728
A4_ROWS_STANDARD = 1143        # 297 mm at 3.85 lines/mm
A4_ROWS_FINE = 2286


def _font(size):
    try:
        return ImageFont.truetype("DejaVuSans.ttf", size)
    except OSError:
        return ImageFont.load_default()


def text_page(rows):
    page = Image.new("1", (PAGE_WIDTH, rows), 255)
    draw = ImageDraw.Draw(page)
    font = _font(28)
    draw.text((120, 60), "PORTAUM TEST FAX - PAGE ONE", font=_font(44), fill=0)
    for line, y in enumerate(range(160, rows - 200, rows // 20)):
        draw.text((120, y), f"Line {line}: the quick brown fox jumps over the lazy dog.",
                  font=font, fill=0)
    draw.rectangle((120, rows - 160, 700, rows - 120), outline=0, width=3)
    return page


def dense_page(rows, seed=2):
    page = Image.new("1", (PAGE_WIDTH, rows), 255)
    draw = ImageDraw.Draw(page)
    rng = random.Random(seed)
    font = _font(16)
    words = ["fax", "telephony", "modem", "T.38", "UDPTL", "spandsp", "mailbox", "voice"]
    for y in range(20, rows - 20, 20):
        draw.text((40, y), " ".join(rng.choice(words) for _ in range(28)), font=font, fill=0)
    for x in range(0, PAGE_WIDTH, 96):
        draw.line((x, 0, x, rows), fill=0)
    return page


def photo_page(rows):
    """A dithered grey picture: the worst case for T.4/T.6 run-length coding."""
    y, x = np.mgrid[0:rows, 0:PAGE_WIDTH].astype(np.float32)
    grey = 127 + 90 * np.sin(x / 97.0) * np.cos(y / 61.0)
    grey += 60 * np.exp(-(((x - 864) / 300) ** 2 + ((y - rows / 2) / (rows / 5)) ** 2))
    picture = Image.fromarray(np.clip(grey, 0, 255).astype(np.uint8), "L")
    # Only the middle third is a photo, as on a real page with text around it.
    page = Image.new("1", (PAGE_WIDTH, rows), 255)
    band = picture.crop((0, rows // 3, PAGE_WIDTH, 2 * rows // 3)).convert("1")
    page.paste(band, (0, rows // 3))
    return page


_STANDARD_PAGES = {}


def standard_pages(y_dpi):
    """Text, dense and photo pages of A4 length; drawn once per resolution."""
    if y_dpi not in _STANDARD_PAGES:
        rows = A4_ROWS_STANDARD if y_dpi == 98 else A4_ROWS_FINE
        _STANDARD_PAGES[y_dpi] = [text_page(rows), dense_page(rows), photo_page(rows)]
    return [page.copy() for page in _STANDARD_PAGES[y_dpi]]


_STANDARD_FILES = {}


def write_document(path, y_dpi=98, compression="group4", pages=None):
    """Save pages (default: standard_pages) as a min-is-white G3/G4 TIFF; return them."""
    key = (y_dpi, compression)
    if pages is None and key in _STANDARD_FILES:
        data = _STANDARD_FILES[key]
        pages = standard_pages(y_dpi)
    else:
        cache = pages is None
        pages = pages or standard_pages(y_dpi)
        buffer = io.BytesIO()
        # Min-is-white, as fax machines code it (Pillow's default is min-is-black).
        pages[0].save(buffer, format="TIFF", compression=compression, save_all=True,
                      append_images=pages[1:], dpi=(204, y_dpi), tiffinfo={262: 0})
        data = buffer.getvalue()
        if cache:
            _STANDARD_FILES[key] = data
    if hasattr(path, "write"):
        path.write(data)
    else:
        with open(path, "wb") as out:
            out.write(data)
    return pages


def page_similarity(a, b):
    """Fraction of equal pixels; sizes must match."""
    left = np.asarray(a.convert("1"), dtype=bool)
    right = np.asarray(b.convert("1"), dtype=bool)
    if left.shape != right.shape:
        return 0.0
    return float((left == right).mean())


class FakeUdptlLink:
    """One direction of a UDPTL path, delivering on each tick with loss and reordering."""

    def __init__(self, deliver, loss=0.0, reorder=0.0, seed=1):
        self.deliver = deliver
        self.loss = loss
        self.reorder = reorder
        self.rng = random.Random(seed)
        self.queue = []
        self.sent = 0
        self.dropped = 0
        self.cut = False

    def send(self, datagram):
        self.sent += 1
        if self.cut or self.rng.random() < self.loss:
            self.dropped += 1
            return
        self.queue.append(datagram)

    def tick(self):
        batch, self.queue = self.queue, []
        for i in range(len(batch) - 1):
            if self.rng.random() < self.reorder:
                batch[i], batch[i + 1] = batch[i + 1], batch[i]
        for datagram in batch:
            self.deliver(datagram)


class T38Sender:
    """spandsp as the calling fax machine over UDPTL."""

    def __init__(self, tiff_path, send_datagram, ecm=True, ident="+1 555 0100",
                 udptl_mode="redundancy", transferred_tcf=True):
        self.udptl_out = UdptlSender(redundancy=3, mode=udptl_mode)
        self.udptl_in = UdptlReceiver()
        self.send_datagram = send_datagram
        self.terminal = spandsp.T38Terminal(True, self._send_ifp,
                                            transferred_tcf=transferred_tcf)
        self.terminal.t30.set_tx_file(tiff_path)
        self.terminal.t30.set_local_ident(ident)
        self.terminal.t30.set_ecm(ecm)
        self.completion = None
        self.pages_sent = 0
        self.terminal.t30.set_phase_e_handler(self._on_phase_e)
        self.terminal.t30.set_phase_d_handler(self._on_phase_d)
        self.stopped = False
        self.held_ticks = 0

    def _send_ifp(self, ifp, count):
        datagram = self.udptl_out.packetize(ifp)
        for _ in range(max(1, min(count, 3))):
            self.send_datagram(datagram)

    def _on_phase_e(self, code):
        self.completion = code

    def _on_phase_d(self, frame_type):
        self.pages_sent = self.terminal.t30.stats().pages_tx

    def feed_udptl(self, datagram):
        if not self.stopped:
            for seq, ifp in self.udptl_in.receive(datagram):
                self.terminal.rx_ifp(ifp, seq)

    def tick(self):
        if self.stopped:
            return
        # Like FaxReceiver: do not sit on packets held behind a gap.
        self.held_ticks = self.held_ticks + 1 if self.udptl_in.holding else 0
        if self.held_ticks >= 3:
            for seq, ifp in self.udptl_in.flush():
                self.terminal.rx_ifp(ifp, seq)
        self.terminal.advance(TICK_SAMPLES)

    def stop(self):
        """The sending machine goes silent (line cut) without saying goodbye."""
        self.stopped = True

    def close(self):
        self.terminal.close()


class AudioSender:
    """spandsp as the calling fax machine with its own modems."""

    def __init__(self, tiff_path, ecm=True, ident="+1 555 0200"):
        self.fax = spandsp.AudioFax(True)
        self.fax.t30.set_tx_file(tiff_path)
        self.fax.t30.set_local_ident(ident)
        self.fax.t30.set_ecm(ecm)
        self.completion = None
        self.pages_sent = 0
        self.fax.t30.set_phase_e_handler(self._on_phase_e)
        self.fax.t30.set_phase_d_handler(self._on_phase_d)
        self.stopped = False

    def _on_phase_e(self, code):
        self.completion = code

    def _on_phase_d(self, frame_type):
        self.pages_sent = self.fax.t30.stats().pages_tx

    def step(self, heard):
        """Hear one tick of the receiver's audio, return this tick's transmit audio."""
        if self.stopped:
            return np.zeros(TICK_SAMPLES, dtype=np.int16)
        self.fax.rx(heard)
        return self.fax.tx(TICK_SAMPLES)

    def stop(self):
        self.stopped = True

    def close(self):
        self.fax.close()


def run_t38(clock, receiver, sender, to_receiver, to_sender, max_seconds=600,
            on_tick=None):
    """Tick both machines and both link directions until the receiver is done."""
    results = []
    receiver.done.addCallback(results.append)
    ticks = 0
    while not results and ticks < max_seconds * 50:
        to_receiver.tick()
        to_sender.tick()
        sender.tick()
        receiver.tick()
        clock.advance(0.02)
        ticks += 1
        if on_tick is not None:
            on_tick(ticks)
    return results[0] if results else None


def ulaw_round_trip(samples):
    """G.711 mu-law encode then decode, as the audio crosses an RTP call."""
    x = samples.astype(np.int32)
    sign = x < 0
    magnitude = np.minimum(np.abs(x), 32635) + 0x84
    exponent = np.floor(np.log2(magnitude)).astype(np.int32) - 7
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    decoded = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(sign, -decoded, decoded).astype(np.int16)


def run_audio(clock, receiver, sender, max_seconds=600, on_tick=None, companding=True,
              loss=0.0, seed=1):
    """Tick an audio fax call; `loss` drops that fraction of the sender's packets,
    which the receiver is told about (rx_audio(None)) as an RTP layer would."""
    results = []
    receiver.done.addCallback(results.append)
    line = ulaw_round_trip if companding else (lambda samples: samples)
    rng = random.Random(seed)
    from_receiver = np.zeros(TICK_SAMPLES, dtype=np.int16)
    ticks = 0
    while not results and ticks < max_seconds * 50:
        from_sender = line(sender.step(line(from_receiver)))
        if loss and rng.random() < loss:
            from_sender = None
        from_receiver = receiver.rx_audio(from_sender)
        receiver.tick()
        clock.advance(0.02)
        ticks += 1
        if on_tick is not None:
            on_tick(ticks)
    return results[0] if results else None
