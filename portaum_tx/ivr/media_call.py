"""The media half of the Call API over an RTP session.

:class:`MediaCall` plays, records, hears digits and fax tones through the rtp package
(:class:`~portaum_tx.rtp.player.Player`, :class:`~portaum_tx.rtp.recorder.Recorder`,
the session's DTMF and fax-tone events, :class:`~portaum_tx.rtp.bridge.Bridge`) and resolves
prompt names through a :class:`~portaum_tx.ivr.prompts.PromptLibrary`. The SIP layer supplies
only the signalling, as a :class:`CallSignalling`, and tells the call when the far end hangs
up (:meth:`~portaum_tx.ivr.call.Call.remote_hangup`) or sends DTMF by SIP INFO
(``session.receive_info_dtmf``). A media session that closes or goes dead ends the call too.

    session = RtpSession(media_clock, params); allocator.bind(session); session.start()
    call = MediaCall(reactor, session, prompt_library, signalling,
                     call_id=..., calling=..., called=..., original_called=..., diversion_reason=...)
    await router.handle(call)
"""

from __future__ import annotations

import inspect
from typing import Optional, Protocol

import numpy as np
from twisted.internet import defer
from twisted.logger import Logger

from portaum_tx.ivr.call import (
    FINISHED, HANGUP, MAX_LENGTH, SILENCE, STOPPED, Audio, Beep, Call, CallError, MediaOperation,
    PlayItem, PlayResult, Recording, Silence,
)
from portaum_tx.ivr.prompts import PromptError, PromptLibrary
from portaum_tx.rtp import player as rtp_player
from portaum_tx.rtp import tones
from portaum_tx.rtp.bridge import Bridge
from portaum_tx.rtp.codecs import PCMU
from portaum_tx.rtp.recorder import Recorder, RecordingSettings

log = Logger()

FRAME_MS = 20
FRAME_SAMPLES = 160
#: The music on hold prompt; a class of it is ``moh-<class>``.
MOH_PROMPT = "moh"
#: How much of the other leg's voice stays under a mixed announcement (-6 dB).
MIX_UNDER = 0.5
#: Audio of an in-band terminator tone cut from the end of a recording it ended.
INBAND_TERMINATOR_TRIM_MS = 60

_RECORDER_REASONS = {"silence": SILENCE, "max_length": MAX_LENGTH, "hangup": HANGUP, "stopped": STOPPED}


class CallSignalling(Protocol):
    """What the SIP layer provides for one call leg. Each method returns when done."""

    async def answer(self) -> None:
        """200 OK with the SDP of the session, then the ACK."""

    async def reject(self, code: int, reason: Optional[str]) -> None:
        """A final error response to the INVITE."""

    async def hangup(self) -> None:
        """BYE (or CANCEL / an error response before answer)."""

    async def transfer(self, destination: str) -> None:
        """Blind transfer; raise portaum_tx.ivr.call.TransferFailed when refused."""

    async def dial(self, destination: str, caller_id: Optional[str], timeout: float) -> "MediaCall":
        """An outgoing leg, answered, as a MediaCall; raise portaum_tx.ivr.call.DialFailed.
        Cancelling the returned awaitable must cancel the attempt. A signalling that also
        takes ``on_early`` calls it with the leg's RTP session when the leg starts early
        media: the caller's pre-ring music stops and the caller hears the leg until it
        answers (without ``on_early`` the music lasts until answer)."""


def audio_prompt(audio: Audio) -> rtp_player.Prompt:
    """The encoded prompt of an Audio, encoded once however often it is played (a
    greeting replayed after every key, a message heard again)."""
    prompt = audio.__dict__.get("_prompt")
    if prompt is None:
        prompt = rtp_player.Prompt.from_pcm(audio.pcm, audio.label)
        object.__setattr__(audio, "_prompt", prompt)  # Audio is frozen; this is a cache
    return prompt


