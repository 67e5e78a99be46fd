"""Mail benchmark: IMAP commands/s and SMTP deliveries/s with 10 concurrent clients.

The same load runs against any IMAP + SMTP pair (portaum_tx, or Dovecot +
Postfix), users user01..user10@bench.example with password bench-pass-1:

    python3 bench/mail_bench.py populate --imap-port P --smtp-port Q
    python3 bench/mail_bench.py imap --imap-port P [--seconds 30]
    python3 bench/mail_bench.py smtp --smtp-port Q --imap-port P [--seconds 30]

``populate`` gives every mailbox the same 100 messages (3 KB each).  ``imap``:
each client logs in, selects INBOX and loops over NOOP, FETCH of flags/size/
date, FETCH BODY.PEEK[] (a whole message), UID SEARCH UNSEEN, STORE +/-FLAGS
and STATUS, one command at a time, counting tagged OK answers.  ``smtp``:
each client keeps one connection and sends 3 KB messages to its user one
after the other; a delivery counts once it is committed to the mailbox: the
run ends when the mailboxes (read over IMAP STATUS) hold every message that
got a 250, and the rate is those messages over that time.  (portaum_tx
answers 250 after the store commit; Postfix answers 250 after its queue
commit and delivers over LMTP afterwards.)

The load generator is asyncio with raw sockets, so it costs little next to
the server it measures (both run on the same 2 cores).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import time

USERS = [f"user{n:02d}" for n in range(1, 11)]
PASSWORD = "bench-pass-1"
DOMAIN = "bench.example"
BODY = ("".join(f"Line {n:03d} of a benchmark message, padded to a realistic length ......\r\n"
                for n in range(40))).encode()


def message(user: str, number: int) -> bytes:
    return (f"From: Load Generator <load@client.example>\r\nTo: {user}@{DOMAIN}\r\n"
            f"Subject: benchmark message {number}\r\n"
            f"Message-ID: <{number}.{random.getrandbits(48)}@client.example>\r\n"
            "Date: Sun, 22 Nov 2026 05:00:00 +0000\r\n\r\n").encode() + BODY


class IMAPClient:
    def __init__(self, reader, writer):
        self.reader, self.writer, self.counter = reader, writer, 0

    @classmethod
    async def connect(cls, port: int) -> "IMAPClient":
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 22)
        await reader.readline()
        return cls(reader, writer)

    async def command(self, text: str) -> list[bytes]:
        self.counter += 1
        tag = f"b{self.counter}".encode()
        self.writer.write(tag + b" " + text.encode() + b"\r\n")
        lines = []
        while True:
            line = await self.reader.readline()
            if not line:
                raise ConnectionError("server closed the connection")
            match = re.search(rb"\{(\d+)\}\r\n$", line)
            if match:
                line += await self.reader.readexactly(int(match.group(1)))
                continue_line = await self.reader.readline()
                line += continue_line
            if line.startswith(tag + b" "):
                if not line[len(tag) + 1:].startswith(b"OK"):
                    raise RuntimeError(f"{text!r} -> {line!r}")
                return lines
            lines.append(line)


async def imap_client(port: int, user: str, deadline: float, counts: list[int]):
    client = await IMAPClient.connect(port)
    await client.command(f"LOGIN {user} {PASSWORD}")
    exists = 0
    for line in await client.command("SELECT INBOX"):
        match = re.match(rb"\* (\d+) EXISTS", line)
        if match:
            exists = int(match.group(1))
    if not exists:
        raise RuntimeError(f"{user}: INBOX is empty; run populate first")
    done = 0
    flag = True
    while time.monotonic() < deadline:
        n = random.randint(1, exists)
        for text in ("NOOP", f"FETCH {n} (FLAGS INTERNALDATE RFC822.SIZE)",
                     f"FETCH {n} BODY.PEEK[]", "UID SEARCH UNSEEN",
                     f"STORE {n} {'+' if flag else '-'}FLAGS (\\Flagged)",
                     "STATUS INBOX (MESSAGES UNSEEN)"):
            await client.command(text)
            done += 1
        flag = not flag
    await client.command("LOGOUT")
    client.writer.close()
    counts.append(done)


async def run_imap(port: int, seconds: float) -> dict:
    counts: list[int] = []
    start = time.monotonic()
    await asyncio.gather(*(imap_client(port, user, start + seconds, counts) for user in USERS))
    elapsed = time.monotonic() - start
    return {"imap_commands": sum(counts), "seconds": round(elapsed, 2),
            "imap_commands_per_second": round(sum(counts) / elapsed, 1)}


class SMTPClient:
    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, port: int) -> "SMTPClient":
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        client = cls(reader, writer)
        await client.reply()
        await client.send(b"EHLO client.example")
        return client

    async def reply(self) -> int:
        while True:
            line = await self.reader.readline()
            if not line:
                raise ConnectionError("server closed the connection")
            if line[3:4] != b"-":
                return int(line[:3])

    async def send(self, line: bytes) -> int:
        self.writer.write(line + b"\r\n")
        return await self.reply()

    async def mail(self, user: str, data: bytes) -> bool:
        if await self.send(b"MAIL FROM:<load@client.example>") != 250:
            return False
        if await self.send(f"RCPT TO:<{user}@{DOMAIN}>".encode()) != 250:
            await self.send(b"RSET")
            return False
        if await self.send(b"DATA") != 354:
            return False
        self.writer.write(data.replace(b"\r\n.", b"\r\n..") + b".\r\n")
        return await self.reply() == 250


async def status_clients(imap_port: int) -> list[IMAPClient]:
    """One logged-in IMAP connection per user, opened before any timing starts
    (a login may be deliberately slow: password hashing)."""
    clients = []
    for user in USERS:
        client = await IMAPClient.connect(imap_port)
        await client.command(f"LOGIN {user} {PASSWORD}")
        clients.append(client)
    return clients


async def mailbox_total(clients: list[IMAPClient]) -> int:
    total = 0
    for client in clients:
        for line in await client.command("STATUS INBOX (MESSAGES)"):
            match = re.search(rb"MESSAGES (\d+)", line)
            if match:
                total += int(match.group(1))
    return total


async def smtp_client(port: int, user: str, deadline: float | None, count: int | None,
                      accepted: list[int]):
    client = await SMTPClient.connect(port)
    sent = 0
    while (deadline is None or time.monotonic() < deadline) and (count is None or sent < count):
        if await client.mail(user, message(user, sent)):
            sent += 1
    await client.send(b"QUIT")
    client.writer.close()
    accepted.append(sent)


async def run_smtp(smtp_port: int, imap_port: int, seconds: float) -> dict:
    watchers = await status_clients(imap_port)
    before = await mailbox_total(watchers)
    accepted: list[int] = []
    start = time.monotonic()
    await asyncio.gather(*(smtp_client(smtp_port, user, start + seconds, None, accepted)
                           for user in USERS))
    accept_time = time.monotonic() - start
    total_accepted = sum(accepted)
    while True:
        stored = await mailbox_total(watchers) - before
        if stored >= total_accepted:
            break
        await asyncio.sleep(0.05)
    elapsed = time.monotonic() - start
    return {"smtp_accepted": total_accepted, "accept_seconds": round(accept_time, 2),
            "smtp_accepted_per_second": round(total_accepted / accept_time, 1),
            "stored_seconds": round(elapsed, 2),
            "smtp_deliveries_per_second": round(total_accepted / elapsed, 1)}


async def populate(smtp_port: int, imap_port: int, count: int) -> dict:
    watchers = await status_clients(imap_port)
    before = await mailbox_total(watchers)
    accepted: list[int] = []
    await asyncio.gather(*(smtp_client(smtp_port, user, None, count, accepted) for user in USERS))
    while await mailbox_total(watchers) - before < sum(accepted):
        await asyncio.sleep(0.1)
    return {"populated": sum(accepted)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("phase", choices=["populate", "imap", "smtp"])
    parser.add_argument("--imap-port", type=int, required=True)
    parser.add_argument("--smtp-port", type=int)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--count", type=int, default=100)
    args = parser.parse_args()
    if args.phase == "imap":
        result = asyncio.run(run_imap(args.imap_port, args.seconds))
    elif args.phase == "smtp":
        result = asyncio.run(run_smtp(args.smtp_port, args.imap_port, args.seconds))
    else:
        result = asyncio.run(populate(args.smtp_port, args.imap_port, args.count))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
