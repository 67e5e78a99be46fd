"""Media load benchmark: N real SIP calls over loopback into bench/media_server.py.

Each call is set up with INVITE/200/ACK (messages built and parsed with the
project's SIP parser), then the caller sends 20 ms PCMU packets of speech and a key
press every ``--digit-interval`` seconds, as RFC 4733 telephone-events on calls
that offered telephone-event and as in-band tones on the others, while the server
plays a looped prompt back. All calls share one caller RTP port (the SDP of every
INVITE names it), so the load generator reads everything from one socket with
kernel receive timestamps (SO_TIMESTAMPNS): on loopback those are the moments the
server's sendto() ran.

Reported for the server process over a measurement window in steady state:
CPU per session, send-interval deviation from 20 ms (p50, p99, max), packets lost
and late (more than 40 ms behind the stream's schedule) in both directions, digits
detected vs sent, memory per session, and sessions per core derived from them.
The server and this generator are pinned to different cores. With ``--churn R``,
R calls a second are hung up during the window and replaced by new ones (each one
with no key in flight), so set-up, tear-down and the garbage collector's work are
measured too, as on a live system where calls come and go.

    python3 bench/media_load.py --calls 250,500,1000 --window 30
    python3 bench/media_load.py --calls 1000 --io batched --profile /tmp/server.txt
    python3 bench/media_load.py --server twistd --calls 1000 --churn 10
"""

import argparse
import difflib
import json
import os
import random
import select
import socket
import struct
import subprocess
import sys
import time
import uuid
import wave
from array import array

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))

from portaum_tx.rtp import tones  # noqa: E402
from portaum_tx.rtp.codecs import PCMU  # noqa: E402
from portaum_tx.rtp.dtmf import telephone_event_payloads  # noqa: E402
from portaum_tx.sip.message import Request, Response, parse_message  # noqa: E402
from portaum_tx.sip.sdp import parse_sdp, read_answer  # noqa: E402

SO_TIMESTAMPNS = 35
TIMESPEC = struct.Struct("=qq")
RTP_HEADER = struct.Struct("!BBHII")
TICK = 0.020
FRAME = 160
EVENT_PT = 101
LATE_SECONDS = 0.040  # behind schedule by more than a two-frame jitter buffer holds
DIGITS = "0123456789*#"


