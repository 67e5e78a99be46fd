"""A delivery burst for the crash test: prints each delivery once it has returned.

Run as ``python -m tests.store.crash_writer --set storage....``; the parent
kills it with SIGKILL part-way and checks every printed delivery is stored.
"""

import hashlib
import os
import sys

from twisted.internet import defer, task

from portaum_tx.accounts import AccountService
from portaum_tx.config import load_config
from portaum_tx.mailbox.events import EventBus
from portaum_tx.mailbox.service import MailboxService
from portaum_tx.store import AlreadyExists, open_store


async def burst(reactor, overrides):
    store = await open_store(load_config(None, overrides), reactor)
    accounts = AccountService(store, reactor)
    try:
        await store.accounts.add_customer("Crash Test")
        await accounts.create_account("15550001111", "Crash Test", quota=10 ** 9)
    except AlreadyExists:
        pass
    service = MailboxService(store, EventBus(store), reactor)
    print("ready", flush=True)
    number = 0
    while True:
        number += 1
        body = os.urandom(2048 + number % 4096)
        data = b"Subject: burst %d\r\n\r\n" % number + body
        delivered = await service.deliver("15550001111", data)
        sys.stdout.write(f"{delivered.uid} {hashlib.sha256(data).hexdigest()}\n")
        sys.stdout.flush()


def main():
    args = sys.argv[1:]
    task.react(lambda reactor: defer.ensureDeferred(burst(reactor, args)))


if __name__ == "__main__":
    main()
