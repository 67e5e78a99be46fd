"""Fax pages as images for the browser, and the fax as PDF.

A fax message carries its document as TIFF or PDF (the subscriber's
choice).  TIFF pages are decoded with :mod:`portaum_tx.fax.document`; PDF
pages are rasterised with poppler's ``pdftoppm`` when it is installed.
Rendering runs in a thread and the result is kept in a small cache, since a
reader flips through the pages of one fax at a time.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections import OrderedDict

from twisted.internet import threads

from ..fax.document import FaxDocumentError, read_fax_pages, render_previews, write_pdf
from . import messages as mime

PREVIEW_WIDTH = 850
_CACHE: OrderedDict = OrderedDict()
_CACHE_ENTRIES = 32


def _document(data: bytes) -> tuple[str, bytes] | None:
    found = mime.first_attachment(mime.parse(data), ("image/tiff", "application/pdf"))
    if found is None:
        return None
    part, payload = found
    return ("pdf" if part.content_type == "application/pdf" else "tiff"), payload


def pdf_pages(pdf: bytes, width: int = PREVIEW_WIDTH) -> list[bytes]:
    tool = shutil.which("pdftoppm")
    if tool is None:
        return []
    with tempfile.TemporaryDirectory(prefix="portaum-fax-") as directory:
        source = os.path.join(directory, "fax.pdf")
        with open(source, "wb") as out:
            out.write(pdf)
        try:
            subprocess.run([tool, "-png", "-scale-to-x", str(width), "-scale-to-y", "-1",
                            "-l", "200", source, os.path.join(directory, "page")],
                           check=True, timeout=60, capture_output=True)
        except (subprocess.SubprocessError, OSError):
            return []
        names = sorted(glob.glob(os.path.join(directory, "page-*.png")),
                       key=lambda n: int(n.rsplit("-", 1)[1].split(".")[0]))
        pages = []
        for name in names:
            with open(name, "rb") as page:
                pages.append(page.read())
        return pages


def render(data: bytes) -> list[bytes]:
    document = _document(data)
    if document is None:
        return []
    kind, payload = document
    if kind == "pdf":
        return pdf_pages(payload)
    try:
        return render_previews(read_fax_pages(payload), PREVIEW_WIDTH)
    except FaxDocumentError:
        return []


async def previews(clock, account_id: str, folder, uid: int, data: bytes) -> list[bytes]:
    key = (account_id, folder.uidvalidity, uid)
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    pages = await threads.deferToThread(render, data)
    _CACHE[key] = pages
    while len(_CACHE) > _CACHE_ENTRIES:
        _CACHE.popitem(last=False)
    return pages


def _to_pdf(data: bytes) -> bytes | None:
    document = _document(data)
    if document is None:
        return None
    kind, payload = document
    if kind == "pdf":
        return payload
    try:
        return write_pdf(read_fax_pages(payload))
    except FaxDocumentError:
        return None


async def as_pdf(data: bytes) -> bytes | None:
    return await threads.deferToThread(_to_pdf, data)
