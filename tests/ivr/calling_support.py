"""Support for the calling-application tests: a FakeCall that can announce while bridged
and ring back with music, an in-memory billing ledger with the interface
:mod:`portaum_tx.ivr.charging` speaks, and a runner.

The ledger rates with the real :mod:`portaum_tx.billing.rating` and answers with the billing
engine's signatures and exceptions; it stands in for the engine (which the engine-backed tests
use) so that every option of every application can be driven on a task.Clock without a
database.
"""

from __future__ import annotations

import dataclasses
import itertools
from decimal import Decimal
from typing import Optional

from twisted.internet import defer, reactor
from twisted.internet.task import Clock

from portaum_tx.billing import engine as billing_engine
from portaum_tx.billing.rating import ForbiddenDestinationError, NoRateError, Rate, Tariff
from portaum_tx.ivr.apps import AppContext, load_applications
from portaum_tx.ivr.fake import FakeCall, describe


class CallingFakeCall(FakeCall):
    """A FakeCall that writes down the ``ringback`` asked of each dial (in :attr:`ringbacks`,
    not played) and each announcement over a bridge (in :attr:`announced`, and, as FakeCall
    plays them, in :attr:`played` prefixed ``announce:``)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.ringbacks: list[list[str]] = []
        self.announced: list[tuple[float, list[str]]] = []

    async def dial(self, destination, caller_id=None, timeout=30.0, ringback=None):
        if ringback is not None:
            self.ringbacks.append([describe(item) for item in ringback])
        self.events.append((self.clock.seconds(), "caller-id", caller_id))
        other = await super().dial(destination, caller_id, timeout)
        talk = getattr(other, "talk_seconds", None)
        if talk is not None:
            self.clock.callLater(talk, other.remote_hangup, "far end")
        return other

    async def announce(self, items, mix=True):
        items = list(items)
        self.announced.append((self.clock.seconds(), [describe(item) for item in items]))
        return await super().announce(items, mix=mix)


def far_end(clock, number: str, talk: float | None = None) -> FakeCall:
    """The destination: answers, and hangs up ``talk`` seconds after answering (None: it
    stays on until the caller or the time limit ends the call)."""
    other = FakeCall(clock, calling="", called=number)
    other.talk_seconds = talk
    return other


@dataclasses.dataclass
class LedgerAccount:
    id: str
    balance: Decimal
    currency: str = "USD"
    language: Optional[str] = None
    associated_number: Optional[str] = None
    customer: str = "Smart Calls, Ltd."
    service_password: str = ""
    low_balance: bool = False
    tariff: Tariff = None
    prepaid: bool = True

    reserved: Decimal = Decimal(0)

    @property
    def available(self):
        return self.balance - self.reserved

    @property
    def customer_id(self):
        return self.customer


@dataclasses.dataclass
class LedgerAuthorization:
    id: int
    account_id: str
    destination: str
    access_code: Optional[str]
    session_id: Optional[str]
    max_seconds: Optional[int]
    announced_seconds: Optional[int] = None
    rate: Rate = None
    reserved: Decimal = Decimal(0)


@dataclasses.dataclass
class LedgerXDR:
    account_id: str
    destination: str
    access_code: Optional[str]
    seconds: int
    charge: Decimal
    session_id: Optional[str]
    cli: str = ""
    access_number: str = ""
    leg: str = ""


class Ledger:
    def __init__(self):
        self.accounts: dict[str, LedgerAccount] = {}
        self.aliases: dict[str, str] = {}
        self.vouchers: dict[str, tuple[Decimal, str]] = {}  # code -> (amount, state)
        self.xdrs: list[LedgerXDR] = []
        self.open: dict[int, LedgerAuthorization] = {}
        self.released: list[LedgerAuthorization] = []
        self.authorizations: list[LedgerAuthorization] = []
        self.top_ups: list[tuple[str, Decimal, str]] = []
        self.failed_logins: list[str] = []
        self.announce_codes: list[str] = []
        self.access_tariffs: dict[str, Tariff] = {}  # access code -> tariff
        self.announce_tariff: Optional[Tariff] = None
        self._ids = itertools.count(1)

    def add(self, account_id: str, balance="10", rates=(("1", "0.10"),), **fields) -> LedgerAccount:
        tariff = Tariff([Rate(prefix, Decimal(price), 1, 1) for prefix, price in rates])
        account = LedgerAccount(account_id, Decimal(balance), tariff=tariff, **fields)
        self.accounts[account_id] = account
        return account

    async def find_account(self, login):
        account_id = self.aliases.get(login, login)
        return self.accounts.get(account_id)

    async def authenticate(self, login=None, *, associated_number=None, pin=None):
        if associated_number is not None:
            login = f"{associated_number}#{pin}"
        account = await self.find_account(login)
        if account is None:
            self.failed_logins.append(login)
            raise billing_engine.AuthenticationFailed()
        return account

    async def classify(self, account_id, destination, access_code=None):
        account = self.accounts[account_id]
        other = await self.find_account(destination)
        if other is not None and other.customer == account.customer:
            return billing_engine.CallClass.INTERNAL
        rate = account.tariff.find_rate(destination)
        if rate is None or rate.forbidden:
            return billing_engine.CallClass.REFUSED
        if rate.price_per_minute == 0:
            return billing_engine.CallClass.TOLL_FREE
        return billing_engine.CallClass.TOLL

    async def check_service_password(self, account_id, password):
        stored = self.accounts[account_id].service_password
        return not stored or stored == password

    async def authorize(self, account_id, destination, access_code=None, *, announce_code=None,
                        session_id=None):
        account = self.accounts[account_id]
        tariff = self.access_tariffs.get(access_code or "", account.tariff)
        try:
            rate = tariff.rate_for(destination)
        except ForbiddenDestinationError:
            raise billing_engine.ForbiddenDestination("forbidden", account_id, destination)
        except NoRateError:
            raise billing_engine.NoRate("no rate", account_id, destination)
        seconds = rate.max_duration(account.available)
        if seconds == 0:
            raise billing_engine.InsufficientFunds("insufficient", account_id, destination,
                                                   account.balance)
        announced = seconds
        if self.announce_tariff is not None and announce_code:
            self.announce_codes.append(announce_code)
            announced = self.announce_tariff.max_duration(destination, account.balance)
        authorization = LedgerAuthorization(next(self._ids), account_id, destination, access_code,
                                            session_id, seconds, announced, rate)
        authorization.reserved = Decimal(0) if seconds is None else rate.charge(seconds)
        account.reserved += authorization.reserved
        self.open[authorization.id] = authorization
        self.authorizations.append(authorization)
        return authorization

    async def charge(self, authorization, seconds, *, cli="", cld=None, access_number="", leg=""):
        if self.open.pop(authorization.id, None) is None:
            raise billing_engine.AuthorizationClosed("closed")
        self.accounts[authorization.account_id].reserved -= authorization.reserved
        if authorization.max_seconds is not None:
            seconds = min(seconds, authorization.max_seconds)
        cost = authorization.rate.charge(seconds)
        account = self.accounts[authorization.account_id]
        account.balance -= cost
        xdr = LedgerXDR(authorization.account_id, cld or authorization.destination,
                        authorization.access_code, seconds, cost, authorization.session_id,
                        cli, access_number, leg)
        self.xdrs.append(xdr)
        return xdr

    async def release(self, authorization):
        if self.open.pop(authorization.id, None) is None:
            raise billing_engine.AuthorizationClosed("closed")
        self.accounts[authorization.account_id].reserved -= authorization.reserved
        self.released.append(authorization)

    async def redeem_voucher(self, account_id, code):
        if code not in self.vouchers:
            raise billing_engine.UnknownVoucher("no voucher")
        amount, state = self.vouchers[code]
        if state != "new":
            raise billing_engine.VoucherUsed(state, state)
        self.vouchers[code] = (amount, "used")
        self.accounts[account_id].balance += amount
        return LedgerXDR(account_id, "", None, 0, -amount, None)

    async def register_account(self, account_id, etalon_account, voucher):
        etalon = self.accounts[etalon_account]
        if voucher not in self.vouchers:
            raise billing_engine.UnknownVoucher("no voucher")
        if self.vouchers[voucher][1] != "new":
            raise billing_engine.VoucherUsed("used", self.vouchers[voucher][1])
        account = dataclasses.replace(etalon, id=account_id, balance=Decimal(0))
        self.accounts[account_id] = account
        await self.redeem_voucher(account_id, voucher)
        return account

    async def top_up(self, account_id, amount, source="top-up"):
        self.accounts[account_id].balance += amount
        self.top_ups.append((account_id, amount, source))

    def xdrs_of(self, account_id):
        return [x for x in self.xdrs if x.account_id == account_id]


def make_context(clock, ledger, access_number=None, **extra) -> AppContext:
    context = AppContext(store=None, mailboxes=None, accounts=None, clock=clock,
                         applications=load_applications(), access_number=access_number)
    context.billing = ledger
    for name, value in extra.items():
        setattr(context, name, value)
    return context


def run(work) -> defer.Deferred:
    return defer.ensureDeferred(work)


def make_call(clock: Clock | None = None, **kwargs) -> CallingFakeCall:
    return CallingFakeCall(clock or Clock(), **kwargs)


class CallingCase:
    """Mixin for trial test cases: a clock, a ledger, and running an application."""

    application = "prepaid"

    def setUp(self):
        self.clock = Clock()
        self.ledger = Ledger()

    def call(self, calling="15550001111", called="18005550000", **kwargs) -> CallingFakeCall:
        return make_call(self.clock, calling=calling, called=called, **kwargs)

    def destination(self, call, number, talk=None, outcome=None):
        """Script the far end of ``number``: answers and talks ``talk`` seconds, or fails."""
        if outcome is not None:
            from portaum_tx.ivr.call import DialFailed
            call.dial_outcomes[number] = DialFailed(number, outcome, 486 if outcome == "busy" else None)
            return None
        other = far_end(self.clock, number, talk)
        call.dial_outcomes[number] = other
        return other

    def context(self, access_number=None, **extra):
        return make_context(self.clock, self.ledger, access_number=access_number, **extra)

    async def run_app(self, call, options=None, name=None, context=None):
        """Run like the router does: hanging up ends the application quietly."""
        from portaum_tx.ivr.call import CallHungUp
        app = load_applications().get(name or self.application)
        try:
            return await call.run(app(call, context or self.context(), dict(options or {})),
                                  reactor)
        except CallHungUp:
            return None
