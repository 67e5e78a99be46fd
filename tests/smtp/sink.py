"""A loopback SMTP server standing in for the rest of the Internet: it keeps
what it accepts and answers RCPT with 550 (or 451) for chosen addresses."""

from __future__ import annotations

from twisted.internet import protocol
from twisted.protocols import basic


class SinkSMTP(basic.LineReceiver):
    def connectionMade(self):
        self.sender = None
        self.recipients = []
        self.data = None
        self.sendLine(b"220 sink.example ESMTP")

    def lineReceived(self, line):
        factory = self.factory
        if self.data is not None:
            if line == b".":
                factory.messages.append((self.sender, list(self.recipients),
                                         b"\r\n".join(self.data) + b"\r\n"))
                self.data = None
                self.sendLine(b"250 2.0.0 queued")
            else:
                self.data.append(line[1:] if line.startswith(b"..") else line)
            return
        command = line[:4].upper()
        if command in (b"EHLO", b"HELO"):
            self.sendLine(b"250-sink.example\r\n250 8BITMIME")
        elif command == b"MAIL":
            self.sender = line.split(b":", 1)[1].strip().strip(b"<>").decode()
            self.recipients = []
            self.sendLine(b"250 2.1.0 ok")
        elif command == b"RCPT":
            address = line.split(b":", 1)[1].strip().strip(b"<>").decode()
            if address in factory.reject:
                self.sendLine(b"550 5.1.1 no such user here")
            elif address in factory.defer:
                self.sendLine(b"451 4.3.0 try again later")
            else:
                self.recipients.append(address)
                self.sendLine(b"250 2.1.5 ok")
        elif command == b"DATA":
            self.data = []
            self.sendLine(b"354 go ahead")
        elif command == b"QUIT":
            self.sendLine(b"221 bye")
            self.transport.loseConnection()
        else:
            self.sendLine(b"250 ok")


class SinkFactory(protocol.ServerFactory):
    protocol = SinkSMTP

    def __init__(self, reject=(), defer=()):
        self.reject = set(reject)
        self.defer = set(defer)
        self.messages: list[tuple[str, list[str], bytes]] = []
