"""ANI / DNIS translation rules: Perl-style ``s///`` and ``tr///`` on numbers.

Access numbers carry rules such as ``s/^0/ani44/`` (turn the local caller ID
021234567 into the authorization ID ani4421234567) or the callback dial rule
``s/^0/44/``. Several rules run in order when separated by ``;``::

    s/^00//; s/^0/44/; tr/0-9//cd

Rules are parsed, never evaluated as code. The pattern language is the part
of Perl's that means the same in Python's ``re``: literals, ``.``, classes,
``\\d \\w \\s`` and their negations, anchors ``^ $ \\A \\z \\b``, groups,
``(?:...)``, look-around, alternation, greedy and lazy quantifiers and
back-references ``\\1``-``\\9``. Anything else (variables, ``(?{code})``,
POSIX classes, the ``e`` flag, ...) is refused with a TranslationRuleError.

Patterns run without a timeout, so patterns that could backtrack without end
are refused too: a group repeated more than once may contain neither a
quantifier nor an alternation (``(\\d+)*``, ``(0|00)+``), and numbers longer
than MAX_NUMBER_LENGTH characters are refused.

Replacements understand ``$1``, ``${1}``, ``\\1`` and ``$&``; a group that
did not take part in the match gives an empty string, as in Perl. ``s///``
takes the flags ``g`` (every match) and ``i`` (ignore case). ``tr///`` (or
``y///``) takes ``c`` (complement), ``d`` (delete) and ``s`` (squeeze).
Any punctuation character can be the delimiter (``s#^0#44#``); bracketing
delimiters (``s{..}{..}``) are not supported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Union

__all__ = [
    "MAX_NUMBER_LENGTH", "Substitution", "TranslationError", "TranslationRuleError",
    "TranslationRules", "Transliteration", "parse_rules", "translate",
]

MAX_NUMBER_LENGTH = 128


class TranslationError(ValueError):
    """A translation that cannot be done."""


class TranslationRuleError(TranslationError):
    """A rule string that cannot be used; ``position`` is a 0-based offset into it."""

    def __init__(self, reason: str, position: int, text: str):
        self.reason = reason
        self.position = position
        self.text = text
        super().__init__(f"{reason} at position {position} in translation rule {text!r}")


class _RuleProblem(Exception):
    """Raised inside a rule part; carries an offset relative to that part."""

    def __init__(self, reason: str, offset: int):
        super().__init__(reason)
        self.reason = reason
        self.offset = offset


Template = tuple[Union[str, int], ...]


@dataclass(frozen=True)
class Substitution:
    """``s/pattern/replacement/flags``."""

    source: str
    regex: re.Pattern
    template: Template
    every: bool

    def apply(self, number: str) -> str:
        template = self.template

        def expand(match: re.Match) -> str:
            return "".join(part if isinstance(part, str) else (match.group(part) or "") for part in template)

        return self.regex.sub(expand, number, count=0 if self.every else 1)

    def __str__(self) -> str:
        return self.source


@dataclass(frozen=True)
class Transliteration:
    """``tr/search/replacement/flags``: character for character."""

    source: str
    search: frozenset[str]
    mapping: tuple[tuple[str, str | None], ...]  # char -> replacement (None deletes)
    complement: bool
    complement_to: str | None                   # with c: replacement char, or None to delete
    complement_deletes: bool
    squeeze: bool

    def apply(self, number: str) -> str:
        table = dict(self.mapping)
        out: list[str] = []
        last_translated = None
        for char in number:
            if self.complement:
                if char in self.search:
                    out.append(char)
                    last_translated = None
                    continue
                if self.complement_deletes and self.complement_to is None:
                    continue
                new = char if self.complement_to is None else self.complement_to
            else:
                if char not in table:
                    out.append(char)
                    last_translated = None
                    continue
                new = table[char]
                if new is None:
                    continue
            if self.squeeze and new == last_translated:
                continue
            out.append(new)
            last_translated = new
        return "".join(out)

    def __str__(self) -> str:
        return self.source


Step = Union[Substitution, Transliteration]


@dataclass(frozen=True)
class TranslationRules:
    """Rules applied one after another; no rules leave a number as it is."""

    steps: tuple[Step, ...] = ()

    def apply(self, number: str) -> str:
        if not isinstance(number, str):
            raise TranslationError(f"a number to translate must be a string, not {type(number).__name__}")
        if len(number) > MAX_NUMBER_LENGTH:
            raise TranslationError(f"number is longer than {MAX_NUMBER_LENGTH} characters")
        for step in self.steps:
            number = step.apply(number)
        return number

    def __bool__(self) -> bool:
        return bool(self.steps)

    def __str__(self) -> str:
        return "; ".join(str(step) for step in self.steps)


# ------------------------------------------------------------- Perl patterns

_QUANTIFIER_BRACES = re.compile(r"\{(\d+)(?:(,)(\d*))?\}")
_PATTERN_ESCAPES = {"d", "D", "w", "W", "s", "S", "b", "B", "A", "t", "n", "r", "f"}
_CLASS_ESCAPES = {"d", "D", "w", "W", "s", "S", "t", "n", "r", "f"}


class _Group:
    __slots__ = ("start", "risky")

    def __init__(self, start: int):
        self.start = start
        self.risky = False  # holds a quantifier or an alternation


def _perl_pattern_to_python(pattern: str) -> tuple[str, int]:
    """Translate the supported Perl subset to Python ``re`` syntax; returns (pattern, group count)."""
    out: list[str] = []
    stack = [_Group(0)]
    groups = 0
    # What a quantifier would apply to: None (nothing), "atom", or a closed group.
    target: str | _Group | None = None
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        if char == "\\":
            if i + 1 >= n:
                raise _RuleProblem("pattern ends with a lone backslash", i)
            escaped = pattern[i + 1]
            if escaped in _PATTERN_ESCAPES:
                out.append("\\" + escaped)
                target = None if escaped in "bBA" else "atom"
            elif escaped in "zZ":
                out.append(r"\Z")
                target = None
            elif escaped in "123456789":
                if i + 2 < n and pattern[i + 2].isdigit():
                    raise _RuleProblem("back-references above \\9 are not supported", i)
                out.append(f"(?:\\{escaped})")
                target = "atom"
            elif not escaped.isalnum():
                out.append("\\" + escaped)
                target = "atom"
            else:
                raise _RuleProblem(f"unsupported escape \\{escaped} in pattern", i)
            i += 2
            continue
        if char == "[":
            i = _character_class(pattern, i, out)
            target = "atom"
            continue
        if char == "(":
            if pattern.startswith("(?", i):
                for opener in ("(?:", "(?=", "(?!", "(?<=", "(?<!"):
                    if pattern.startswith(opener, i):
                        out.append(opener)
                        i += len(opener)
                        break
                else:
                    raise _RuleProblem("unsupported group construct (?...; use (...) or (?:...)", i)
            else:
                groups += 1
                out.append("(")
                i += 1
            stack.append(_Group(i))
            target = None
            continue
        if char == ")":
            if len(stack) == 1:
                raise _RuleProblem("unmatched ')' in pattern", i)
            closed = stack.pop()
            if closed.risky:
                stack[-1].risky = True
            out.append(")")
            target = closed
            i += 1
            continue
        if char == "|":
            stack[-1].risky = True
            out.append("|")
            target = None
            i += 1
            continue
        braces = _QUANTIFIER_BRACES.match(pattern, i) if char == "{" else None
        if char in "*+?" or braces:
            if target is None:
                raise _RuleProblem(f"quantifier {char!r} follows nothing it could repeat", i)
            if braces:
                low, comma, high = braces.groups()
                if comma and high and int(high) < int(low):
                    raise _RuleProblem(f"quantifier {braces.group()} has its bounds reversed", i)
                if int(low) > 1000 or (high and int(high) > 1000):
                    raise _RuleProblem(f"quantifier {braces.group()} repeats more than 1000 times", i)
                repeats_many = bool(comma) or int(low) > 1
                quantifier = braces.group()
                i = braces.end()
            else:
                repeats_many = char != "?"
                quantifier = char
                i += 1
            if isinstance(target, _Group) and target.risky and repeats_many:
                raise _RuleProblem("a repeated group holding a quantifier or '|' could backtrack "
                                   "without end; rewrite the pattern", i - len(quantifier))
            if i < n and pattern[i] == "?":
                quantifier += "?"
                i += 1
            elif i < n and pattern[i] == "+":
                raise _RuleProblem("possessive quantifiers are not supported", i)
            out.append(quantifier)
            stack[-1].risky = True
            target = None
            continue
        if char == "$":
            following = pattern[i + 1:i + 2]
            if following and (following.isalnum() or following in "_{"):
                raise _RuleProblem("variables ($...) cannot be used in a pattern", i)
            out.append("$")
            target = None
            i += 1
            continue
        if char == "@":
            following = pattern[i + 1:i + 2]
            if following and (following.isalnum() or following in "_{"):
                raise _RuleProblem("arrays (@...) cannot be used in a pattern", i)
            out.append("@")
            target = "atom"
            i += 1
            continue
        if char in "^.":
            out.append(char)
            target = None if char == "^" else "atom"
            i += 1
            continue
        out.append(re.escape(char))
        target = "atom"
        i += 1
    if len(stack) > 1:
        raise _RuleProblem("unmatched '(' in pattern", stack[-1].start - 1)
    return "".join(out), groups


def _character_class(pattern: str, start: int, out: list[str]) -> int:
    """Copy ``[...]`` starting at ``start``; return the index after ``]``."""
    if pattern.startswith(("[:", "[=", "[."), start):
        raise _RuleProblem("POSIX classes such as [:digit:] are not supported; use \\d", start)
    i = start + 1
    parts = ["["]
    if pattern.startswith("^", i):
        parts.append("^")
        i += 1
    if pattern.startswith("]", i):
        parts.append(r"\]")
        i += 1
    while i < len(pattern):
        char = pattern[i]
        if char == "]":
            parts.append("]")
            out.append("".join(parts))
            return i + 1
        if char == "\\":
            if i + 1 >= len(pattern):
                break
            escaped = pattern[i + 1]
            if escaped in _CLASS_ESCAPES or not escaped.isalnum():
                parts.append("\\" + escaped)
            else:
                raise _RuleProblem(f"unsupported escape \\{escaped} in character class", i)
            i += 2
            continue
        if char == "[" and pattern.startswith(("[:", "[=", "[."), i):
            raise _RuleProblem("POSIX classes such as [:digit:] are not supported; use \\d", i)
        parts.append(re.escape(char) if char in "[&~|" else char)
        i += 1
    raise _RuleProblem("unterminated character class '['", start)


def _replacement_template(text: str, groups: int) -> Template:
    """Perl replacement text to a list of literal strings and group numbers."""
    parts: list[Union[str, int]] = []
    literal: list[str] = []

    def group(number: int, offset: int) -> None:
        if number > groups:
            raise _RuleProblem(f"replacement refers to group {number} but the pattern has {groups}", offset)
        if literal:
            parts.append("".join(literal))
            literal.clear()
        parts.append(number)

    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char == "$":
            digits = re.match(r"\d+", text[i + 1:])
            braced = re.match(r"\{(\d+)\}", text[i + 1:])
            if digits:
                group(int(digits.group()), i)
                i += 1 + digits.end()
            elif braced:
                group(int(braced.group(1)), i)
                i += 1 + braced.end()
            elif text.startswith("&", i + 1):
                group(0, i)
                i += 2
            elif i + 1 < n and (text[i + 1].isalpha() or text[i + 1] in "_{"):
                raise _RuleProblem("variables ($...) cannot be used in a replacement; use $1, ${1} or $&", i)
            else:
                literal.append("$")
                i += 1
            continue
        if char == "@" and i + 1 < n and (text[i + 1].isalnum() or text[i + 1] in "_{"):
            raise _RuleProblem("arrays (@...) cannot be used in a replacement; write \\@ for a literal @", i)
        if char == "\\":
            if i + 1 >= n:
                raise _RuleProblem("replacement ends with a lone backslash", i)
            escaped = text[i + 1]
            if escaped.isdigit() and escaped != "0":
                group(int(escaped), i)
            elif escaped == "t":
                literal.append("\t")
            elif escaped.isalnum():
                raise _RuleProblem(f"unsupported escape \\{escaped} in replacement", i)
            else:
                literal.append(escaped)
            i += 2
            continue
        literal.append(char)
        i += 1
    if literal:
        parts.append("".join(literal))
    return tuple(parts)


def _transliteration_list(text: str) -> list[str]:
    """Expand ``a-z`` ranges and escapes of a tr/// list."""
    chars: list[tuple[str, bool, int]] = []  # (char, escaped, offset)
    i = 0
    while i < len(text):
        if text[i] == "\\":
            if i + 1 >= len(text):
                raise _RuleProblem("list ends with a lone backslash", i)
            escaped = text[i + 1]
            if escaped.isalnum() and escaped not in "tn":
                raise _RuleProblem(f"unsupported escape \\{escaped} in tr list", i)
            chars.append(({"t": "\t", "n": "\n"}.get(escaped, escaped), True, i))
            i += 2
        else:
            chars.append((text[i], False, i))
            i += 1
    expanded: list[str] = []
    j = 0
    while j < len(chars):
        char, _, offset = chars[j]
        if j + 2 < len(chars) and chars[j + 1][:2] == ("-", False):
            last = chars[j + 2][0]
            if ord(last) < ord(char):
                raise _RuleProblem(f"range {char}-{last} in tr list is reversed", offset)
            expanded.extend(chr(c) for c in range(ord(char), ord(last) + 1))
            j += 3
        else:
            expanded.append(char)
            j += 1
    return expanded