def speech_frames() -> list[bytes]:
    path = os.path.join(HERE, "..", "tests", "rtp", "data", "alsa_voices_8k.wav")
    with wave.open(path) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int16)
    pcm = pcm[: len(pcm) // FRAME * FRAME]
    encoded = PCMU.encode(pcm)
    return [encoded[i:i + FRAME] for i in range(0, len(encoded), FRAME)]


def inband_frames(digit: str) -> list[bytes]:
    pcm = np.concatenate([tones.silence(40), tones.dtmf(digit, 100), tones.silence(60)])
    encoded = PCMU.encode(pcm)
    return [encoded[i:i + FRAME] for i in range(0, len(encoded), FRAME)]


class Call:
    def __init__(self, index: int, rfc4733: bool, rng: random.Random):
        self.index = index
        self.call_id = "%s@bench" % uuid.uuid4().hex
        self.tag = uuid.uuid4().hex[:10]
        self.rfc4733 = rfc4733
        self.state = "inviting"
        self.invite: Request | None = None
        self.offer = None
        self.to_header = None
        self.invite_sent = 0.0
        self.invite_tries = 0
        self.bye_sent = 0.0
        self.bye_tries = 0
        self.server_rtp: tuple[str, int] | None = None
        self.ssrc = rng.getrandbits(32)
        self.seq = rng.getrandbits(16)
        self.timestamp = rng.getrandbits(32)
        self.audio_pos = rng.randrange(1000)
        self.next_digit_tick = 0
        self.last_digit_tick = -10_000
        self.digit_index = index % len(DIGITS)
        self.pending: list[tuple[int, bool, bytes, int | None]] = []  # (pt, marker, payload, event ts)
        self.sent_digits: list[str] = []
        self.answered_at = 0.0
        # receive side: the server's stream
        self.last_seq = None
        self.last_arrival = 0.0
        self.first_seq = None
        self.first_arrival = 0.0
        self.lateness_min = None
        self.lateness: list[float] = []
        self.received = 0
        self.lost = 0


class LoadGenerator:
    def __init__(self, args, server_address):
        self.args = args
        self.server = server_address
        self.rng = random.Random(args.seed)
        self.sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sip.bind((args.address, 0))
        self.sip.setblocking(False)
        self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.rtp.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
        self.rtp.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        for port in range(args.rtp_port, args.rtp_port + 200, 2):
            try:
                self.rtp.bind((args.address, port))
                break
            except OSError:
                continue
        self.rtp.setblocking(False)
        self.rtp_port = self.rtp.getsockname()[1]
        self.rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.rtcp.bind((args.address, self.rtp_port + 1))
        except OSError:
            self.rtcp.bind((args.address, 0))
        self.rtcp.setblocking(False)
        self.sip_port = self.sip.getsockname()[1]
        self.calls: list[Call] = []
        self.by_call_id: dict[str, Call] = {}
        self.by_port: dict[int, Call] = {}
        self.speech = speech_frames()
        self.inband = {d: inband_frames(d) for d in DIGITS}
        self.events = {d: telephone_event_payloads(d, 100) for d in DIGITS}
        self.measuring = False
        self.deviations = array("d")
        self.generator_late_ticks = 0
        self.tick_no = 0
        self.digits_allowed = True  # no key press starts in the last second before hang-up
        self.sip_errors: dict[str, int] = {}

    # --- SIP ---------------------------------------------------------------------------

    def _headers(self, call: Call, method: str, cseq: int, to: str) -> list:
        return [("Via", "SIP/2.0/UDP %s:%d;branch=z9hG4bK%s;rport" % (self.args.address, self.sip_port,
                                                                  uuid.uuid4().hex[:16])),
                ("Max-Forwards", "70"),
                ("From", "<sip:caller%d@%s>;tag=%s" % (call.index, self.args.address, call.tag)),
                ("To", to), ("Call-ID", call.call_id), ("CSeq", "%d %s" % (cseq, method)),
                ("Contact", "<sip:caller%d@%s:%d>" % (call.index, self.args.address, self.sip_port))]

    def send_invite(self, call: Call, now: float) -> None:
        if call.invite is None:
            formats = "0 101" if call.rfc4733 else "0"
            sdp = ("v=0\r\no=bench %d 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\n"
                   "m=audio %d RTP/AVP %s\r\na=rtpmap:0 PCMU/8000\r\n" %
                   (call.index + 1, self.args.address, self.args.address, self.rtp_port, formats))
            if call.rfc4733:
                sdp += "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n"
            sdp += "a=ptime:20\r\na=sendrecv\r\n"
            call.offer = parse_sdp(sdp)
            uri = "sip:%s@%s:%d" % (self.args.number, self.server[0], self.server[1])
            headers = self._headers(call, "INVITE", 1, "<%s>" % uri) + [("Content-Type", "application/sdp")]
            call.invite = Request("INVITE", uri, headers, sdp.encode())
        self.sip.sendto(call.invite.serialize(), self.server)
        call.invite_sent = now
        call.invite_tries += 1

    def send_ack(self, call: Call) -> None:
        uri = "sip:%s@%s:%d" % (self.args.number, self.server[0], self.server[1])
        ack = Request("ACK", uri, self._headers(call, "ACK", 1, call.to_header))
        self.sip.sendto(ack.serialize(), self.server)

    def send_bye(self, call: Call, now: float) -> None:
        uri = "sip:%s@%s:%d" % (self.args.number, self.server[0], self.server[1])
        bye = Request("BYE", uri, self._headers(call, "BYE", 2, call.to_header))
        self.sip.sendto(bye.serialize(), self.server)
        call.bye_sent = now
        call.bye_tries += 1

    def read_sip(self, now: float) -> None:
        while True:
            try:
                data, addr = self.sip.recvfrom(65535)
            except BlockingIOError:
                return
            try:
                message = parse_message(data)
            except Exception:
                self.sip_errors["unparsable"] = self.sip_errors.get("unparsable", 0) + 1
                continue
            call = self.by_call_id.get(message.call_id)
            if isinstance(message, Request):
                # BYE from the server (dead peer) or anything else in the dialog: 200
                reply = Response(200, None, [(name, message.get(name)) for name in
                                             ("Via", "From", "To", "Call-ID", "CSeq")])
                self.sip.sendto(reply.serialize(), addr)
                if call is not None and message.method == "BYE":
                    call.state = "ended-by-server"
                continue
            if call is None:
                continue
            method = message.cseq.method
            if method == "INVITE":
                if message.status < 200:
                    continue
                if message.status >= 300:
                    call.state = "failed %d" % message.status
                    self.sip_errors[str(message.status)] = self.sip_errors.get(str(message.status), 0) + 1
                    continue
                call.to_header = message.get("To")
                self.send_ack(call)  # also for a retransmitted 200
                if call.state == "inviting":
                    audio = read_answer(call.offer, parse_sdp(message.body)).audio
                    call.server_rtp = (audio.remote_address, audio.remote_port)
                    self.by_port[audio.remote_port] = call
                    call.state = "up"
                    call.answered_at = now
                    call.next_digit_tick = self.tick_no + int(
                        (1.0 + self.rng.random() * self.args.digit_interval) / TICK)
            elif method == "BYE" and message.status >= 200:
                call.state = "ended"

    # --- RTP ---------------------------------------------------------------------------

    def send_tick(self) -> None:
        self.tick_no += 1
        tick_no = self.tick_no
        sendto = self.rtp.sendto
        pack = RTP_HEADER.pack
        speech = self.speech
        nspeech = len(speech)
        for call in self.calls:
            if call.state != "up":
                continue
            if not call.pending and tick_no >= call.next_digit_tick and self.digits_allowed:
                digit = DIGITS[call.digit_index % len(DIGITS)]
                call.digit_index += 1
                call.sent_digits.append(digit)
                call.last_digit_tick = tick_no
                call.next_digit_tick = tick_no + int(self.args.digit_interval / TICK)
                if call.rfc4733:
                    call.pending = [(EVENT_PT, marker, payload, call.timestamp)
                                    for marker, payload in self.events[digit]]
                else:
                    call.pending = [(0, False, frame, None) for frame in self.inband[digit]]
            if call.pending:
                pt, marker, payload, event_ts = call.pending.pop(0)
                ts = call.timestamp if event_ts is None else event_ts
            else:
                pt, marker, ts = 0, False, call.timestamp
                payload = speech[call.audio_pos % nspeech]
                call.audio_pos += 1
            sendto(pack(0x80, (0x80 if marker else 0) | pt, call.seq, ts, call.ssrc) + payload,
                   call.server_rtp)
            call.seq = (call.seq + 1) & 0xFFFF
            call.timestamp = (call.timestamp + FRAME) & 0xFFFFFFFF

    def read_rtp(self) -> None:
        recvmsg = self.rtp.recvmsg
        unpack_ts = TIMESPEC.unpack
        by_port = self.by_port
        deviations = self.deviations
        measuring = self.measuring
        while True:
            try:
                data, ancillary, _flags, addr = recvmsg(256, 64)
            except BlockingIOError:
                return
            call = by_port.get(addr[1])
            if call is None or len(data) < 12:
                continue
            arrival = time.time()
            for level, kind, value in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    seconds, nanos = unpack_ts(value[:16])
                    arrival = seconds + nanos * 1e-9
            seq = (data[2] << 8) | data[3]
            if not measuring:
                call.last_seq = seq
                call.last_arrival = arrival
                continue
            call.received += 1
            if call.first_seq is None:
                call.first_seq, call.first_arrival = seq, arrival
            else:
                lateness = arrival - call.first_arrival - ((seq - call.first_seq) & 0xFFFF) * TICK
                call.lateness.append(lateness)
            if call.last_seq is not None:
                gap = (seq - call.last_seq) & 0xFFFF
                if gap == 1:
                    deviations.append(abs(arrival - call.last_arrival - TICK))
                elif 1 < gap < 1000:
                    call.lost += gap - 1
            call.last_seq = seq
            call.last_arrival = arrival

    def drain_rtcp(self) -> None:
        while True:
            try:
                self.rtcp.recvfrom(2048)
            except BlockingIOError:
                return

    # --- running -----------------------------------------------------------------------

    def run(self, calls: int, on_window) -> dict:
        args = self.args
        rfc_count = int(round(calls * (1 - args.inband_fraction)))
        order = [True] * rfc_count + [False] * (calls - rfc_count)
        self.rng.shuffle(order)
        for index, rfc4733 in enumerate(order):
            call = Call(index, rfc4733, self.rng)
            self.calls.append(call)
            self.by_call_id[call.call_id] = call
        poller = select.epoll()
        for sock in (self.sip, self.rtp, self.rtcp):
            poller.register(sock.fileno(), select.EPOLLIN)
        start = time.monotonic()
        next_tick = start + TICK
        next_invite = start
        invited = 0
        phase = "setup"
        window_start = window_end = None
        setup_deadline = start + calls / args.rate + 30
        result = {}
        while True:
            now = time.monotonic()
            if now >= next_tick:
                behind = int((now - next_tick) / TICK)
                if behind:
                    self.generator_late_ticks += behind
                    next_tick += behind * TICK
                self.send_tick()
                next_tick += TICK
            if phase == "setup":
                while invited < calls and now >= next_invite:
                    self.send_invite(self.calls[invited], now)
                    invited += 1
                    next_invite += 1.0 / args.rate
                for call in self.calls[:invited]:
                    if call.state == "inviting" and now - call.invite_sent > 1.0 * call.invite_tries:
                        if call.invite_tries < 5:
                            self.send_invite(call, now)
                up = sum(1 for c in self.calls if c.state == "up")
                done = all(c.state != "inviting" for c in self.calls[:invited])
                if invited == calls and done or now > setup_deadline:
                    phase = "warmup"
                    warm_until = now + args.warmup
                    result["answered"] = up
                    result["setup_seconds"] = round(now - start, 2)
            elif phase == "warmup" and now >= warm_until:
                phase = "window"
                self.measuring = True
                self.generator_late_ticks = 0
                window_start = now
                window_end = now + args.window
                next_churn = now + 1.0 / args.churn if args.churn else None
                on_window("start")
            elif phase == "window" and now >= window_end - 1.0 and self.digits_allowed:
                self.digits_allowed = False
            elif phase == "window" and args.churn and now >= next_churn:
                next_churn = max(next_churn + 1.0 / args.churn, now - 1.0)
                self.replace_a_call(now)
            elif phase == "window" and now >= window_end:
                self.measuring = False
                result["generator_late_ticks"] = self.generator_late_ticks
                on_window("end")
                phase = "teardown"
                for call in self.calls:
                    if call.state == "up":
                        call.state = "hanging-up"
                        self.send_bye(call, now)
                teardown_deadline = now + 10
            if phase == "window":
                for call in self.calls[calls:]:
                    if call.state == "inviting" and now - call.invite_sent > 1.0 * call.invite_tries:
                        if call.invite_tries < 5:
                            self.send_invite(call, now)
            if phase == "teardown":
                pending = [c for c in self.calls if c.state == "hanging-up"]
                for call in pending:
                    if now - call.bye_sent > 1.0 * call.bye_tries and call.bye_tries < 5:
                        self.send_bye(call, now)
                if not pending or now > teardown_deadline:
                    break
            timeout = max(0.0, min(next_tick - time.monotonic(), 0.005))
            for fd, _ in poller.poll(timeout):
                if fd == self.rtp.fileno():
                    self.read_rtp()
                elif fd == self.sip.fileno():
                    self.read_sip(time.monotonic())
                else:
                    self.drain_rtcp()
        result["window_seconds"] = round(window_end - window_start, 2) if window_start else 0
        result["replaced"] = len(self.calls) - calls
        result["answered_total"] = result.get("answered", 0) + sum(
            1 for c in self.calls[calls:] if c.answered_at)
        return result

    def replace_a_call(self, now: float) -> None:
        """Churn: hang up the longest-running call that has no key in flight (none
        sent in the last second, none due in the next) and call in anew."""
        quiet_ticks = int(1.0 / TICK)
        for call in sorted((c for c in self.calls if c.state == "up"), key=lambda c: c.answered_at):
            if (not call.pending and self.tick_no - call.last_digit_tick > quiet_ticks
                    and call.next_digit_tick - self.tick_no > quiet_ticks):
                break
        else:
            return
        call.state = "hanging-up"
        self.send_bye(call, now)
        fresh = Call(len(self.calls), call.rfc4733, self.rng)
        self.calls.append(fresh)
        self.by_call_id[fresh.call_id] = fresh
        self.send_invite(fresh, now)


# --- the server process ------------------------------------------------------------------


def proc_cpu_seconds(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of the process (all its threads)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def proc_rss_kib(pid: int) -> int:
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def core_busy_and_softirq(core: int) -> tuple[float, float]:
    """Seconds the core spent busy, and of them in softirq, since boot (/proc/stat).
    Loopback delivery of the server's packets to the generator runs as softirq work
    inside the server's sendto(); with IRQ time accounting the kernel does not charge
    it to the process, so the process CPU alone undercounts what the media costs."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu%d " % core):
                ticks = [int(v) for v in line.split()[1:]]
                idle = ticks[3] + ticks[4]
                hz = os.sysconf("SC_CLK_TCK")
                return (sum(ticks[:8]) - idle) / hz, ticks[6] / hz
    return 0.0, 0.0


def cpu_pressure() -> float:
    """The share of the last 10 s in which some runnable task waited for a CPU (PSI)."""
    try:
        with open("/proc/pressure/cpu") as f:
            return float(f.readline().split()[1].split("=")[1])
    except (OSError, IndexError, ValueError):
        return -1.0


def wait_for_quiet(limit: float, patience: float) -> float:
    """Wait (up to ``patience`` seconds) until other work on the machine leaves the
    CPUs mostly free; the benchmark's own figures mean little on a busy machine."""
    deadline = time.monotonic() + patience
    while cpu_pressure() > limit and time.monotonic() < deadline:
        time.sleep(2)
    return cpu_pressure()


def control(address, command: bytes, timeout: float = 10.0) -> bytes:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
    sock.settimeout(timeout)
    try:
        sock.sendto(command, address)
        pieces = []
        while True:
            data, _ = sock.recvfrom(65535)
            if data in (b"end", b"ok"):
                return b"".join(pieces) if pieces else data
            pieces.append(data)
    finally:
        sock.close()


def free_tcp_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


OFF = ["imap.port", "imap.tls_port", "pop3.port", "pop3.tls_port", "smtp.port", "smtp.submission_port"]


def start_twistd(args) -> tuple[subprocess.Popen, str, int]:
    """``twistd -n portaum`` in a fresh working directory, with an access number routed
    to bench/media_app.py's application; returns the process and the digits file."""
    import tempfile
    import urllib.request
    workdir = tempfile.mkdtemp(prefix="portaum-media-bench-")
    results = os.path.join(workdir, "digits.jsonl")
    web_port = free_tcp_port()
    settings = ["storage.data_dir=%s" % workdir, "sip.listen_address=%s" % args.address,
                "sip.udp_port=%d" % args.sip_port, "sip.tcp_port=%d" % args.sip_port,
                "sip.domain=%s" % args.address, "sip.max_calls=5000",
                "rtp.port_min=40000", "rtp.port_max=49999",
                "web.port=%d" % web_port, "web.listen_address=127.0.0.1",
                "rtp.send_ahead=%d" % args.send_ahead,
                "rtp.prompt_ahead=%d" % args.prompt_ahead] + ["%s=0" % o for o in OFF] + args.server_set
    overrides = [item for setting in settings for item in ("--set", setting)]
    env = dict(os.environ, PYTHONPATH=os.path.join(HERE, ".."))
    subprocess.run([sys.executable, "-m", "portaum_tx.admin", *overrides, "access-number", "add",
                    args.number, "media-bench", "-o", "results=%s" % results],
                   check=True, env=env, cwd=workdir, stdout=subprocess.DEVNULL)
    wrapper = ("import sys; sys.path.insert(0, %r); import media_app; "
               "from twisted.scripts.twistd import run; run()" % HERE)
    command = ["taskset", "-c", str(args.server_core), sys.executable, "-c", wrapper,
               "-n", "--pidfile=", "portaum", *overrides]
    process = subprocess.Popen(command, cwd=workdir, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("twistd exited with %s; see %s" % (process.returncode, workdir))
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/health" % web_port, timeout=2):
                return process, results, web_port
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("twistd did not become ready")


def twistd_media(web_port: int) -> dict | None:
    """The media block of twistd's /health (dropped ticks, the pacer's late batches),
    with the garbage collector's pauses (``gc``) added to it."""
    import urllib.request
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/health" % web_port, timeout=10) as r:
            health = json.load(r)
    except OSError:
        return None
    media = health.get("media")
    if media is not None and "gc" in health:
        media = dict(media, gc=health["gc"])
    return media


def media_in_window(start: dict | None, end: dict | None) -> dict | None:
    if not start or not end:
        return None
    window = {"skipped_ticks": end["skipped_ticks"] - start["skipped_ticks"],
              "ticks": end["ticks"] - start["ticks"]}
    if "pacer" in end:
        window["late_batches"] = end["pacer"]["late_batches"] - start["pacer"]["late_batches"]
        window["pacer_scheduling"] = end["pacer"]["scheduling"]
        window["max_late_ms_since_start"] = end["pacer"]["max_late_ms"]
    if "gc" in end and "gc" in start:
        # full collections in the window, and the longest pause since start
        window["gc_collections"] = [b - a for a, b in zip(start["gc"]["collections"], end["gc"]["collections"])]
        window["gc_full_pause_ms"] = [round(b - a, 1) for a, b in zip(start["gc"]["total_pause_ms"], end["gc"]["total_pause_ms"])][2]
        window["gc_max_pause_ms_since_start"] = end["gc"]["max_pause_ms"]
        window["gc_max_pause_ms_before_window"] = start["gc"]["max_pause_ms"]
        window["gc_collected"] = end["gc"]["collected"] - start["gc"]["collected"]
        window["gc_frozen_at_end"] = end["gc"].get("frozen")
        window["gc_survivor_freezes"] = end["gc"].get("survivor_freeze", {}).get("freezes")
    return window


def start_server(args) -> subprocess.Popen:
    command = ["taskset", "-c", str(args.server_core), sys.executable,
               os.path.join(HERE, "media_server.py"), "--address", args.address,
               "--sip-port", str(args.sip_port), "--control-port", str(args.control_port),
               "--io", args.io, "--send-ahead", str(args.send_ahead),
               "--prompt-ahead", str(args.prompt_ahead)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    if line.strip() != "ready":
        process.kill()
        raise SystemExit("the benchmark server did not start: %r" % line)
    return process


def percentile(values: np.ndarray, p: float):
    return round(float(np.percentile(values, p)) * 1000, 3) if len(values) else None


def run_one(args, calls: int) -> dict:
    pressure_before = wait_for_quiet(args.quiet, args.patience)
    results_file = None
    if args.server == "twistd":
        server, results_file, web_port = start_twistd(args)
    else:
        server = start_server(args)
    pid = server.pid
    control_address = (args.address, args.control_port)
    try:
        time.sleep(1.0)
        rss_idle = proc_rss_kib(pid)
        generator = LoadGenerator(args, (args.address, args.sip_port))
        marks = {}
        media_marks = {}
        profiler = []

        def on_window(what):
            marks[what] = (time.monotonic(), proc_cpu_seconds(pid), proc_rss_kib(pid), cpu_pressure(),
                           core_busy_and_softirq(args.server_core))
            if results_file is not None:
                media_marks[what] = twistd_media(web_port)
            if what == "start":
                if results_file is None:
                    if args.gc_freeze:
                        control(control_address, b"freeze")
                    control(control_address, b"ticks")
                if args.profile:
                    profiler.append(subprocess.Popen(
                        ["taskset", "-c", str(args.load_core), "py-spy", "record", "-p", str(pid),
                         "-d", str(max(1, int(args.window) - 2)), "-r", "50", "--format", "raw",
                         "-o", args.profile] + (["--native"] if args.profile_native else []), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        result = generator.run(calls, on_window)
        if results_file is None:
            stats = json.loads(control(control_address, b"stats"))
        else:
            # the application writes its line when it has seen the BYE: wait for every
            # answered call's line (a thousand hang-ups take twistd a few seconds)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if os.path.exists(results_file):
                    with open(results_file) as f:
                        if sum(1 for _ in f) >= result.get("answered_total", 0):
                            break
                time.sleep(0.5)
            stats = {"calls": [], "tick_ms": None, "gc": None, "autogroup": None, "skipped_ticks": None}
            with open(results_file) as f:
                for line in f:
                    record = json.loads(line)
                    stats["calls"].append(dict(record, lost=0, late=0))
        for p in profiler:
            p.wait(timeout=60)
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
    (t0, cpu0, _, _, core0), (t1, cpu1, rss1, pressure_after, core1) = marks["start"], marks["end"]
    cpu_fraction = (sum(cpu1) - sum(cpu0)) / (t1 - t0)
    user_fraction = (cpu1[0] - cpu0[0]) / (t1 - t0)
    core_busy = (core1[0] - core0[0]) / (t1 - t0)
    core_softirq = (core1[1] - core0[1]) / (t1 - t0)
    answered = result.get("answered", 0)
    deviations = np.frombuffer(generator.deviations, dtype=np.float64)
    up_calls = [c for c in generator.calls if c.received]
    late = 0
    for call in up_calls:
        lateness = np.asarray(call.lateness)
        if len(lateness):
            late += int(np.count_nonzero(lateness - lateness.min() > LATE_SECONDS))
    server_calls = {c["call_id"]: c for c in stats["calls"]}
    sent = detected = missing = extra = 0
    by_kind = {"rfc4733": [0, 0], "inband": [0, 0]}
    mismatches = []  # a few calls whose keys were not heard as sent, to look into
    for call in generator.calls:
        record = server_calls.get(call.call_id)
        heard = record["digits"] if record else ""
        want = "".join(call.sent_digits)
        # matched in order (longest common subsequence), so one lost key does not
        # count every later one as wrong
        match = sum(block.size for block in
                    difflib.SequenceMatcher(None, want, heard, autojunk=False).get_matching_blocks())
        sent += len(want)
        detected += match
        missing += len(want) - match
        extra += len(heard) - match
        if want != heard and len(mismatches) < 8:
            mismatches.append({"call_id": call.call_id, "sent": want, "heard": heard,
                               "reported": record.get("reported") if record else None,
                               "jitter": record.get("jitter") if record else None})
        kind = by_kind["rfc4733" if call.rfc4733 else "inband"]
        kind[0] += len(want)
        kind[1] += match
    jitter_totals = {}
    for record in stats["calls"]:
        for key, value in (record.get("jitter") or {}).items():
            jitter_totals[key] = jitter_totals.get(key, 0) + value
    inbound_lost = sum(c["lost"] for c in stats["calls"]) if results_file is None else None
    inbound_late = sum(c["late"] for c in stats["calls"]) if results_file is None else None
    expected = sum(c.received + c.lost for c in up_calls)
    return {
        "calls": calls, "answered": answered, "server": args.server, "digit_mismatches": mismatches,
        "server_jitter_buffers": jitter_totals or None,
        "churn_per_second": args.churn, "replaced": result.get("replaced", 0),
        "replacements_answered": result.get("answered_total", answered) - answered,
        "io": args.io if args.server == "bench" else "twistd default (batched)", "setup_seconds": result.get("setup_seconds"),
        "window_seconds": round(t1 - t0, 2),
        "server_cpu_cores": round(cpu_fraction, 3),
        "server_cpu_user_system": [round(user_fraction, 3), round(cpu_fraction - user_fraction, 3)],
        "server_core_busy": round(core_busy, 3), "server_core_softirq": round(core_softirq, 3),
        "cpu_ms_per_session_second": round(cpu_fraction * 1000 / max(1, answered), 4),
        "sessions_per_core": int(answered / cpu_fraction) if cpu_fraction else None,
        "send_interval_dev_ms": {"p50": percentile(deviations, 50), "p99": percentile(deviations, 99),
                                 "max": round(float(deviations.max()) * 1000, 3) if len(deviations) else None,
                                 "intervals": int(len(deviations))},
        "outbound_lost": sum(c.lost for c in up_calls), "outbound_late": late,
        "outbound_expected": expected,
        "inbound_lost": inbound_lost, "inbound_late": inbound_late,
        "digits_sent": sent, "digits_detected": detected, "digits_missing": missing,
        "digits_extra": extra, "digits_by_kind": by_kind,
        "rss_idle_mib": round(rss_idle / 1024, 1), "rss_loaded_mib": round(rss1 / 1024, 1),
        "memory_kib_per_session": round((rss1 - rss_idle) / max(1, answered), 1),
        "server_tick_ms": stats["tick_ms"],
        "server_tick_start_late_ms": stats.get("tick_start_late_ms"),
        "server_send_start_late_ms": stats.get("send_start_late_ms"), "server_gc": stats["gc"], "server_autogroup": stats["autogroup"], "server_skipped_ticks": stats["skipped_ticks"],
        "generator_late_ticks": result.get("generator_late_ticks"),
        "sip_errors": generator.sip_errors,
        "realtime": args.realtime, "send_ahead_ms": args.send_ahead, "prompt_ahead_ms": args.prompt_ahead, "server_pacer": stats.get("pacer"), "twistd_media": media_in_window(media_marks.get("start"), media_marks.get("end")), "gc_freeze": args.gc_freeze, "server_set": args.server_set, "cpu_pressure_before": pressure_before, "cpu_pressure_after": pressure_after,
    }


def prioritise(nice: int) -> None:
    """Run this generator and the server it starts ahead of other work on the machine.
    With autogroup scheduling, nice only ranks tasks inside one session, so the
    benchmark gets a session of its own and that session's autogroup gets the nice."""
    try:
        os.setsid()
    except OSError:
        pass  # already a session leader
    try:
        with open("/proc/self/autogroup", "w") as f:
            f.write(str(nice))
    except OSError:
        pass
    os.nice(nice)


def realtime(priority: int) -> None:
    """SCHED_FIFO for this generator and (inherited) the server: telephony media
    processes commonly run so. The kernel still leaves other work 5% of each CPU
    (sched_rt_runtime_us), and neither process spins."""
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", default="1000", help="comma-separated session counts, one run each")
    parser.add_argument("--window", type=float, default=30.0, help="measurement window, seconds")
    parser.add_argument("--churn", type=float, default=0.0,
                        help="calls hung up and replaced by new ones per second in the window "
                             "(0: the same calls throughout)")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=100.0, help="new calls per second")
    parser.add_argument("--digit-interval", type=float, default=3.0)
    parser.add_argument("--inband-fraction", type=float, default=0.5)
    parser.add_argument("--server", choices=("bench", "twistd"), default="bench",
                        help="bench/media_server.py (UA and media engine only) or twistd -n portaum")
    parser.add_argument("--io", choices=("reactor", "batched"), default="reactor",
                        help="RTP reads of bench/media_server.py (twistd: its [rtp] batched_reads, yes by default)")
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--number", default="8000")
    parser.add_argument("--sip-port", type=int, default=25060)
    parser.add_argument("--control-port", type=int, default=25059)
    parser.add_argument("--rtp-port", type=int, default=24000)
    parser.add_argument("--server-core", type=int, default=1)
    parser.add_argument("--load-core", type=int, default=0)
    parser.add_argument("--nice", type=int, default=-10,
                        help="niceness of this generator and (inherited) the server, ahead of other work")
    parser.add_argument("--realtime", type=int, default=0,
                        help="SCHED_FIFO priority for generator and server (0: normal scheduling)")
    parser.add_argument("--send-ahead", type=int, default=60,
                        help="ms of RTP the server prepares ahead and its pacer thread sends on "
                             "time ([rtp] send_ahead, 60 by default; 0: the media tick sends)")
    parser.add_argument("--prompt-ahead", type=int, default=0,
                        help="ms of prompt audio the server prepares ahead ([rtp] prompt_ahead, "
                             "0 by default; at most --send-ahead: none)")
    parser.add_argument("--server-set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="twistd: one more --set for the server (repeatable), e.g. rtp.gc_freeze=no")
    parser.add_argument("--gc-freeze", action="store_true",
                        help="experiment: gc.freeze() in the bench server once the calls are up")
    parser.add_argument("--quiet", type=float, default=15.0,
                        help="wait until CPU pressure (PSI some avg10, %%) is below this")
    parser.add_argument("--patience", type=float, default=120.0, help="but no longer than this")
    parser.add_argument("--profile", help="py-spy raw profile of the server over the window")
    parser.add_argument("--profile-native", action="store_true",
                        help="with --profile: sample C frames too (the extension, numpy, the kernel entry)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", help="append each run's figures to this file")
    args = parser.parse_args()
    if args.churn < 0:
        parser.error("--churn must not be negative")
    os.sched_setaffinity(0, {args.load_core})
    if args.nice:
        prioritise(args.nice)
    if args.realtime:
        realtime(args.realtime)
    for count in [int(c) for c in args.calls.split(",")]:
        figures = run_one(args, count)
        print(json.dumps(figures), flush=True)
        if args.json:
            with open(args.json, "a") as f:
                f.write(json.dumps(figures) + "\n")


if __name__ == "__main__":
    main()
