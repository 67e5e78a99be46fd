"""Inbound jitter buffer: reorders G.711 payloads by RTP timestamp and plays them out
as fixed frames, one per media tick, filling gaps with the codec's silence.

Payloads are kept as bytes keyed by their (unwrapped) timestamp. When the far end
uses the same 20 ms framing as the media tick, which is the common case, a frame is
one dict lookup; other ptimes are assembled from the overlapping packets.

``JitterBuffer`` is the C implementation from ``portaum_tx.rtp._rtpcore`` when the
extension is built, else ``PyJitterBuffer``, which stays the reference: the C type
behaves the same, packet for packet, and tests/rtp/test_jitter.py holds both to it.
"""

from __future__ import annotations

FRAME_AUDIO = 0  # every sample came from a packet
FRAME_LOST = 1  # some samples missing while later packets exist: filled with silence
FRAME_IDLE = 2  # nothing to play (not started, silence suppression, peer gone)


class PyJitterBuffer:
    def __init__(self, silence_byte: int, frame_samples: int = 160, depth_frames: int = 2,
                 max_packets: int = 64, resync_after_idle: int = 3, excess_frames: int = 3,
                 excess_pops: int = 50, max_hold_frames: int = 5):
        self.frame_samples = frame_samples
        self.depth_frames = depth_frames
        self.max_packets = max_packets
        self.resync_after_idle = resync_after_idle
        self._silence_byte = silence_byte
        self._silence = bytes([silence_byte]) * frame_samples
        self._packets: dict[int, bytes] = {}
        self._next: int | None = None  # unwrapped timestamp of the next frame to play
        self._delay = 0
        self._idle_pops = 0
        self._highest_end = 0
        self.late = 0
        self.overflows = 0  # packets dropped because max_packets were buffered already
        self.resyncs = 0
        self.dropped_frames = 0
        # A sender whose clock runs faster than ours fills the buffer slowly; when it
        # stays more than excess_frames above the target depth for excess_pops frames
        # in a row, one frame is dropped to bring the delay back.
        self._excess_limit = (depth_frames + excess_frames) * frame_samples
        self._excess_pops = excess_pops
        self._excess_run = 0
        # When the buffer runs dry, the sender is either late (its path got slower, or
        # it skipped a beat and carries on from where it was) or silent. The play-out
        # waits for it for up to max_hold_frames, so that a late packet is still played
        # (one frame of delay more) rather than dropped; if nothing comes, it was a
        # pause, and the play-out moves back onto the sender's timeline.
        if max_hold_frames < 0:
            raise ValueError("max_hold_frames must not be negative")
        self.max_hold_frames = max_hold_frames
        self._held = 0
        self.held_frames = 0

    def set_silence_byte(self, silence_byte: int) -> None:
        """The codec changed (re-INVITE): what was buffered belongs to the old one."""
        self._silence_byte = silence_byte
        self._silence = bytes([silence_byte]) * self.frame_samples
        self._packets.clear()
        self._next = None

    def reset(self) -> None:
        self._packets.clear()
        self._next = None

    def _resync(self, timestamp: int) -> None:
        self._packets.clear()
        self._next = timestamp
        self._highest_end = timestamp
        self._delay = self.depth_frames
        self._idle_pops = 0
        self._held = 0
        self.resyncs += 1

    def push(self, timestamp: int, payload: bytes) -> None:
        if not payload:
            return
        if self._next is None:
            self._resync(timestamp)
        relative = (timestamp - self._next) & 0xFFFFFFFF
        if relative >= 0x80000000:
            relative -= 1 << 32
        if self._held and relative >= self.frame_samples:
            # The play-out is waiting for a packet that has not come, and a later one
            # has: what it waited for was lost, not late. Back onto the sender's timeline.
            skipped = min(self._held, relative // self.frame_samples)
            self._held -= skipped
            self._next += skipped * self.frame_samples
            relative -= skipped * self.frame_samples
        if relative < 0 and self._delay > 0 and -relative <= self.depth_frames * self.frame_samples:
            # still filling: a reordered earlier packet moves the start back
            self._next += relative
            relative = 0
        if relative + len(payload) <= 0 or (relative < 0 and self._idle_pops >= self.resync_after_idle):
            if self._idle_pops >= self.resync_after_idle:
                self._resync(timestamp)  # the sender's clock moved back or paused
                relative = 0
            else:
                self.late += 1
                return
        if relative + len(payload) > self.max_packets * self.frame_samples:
            self._resync(timestamp)  # a jump far ahead: start over there
            relative = 0
        start = self._next + relative
        if len(self._packets) >= self.max_packets and start not in self._packets:
            # a sender piling up fragments the play-out does not consume: the buffer
            # stays bounded, the packet is dropped
            self.overflows += 1
            return
        self._packets[start] = payload
        self._highest_end = max(self._highest_end, start + len(payload))

    def pop(self) -> tuple[bytes, int]:
        """The next frame of codes and its FRAME_* status."""
        if self._next is None or self._delay > 0:
            if self._delay > 0:
                self._delay -= 1
            return self._silence, FRAME_IDLE
        start = self._next
        size = self.frame_samples
        if self._highest_end - start > self._excess_limit:
            self._excess_run += 1
            if self._excess_run >= self._excess_pops:
                self._excess_run = 0
                self._drop_frame(start)
                start = self._next
        else:
            self._excess_run = 0
        if not self._packets:
            self._idle_pops += 1
            if self._idle_pops <= self.max_hold_frames:
                self._held += 1
                self.held_frames += 1
                return self._silence, FRAME_IDLE
            self._next = start + (self._held + 1) * size
            self._held = 0
            return self._silence, FRAME_IDLE
        self._held = 0
        self._next = start + size
        payload = self._packets.pop(start, None)
        if payload is not None and len(payload) == size:
            self._idle_pops = 0
            return payload, FRAME_AUDIO
        if payload is not None:
            self._packets[start] = payload
        frame = bytearray(self._silence)
        covered = 0
        end = start + size
        for packet_start in sorted(self._packets):
            if packet_start >= end:
                break
            data = self._packets[packet_start]
            packet_end = packet_start + len(data)
            if packet_end <= start:
                del self._packets[packet_start]
                continue
            lo = max(packet_start, start)
            hi = min(packet_end, end)
            frame[lo - start:hi - start] = data[lo - packet_start:hi - packet_start]
            covered += hi - lo
            del self._packets[packet_start]
            if packet_end > end:
                self._packets[end] = data[end - packet_start:]
        if covered == size:
            self._idle_pops = 0
            return bytes(frame), FRAME_AUDIO
        if covered == 0 and self._highest_end <= start:
            self._idle_pops += 1
            return self._silence, FRAME_IDLE
        self._idle_pops = 0
        return bytes(frame), FRAME_LOST

    def _drop_frame(self, start: int) -> None:
        end = start + self.frame_samples
        for packet_start in sorted(self._packets):
            if packet_start >= end:
                break
            data = self._packets.pop(packet_start)
            if packet_start + len(data) > end:
                self._packets[end] = data[end - packet_start:]
        self._next = end
        self.dropped_frames += 1

    @property
    def buffered_packets(self) -> int:
        return len(self._packets)


try:
    from portaum_tx.rtp._rtpcore import JitterBuffer
except ImportError:
    JitterBuffer = PyJitterBuffer
