"""Playing prompts, silence, tones and music on hold into a session.

Prompts are G.711 .au files read once and kept in memory as encoded bytes (and, on
first use by a PCMA leg, transcoded once more); each media tick then only slices
160 bytes, so playing a prompt to a thousand callers costs no DSP at all.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field

import numpy as np
from twisted.internet import defer

from portaum_tx.rtp._rtpcore import FrameCursor
from portaum_tx.rtp.codecs import PCMA, PCMU, G711Codec
from portaum_tx.rtp.dtmf import DtmfDigit

FRAME_SAMPLES = 160

AU_MAGIC = b".snd"
AU_HEADER = struct.Struct(">4sIIIII")
AU_ULAW = 1
AU_ALAW = 27
AU_UNKNOWN_SIZE = 0xFFFFFFFF

FINISHED = "finished"
DIGIT = "digit"
STOPPED = "stopped"
HANGUP = "hangup"


class AuFormatError(ValueError):
    """A file that is not a Sun .au file of 8 kHz mono G.711."""


class PlayerError(ValueError):
    """Something that cannot be played."""


def parse_au(data: bytes, name: str = "audio") -> tuple[G711Codec, bytes]:
    """(codec, encoded samples) of an .au file's content."""
    if len(data) < AU_HEADER.size:
        raise AuFormatError(f"{name}: {len(data)} octets is too short for an .au header")
    magic, offset, size, encoding, rate, channels = AU_HEADER.unpack_from(data)
    if magic != AU_MAGIC:
        raise AuFormatError(f"{name}: not an .au file (magic {magic!r})")
    if offset < AU_HEADER.size or offset > len(data):
        raise AuFormatError(f"{name}: data offset {offset} is outside the file")
    if encoding not in (AU_ULAW, AU_ALAW):
        raise AuFormatError(f"{name}: encoding {encoding} is not G.711 u-law (1) or A-law (27)")
    if rate != 8000 or channels != 1:
        raise AuFormatError(f"{name}: {rate} Hz with {channels} channels, expected 8000 Hz mono")
    end = len(data) if size == AU_UNKNOWN_SIZE else offset + size
    if end > len(data):
        raise AuFormatError(f"{name}: header announces {size} octets of data, file has {len(data) - offset}")
    return (PCMU if encoding == AU_ULAW else PCMA), bytes(data[offset:end])


def build_au(encoded: bytes, codec: G711Codec = PCMU, annotation: bytes = b"") -> bytes:
    annotation = annotation + bytes(-(len(annotation) + 1) % 8 + 1)  # NUL-terminated, padded
    encoding = AU_ULAW if codec is PCMU else AU_ALAW
    header = AU_HEADER.pack(AU_MAGIC, AU_HEADER.size + len(annotation), len(encoded), encoding, 8000, 1)
    return header + annotation + encoded


class Prompt:
    """Encoded audio ready to slice, in every codec it has been asked for."""

    def __init__(self, codec: G711Codec, encoded: bytes, name: str = ""):
        self.name = name
        self._encoded = {codec: encoded}
        self.samples = len(encoded)

    @classmethod
    def from_pcm(cls, pcm: np.ndarray, name: str = "") -> "Prompt":
        return cls(PCMU, PCMU.encode(np.asarray(pcm, dtype=np.int16)), name)

    def encoded(self, codec: G711Codec) -> bytes:
        data = self._encoded.get(codec)
        if data is None:
            source_codec, source = next(iter(self._encoded.items()))
            data = self._encoded[codec] = codec.encode(source_codec.decode(source))
        return data

    @property
    def duration_ms(self) -> int:
        return self.samples // 8


class PromptCache:
    """Loads each .au file once; the server keeps one for all calls."""

    def __init__(self):
        self._prompts: dict[str, Prompt] = {}

    def load(self, path: str) -> Prompt:
        key = os.path.abspath(path)
        prompt = self._prompts.get(key)
        if prompt is None:
            try:
                with open(key, "rb") as f:
                    data = f.read()
            except OSError as e:
                raise AuFormatError(f"{path}: cannot read ({e.strerror})") from None
            codec, encoded = parse_au(data, path)
            prompt = self._prompts[key] = Prompt(codec, encoded, path)
        return prompt

    def forget(self, path: str) -> None:
        self._prompts.pop(os.path.abspath(path), None)

    def __len__(self) -> int:
        return len(self._prompts)


@dataclass(frozen=True)
class Silence:
    ms: int


@dataclass(frozen=True)
class Tone:
    """Generated PCM (see tones.py), encoded once when first played."""

    pcm: np.ndarray = field(compare=False)
    name: str = "tone"


@dataclass(frozen=True)
class MusicOnHold:
    """Plays its item over and over until the playback is stopped or interrupted."""

    item: object


@dataclass(frozen=True)
class PlaybackResult:
    reason: str  # finished, digit, stopped or hangup
    digit: str | None = None
    played_ms: int = 0


