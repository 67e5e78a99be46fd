"""A report that cannot be sent does not keep a closing session from releasing its ports."""

from twisted.internet import task
from twisted.trial import unittest

from portaum_tx.rtp.clock import MediaClock
from portaum_tx.rtp.session import MediaParams, RtpSession


class RefusingTransport:
    def __init__(self):
        self.stopped = False

    def write(self, data, address):
        raise OSError(22, "Invalid argument")

    def stopListening(self):
        self.stopped = True


class RtcpSendErrorTests(unittest.TestCase):
    def test_close_releases_ports_when_rtcp_bye_fails(self):
        clock = task.Clock()
        session = RtpSession(MediaClock(clock), MediaParams(("192.0.2.7", 4000)))
        rtp, rtcp = RefusingTransport(), RefusingTransport()
        session._rtp_transport, session._rtcp_transport = rtp, rtcp
        session.start()
        session.close()
        self.assertTrue(session.closed)
        self.assertTrue(rtp.stopped and rtcp.stopped)
        self.assertEqual(session.send_errors, 1)
