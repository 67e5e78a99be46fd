"""Voice prompt lookup: brand directory, then the default set, for each preferred language.

On disk a prompt is ``<prompt dir>/<lang>/<name>.au`` and a branded one (the access number's
"prompts brand") ``<prompt dir>/brands/<brand>/<lang>/<name>.au``. Prompts an operator uploads
live in the database; the library reaches them through an optional hook so that it needs no
store of its own::

    async def store_lookup(name: str, language: str, brand: str | None) -> bytes | None

returning the .au file bytes (as produced by ``convert.audio.upload_to_au``) or None. The hook
may be a coroutine function, return a Deferred, or return plainly.

For each language in order, the candidates are: the brand's uploaded prompt, the brand's file,
the uploaded default, the shipped file. The first that exists wins; a prompt in a later language
is only used when no earlier language has it at all.
"""

from __future__ import annotations

import inspect
import re
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Awaitable, Callable, Iterable, Optional, Sequence, Union

from portaum_tx.convert.audio import AudioFormatError, read_au

FALLBACK_LANGUAGE = "en"
STORE_SOURCE = "store"
DEFAULT_CACHE_BYTES = 64 * 1024 * 1024

# Names, languages and brands become path components: keep them to plain tokens.
_TOKEN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})*$")

StoreLookup = Callable[[str, str, Optional[str]], Union[Optional[bytes], Awaitable[Optional[bytes]]]]


class PromptError(Exception):
    """Base class of prompt lookup errors."""


class PromptNotFound(PromptError, LookupError):
    def __init__(self, name: str, languages: Sequence[str], brand: str | None = None,
                 path: Union[str, Path, None] = None):
        self.name = name
        self.languages = list(languages)
        self.brand = brand
        if path is not None:
            message = f"prompt file {str(path)!r} does not exist"
        else:
            where = f" (brand {brand!r})" if brand else ""
            message = f"prompt {name!r} not found in languages {self.languages}{where}"
        super().__init__(message)


class PromptFormatError(PromptError, ValueError):
    """A prompt exists but is not G.711 u-law 8 kHz mono .au (or is not .au at all)."""


class PromptNameError(PromptError, ValueError):
    """A prompt name, language or brand that cannot be a path component."""


@dataclass(frozen=True)
class Prompt:
    name: str
    language: str
    brand: Optional[str]
    source: str  # the file path, or "store" for an uploaded prompt
    ulaw: bytes  # raw G.711 u-law samples, 8000 per second

    @property
    def duration(self) -> float:
        return len(self.ulaw) / 8000.0


def default_prompt_dir() -> Path:
    """The prompt set shipped with the source tree."""
    return Path(__file__).resolve().parents[2] / "prompts"


def load_catalog(path: Union[str, Path, None] = None) -> dict[str, dict[str, str]]:
    """prompts/catalog.tsv -> {name: {language: text}}; languages with no text are left out."""
    path = Path(path) if path is not None else default_prompt_dir() / "catalog.tsv"
    catalog: dict[str, dict[str, str]] = {}
    languages: list[str] | None = None
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            fields = line.split("\t")
            if languages is None:
                if fields[0] != "name":
                    raise PromptError(f"{path}:{number}: expected the header line 'name<TAB>lang...'")
                languages = fields[1:]
                continue
            name = fields[0]
            if not _TOKEN.match(name) or len(fields) > len(languages) + 1:
                raise PromptError(f"{path}:{number}: bad catalog line {line!r}")
            if name in catalog:
                raise PromptError(f"{path}:{number}: prompt {name!r} listed twice")
            texts = dict(zip(languages, (text.strip() for text in fields[1:])))
            catalog[name] = {lang: text for lang, text in texts.items() if text}
    return catalog


def language_preferences(account_language: str | None,
                         access_languages: Iterable[str] = (),
                         access_list_preferred: bool = False,
                         fallback: str = FALLBACK_LANGUAGE) -> list[str]:
    """The order in which to look for prompts.

    The access number's list comes first when it is marked preferred, else the account's
    language does; English closes the list. A regional code is followed by its base
    language ("es-mx" then "es"). Duplicates and blanks are dropped.
    """
    access = [lang for lang in access_languages if lang]
    ordered = (access + [account_language]) if access_list_preferred else ([account_language] + access)
    ordered.append(fallback)
    result: list[str] = []
    for lang in ordered:
        if not lang:
            continue
        lang = lang.strip().lower().replace("_", "-")
        for candidate in (lang, lang.split("-", 1)[0]):
            if candidate and candidate not in result:
                result.append(candidate)
    return result


def _check_token(kind: str, value: str, pattern: re.Pattern = _TOKEN) -> None:
    if not isinstance(value, str) or not pattern.match(value) or ".." in value:
        raise PromptNameError(f"invalid prompt {kind} {value!r}")


#: The brand under which uploaded prompts of the brand-less default set are stored.
STORE_DEFAULT_BRAND = ""
#: How long an uploaded prompt (or its absence) is trusted before the store is asked again:
#: every prompt of every call would otherwise be a query, and uploads are rare.
STORE_LOOKUP_TTL = 30.0


