"""Dial-by-name: surnames on the telephone keypad.

The caller keys the first three letters of the surname (2 = ABC, 3 = DEF ... 7 = PQRS,
9 = WXYZ); every entry whose surname starts with those keys matches, so 276 finds both
Brown and Asok. Excluded entries never match. With several matches the caller picks one
by its extension ("press 116 to reach John Brown") or, when the account hides
extensions, by its place in the list ("press 1 to reach John Brown").

This module is pure: matching and the list of choices, nothing that plays or stores.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from typing import Iterable, Optional, Protocol, Sequence

KEYPAD = {"2": "abc", "3": "def", "4": "ghi", "5": "jkl", "6": "mno", "7": "pqrs", "8": "tuv",
          "9": "wxyz"}
_LETTER_KEY = {letter: key for key, letters in KEYPAD.items() for letter in letters}
SEARCH_KEYS = 3
_EXTENSION = re.compile(r"[0-9]{1,15}")


class DirectoryError(ValueError):
    """A directory entry that cannot be stored; the message names what is wrong."""


class Named(Protocol):
    extension: str
    first_name: str
    last_name: str
    excluded: bool


def plain_letters(name: str) -> str:
    """Lower-case ASCII letters of a name, accents dropped ("O'Brién" -> "obrien")."""
    decomposed = unicodedata.normalize("NFKD", name)
    return "".join(c for c in decomposed.lower() if "a" <= c <= "z")


def name_keys(name: str) -> str:
    """The keys that spell a name on the keypad ("Brown" -> "27696")."""
    return "".join(_LETTER_KEY[c] for c in plain_letters(name))


def search(entries: Iterable[Named], keys: str) -> list:
    """Entries whose surname begins with ``keys``, excluded ones left out, in name order."""
    if not keys or not keys.isdigit():
        return []
    found = [e for e in entries if not e.excluded and e.last_name
             and name_keys(e.last_name).startswith(keys)]
    return sorted(found, key=lambda e: (plain_letters(e.last_name), plain_letters(e.first_name),
                                        e.extension))


@dataclasses.dataclass(frozen=True)
class Choice:
    key: str  # what the caller presses: the extension, or the place in the list
    entry: Named


def choices(matches: Sequence[Named], hide_extensions: bool) -> list[Choice]:
    if hide_extensions:
        return [Choice(str(index), entry) for index, entry in enumerate(matches, start=1)]
    return [Choice(entry.extension, entry) for entry in matches]


def pick(options: Sequence[Choice], entered: str) -> Optional[Choice]:
    for option in options:
        if option.key == entered:
            return option
    return None


def longest_key(options: Sequence[Choice]) -> int:
    return max((len(option.key) for option in options), default=1)


def full_name(entry: Named) -> str:
    return " ".join(part for part in (entry.first_name, entry.last_name) if part)


def check_extension(extension: str) -> str:
    if not isinstance(extension, str) or not _EXTENSION.fullmatch(extension):
        raise DirectoryError(f"extension must be 1-15 digits, got {extension!r}")
    return extension


def check_names(first_name: str, last_name: str) -> tuple[str, str]:
    first_name, last_name = (first_name or "").strip(), (last_name or "").strip()
    if not plain_letters(last_name):
        raise DirectoryError(f"the last name must contain letters to be found on the keypad, "
                             f"got {last_name!r}")
    for what, value in (("first name", first_name), ("last name", last_name)):
        if len(value) > 64:
            raise DirectoryError(f"{what} is longer than 64 characters")
    return first_name, last_name


def names_from_email(address: Optional[str]) -> tuple[str, str]:
    """A guess at (first, last) from an address such as john.brown@example.com; ("", "")
    when the local part is not two or more dotted or underscored words."""
    if not address or "@" not in address:
        return "", ""
    words = [w for w in re.split(r"[._-]+", address.split("@", 1)[0]) if w.isalpha()]
    if len(words) < 2:
        return "", ""
    return words[0].capitalize(), words[-1].capitalize()
