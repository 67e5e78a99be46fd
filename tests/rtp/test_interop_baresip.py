"""baresip (Debian, v1.0) calls the server's SIP user agent over loopback: it answers,
plays a prompt and records what baresip sends; the recording must match the audio
baresip sent (by correlation, piece by piece), baresip must have heard the prompt,
and a key pressed on baresip must arrive as a digit event of the RTP session.

baresip runs headless from a temporary config directory: audio source aufile (a WAV
of speech cut for the test), player aubridge (a virtual device: Debian's aufile has
no player), the sndfile filter dumping what baresip decoded to dump-*-dec.wav, and
commands over stdin (stdio module). aufile's source ends the call when its file
runs out.
"""

import os
import shutil
import tempfile
import wave

import numpy as np
from twisted.internet import defer, protocol, reactor
from twisted.trial import unittest

from portaum_tx.rtp.batch_io import BatchedMediaEngine
from portaum_tx.rtp.engine import MediaEngine
from portaum_tx.rtp.player import Prompt
from portaum_tx.rtp.recorder import Recorder, RecordingSettings
from portaum_tx.sip.transport import SipTransport, UdpEndpoint
from portaum_tx.sip.ua import UserAgent

from tests.support import free_port, require_peer

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
SPEECH = os.path.join(DATA, "alsa_voices_8k.wav")
RATE = 8000
CHUNK = RATE // 2  # compared in half-second pieces: a DTMF event may leave a gap

CONFIG = """poll_method\t\tepoll
sip_listen\t\t127.0.0.1:{sip_port}
rtp_ports\t\t{rtp_low}-{rtp_high}
audio_player\t\taubridge,nowhere
audio_source\t\taufile,{dir}/sent.wav
audio_alert\t\taubridge,nowhere
snd_path\t\t{dir}
ausrc_srate\t\t8000
ausrc_channels\t\t1
auplay_srate\t\t8000
auplay_channels\t\t1
module_path\t\t/usr/lib/baresip/modules
module\t\t\tstdio.so
module\t\t\tg711.so
module\t\t\taufile.so
module\t\t\taubridge.so
module\t\t\tsndfile.so
module_tmp\t\taccount.so
module_app\t\tmenu.so
"""


def free_udp_port(count: int = 1) -> int:
    """The first of ``count`` consecutive UDP ports free on 127.0.0.1 (even when count > 1)."""
    return free_port(count=count)


def read_wav(path: str) -> np.ndarray:
    with wave.open(path) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (RATE, 1, 2), path
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int16)


def write_wav(path: str, pcm: np.ndarray) -> None:
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.astype("<i2").tobytes())


def best_correlation(piece: np.ndarray, signal: np.ndarray) -> tuple[float, int]:
    """Highest normalised cross-correlation of ``piece`` at any offset in ``signal``,
    and that offset."""
    piece = piece.astype(np.float64)
    signal = signal.astype(np.float64)
    n = len(piece)
    if len(signal) < n:
        return 0.0, 0
    size = 1 << int(np.ceil(np.log2(len(signal) + n)))
    dots = np.fft.irfft(np.fft.rfft(signal, size) * np.conj(np.fft.rfft(piece, size)), size)
    dots = dots[: len(signal) - n + 1]
    window_energy = np.convolve(signal ** 2, np.ones(n), "valid")
    scores = dots / np.sqrt(np.maximum(window_energy, 1e-9) * float(piece @ piece))
    best = int(scores.argmax())
    return float(scores[best]), best


class PeerProcess(protocol.ProcessProtocol):
    def __init__(self):
        self.done = defer.Deferred()
        self.output = b""
        self._waits: list[tuple[bytes, defer.Deferred]] = []

    def outReceived(self, data):
        self.output += data
        for needle, d in list(self._waits):
            if needle in self.output:
                self._waits.remove((needle, d))
                d.callback(True)

    errReceived = outReceived

    def processEnded(self, reason):
        self.done.callback(reason.value.exitCode)

    def wait_for(self, needle: bytes, timeout: float) -> defer.Deferred:
        """True once ``needle`` is in the output, False after ``timeout`` seconds."""
        d = defer.Deferred()
        if needle in self.output:
            d.callback(True)
            return d
        self._waits.append((needle, d))

        def expire():
            if not d.called:
                self._waits.remove((needle, d))
                d.callback(False)
        timer = reactor.callLater(timeout, expire)
        d.addBoth(lambda result: (timer.active() and timer.cancel(), result)[1])
        return d