class MediaCall(Call):
    def __init__(self, clock, session, prompts: PromptLibrary, signalling: CallSignalling, *,
                 prompt_cache: Optional[dict] = None, **identity):
        super().__init__(clock, **identity)
        self.session = session
        self.prompts = prompts
        self.signalling = signalling
        #: (prompt source, name, language, brand) -> rtp Prompt; share one per node so that
        #: A-law transcodings are made once.
        self.prompt_cache = prompt_cache if prompt_cache is not None else {}
        self.player = rtp_player.Player(session)
        self._last_digit_source: str | None = None
        session.dtmf_listeners.append(self._on_dtmf)
        session.fax_listeners.append(self.fax_tone_detected)
        session.close_listeners.append(self._session_closed)
        session.dead_peer_listeners.append(self._peer_dead)

    # --- session events --------------------------------------------------------------

    def _on_dtmf(self, digit) -> None:
        self._last_digit_source = digit.source
        self.digit_received(digit.digit)

    def _session_closed(self, session, reason) -> None:
        self.remote_hangup(f"media {reason}")

    def _peer_dead(self, session, reason) -> None:
        log.info("{call_id}: no media from the caller ({reason}); ending the call",
                 call_id=self.call_id, reason=reason)
        self.remote_hangup("media timeout")

    def _detach(self) -> None:
        for listeners, listener in ((self.session.dtmf_listeners, self._on_dtmf),
                                    (self.session.fax_listeners, self.fax_tone_detected),
                                    (self.session.close_listeners, self._session_closed),
                                    (self.session.dead_peer_listeners, self._peer_dead)):
            if listener in listeners:
                listeners.remove(listener)

    def remote_hangup(self, reason: str = "hangup") -> None:
        """Also releases the media session."""
        if self.hangup_reason is not None:
            return
        super().remote_hangup(reason)
        self._detach()
        self.session.close("hangup")

    # --- signalling ---------------------------------------------------------------------

    async def _answer(self) -> None:
        await self.signalling.answer()

    async def _reject(self, code: int, reason: Optional[str]) -> None:
        await self.signalling.reject(code, reason)

    async def _hangup(self) -> None:
        self._detach()
        try:
            await self.signalling.hangup()
        finally:
            self.session.close("hangup")

    async def _transfer(self, destination: str) -> None:
        await self.signalling.transfer(destination)

    async def _bridge(self, other: Call) -> None:
        if not isinstance(other, MediaCall):
            raise CallError(f"cannot bridge a media call with {type(other).__name__}")
        bridge = Bridge(self.session, other.session)
        ended = bridge.start()
        other_gone = defer.Deferred()
        other.hungup.addBoth(lambda result: (other_gone.called or other_gone.callback(None), result)[1])
        try:
            await defer.DeferredList([ended, other_gone], fireOnOneCallback=True, consumeErrors=True)
        finally:
            if self._announcement is not None:
                self._announcement.stop()   # gives the bridge its place back before it goes
            bridge.stop()
            self.flush_digits()

    async def _dial(self, destination: str, caller_id: Optional[str], timeout: float) -> Call:
        if not self._signalling_reports_early():
            return await self.signalling.dial(destination, caller_id, timeout)
        early: list[_EarlyAudio] = []

        def early_media(leg_session=None) -> None:
            self.early_media()      # the ringback music stops...
            if leg_session is not None and not early and not self.session.closed:
                early.append(_EarlyAudio(leg_session, self.session))   # ...for the far end's
        try:
            return await self.signalling.dial(destination, caller_id, timeout,
                                              on_early=early_media)
        finally:
            for audio in early:
                audio.stop()

    def _signalling_reports_early(self) -> bool:
        try:
            return "on_early" in inspect.signature(self.signalling.dial).parameters
        except (TypeError, ValueError):
            return False

    # --- sounds beside a dial or a bridge ---------------------------------------------------

    def _start_ringback(self, items: list[PlayItem]) -> MediaOperation:
        state = {"stopped": False, "playing": False}

        def stop():
            state["stopped"] = True
            if state["playing"]:
                self.player.stop()
            elif not operation.done.called:
                operation.done.callback(PlayResult(STOPPED))

        operation = MediaOperation(stop)

        async def start():
            resolved = await self._resolve(await self._moh_fallback(items))
            music = _one_prompt(resolved, "ringback")
            if state["stopped"] or operation.done.called:
                return
            if music is None:   # nothing to play: silence until stopped
                return
            state["playing"] = True
            result = await self.player.play([rtp_player.MusicOnHold(music)])
            if not operation.done.called:
                operation.done.callback(PlayResult(FINISHED if result.reason == "finished" else STOPPED))

        started = defer.ensureDeferred(start())
        started.addErrback(lambda failure: operation.done.called or operation.done.errback(failure))
        return operation

    async def _moh_fallback(self, items: list[PlayItem]) -> list[PlayItem]:
        """Music on hold of a class (``moh-<class>``) that has no prompt plays ``moh``."""
        out: list[PlayItem] = []
        for item in items:
            if isinstance(item, str) and item.startswith(MOH_PROMPT + "-"):
                try:
                    await self.prompts.resolve(item, self.languages, self.brand)
                except PromptError:
                    log.info("{call_id}: no prompt {name}; playing {moh}", call_id=self.call_id,
                             name=item, moh=MOH_PROMPT)
                    item = MOH_PROMPT
            out.append(item)
        return out

    def _start_announce(self, items: list[PlayItem], mix: bool) -> MediaOperation:
        announcement = _Announcement(self.session, mix)
        operation = MediaOperation(announcement.stop)

        async def start():
            resolved = await self._resolve(items)
            if announcement.stopped or operation.done.called:
                return
            result = await announcement.play(resolved)
            if not operation.done.called:
                operation.done.callback(PlayResult(FINISHED if result.reason == "finished" else STOPPED))

        def stopped(result):
            if not operation.done.called:
                operation.done.callback(PlayResult(STOPPED))
            return result
        announcement.on_stop = stopped
        started = defer.ensureDeferred(start())
        started.addErrback(lambda failure: operation.done.called or operation.done.errback(failure))
        return operation

    # --- media ----------------------------------------------------------------------------

    def _set_fax_detection(self, enabled: bool) -> None:
        if not self.session.closed:
            self.session.set_fax_detection(enabled)

    def _start_play(self, items: list[PlayItem]) -> MediaOperation:
        state = {"playing": None, "stopped": False}

        def stop():
            state["stopped"] = True
            if state["playing"] is not None:
                self.player.stop()
            elif not operation.done.called:
                operation.done.callback(PlayResult(STOPPED))

        operation = MediaOperation(stop)

        async def start():
            resolved = await self._resolve(items)
            if state["stopped"] or operation.done.called:
                return
            playing = state["playing"] = self.player.play(resolved)
            result = await playing
            if not operation.done.called:
                operation.done.callback(PlayResult(FINISHED if result.reason == "finished" else STOPPED))

        started = defer.ensureDeferred(start())
        started.addErrback(lambda failure: operation.done.called or operation.done.errback(failure))
        return operation

    async def _resolve(self, items: list[PlayItem]) -> list:
        out = []
        for item in items:
            if isinstance(item, str):
                try:
                    prompt = await self.prompts.resolve(item, self.languages, self.brand)
                except PromptError as e:
                    log.error("{call_id}: {error}; skipped", call_id=self.call_id, error=str(e))
                    continue
                key = (prompt.source, prompt.name, prompt.language, prompt.brand)
                cached = self.prompt_cache.get(key)
                if cached is None or cached.encoded(PCMU) is not prompt.ulaw:  # changed on disk
                    cached = self.prompt_cache[key] = rtp_player.Prompt(PCMU, prompt.ulaw, item)
                out.append(cached)
            elif isinstance(item, Audio):
                out.append(audio_prompt(item))
            elif isinstance(item, Silence):
                out.append(rtp_player.Silence(item.ms))
            elif isinstance(item, Beep):
                out.append(rtp_player.Tone(tones.beep(item.ms), "beep"))
        return out

    def _start_record(self, max_seconds: float, silence_seconds: float | None) -> MediaOperation:
        recorder = Recorder(self.session, RecordingSettings(
            max_seconds=max_seconds, terminators="", silence_seconds=silence_seconds))
        operation = MediaOperation(recorder.stop)

        def finished(result):
            pcm = result.pcm
            if self._terminated is not None and self._last_digit_source == "inband":
                pcm = pcm[: max(0, len(pcm) - INBAND_TERMINATOR_TRIM_MS * 8)]
            operation.done.callback(Recording(pcm, _RECORDER_REASONS.get(result.reason, STOPPED)))

        recorder.start().addCallback(finished)
        return operation


