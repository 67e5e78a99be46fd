"""Voicemail as a subscriber meets it: the whole server (``twistd portaum``) and real peers
only.

The provisioning is portaum-admin's commands (run through its entry point in this process).
A baresip phone registers and subscribes to message waiting (RFC 3842), calls its own
mailbox, hears the greeting start, skips the rest of it with # (an RFC 4733
telephone-event) and says a few seconds of recorded speech; when its audio file runs out it
hangs up. Its light turns on. Python's imaplib then fetches the message: the attachment
(WAV, or MP3 with the other preference) decodes with libsndfile to audio that matches what
the phone sent. A second call, to the voicemail-pin access number, signs in with mailbox
number and PIN keyed as telephone-events, hears the message, deletes it, and the light goes
off.

baresip (Debian, 1.0) runs headless: audio source aufile (a WAV written for each call),
player aubridge (a virtual device; Debian's aufile has no player), the sndfile filter
dumping what it decoded to ``dump-*-dec.wav``. The test listens to that dump as it grows to
know which prompt the phone is hearing, and keys only then (collecting a PIN forgets keys
pressed before its prompt).
"""

from __future__ import annotations

import email
import email.policy
import functools
import glob
import imaplib
import io
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import wave

import numpy as np
import soundfile
import soxr
from twisted.internet import defer, reactor, task, threads
from twisted.trial import unittest

from portaum_tx.admin import execute

from tests.rtp.test_interop_baresip import free_udp_port
from tests.sip.live import baresip_binary, free_port, free_port_for_phone, spawn
from tests.sip.test_interop_server import _options_answered
from tests.support import require_peer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPEECH = os.path.join(ROOT, "tests", "rtp", "data", "alsa_voices_8k.wav")
PROMPTS = os.path.join(ROOT, "prompts", "en")
TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]
RATE = 8000
WINDOW = RATE // 2          # compared in half-second windows
RECOGNISED = RATE * 2 // 5  # a prompt is recognised by 0.4 s of it
#: What the phone may hear in these calls (docs/voicemail.md), to tell the prompts apart.
HEARD_PROMPTS = (
    "vm-the-person-at", "vm-is-unavailable", "vm-leave-message", "vm-message-too-short",
    "vm-message-sent", "goodbye", "enter-mailbox", "enter-pin", "no-input", "login-incorrect",
    "too-many-attempts", "vm-mailbox-locked", "you-have", "vm-new-message", "vm-new-messages",
    "and", "vm-saved-message", "vm-saved-messages", "vm-no-messages", "vm-main-menu",
    "vm-no-new-messages", "invalid", "vm-message", "vm-received", "vm-from",
    "vm-unknown-caller", "vm-message-menu", "vm-message-deleted", "vm-no-more-messages",
    "vm-first-message", *"0123456789")
ACCESS_NUMBER = "800"       # voicemail-pin: mailbox number, then PIN
PASSWORD = "secret1234"
PIN = "4545"
#: Quiet before the phone speaks: the greeting starts, # stops it, the tone plays, and
#: recording has begun well before the words do.
LEAD_IN = 3.0

PHONE_CONFIG = """poll_method\t\tepoll
sip_listen\t\t127.0.0.1:{sip_port}
rtp_ports\t\t{rtp_low}-{rtp_high}
call_local_timeout\t30
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
module_app\t\tmwi.so
"""


def sleep(seconds: float) -> defer.Deferred:
    return task.deferLater(reactor, seconds, lambda: None)


def read_speech() -> np.ndarray:
    with wave.open(SPEECH) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (RATE, 1, 2)
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int16)


def write_wav(path: str, pcm: np.ndarray) -> None:
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.astype("<i2").tobytes())


def prompt_pcm(name: str) -> np.ndarray:
    """A shipped prompt (u-law .au) as 16-bit PCM, read by libsndfile."""
    pcm, rate = soundfile.read(os.path.join(PROMPTS, name + ".au"), dtype="int16")
    assert rate == RATE, name
    return pcm


