"""Receiver statistics of one RTP source: RFC 3550 appendix A.1 (sequence validation),
A.3 (loss) and A.8 (interarrival jitter). Pure arithmetic, no clock of its own: the
caller passes arrival times.

``ReceiverStatistics`` keeps the per-packet state and ``update`` in C (the base class
from ``portaum_tx.rtp._rtpcore``) when the extension is built, else it is
``PyReceiverStatistics``, which stays the reference for that arithmetic."""

from __future__ import annotations

from portaum_tx.rtp.packet import ReportBlock

RTP_SEQ_MOD = 1 << 16
MAX_DROPOUT = 3000
MAX_MISORDER = 100
MIN_SEQUENTIAL = 2


class PyReceiverStatistics:
    def __init__(self, ssrc: int, first_sequence: int, clock_rate: int = 8000):
        self.ssrc = ssrc
        self.clock_rate = clock_rate
        self._init_sequence(first_sequence)
        self.max_seq = (first_sequence - 1) & 0xFFFF
        self.probation = MIN_SEQUENTIAL
        self.jitter = 0.0  # timestamp units
        self._transit: float | None = None
        self._last_arrival = 0.0
        self._last_timestamp = 0

    def _init_sequence(self, sequence: int) -> None:
        self.base_seq = sequence
        self.max_seq = sequence
        self.bad_seq = RTP_SEQ_MOD + 1
        self.cycles = 0
        self.received = 0
        self.received_prior = 0
        self.expected_prior = 0

    @property
    def valid(self) -> bool:
        """The source has passed probation (MIN_SEQUENTIAL packets in sequence)."""
        return self.probation == 0

    def update(self, sequence: int, timestamp: int, arrival: float) -> bool:
        """Account for one packet; False while on probation or for a wild jump."""
        if not self.probation and sequence == (self.max_seq + 1) & 0xFFFF and sequence:
            # in order, no wrap: the common case, without the general algorithm's branches
            self.max_seq = sequence
            self.received += 1
        elif not self._update_sequence(sequence):
            return False
        self._update_jitter(timestamp, arrival)
        return True

    def _update_sequence(self, seq: int) -> bool:
        udelta = (seq - self.max_seq) & 0xFFFF
        if self.probation:
            if seq == (self.max_seq + 1) & 0xFFFF:
                self.probation -= 1
                self.max_seq = seq
                if self.probation == 0:
                    self._init_sequence(seq)
                    self.received += 1
                    return True
            else:
                self.probation = MIN_SEQUENTIAL - 1
                self.max_seq = seq
            return False
        if udelta < MAX_DROPOUT:
            if seq < self.max_seq:
                self.cycles += RTP_SEQ_MOD
            self.max_seq = seq
        elif udelta <= RTP_SEQ_MOD - MAX_MISORDER:
            if seq == self.bad_seq:
                # two sequential packets after a big jump: the source restarted
                self._init_sequence(seq)
                self._transit = None
            else:
                self.bad_seq = (seq + 1) & 0xFFFF
                return False
        # else: a duplicate or reordered packet, counted
        self.received += 1
        return True

    def _update_jitter(self, timestamp: int, arrival: float) -> None:
        if self._transit is None:
            self._transit = 0.0
        else:
            elapsed = (arrival - self._last_arrival) * self.clock_rate
            advanced = (timestamp - self._last_timestamp) & 0xFFFFFFFF
            if advanced >= 0x80000000:
                advanced -= 1 << 32
            d = abs(elapsed - advanced)
            self.jitter += (d - self.jitter) / 16
        self._last_arrival = arrival
        self._last_timestamp = timestamp

    @property
    def extended_max(self) -> int:
        return self.cycles + self.max_seq

    @property
    def expected(self) -> int:
        return self.extended_max - self.base_seq + 1

    @property
    def lost(self) -> int:
        return self.expected - self.received

    def report_block(self, last_sr: int = 0, delay_since_last_sr: int = 0) -> ReportBlock:
        """A report block, and the start of the next reporting interval."""
        expected = self.expected
        expected_interval = expected - self.expected_prior
        received_interval = self.received - self.received_prior
        self.expected_prior = expected
        self.received_prior = self.received
        lost_interval = expected_interval - received_interval
        fraction = 0
        if expected_interval > 0 and lost_interval > 0:
            fraction = min((lost_interval << 8) // expected_interval, 255)
        lost = max(min(self.lost, 0x7FFFFF), -0x800000)
        return ReportBlock(
            self.ssrc, fraction, lost, self.extended_max & 0xFFFFFFFF,
            int(self.jitter) & 0xFFFFFFFF, last_sr, delay_since_last_sr,
        )


try:
    from portaum_tx.rtp._rtpcore import ReceiverStatistics as _ReceiverStatisticsCore
except ImportError:
    ReceiverStatistics = PyReceiverStatistics
else:
    class ReceiverStatistics(_ReceiverStatisticsCore):
        """The C core's state and update(), with the reference's once-per-report figures."""

        __slots__ = ()
        valid = PyReceiverStatistics.valid
        extended_max = PyReceiverStatistics.extended_max
        expected = PyReceiverStatistics.expected
        lost = PyReceiverStatistics.lost
        report_block = PyReceiverStatistics.report_block