def bounded(d: defer.Deferred, timeout: float) -> defer.Deferred:
    """``d``'s result, or None after ``timeout`` seconds."""
    out = defer.Deferred()
    timer = reactor.callLater(timeout, lambda: out.called or out.callback(None))

    def done(result):
        if timer.active():
            timer.cancel()
        if not out.called:
            out.callback(result)
    d.addBoth(done)
    return out


def sleep(seconds: float) -> defer.Deferred:
    d = defer.Deferred()
    reactor.callLater(seconds, d.callback, None)
    return d


class BaresipMediaTests(unittest.TestCase):
    timeout = 90

    def setUp(self):
        self.baresip = shutil.which("baresip")
        require_peer("baresip", self.baresip is not None, "install baresip (Debian package)")
        self.dir = tempfile.mkdtemp(prefix="portaum-baresip-media-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    @defer.inlineCallbacks
    def test_prompt_recording_and_digit(self):
        yield defer.ensureDeferred(self._call(MediaEngine))

    @defer.inlineCallbacks
    def test_prompt_recording_and_digit_with_sockets_read_by_the_tick(self):
        yield defer.ensureDeferred(self._call(BatchedMediaEngine))

    async def _start_server(self, engine_class, answer):
        """The product's SIP user agent and a media engine on loopback;
        ``answer(incoming)`` runs for every call."""
        engine = engine_class(reactor, port_range=self._rtp_range(), interface="127.0.0.1")
        engine.start()
        transport = SipTransport(reactor)
        endpoint = UdpEndpoint(transport)
        listening = reactor.listenUDP(0, endpoint, interface="127.0.0.1")
        port = listening.getHost().port
        ua = UserAgent(reactor, transport, host="127.0.0.1", media=engine, ports={"udp": port},
                       on_incoming=lambda incoming: defer.ensureDeferred(answer(incoming)))

        async def stop():
            ua.shutdown()
            engine.stop()
            await listening.stopListening()
        self.addCleanup(lambda: defer.ensureDeferred(stop()))
        return engine, port

    def _rtp_range(self) -> tuple[int, int]:
        low = free_udp_port(40)
        return low, low + 39

    def _start_baresip(self, sent: np.ndarray) -> PeerProcess:
        write_wav(os.path.join(self.dir, "sent.wav"), sent)
        rtp_low, rtp_high = self._rtp_range()
        with open(os.path.join(self.dir, "config"), "w") as f:
            f.write(CONFIG.format(sip_port=free_udp_port(), rtp_low=rtp_low, rtp_high=rtp_high,
                                  dir=self.dir))
        with open(os.path.join(self.dir, "accounts"), "w") as f:
            f.write("<sip:1001@127.0.0.1>;regint=0;audio_codecs=PCMU\n")
        process = PeerProcess()
        reactor.spawnProcess(process, self.baresip, [self.baresip, "-f", self.dir],
                             env={"PATH": "/usr/bin:/bin", "HOME": self.dir}, path=self.dir)

        def kill():
            if not process.done.called:
                process.transport.signalProcess("KILL")
                return process.done
        self.addCleanup(kill)
        return process

    async def _call(self, engine_class):
        speech = read_wav(SPEECH)
        sent = speech[: 5 * RATE]              # what baresip says (5 s, then it hangs up)
        prompt_pcm = speech[5 * RATE: 9 * RATE]  # what the server plays (other words)
        outcome = {}
        answered = defer.Deferred()

        async def answer(incoming):
            await incoming.answer()
            rtp = incoming.rtp
            digits = outcome.setdefault("digits", [])
            recorder = Recorder(rtp, RecordingSettings(max_seconds=15, terminators="",
                                                       silence_seconds=None))
            # where in the recording the key press came: baresip sends no audio while
            # its telephone-event lasts, so that stretch has a gap
            rtp.dtmf_listeners.append(lambda digit: (digits.append(digit), outcome.setdefault(
                "digit_at", recorder.recorded_ms * RATE // 1000)))
            recording = recorder.start()
            playing = engine.player(rtp).play([Prompt.from_pcm(prompt_pcm, "prompt")])
            answered.callback(incoming)
            outcome["played"] = await playing
            outcome["recording"] = await recording
            outcome["rtp"] = rtp

        engine, port = await self._start_server(engine_class, answer)
        phone = self._start_baresip(sent)
        self.assertTrue(await phone.wait_for(b"baresip is ready", 10), phone.output)
        phone.transport.write(b"/dial sip:800@127.0.0.1:%d\n" % port)
        self.assertTrue(await phone.wait_for(b"Call established", 10), phone.output)
        call = await bounded(answered, 10)
        self.assertIsNotNone(call, "the server never answered")
        await sleep(2.0)
        phone.transport.write(b"5")  # a key press in the call: baresip sends it as a telephone-event
        # aufile's source runs out after 5 s and baresip hangs up
        self.assertTrue(await phone.wait_for(b"terminated", 15), phone.output)
        phone.transport.write(b"/quit\n")
        await bounded(phone.done, 10)
        for _ in range(50):
            if "recording" in outcome:
                break
            await sleep(0.1)

        # the digit
        digits = outcome.get("digits", [])
        self.assertEqual([d.digit for d in digits], ["5"], phone.output.decode(errors="replace"))
        self.assertEqual(digits[0].source, "rfc4733")

        # what the server recorded is what baresip sent
        self.assertIn("recording", outcome, "the recording did not end with the call")
        recorded = outcome["recording"].pcm
        self.assertEqual(outcome["recording"].reason, "hangup")
        self.assertGreaterEqual(len(recorded), 4 * RATE)
        # baresip hangs up as its source reaches the file's end, before its last
        # buffered frames go out: the final half second is not compared
        _, lag = best_correlation(sent[RATE // 2: RATE], recorded)
        gap = outcome["digit_at"] - (lag - RATE // 2)  # the key press, in the sent audio
        self._assert_contains(sent[:-CHUNK], recorded, "server recording of baresip's audio",
                              skip=(gap - 3 * RATE // 5, gap + RATE // 5))

        # and baresip heard the prompt
        self.assertEqual(outcome["played"].reason, "finished")
        dumps = [name for name in os.listdir(self.dir) if name.endswith("-dec.wav")]
        self.assertEqual(len(dumps), 1, phone.output.decode(errors="replace"))
        heard = read_wav(os.path.join(self.dir, dumps[0]))
        self._assert_contains(prompt_pcm[: 4 * RATE - CHUNK], heard, "baresip's recording of the prompt")
        self.assertGreater(outcome["rtp"].packets_received, 200)
        # the measure tells the two apart: the prompt is not in what the server recorded
        unrelated = self._scores(prompt_pcm, recorded)
        self.assertTrue(unrelated and max(unrelated) < 0.9 and float(np.median(unrelated)) < 0.6,
                        "prompt vs recording: %s" % unrelated)

    def _scores(self, reference: np.ndarray, signal: np.ndarray, skip=(0, 0)) -> list[float]:
        """For every half second of ``reference`` with speech in it (and not
        overlapping the sample range ``skip``), its best normalised correlation
        anywhere in ``signal``."""
        scores = []
        for start in range(0, len(reference) - CHUNK + 1, CHUNK):
            if start < skip[1] and start + CHUNK > skip[0]:
                continue
            piece = reference[start:start + CHUNK]
            if np.sqrt(np.mean(piece.astype(np.float64) ** 2)) < 300:
                continue  # a pause in the speech: nothing to correlate
            scores.append(round(best_correlation(piece, signal)[0], 3))
        return scores

    def _assert_contains(self, reference: np.ndarray, signal: np.ndarray, what: str,
                         skip=(0, 0)) -> None:
        """Every half second of ``reference`` (except the quiet ones) is found in
        ``signal`` with a normalised correlation of at least 0.95 (G.711 both ways keeps
        it above 0.99; other words of the same voice reach 0.8 at best)."""
        scores = self._scores(reference, signal, skip)
        self.assertGreaterEqual(len(scores), 4, "%s: too little speech to compare" % what)
        self.assertTrue(all(score >= 0.95 for score in scores), "%s: correlations %s" % (what, scores))