def loud_window(pcm: np.ndarray, length: int = RECOGNISED) -> np.ndarray:
    """The first stretch of ``pcm`` of ``length`` samples that is speech, not pause."""
    for start in range(0, max(len(pcm) - length, 0) + 1, RATE // 20):
        piece = pcm[start:start + length]
        if np.sqrt(np.mean(piece.astype(np.float64) ** 2)) > 500:
            return piece
    return pcm[:length]


@functools.lru_cache(maxsize=None)
def signature(name: str) -> np.ndarray:
    """How the test recognises prompt ``name``: its first stretch of speech that no other
    prompt of these calls contains (many start alike: "Please enter your ...")."""
    pcm = prompt_pcm(name)
    others = [prompt_pcm(other) for other in HEARD_PROMPTS if other != name]
    for start in range(0, len(pcm) - RECOGNISED + 1, RATE // 20):
        piece = pcm[start:start + RECOGNISED]
        if np.sqrt(np.mean(piece.astype(np.float64) ** 2)) < 500:
            continue
        if all(ncc(piece, other).max(initial=0.0) < 0.7 for other in others):
            return piece
    raise AssertionError(f"prompt {name!r} has no stretch of its own")


def ncc(piece: np.ndarray, signal: np.ndarray) -> np.ndarray:
    """Normalised cross-correlation of ``piece`` at every offset of ``signal``."""
    piece = piece.astype(np.float64)
    signal = signal.astype(np.float64)
    n = len(piece)
    if len(signal) < n:
        return np.zeros(0)
    size = 1 << int(np.ceil(np.log2(len(signal) + n)))
    dots = np.fft.irfft(np.fft.rfft(signal, size) * np.conj(np.fft.rfft(piece, size)), size)
    dots = dots[: len(signal) - n + 1]
    cumulative = np.concatenate([[0.0], np.cumsum(signal ** 2)])
    energy = cumulative[n:] - cumulative[:-n]
    return dots / np.sqrt(np.maximum(energy, 1e-9) * max(float(piece @ piece), 1e-9))


def aligned_scores(reference: np.ndarray, signal: np.ndarray, slack: int = RATE // 50) -> list[float]:
    """Where ``reference`` sits in ``signal`` (the lag of the best whole-signal
    correlation), then for every half second of ``reference`` with speech in it the
    normalised correlation with ``signal`` at that lag (within ``slack`` samples)."""
    reference = reference.astype(np.float64)
    signal = signal.astype(np.float64)
    size = 1 << int(np.ceil(np.log2(len(signal) + len(reference))))
    full = np.fft.irfft(np.fft.rfft(signal, size) * np.conj(np.fft.rfft(reference, size)), size)
    lag = int(full.argmax())
    if lag > size // 2:
        lag -= size     # the reference starts before the signal
    scores = []
    for start in range(0, len(reference) - WINDOW + 1, WINDOW):
        piece = reference[start:start + WINDOW]
        if np.sqrt(np.mean(piece ** 2)) < 300:
            continue    # a pause in the speech: nothing to correlate
        low = max(start + lag - slack, 0)
        around = signal[low:start + lag + slack + WINDOW]
        found = ncc(piece, around)
        scores.append(round(float(found.max()), 3) if len(found) else 0.0)
    return scores


class Ear:
    """What a baresip phone decoded in its current call, read from its sndfile dump as it
    grows; tells when a prompt has been heard."""

    def __init__(self, directory: str, known: set[str]):
        self.directory = directory
        self.known = known
        self.path = None
        self.searched = 0

    def heard(self) -> np.ndarray:
        if self.path is None:
            fresh = sorted(set(glob.glob(os.path.join(self.directory, "dump-*-dec.wav"))) - self.known)
            if not fresh:
                return np.zeros(0, np.int16)
            self.path = fresh[0]
        with open(self.path, "rb") as f:
            data = f.read()
        start = data.find(b"data")
        if start < 0:
            return np.zeros(0, np.int16)
        body = data[start + 8:]
        return np.frombuffer(body[: len(body) // 2 * 2], dtype="<i2")

    async def until(self, name: str, seconds: float = 15.0) -> None:
        """Returns once the phone has heard prompt ``name`` (after what it heard before)."""
        await self.until_audio(signature(name), repr(name), seconds)

    async def until_audio(self, piece: np.ndarray, what: str, seconds: float = 15.0,
                          threshold: float = 0.9) -> None:
        """Returns once the phone has heard ``piece``, later in the call than what was last
        recognised."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            found = ncc(piece, self.heard()[self.searched:])
            if len(found) and found.max() >= threshold:
                self.searched += int(found.argmax()) + len(piece)
                return
            await sleep(0.1)
        raise AssertionError(f"the phone did not hear {what} within {seconds} s "
                             f"({len(self.heard()) / RATE:.1f} s of audio decoded)")


class Phone:
    """baresip registered as an account with message waiting; ``say(pcm)`` sets what it
    sends in its next call."""

    def __init__(self, test, account: str, server_port: int, rtp_ports: tuple[int, int]):
        self.dir = tempfile.mkdtemp(prefix="portaum-vm-phone-")
        test.addCleanup(shutil.rmtree, self.dir, True)
        with open(os.path.join(self.dir, "config"), "w") as f:
            f.write(PHONE_CONFIG.format(sip_port=free_port_for_phone(), rtp_low=rtp_ports[0],
                                        rtp_high=rtp_ports[1], dir=self.dir))
        with open(os.path.join(self.dir, "accounts"), "w") as f:
            f.write(f"<sip:{account}@127.0.0.1:{server_port}>;regint=600;mwi=yes;"
                    f"auth_pass={PASSWORD};audio_codecs=PCMU\n")
        self.server_port = server_port
        self.process = spawn([baresip_binary(), "-f", self.dir], path=self.dir)
        test.addCleanup(self.kill)

    def kill(self):
        if not self.process.done.called:
            try:
                self.process.transport.signalProcess("KILL")
            except Exception:
                pass
            return self.process.done

    def say(self, pcm: np.ndarray) -> None:
        write_wav(os.path.join(self.dir, "sent.wav"), pcm)

    def dial(self, number: str) -> Ear:
        ear = Ear(self.dir, set(glob.glob(os.path.join(self.dir, "dump-*-dec.wav"))))
        self.process.send(f"/dial sip:{number}@127.0.0.1:{self.server_port}\n")
        return ear

    def ended(self, number: str) -> bytes:
        """What baresip prints when its call to ``number`` is over."""
        return b"Call with sip:%s@127.0.0.1:%d terminated" % (number.encode(), self.server_port)

    async def keys(self, digits: str) -> None:
        """Keys pressed one by one: baresip sends each as an RFC 4733 telephone-event."""
        for key in digits:
            self.process.send(key)
            await sleep(0.3)

    async def quit(self):
        self.process.send("/quit\n")
        return await self.process.done

    @property
    def output(self) -> str:
        return self.process.output.decode(errors="replace")

    def lights(self) -> list[tuple[str, str]]:
        """Every message-waiting NOTIFY body the phone printed: (waiting, voice counts)."""
        return re.findall(r"Messages-Waiting: (\w+)\s+Message-Account: \S+\s+"
                          r"Voice-Message: (\d+/\d+)", self.output)


class VoicemailEndToEnd(unittest.TestCase):
    timeout = 120

    def setUp(self):
        require_peer("baresip", baresip_binary() is not None)
        self.workdir = tempfile.mkdtemp(prefix="portaum-vm-e2e-")
        self.addCleanup(shutil.rmtree, self.workdir, True)
        self.data_dir = os.path.join(self.workdir, "var")
        self.sip_port = free_port(both=True)
        self.imap_port = free_port(socket.SOCK_STREAM)
        rtp = free_udp_port(100)
        self.server_rtp, self.phone_rtp = (rtp, rtp + 59), (rtp + 60, rtp + 99)

    def settings(self) -> list[str]:
        values = {"storage.data_dir": self.data_dir,
                  "sip.listen_address": "127.0.0.1", "sip.udp_port": self.sip_port,
                  "sip.tcp_port": 0, "sip.domain": "127.0.0.1",
                  # libre 0.6 (under Debian's baresip 1.0) gives up on a SHA-256 challenge
                  "sip.digest_algorithms": "MD5",
                  "rtp.port_min": self.server_rtp[0], "rtp.port_max": self.server_rtp[1],
                  "imap.port": self.imap_port, "imap.tls_port": 0,
                  "imap.allow_plaintext_auth": "yes",   # loopback only; no certificate here
                  "web.port": 0, "pop3.port": 0, "pop3.tls_port": 0,
                  "smtp.port": 0, "smtp.submission_port": 0}
        return [item for key, value in values.items() for item in ("--set", f"{key}={value}")]

    async def admin(self, *args: str) -> None:
        """One portaum-admin command, run by the command's own entry point in this process
        (starting Python for each would only cost time)."""
        out, err = io.StringIO(), io.StringIO()
        code = await execute(["--set", f"storage.data_dir={self.data_dir}", *args], reactor,
                             out, err)
        self.assertEqual(code, 0, f"portaum-admin {' '.join(args)}: {out.getvalue()}{err.getvalue()}")

    async def provision(self, attachment_format: str) -> None:
        """What a provider types: a customer, an account with PIN, password and attachment
        format, and the number that reaches voicemail from any phone."""
        await self.admin("customer", "add", "Example")
        await self.admin("account", "add", "1001", "--customer", "Example", "--pin", PIN,
                         "--password", PASSWORD, "--attachment-format", attachment_format)
        await self.admin("access-number", "add", ACCESS_NUMBER, "voicemail-pin")

    def start_server(self) -> None:
        child = subprocess.Popen(TWISTD + ["-n", "--pidfile=", "portaum"] + self.settings(),
                                 cwd=self.workdir, env={**os.environ, "PYTHONPATH": ROOT},
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.server_output = None

        def stop():
            if self.server_output is not None:
                return
            if child.poll() is None:
                child.terminate()
                try:
                    child.wait(30)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
            self.server_output = child.stdout.read()
            child.stdout.close()
        self.stop_server = stop
        self.addCleanup(stop)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if child.poll() is not None:
                raise AssertionError("server exited: " + child.stdout.read())
            if _options_answered(self.sip_port):
                return
        raise AssertionError("the SIP listener did not answer OPTIONS")

    def fetch(self, folder: str) -> list[bytes]:
        """Every message of ``folder``, as imaplib gets it (without setting \\Seen)."""
        client = imaplib.IMAP4("127.0.0.1", self.imap_port, timeout=20)
        try:
            client.login("1001", PASSWORD)
            typ, data = client.select(folder, readonly=True)
            self.assertEqual(typ, "OK", data)
            typ, data = client.uid("SEARCH", None, "ALL")
            self.assertEqual(typ, "OK", data)
            messages = []
            for uid in data[0].split():
                typ, data = client.uid("FETCH", uid, "(BODY.PEEK[])")
                self.assertEqual(typ, "OK", data)
                messages.append(data[0][1])
            client.logout()
            return messages
        finally:
            try:
                client.shutdown()
            except OSError:
                pass

    @defer.inlineCallbacks
    def test_wav_message(self):
        # G.711 both ways and a lossless file: what was said comes back near exactly
        # (measured 1.00 in every window).
        yield defer.ensureDeferred(self.scenario("wav", "audio/wav", 0.95))

    @defer.inlineCallbacks
    def test_mp3_message(self):
        # MP3 at 32 kbit/s (16 kHz) after G.711: measured 0.96 to 0.99 per window; other
        # words of the same voice reach 0.47 at best.
        yield defer.ensureDeferred(self.scenario("mp3", "audio/mpeg", 0.9))

    async def scenario(self, attachment_format: str, content_type: str, threshold: float):
        await self.provision(attachment_format)
        await threads.deferToThread(self.start_server)
        speech = read_speech()
        words = speech[: 4 * RATE]                  # what the caller says
        other_words = speech[5 * RATE: 9 * RATE]    # the negative control
        phone = Phone(self, "1001", self.sip_port, self.phone_rtp)
        self.assertTrue(await phone.process.wait_for(b"Messages-Waiting: no", 20), phone.output)

        # Deposit: the greeting starts, # skips the rest, the caller speaks; its audio
        # file runs out and baresip hangs up.
        phone.say(np.concatenate([np.zeros(int(LEAD_IN * RATE), np.int16), words,
                                  np.zeros(RATE // 2, np.int16)]))
        ear = phone.dial("1001")
        self.assertTrue(await phone.process.wait_for(b"Call established", 10), phone.output)
        await ear.until("vm-the-person-at")
        await phone.keys("#")
        self.assertTrue(await phone.process.wait_for(phone.ended("1001"), 20), phone.output)
        self.assertTrue(await phone.process.wait_for(b"Messages-Waiting: yes", 15), phone.output)

        # The message as a mail program sees it: the attachment holds what was said.
        [raw] = await threads.deferToThread(self.fetch, "INBOX")
        message = email.message_from_bytes(raw, policy=email.policy.default)
        [attachment] = [part for part in message.iter_attachments()
                        if part.get_content_maintype() == "audio"]
        self.assertEqual(attachment.get_content_type(), content_type)
        self.assertTrue(attachment.get_filename().endswith("." + attachment_format),
                        attachment.get_filename())
        self.assertIn("1001", message["Subject"])     # the caller
        pcm, rate = soundfile.read(io.BytesIO(attachment.get_content()), dtype="float32")
        if rate != RATE:
            pcm = soxr.resample(pcm, rate, RATE)
        decoded = np.clip(pcm * 32768, -32768, 32767)
        scores = aligned_scores(words, decoded)
        self.assertGreaterEqual(len(scores), 5, "too little speech compared")
        self.assertTrue(all(score >= threshold for score in scores),
                        f"{attachment_format} attachment vs what the phone said: {scores}")
        # The measure tells other words of the same voice apart.
        control = aligned_scores(other_words, decoded)
        self.assertTrue(control and max(control) < threshold and float(np.median(control)) < 0.5,
                        f"other words vs the {attachment_format} attachment: {control}")

        # Retrieval from any phone: mailbox number and PIN, 1 new messages, 1 (replay)
        # skips the date and sender, the message plays, 3 deletes it, * leaves.
        phone.say(np.zeros(40 * RATE, np.int16))
        ear = phone.dial(ACCESS_NUMBER)
        self.assertTrue(await phone.process.wait_for(b"Call established", 10), phone.output)
        await ear.until("enter-mailbox")
        await phone.keys("1001#")
        await ear.until("enter-pin")
        await phone.keys(PIN + "#")
        await ear.until("you-have")
        await phone.keys("1")
        await ear.until("vm-message")
        await phone.keys("1")
        played_from = ear.searched
        await ear.until_audio(loud_window(words[::-1])[::-1], "its own message", 20)
        playback = aligned_scores(words, ear.heard()[played_from:])
        self.assertTrue(playback and all(score >= 0.95 for score in playback),
                        f"the message played back vs what the phone said: {playback}")
        # heard: no longer new, the light goes off
        self.assertTrue(await phone.process.wait_for(b"Voice-Message: 0/1", 10), phone.output)
        await phone.keys("3")
        await ear.until("vm-message-deleted")
        await ear.until("vm-main-menu")
        await phone.keys("*")
        await ear.until("goodbye")
        # the server hangs up
        self.assertTrue(await phone.process.wait_for(phone.ended(ACCESS_NUMBER), 10), phone.output)
        self.assertTrue(await phone.process.wait_for(b"Voice-Message: 0/0", 10), phone.output)
        lights = phone.lights()
        self.assertEqual(lights[:2], [("no", "0/0"), ("yes", "1/0")], phone.output)
        self.assertEqual(lights[-1], ("no", "0/0"), phone.output)
        self.assertEqual({waiting for waiting, _ in lights[2:]}, {"no"}, lights)
        self.assertEqual(await threads.deferToThread(self.fetch, "INBOX"), [])
        self.assertEqual(len(await threads.deferToThread(self.fetch, "Trash")), 1)
        self.assertEqual(await phone.quit(), 0)
        await threads.deferToThread(self.stop_server)
        for trouble in ("Traceback", "Unhandled"):
            self.assertNotIn(trouble, self.server_output)