def store_lookup(prompt_store, clock, ttl: float = STORE_LOOKUP_TTL) -> StoreLookup:
    """The hook over ``store.prompts`` (``get_prompt(brand, language, name)``): the default
    set (``brand`` None here) is stored under brand ``""``. Answers, found or not, are kept
    for ``ttl`` seconds of ``clock`` so that other nodes' uploads show within that time."""
    remembered: dict[tuple[str, str, str], tuple[float, Optional[bytes]]] = {}

    async def lookup(name: str, language: str, brand: Optional[str]) -> Optional[bytes]:
        key = (STORE_DEFAULT_BRAND if brand is None else brand, language, name)
        now = clock.seconds()
        hit = remembered.get(key)
        if hit is not None and now - hit[0] < ttl:
            return hit[1]
        audio = await prompt_store.get_prompt(*key)
        if len(remembered) > 10000:
            remembered.clear()
        remembered[key] = (now, audio)
        return audio

    return lookup


class PromptLibrary:
    def __init__(self, default_dir: Union[str, Path, None] = None,
                 store_lookup: StoreLookup | None = None,
                 cache_bytes: int = DEFAULT_CACHE_BYTES):
        self.default_dir = Path(default_dir) if default_dir is not None else default_prompt_dir()
        self.store_lookup = store_lookup
        self.cache_bytes = cache_bytes
        # path -> ((mtime_ns, size), u-law bytes); least recently used first
        self._cache: OrderedDict[str, tuple[tuple[int, int], bytes]] = OrderedDict()
        self._cached_bytes = 0

    def file_path(self, name: str, language: str, brand: str | None = None) -> Path:
        _check_token("name", name)
        _check_token("language", language, _LANGUAGE)
        if brand is None:
            return self.default_dir / language / f"{name}.au"
        _check_token("brand", brand)
        return self.default_dir / "brands" / brand / language / f"{name}.au"

    def _levels(self, brand: str | None) -> list[Optional[str]]:
        return [brand, None] if brand else [None]

    def find_file(self, name: str, languages: Sequence[str], brand: str | None = None) -> Path:
        """The first existing file on disk (uploaded prompts not considered)."""
        for language in languages:
            for level in self._levels(brand):
                path = self.file_path(name, language, level)
                if path.is_file():
                    return path
        raise PromptNotFound(name, languages, brand)

    async def resolve(self, name: str, languages: Sequence[str], brand: str | None = None) -> Prompt:
        """The prompt to play, loaded; PromptNotFound when no candidate exists."""
        for language in languages:
            for level in self._levels(brand):
                path = self.file_path(name, language, level)  # validates the tokens
                if self.store_lookup is not None:
                    uploaded = self.store_lookup(name, language, level)
                    if inspect.isawaitable(uploaded):
                        uploaded = await uploaded
                    if uploaded is not None:
                        ulaw = self._decode(uploaded, f"uploaded prompt {name!r} ({language}, brand {level!r})")
                        return Prompt(name, language, level, STORE_SOURCE, ulaw)
                if path.is_file():
                    return Prompt(name, language, level, str(path), self.load_file(path))
        raise PromptNotFound(name, languages, brand)

    async def resolve_all(self, names: Iterable[str], languages: Sequence[str],
                          brand: str | None = None) -> list[Prompt]:
        """Resolve a saying (a list of prompt names) in order."""
        return [await self.resolve(name, languages, brand) for name in names]

    def load_file(self, path: Union[str, Path]) -> bytes:
        """The u-law samples of a .au file; cached until the file changes."""
        key = str(path)
        try:
            stat = Path(path).stat()
        except OSError:
            raise PromptNotFound(Path(path).stem, [], None, path=path) from None
        stamp = (stat.st_mtime_ns, stat.st_size)
        hit = self._cache.get(key)
        if hit is not None and hit[0] == stamp:
            self._cache.move_to_end(key)
            return hit[1]
        ulaw = self._decode(Path(path).read_bytes(), str(path))
        self._remember(key, stamp, ulaw)
        return ulaw

    def preload(self, languages: Iterable[str] | None = None) -> int:
        """Read the shipped prompts of these languages (default: all) into the cache, so that
        the first calls of the day do not wait on the disk. Returns the number of files read."""
        if languages is None:
            languages = [d.name for d in self.default_dir.iterdir() if d.is_dir() and d.name != "brands"]
        count = 0
        for language in languages:
            for path in sorted((self.default_dir / language).glob("*.au")):
                self.load_file(path)
                count += 1
        return count

    def forget(self) -> None:
        self._cache.clear()
        self._cached_bytes = 0

    @staticmethod
    def _decode(data: bytes, what: str) -> bytes:
        try:
            header, payload = read_au(data)
        except AudioFormatError as e:
            raise PromptFormatError(f"{what}: {e}") from None
        if (header.encoding, header.sample_rate, header.channels) != (1, 8000, 1):
            raise PromptFormatError(
                f"{what}: must be G.711 u-law (encoding 1) 8000 Hz mono, got encoding "
                f"{header.encoding}, {header.sample_rate} Hz, {header.channels} channel(s)")
        return payload

    def _remember(self, key: str, stamp: tuple[int, int], ulaw: bytes) -> None:
        old = self._cache.pop(key, None)
        if old is not None:
            self._cached_bytes -= len(old[1])
        if len(ulaw) > self.cache_bytes:
            return
        self._cache[key] = (stamp, ulaw)
        self._cached_bytes += len(ulaw)
        while self._cached_bytes > self.cache_bytes:
            _, (_, evicted) = self._cache.popitem(last=False)
            self._cached_bytes -= len(evicted)
