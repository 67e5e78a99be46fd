"""Recording what the caller says.

The recorder consumes the session's inbound frames, which the jitter buffer has
already put in sequence order with lost packets replaced by silence, so the
recording keeps real time. It stops on a terminator digit, after a stretch of
silence (energy-based voice activity), at a maximum length, or on hang-up.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from twisted.internet import defer

from portaum_tx.rtp.dtmf import DtmfDigit

FRAME_SAMPLES = 160
FRAME_MS = 20

DIGIT = "digit"
SILENCE = "silence"
MAX_LENGTH = "max_length"
HANGUP = "hangup"
STOPPED = "stopped"


class RecorderError(RuntimeError):
    """A recorder started twice."""


@dataclass(frozen=True)
class RecordingResult:
    pcm: np.ndarray = field(repr=False)  # int16, 8 kHz mono
    reason: str  # digit, silence, max_length, hangup or stopped
    digit: str | None = None

    @property
    def duration_ms(self) -> int:
        return len(self.pcm) // 8


@dataclass(frozen=True)
class RecordingSettings:
    max_seconds: float = 120.0
    terminators: str = "#"  # digits that end the recording; "" for none
    silence_seconds: float | None = 5.0  # None: never stop on silence
    silence_threshold_dbfs: float = -42.0  # frames quieter than this are silence
    trim_silence: bool = True  # drop the trailing silence that ended the recording
    inband_digit_frames: int = 3  # audio of an in-band terminator tone to cut off (detected after ~40 ms)


def frame_levels_dbfs(frames: np.ndarray) -> np.ndarray:
    """RMS level of each row of a (frames, samples) int16 array, in dB full scale."""
    squares = np.einsum("ij,ij->i", frames.astype(np.float32), frames.astype(np.float32))
    return 10 * np.log10(squares / frames.shape[1] / 32768.0 ** 2 + 1e-12)


class Recorder:
    def __init__(self, session, settings: RecordingSettings | None = None):
        self.session = session
        self.settings = settings or RecordingSettings()
        self._frames: list[np.ndarray] = []
        self._silent_run = 0
        self._threshold = 32768.0 ** 2 * FRAME_SAMPLES * 10 ** (self.settings.silence_threshold_dbfs / 10)
        self._max_frames = int(self.settings.max_seconds * 1000 // FRAME_MS)
        silence = self.settings.silence_seconds
        self._silence_frames = None if silence is None else max(1, int(silence * 1000 // FRAME_MS))
        self._deferred: defer.Deferred | None = None

    @property
    def recording(self) -> bool:
        return self._deferred is not None

    @property
    def recorded_ms(self) -> int:
        return len(self._frames) * FRAME_MS

    def start(self) -> defer.Deferred:
        """Start recording; the Deferred fires with a RecordingResult. Cancelling it
        stops the recording and discards the audio."""
        if self._deferred is not None:
            raise RecorderError("recorder already running")
        self._frames = []
        self._silent_run = 0
        self._deferred = defer.Deferred(lambda d: self._finish(STOPPED, cancelled=True))
        deferred = self._deferred
        if self.session.closed:
            self._finish(HANGUP)
            return deferred
        self.session.add_consumer(self)
        self.session.dtmf_listeners.append(self._on_digit)
        return deferred

    def stop(self) -> None:
        self._finish(STOPPED)

    def _finish(self, reason: str, digit: str | None = None, trim_frames: int = 0,
                cancelled: bool = False) -> None:
        deferred, self._deferred = self._deferred, None
        if deferred is None:
            return
        self.session.remove_consumer(self)
        if self._on_digit in self.session.dtmf_listeners:
            self.session.dtmf_listeners.remove(self._on_digit)
        frames = self._frames[: max(0, len(self._frames) - trim_frames)]
        self._frames = []
        if cancelled:
            return
        pcm = np.concatenate(frames) if frames else np.zeros(0, dtype=np.int16)
        deferred.callback(RecordingResult(pcm, reason, digit))

    # --- session callbacks ---------------------------------------------------------

    def inbound_frame(self, session, pcm: np.ndarray, status: int) -> None:
        self._frames.append(pcm.copy())
        energy = float(np.dot(pcm.astype(np.float32), pcm.astype(np.float32)))
        self._silent_run = self._silent_run + 1 if energy < self._threshold else 0
        if self._silence_frames is not None and self._silent_run >= self._silence_frames:
            self._finish(SILENCE, trim_frames=self._silent_run if self.settings.trim_silence else 0)
        elif len(self._frames) >= self._max_frames:
            self._finish(MAX_LENGTH)

    def _on_digit(self, digit: DtmfDigit) -> None:
        if digit.digit in self.settings.terminators:
            trim = self.settings.inband_digit_frames if digit.source == "inband" else 0
            self._finish(DIGIT, digit.digit, trim_frames=trim)

    def session_closed(self, session, reason) -> None:
        self._finish(HANGUP)