def _one_prompt(resolved: list, name: str) -> Optional[rtp_player.Prompt]:
    """Resolved items (prompts, silences, tones) as one u-law prompt, to loop."""
    pieces = []
    for item in resolved:
        if isinstance(item, rtp_player.Prompt):
            pieces.append(item.encoded(PCMU))
        elif isinstance(item, rtp_player.Silence):
            pieces.append(PCMU.silence(max(0, int(item.ms)) * 8))
        elif isinstance(item, rtp_player.Tone):
            pieces.append(PCMU.encode(item.pcm))
    audio = b"".join(pieces)
    return rtp_player.Prompt(PCMU, audio, name) if audio else None


class _EarlyAudio:
    """The far end's early media (ringback, "the number you have called ...") sent on to the
    caller while the leg is still being dialled; one way only."""

    def __init__(self, leg_session, caller_session):
        self.leg = leg_session
        self.caller = caller_session
        self.frame = None
        leg_session.add_consumer(self)
        caller_session.set_source(self)

    def inbound_frame(self, session, pcm, status) -> None:
        self.frame = pcm    # a view, handed on within this tick

    def next_frame(self, session):
        frame, self.frame = self.frame, None
        return frame

    def source_detached(self, session) -> None:
        self.leg.remove_consumer(self)

    def session_closed(self, session, reason) -> None:
        self.stop()

    def stop(self) -> None:
        self.leg.remove_consumer(self)
        self.caller.clear_source(self)