class Player(FrameCursor):
    """Plays a list of items into one session; one playback at a time.

    Items: a Prompt, a path to an .au file (through the cache), Silence(ms),
    Tone(pcm), or MusicOnHold(item) which loops forever.

    What it plays does not depend on when it is asked, so the media clock may prepare
    its frames well ahead (``prefetch``; see clock.py). An interrupted playback takes
    back what was prepared beyond the live lead; a playback that runs out reports the
    end once its last frame has reached it.

    Inside a prompt, the next frames are slices of one bytes object: the FrameCursor
    base (``_frames``, ``_frames_codec``, ``_frames_end``, ``_offset``, ``_played``)
    says which, and the media tick's C code takes them from there without calling
    :meth:`next_frame`, which is asked again at the prompt's end.
    """

    prefetch = True

    def __init__(self, session, cache: PromptCache | None = None):
        self.session = session
        self.cache = cache or PromptCache()
        self._segments: list[tuple[Prompt | None, int, bool]] = []  # (prompt or None for silence, samples, loop)
        self._index = 0
        self._offset = 0
        self._played = 0
        self._frames = None  # see FrameCursor: none until next_frame is inside a prompt
        self._barge_in: str | bool = False
        self._deferred: defer.Deferred | None = None

    @property
    def playing(self) -> bool:
        return self._deferred is not None

    def _segment(self, item):
        if isinstance(item, MusicOnHold):
            prompt, samples, _ = self._segment(item.item)
            return prompt, samples, True
        if isinstance(item, Prompt):
            return item, item.samples, False
        if isinstance(item, (str, os.PathLike)):
            prompt = self.cache.load(os.fspath(item))
            return prompt, prompt.samples, False
        if isinstance(item, Silence):
            return None, max(0, int(item.ms)) * 8, False
        if isinstance(item, Tone):
            prompt = Prompt.from_pcm(item.pcm, item.name)
            return prompt, prompt.samples, False
        raise PlayerError(f"cannot play {item!r}: expected a Prompt, an .au path, Silence, Tone or MusicOnHold")

    def play(self, items, barge_in: bool | str = False) -> defer.Deferred:
        """Start playing; the Deferred fires with a PlaybackResult. ``barge_in`` is
        True (any digit interrupts), a string of the digits that interrupt, or False.
        Cancelling the Deferred stops the playback."""
        segments = [self._segment(item) for item in items]
        segments = [s for s in segments if s[1] > 0 or s[2]]
        if any(loop and samples == 0 for _, samples, loop in segments):
            raise PlayerError("music on hold needs audio to loop")
        if self._deferred is not None:
            self._finish(STOPPED)
        self._segments = segments
        self._index = self._offset = self._played = 0
        self._frames = None
        self._barge_in = barge_in
        self._deferred = defer.Deferred(lambda d: self._finish(STOPPED, cancelled=True))
        deferred = self._deferred
        if self.session.closed:
            self._finish(HANGUP)
            return deferred
        self.session.dtmf_listeners.append(self._on_digit)
        self.session.set_source(self)
        if not self._segments:
            self._ran_out()
        return deferred

    def stop(self) -> None:
        if self._deferred is not None:
            self._finish(STOPPED)

    def _finish(self, reason: str, digit: str | None = None, cancelled: bool = False) -> None:
        deferred, self._deferred = self._deferred, None
        if deferred is None:
            return
        if self._on_digit in self.session.dtmf_listeners:
            self.session.dtmf_listeners.remove(self._on_digit)
        self.session.clear_source(self)
        if reason != FINISHED:
            withdrawn = self.session.withdraw_prepared()
            self._played = max(0, self._played - withdrawn * FRAME_SAMPLES)
        if not cancelled:
            deferred.callback(PlaybackResult(reason, digit, self._played // 8))

    # --- session callbacks ---------------------------------------------------------

    def _on_digit(self, digit: DtmfDigit) -> None:
        barge = self._barge_in
        if barge is True or (barge and digit.digit in barge):
            self._finish(DIGIT, digit.digit)

    def _ran_out(self) -> None:
        """The last audio has been handed out: stop being asked for frames, and finish
        once it has reached the live lead. Keys still barge in until then."""
        self.session.clear_source(self)
        deferred = self._deferred
        self.session.when_sent(lambda: self._sent(deferred))

    def _sent(self, deferred) -> None:
        if self._deferred is deferred:
            self._finish(HANGUP if self.session.closed else FINISHED)

    def session_closed(self, session, reason) -> None:
        self._finish(HANGUP)

    def source_detached(self, session) -> None:
        self._finish(STOPPED)

    def next_frame(self, session):
        codec = session.codec
        if self._index < len(self._segments):
            prompt, samples, _loop = self._segments[self._index]
            offset = self._offset
            if prompt is not None and offset + FRAME_SAMPLES < samples:
                # inside a prompt: one slice of the cached bytes, and the next ones
                # taken by the tick's C code until the prompt's last frame
                data = prompt.encoded(codec)
                self._offset = offset + FRAME_SAMPLES
                self._played += FRAME_SAMPLES
                self._frames, self._frames_codec, self._frames_end = data, codec, samples
                return data[offset:offset + FRAME_SAMPLES]
        self._frames = None
        pieces = []
        needed = FRAME_SAMPLES
        while needed and self._index < len(self._segments):
            prompt, samples, loop = self._segments[self._index]
            take = min(needed, samples - self._offset)
            if prompt is None:
                pieces.append(codec.silence(take))
            else:
                data = prompt.encoded(codec)
                pieces.append(data[self._offset:self._offset + take])
            self._offset += take
            needed -= take
            if self._offset >= samples:
                self._offset = 0
                if not loop:
                    self._index += 1
        self._played += FRAME_SAMPLES - needed
        if needed == FRAME_SAMPLES:
            self._ran_out()
            return None
        if needed:
            pieces.append(codec.silence(needed))
        frame = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        if self._index >= len(self._segments):
            self._ran_out()  # last audio handed out: the next play continues after it
        return frame