# ------------------------------------------------------------- rule strings

class _RuleParser:
    def __init__(self, text: str):
        self.text = text
        self.pos = 0

    def fail(self, reason: str, position: int) -> TranslationRuleError:
        return TranslationRuleError(reason, position, self.text)

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def rules(self) -> TranslationRules:
        steps: list[Step] = []
        while True:
            self.skip_space()
            if self.pos >= len(self.text):
                return TranslationRules(tuple(steps))
            if self.text[self.pos] == ";":
                self.pos += 1
                continue
            steps.append(self.rule())
            self.skip_space()
            if self.pos < len(self.text) and self.text[self.pos] != ";":
                raise self.fail(f"unexpected {self.text[self.pos]!r}; rules are separated by ';'", self.pos)

    def part(self, delimiter: str, what: str) -> tuple[str, int]:
        """Text up to the next unescaped delimiter; returns (text, its start offset)."""
        start = self.pos
        i = start
        while i < len(self.text):
            if self.text[i] == "\\":
                i += 2
                continue
            if self.text[i] == delimiter:
                self.pos = i + 1
                return self.text[start:i], start
            i += 1
        raise self.fail(f"{what} is not closed by {delimiter!r}", start)

    def rule(self) -> Step:
        start = self.pos
        word = re.match(r"[A-Za-z]+", self.text[self.pos:])
        operator = word.group() if word else ""
        if operator not in ("s", "tr", "y"):
            shown = operator or self.text[self.pos]
            raise self.fail(f"unknown rule {shown!r}; expected s/pattern/replacement/ or tr/list/list/", start)
        self.pos += len(operator)
        if self.pos >= len(self.text):
            raise self.fail(f"missing delimiter after {operator!r}", self.pos)
        delimiter = self.text[self.pos]
        if delimiter in "([{<":
            raise self.fail("bracketing delimiters are not supported; use s/.../.../", self.pos)
        if delimiter.isalnum() or delimiter.isspace() or delimiter in "\\;":
            raise self.fail(f"{delimiter!r} cannot be a delimiter; use s/.../.../", self.pos)
        self.pos += 1
        first, first_at = self.part(delimiter, "pattern" if operator == "s" else "search list")
        second, second_at = self.part(delimiter, "replacement" if operator == "s" else "replacement list")
        flags_match = re.match(r"[A-Za-z]*", self.text[self.pos:])
        flags, flags_at = flags_match.group(), self.pos
        self.pos += len(flags)
        source = self.text[start:self.pos]
        try:
            if operator == "s":
                return self._substitution(source, first, first_at, second, second_at, flags, flags_at)
            return self._transliteration(source, first, first_at, second, second_at, flags, flags_at)
        except _RuleProblem as problem:
            raise self.fail(problem.reason, problem.offset) from None

    def _substitution(self, source, pattern, pattern_at, replacement, replacement_at, flags, flags_at):
        for index, flag in enumerate(flags):
            if flag == "e":
                raise _RuleProblem("the 'e' flag would run the replacement as code and is not allowed",
                                   flags_at + index)
            if flag not in "gi":
                raise _RuleProblem(f"unsupported flag {flag!r} for s/// (use g or i)", flags_at + index)
        if not pattern:
            raise _RuleProblem("empty pattern (Perl would reuse the last pattern)", pattern_at)
        try:
            python_pattern, groups = _perl_pattern_to_python(pattern)
        except _RuleProblem as problem:
            raise _RuleProblem(problem.reason, pattern_at + problem.offset) from None
        try:
            regex = re.compile(python_pattern, re.ASCII | (re.IGNORECASE if "i" in flags else 0))
        except re.error as exc:
            raise _RuleProblem(f"invalid pattern: {exc.msg}", pattern_at) from None
        try:
            template = _replacement_template(replacement, groups)
        except _RuleProblem as problem:
            raise _RuleProblem(problem.reason, replacement_at + problem.offset) from None
        return Substitution(source, regex, template, every="g" in flags)

    def _transliteration(self, source, search, search_at, replacement, replacement_at, flags, flags_at):
        for index, flag in enumerate(flags):
            if flag not in "cds":
                raise _RuleProblem(f"unsupported flag {flag!r} for tr/// (use c, d or s)", flags_at + index)
        try:
            searched = _transliteration_list(search)
        except _RuleProblem as problem:
            raise _RuleProblem(problem.reason, search_at + problem.offset) from None
        try:
            replaced = _transliteration_list(replacement)
        except _RuleProblem as problem:
            raise _RuleProblem(problem.reason, replacement_at + problem.offset) from None
        complement, deletes, squeeze = "c" in flags, "d" in flags, "s" in flags
        if complement:
            if len(replaced) > 1:
                raise _RuleProblem("with the c flag the replacement list may hold one character at most",
                                   replacement_at)
            return Transliteration(source, frozenset(searched), (), True,
                                   replaced[0] if replaced else None, deletes, squeeze)
        if not replaced and not deletes:
            replaced = list(searched)
        mapping: dict[str, str | None] = {}
        for index, char in enumerate(searched):
            if char in mapping:
                continue  # the first mention wins, as in Perl
            if index < len(replaced):
                mapping[char] = replaced[index]
            else:
                mapping[char] = None if deletes else replaced[-1]
        return Transliteration(source, frozenset(searched), tuple(mapping.items()), False, None, deletes, squeeze)


def parse_rules(text: str) -> TranslationRules:
    """Parse ``;``-separated s/// and tr/// rules; blank text gives no rules."""
    if text is None:
        return TranslationRules()
    if not isinstance(text, str):
        raise TypeError(f"a translation rule is a string, not {type(text).__name__}")
    return _RuleParser(text).rules()


def translate(rules: str | TranslationRules, number: str) -> str:
    """Apply ``rules`` (a rule string or parsed rules) to ``number``."""
    if not isinstance(rules, TranslationRules):
        rules = parse_rules(rules)
    return rules.apply(number)