class _ShadowSession:
    """What a Player needs of a session, standing in for the real one so that a player can
    feed an announcement without becoming the session's source (which would end the
    bridge)."""

    def __init__(self, session):
        self.real = session
        self.dtmf_listeners: list = []   # keys do not stop an announcement
        self.source = None

    @property
    def codec(self):
        return self.real.codec

    @property
    def closed(self) -> bool:
        return self.real.closed

    def set_source(self, source) -> None:
        self.source = source

    def clear_source(self, source) -> None:
        if self.source is source:
            self.source = None

    # nothing is prepared ahead for the shadow: the real session's source is the
    # announcement, which mixes live audio
    def withdraw_prepared(self) -> int:
        return 0

    def when_sent(self, callback) -> None:
        callback()


class _Announcement:
    """One announcement to one bridged leg: while it plays, the leg's source is this
    object, which hands out the bridged audio mixed under the announcement (``mix``) or the
    announcement alone; afterwards the bridge's own source is put back.

    The source is swapped by assignment rather than ``set_source`` because the bridge takes
    being detached as its end."""

    def __init__(self, session, mix: bool):
        self.session = session
        self.mix = mix
        self.shadow = _ShadowSession(session)
        self.player = rtp_player.Player(self.shadow)
        self.bridged = None
        self.stopped = False
        self.on_stop = None

    def play(self, resolved: list) -> defer.Deferred:
        self.bridged = self.session.source
        if self.session.closed or self.bridged is None:
            return defer.succeed(rtp_player.PlaybackResult(STOPPED))
        self.session.source = self
        playing = self.player.play(resolved)
        playing.addBoth(self._restore)
        return playing

    def _restore(self, result):
        if self.session.source is self:
            self.session.source = self.bridged
        return result

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        self.player.stop()
        self._restore(None)
        if self.on_stop is not None:
            self.on_stop(None)

    # --- as the session's source ------------------------------------------------------

    def next_frame(self, session):
        heard = self.bridged.next_frame(session) if self.bridged is not None else None
        source = self.shadow.source
        spoken = source.next_frame(self.shadow) if source is not None else None
        if spoken is None:
            return heard
        if not self.mix or heard is None:
            return spoken
        codec = session.codec
        voice = codec.decode(spoken) if isinstance(spoken, (bytes, bytearray)) else spoken
        under = codec.decode(heard) if isinstance(heard, (bytes, bytearray)) else heard
        if len(voice) != len(under):
            return spoken
        mixed = voice.astype(np.int32) + (under.astype(np.int32) * MIX_UNDER).astype(np.int32)
        return np.clip(mixed, -32768, 32767).astype(np.int16)

    def session_closed(self, session, reason) -> None:
        self.stop()
        closed = getattr(self.bridged, "session_closed", None)
        if closed is not None:
            closed(session, reason)
