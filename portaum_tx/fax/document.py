"""Turning the TIFF spandsp received into what a mailbox delivers.

spandsp writes T.4/T.6 pages with the resolution of the call. Users get a
TIFF-F file (RFC 3949 profile S/F: one IFD per page, CCITT G3/G4, resolution
tags and page numbers) or a PDF at the true paper size, and the web shows PNG
previews with the fax's non-square pixels corrected.

Decoding and encoding take tens to hundreds of milliseconds per page, so the
synchronous core runs in a thread pool through convert_received_fax_async().
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

from PIL import Image, ImageChops
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen import canvas

MAX_PAGES = 200
MAX_PAGE_WIDTH = 4864          # 1728 at 600 dpi across 303 mm is the widest T.30 allows
MAX_PAGE_ROWS = 20000          # a very long page at superfine resolution

COMPRESSION_CODES = {"group3": 3, "group4": 4}


class FaxDocumentError(ValueError):
    """A received fax file cannot be read or converted."""


@dataclass(frozen=True)
class FaxPage:
    image: Image.Image         # mode "1", black = 0
    x_dpi: float
    y_dpi: float

    @property
    def width_points(self) -> float:
        return self.image.width / self.x_dpi * 72

    @property
    def height_points(self) -> float:
        return self.image.height / self.y_dpi * 72


@dataclass(frozen=True)
class ConvertedFax:
    pages: int
    tiff: bytes                # TIFF-F
    pdf: bytes
    previews: tuple[bytes, ...]  # PNG per page


def _standard_dpi(value, axis: str) -> float:
    try:
        dpi = float(value)
    except (TypeError, ValueError):
        raise FaxDocumentError(f"page has no usable {axis} resolution ({value!r})")
    if not 50 <= dpi <= 1300:
        raise FaxDocumentError(f"page {axis} resolution {dpi} dpi is not a fax resolution")
    # spandsp stores metric resolutions converted to inches (7.7 l/mm = 195.58 dpi):
    # snap to the names everyone uses so tags and page sizes come out clean.
    for usual in (98, 196, 204, 200, 300, 391, 400, 408, 600, 1200):
        if abs(dpi - usual) <= usual * 0.01:
            return float(usual)
    return dpi


def read_fax_pages(source) -> list[FaxPage]:
    """Decode every page of a fax TIFF (path, bytes or file object)."""
    if isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(source)
    try:
        image = Image.open(source)
    except Exception as e:   # noqa: BLE001 - Pillow's error types vary by decoder
        raise FaxDocumentError(f"not a readable TIFF file: {e}") from None
    with image:
        if image.format != "TIFF":
            raise FaxDocumentError(f"fax document is {image.format}, not TIFF")
        try:
            count = getattr(image, "n_frames", 1)
        except Exception as e:   # noqa: BLE001 - Pillow's error types vary by decoder
            raise FaxDocumentError(f"TIFF page directory is damaged: {e}") from None
        if count > MAX_PAGES:
            raise FaxDocumentError(f"fax has {count} pages, more than {MAX_PAGES}")
        pages = []
        for index in range(count):
            try:
                image.seek(index)
                width, rows = image.size
                if width > MAX_PAGE_WIDTH or rows > MAX_PAGE_ROWS:
                    raise FaxDocumentError(
                        f"page {index + 1} is {width}x{rows} pixels, larger than a fax page")
                x_dpi, y_dpi = image.info.get("dpi", (None, None))
                bitmap = image.convert("1")
                bitmap.load()
            except FaxDocumentError:
                raise
            except Exception as e:   # noqa: BLE001 - Pillow's error types vary by decoder
                raise FaxDocumentError(f"page {index + 1} cannot be decoded: {e}") from None
            pages.append(FaxPage(bitmap, _standard_dpi(x_dpi, "horizontal"),
                                 _standard_dpi(y_dpi, "vertical")))
    if not pages:
        raise FaxDocumentError("fax TIFF holds no page")
    return pages


def page_count(source) -> int:
    return len(read_fax_pages(source))


# --- TIFF-F -------------------------------------------------------------

_SHORT, _LONG, _RATIONAL, _ASCII = 3, 4, 5, 2


def _compressed_strips(page: FaxPage, compression: str):
    """Let Pillow (libtiff) encode the page; lift out its strips."""
    single = io.BytesIO()
    # Pillow writes bilevel images min-is-black, so libtiff would code Pillow's black
    # as the fax "white" runs. Encoding the inverted image gives true min-is-white
    # fax coding, which our own IFD then labels as such. (Asking Pillow for
    # min-is-white directly works too, but is fifty times slower.)
    ImageChops.invert(page.image).save(single, format="TIFF", compression=compression)
    data = single.getvalue()
    with Image.open(io.BytesIO(data)) as encoded:
        tags = encoded.tag_v2
        offsets, counts = tags[273], tags[279]
        rows_per_strip = tags.get(278, page.image.height)
        if tags.get(266, 1) != 1 or tags.get(262) != 1:
            raise FaxDocumentError("encoder produced an unexpected bit order or photometry")
    strips = [data[o:o + c] for o, c in zip(offsets, counts)]
    return strips, min(int(rows_per_strip), page.image.height)


def _rational(value: float) -> tuple[int, int]:
    return (round(value * 100), 100) if value != int(value) else (int(value), 1)


def write_tiff_f(pages: list[FaxPage], compression: str = "group4") -> bytes:
    """A multi-page TIFF-F, one IFD per page with the tags profile S/F names."""
    if compression not in COMPRESSION_CODES:
        raise ValueError(f"compression must be group3 or group4, not {compression!r}")
    out = bytearray(b"II*\x00\x00\x00\x00\x00")
    previous_link = 4                         # where to store the next IFD's offset
    software = b"portaum_tx\x00"
    for number, page in enumerate(pages):
        strips, rows_per_strip = _compressed_strips(page, compression)
        strip_offsets = []
        for strip in strips:
            strip_offsets.append(len(out))
            out += strip
        if len(out) % 2:
            out.append(0)
        options_tag = 292 if compression == "group3" else 293
        entries = [
            (254, _LONG, [2]),                               # a page of a multi-page file
            (256, _LONG, [page.image.width]),
            (257, _LONG, [page.image.height]),
            (258, _SHORT, [1]),
            (259, _SHORT, [COMPRESSION_CODES[compression]]),
            (262, _SHORT, [0]),                              # min-is-white
            (266, _SHORT, [1]),
            (273, _LONG, strip_offsets),
            (277, _SHORT, [1]),
            (278, _LONG, [rows_per_strip]),
            (279, _LONG, [len(s) for s in strips]),
            (282, _RATIONAL, [_rational(page.x_dpi)]),
            (283, _RATIONAL, [_rational(page.y_dpi)]),
            (284, _SHORT, [1]),
            (options_tag, _LONG, [0]),                       # 1-D / plain T.6
            (296, _SHORT, [2]),                              # inches
            (297, _SHORT, [number, len(pages)]),
            (305, _ASCII, software),
        ]
        ifd_offset = len(out)
        struct.pack_into("<I", out, previous_link, ifd_offset)
        ifd_size = 2 + 12 * len(entries) + 4
        extra = bytearray()
        table = bytearray(struct.pack("<H", len(entries)))
        for tag, kind, values in entries:
            if kind == _ASCII:
                payload, count = bytes(values), len(values)
            elif kind == _RATIONAL:
                payload = b"".join(struct.pack("<II", *v) for v in values)
                count = len(values)
            else:
                payload = struct.pack("<" + ("H" if kind == _SHORT else "I") * len(values),
                                      *values)
                count = len(values)
            if len(payload) <= 4:
                field = payload.ljust(4, b"\x00")
            else:
                field = struct.pack("<I", ifd_offset + ifd_size + len(extra))
                extra += payload
                if len(extra) % 2:
                    extra.append(0)
            table += struct.pack("<HHI", tag, kind, count) + field
        previous_link = len(out) + len(table)
        table += b"\x00\x00\x00\x00"
        out += table + extra
    return bytes(out)


# --- PDF and previews ----------------------------------------------------

def write_pdf(pages: list[FaxPage], title: str = "Fax") -> bytes:
    """One PDF page per fax page, sized to the paper that was scanned."""
    buffer = io.BytesIO()
    document = canvas.Canvas(buffer, pageCompression=1)
    document.setTitle(title)
    document.setCreator("portaum_tx")
    for page in pages:
        width, height = page.width_points, page.height_points
        document.setPageSize((width, height))
        # Grey 8-bit keeps reportlab on DeviceGray; Flate packs the white space.
        document.drawImage(ImageReader(page.image.convert("L")), 0, 0, width, height)
        document.showPage()
    document.save()
    return buffer.getvalue()


def render_previews(pages: list[FaxPage], width: int = 850) -> list[bytes]:
    """PNG per page, scaled to `width` with the vertical resolution corrected."""
    previews = []
    for page in pages:
        aspect = (page.height_points / page.width_points)
        size = (width, max(1, round(width * aspect)))
        preview = page.image.convert("L").resize(size, Image.Resampling.BOX)
        out = io.BytesIO()
        preview.save(out, format="PNG", optimize=True)
        previews.append(out.getvalue())
    return previews


def convert_received_fax(source, compression: str = "group4", title: str = "Fax",
                         preview_width: int = 850) -> ConvertedFax:
    """Synchronous core: TIFF-F, PDF and previews from spandsp's TIFF."""
    pages = read_fax_pages(source)
    return ConvertedFax(pages=len(pages), tiff=write_tiff_f(pages, compression),
                        pdf=write_pdf(pages, title), previews=tuple(render_previews(
                            pages, preview_width)))


def convert_received_fax_async(reactor, threadpool, source, **options):
    """convert_received_fax in `threadpool`; a Deferred firing in the reactor thread."""
    from twisted.internet.threads import deferToThreadPool
    return deferToThreadPool(reactor, threadpool, convert_received_fax, source, **options)
