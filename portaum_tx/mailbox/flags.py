"""IMAP flag names and the store's flag bits."""

from __future__ import annotations

from typing import Iterable

from ..store.mailbox import ANSWERED, DELETED, DRAFT, FLAGGED, SEEN

SYSTEM_FLAGS = {"\\seen": SEEN, "\\answered": ANSWERED, "\\flagged": FLAGGED,
                "\\deleted": DELETED, "\\draft": DRAFT}
_NAMES = {SEEN: "\\Seen", ANSWERED: "\\Answered", FLAGGED: "\\Flagged",
          DELETED: "\\Deleted", DRAFT: "\\Draft"}

__all__ = ["SEEN", "ANSWERED", "FLAGGED", "DELETED", "DRAFT", "to_bits", "to_names"]


def to_bits(names: Iterable[str]) -> tuple[int, list[str]]:
    """Split flag names into system-flag bits and keywords (\\Recent is not stored)."""
    bits = 0
    keywords = []
    for name in names:
        lowered = name.lower()
        if lowered in SYSTEM_FLAGS:
            bits |= SYSTEM_FLAGS[lowered]
        elif lowered == "\\recent":
            continue
        elif name.startswith("\\"):
            raise ValueError(f"unknown system flag {name}")
        else:
            keywords.append(name)
    return bits, keywords


def to_names(bits: int, keywords: Iterable[str] = ()) -> list[str]:
    return [name for bit, name in _NAMES.items() if bits & bit] + list(keywords)
