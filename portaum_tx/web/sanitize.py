"""HTML e-mail made safe to show: an allow-list of tags and attributes.

This is one of two walls.  The other is how the result is served: in a
sandboxed iframe with a Content-Security-Policy that runs no script and
loads no remote image unless the reader asks.  Here scripts, styles that
could fetch, event handlers, forms, frames and every URL scheme but http,
https, mailto and cid are removed; with ``remote_images=False`` image
sources pointing off the message are dropped too.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "center", "code", "col", "colgroup", "dd",
    "del", "div", "dl", "dt", "em", "font", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img",
    "ins", "kbd", "li", "ol", "p", "pre", "q", "s", "small", "span", "strike", "strong", "sub",
    "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "tt", "u", "ul",
}
VOID_TAGS = {"br", "col", "hr", "img"}
#: Whose content is dropped together with the tag.
DROP_CONTENT = {"script", "style", "iframe", "object", "embed", "noscript", "template", "title",
                "head", "svg", "math", "frameset", "frame", "applet", "textarea", "select"}
ALLOWED_ATTRIBUTES = {
    "align", "alt", "bgcolor", "border", "cellpadding", "cellspacing", "color", "colspan", "dir",
    "face", "height", "href", "lang", "rowspan", "size", "src", "style", "title", "valign",
    "width",
}
_SAFE_SCHEMES = re.compile(r"^(https?:|//|mailto:|cid:|#)", re.I)
_REMOTE = re.compile(r"^(https?:)?//", re.I)
# Anything in a style attribute that can load or run something.
_BAD_STYLE = re.compile(r"url\s*\(|expression\s*\(|@import|javascript:|behavior\s*:|-moz-binding",
                        re.I)


class _Sanitizer(HTMLParser):
    def __init__(self, remote_images: bool):
        super().__init__(convert_charrefs=True)
        self.remote_images = remote_images
        self.out: list[str] = []
        self.dropping = 0
        self.blocked_images = 0
        self.open: list[str] = []

    def handle_starttag(self, tag, attrs):
        tag = tag.lower()
        if tag in DROP_CONTENT:
            if tag not in VOID_TAGS:
                self.dropping += 1
            return
        if self.dropping or tag not in ALLOWED_TAGS:
            return
        kept = []
        for name, value in attrs:
            name = name.lower()
            value = value or ""
            if name not in ALLOWED_ATTRIBUTES:
                continue
            compact = re.sub(r"[\s\x00-\x1f]", "", html.unescape(value))
            if name in ("href", "src"):
                if not _SAFE_SCHEMES.match(compact):
                    continue
                if name == "src" and _REMOTE.match(compact) and not self.remote_images:
                    self.blocked_images += 1
                    continue
            if name == "style" and _BAD_STYLE.search(compact):
                continue
            kept.append(f' {name}="{html.escape(value, quote=True)}"')
        if tag == "a":
            kept.append(' target="_blank" rel="noopener noreferrer"')
        self.out.append(f"<{tag}{''.join(kept)}>")
        if tag not in VOID_TAGS:
            self.open.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag.lower() in self.open and self.open[-1] == tag.lower():
            self.handle_endtag(tag)

    def handle_endtag(self, tag):
        tag = tag.lower()
        if tag in DROP_CONTENT:
            self.dropping = max(0, self.dropping - 1)
            return
        if self.dropping or tag not in ALLOWED_TAGS or tag in VOID_TAGS:
            return
        if tag in self.open:
            while self.open:
                closing = self.open.pop()
                self.out.append(f"</{closing}>")
                if closing == tag:
                    break

    def handle_data(self, data):
        if not self.dropping:
            self.out.append(html.escape(data, quote=False))

    def close(self):
        super().close()
        while self.open:
            self.out.append(f"</{self.open.pop()}>")


def sanitize_html(source: str, remote_images: bool = False) -> tuple[str, int]:
    """``(safe html, number of remote images blocked)``."""
    parser = _Sanitizer(remote_images)
    parser.feed(source)
    parser.close()
    return "".join(parser.out), parser.blocked_images
