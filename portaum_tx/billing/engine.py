"""The billing engine: the one interface IVR applications and SIP legs call.

::

    engine = BillingEngine(store, reactor)
    account = await engine.authenticate(associated_number="1206555", pin="4545")
    grant = await engine.authorize(account, "14155551234")     # reserves funds
    ...                                                        # call up to grant.max_seconds
    xdr = await engine.charge(grant, 125, cli="12065558888", cld="14155551234")
    # or, when the call never connected: await engine.release(grant)

*Authorize* reserves what the longest allowed call would cost, against the
account's funds (debit: its balance; credit: its credit limit, and its
customer's) minus what other calls in progress hold; concurrent calls on one
balance therefore can never overspend it. *Charge* settles that reservation:
the xDR, the balance change and the end of the reservation are one
transaction. A call is billed for at most the seconds it was authorized for
(the switch disconnects it there), so a charge never exceeds its reservation.

Calls between accounts of one customer are internal and free; other calls
are rated by the tariff the account's product selects for the access code
presented (the default tariff when the product lists no such code).
"""

from __future__ import annotations

import dataclasses
import enum
from decimal import Decimal
from typing import Any, Sequence

from twisted.internet import threads

from .. import passwords
from ..store import AlreadyExists, NotFound
from ..store.billing import (AccountBilling, CustomerBilling, FundsSnapshot, RateRecord,
                             ReservationPlan, VoucherUnavailable, XdrRecord)
from .rating import INTERNAL, InvalidRateError, MoneyInput, Rate, max_duration, to_money
from .translate import TranslationError, translate

__all__ = [
    "ANNOUNCE", "CALLBACK_FAIL", "LEG_A", "LEG_B", "AccountBlocked", "AccountExists", "AuthenticationFailed",
    "Authorization", "AuthorizationClosed", "AuthorizationRefused", "BillingAccount",
    "BillingEngine", "BillingError", "CallClass", "ForbiddenDestination", "InsufficientFunds",
    "InvalidAmount", "InvalidNumber", "InvalidSecret", "NoRate", "UnknownAccount", "UnknownVoucher", "VoucherUsed", "Xdr", "access_code",
]

#: Access code prefixes of the product's accessibility list (the guide's names).
ANNOUNCE = "ANNOUNCE"
LEG_A = "LEG_A"
LEG_B = "LEG_B"
CALLBACK_FAIL = "CALLBACK_FAIL"

Xdr = XdrRecord


def access_code(prefix: str, dnis: str) -> str:
    """``ANNOUNCE`` + ``12125551234`` -> ``ANNOUNCE12125551234``."""
    return f"{prefix}{dnis}"


class BillingError(Exception):
    """Base of the refusals and errors of the billing engine."""


class InvalidAmount(BillingError, ValueError):
    """An amount of money that cannot be used (a float, negative, not a number)."""


class InvalidNumber(BillingError, ValueError):
    """A destination that is not a number (empty, or with spaces)."""


class InvalidSecret(BillingError, ValueError):
    """A PIN or service password that cannot be set as given."""


class UnknownAccount(BillingError):
    """No account has this ID or alias."""


class AccountExists(BillingError):
    """An account or alias with this ID exists already."""


class AuthenticationFailed(BillingError):
    """No account matches the credentials (one message whatever the reason),
    or the subject is locked after too many failures (``locked_until`` > 0)."""

    def __init__(self, message: str = "authentication failed", locked_until: int = 0):
        super().__init__(message)
        self.locked_until = locked_until


class AuthorizationRefused(BillingError):
    """The account may not make this call; ``reason`` says why in one token:
    ``blocked``, ``forbidden``, ``no-rate`` or ``insufficient-funds``."""

    reason = "refused"

    def __init__(self, message: str, account_id: str, destination: str):
        super().__init__(message)
        self.account_id = account_id
        self.destination = destination


class AccountBlocked(AuthorizationRefused):
    reason = "blocked"


class ForbiddenDestination(AuthorizationRefused):
    reason = "forbidden"


class NoRate(AuthorizationRefused):
    reason = "no-rate"


class InsufficientFunds(AuthorizationRefused):
    reason = "insufficient-funds"

    def __init__(self, message: str, account_id: str, destination: str, available: Decimal):
        super().__init__(message, account_id, destination)
        self.available = available


class AuthorizationClosed(BillingError):
    """The authorization was charged, released or has expired already."""


class UnknownVoucher(BillingError):
    """No voucher has this number."""

    reason = "invalid"


class VoucherUsed(BillingError):
    """The voucher was redeemed already (``reason`` "used") or has expired ("expired")."""

    def __init__(self, message: str, reason: str = "used"):
        super().__init__(message)
        self.reason = reason


class CallClass(enum.Enum):
    """How a destination is billed for an account."""

    INTERNAL = "internal"      # another account of the same customer: free, never via IVR
    TOLL_FREE = "toll-free"    # rated, but costs nothing
    TOLL = "toll"              # costs money
    REFUSED = "refused"        # forbidden, or no rate


@dataclasses.dataclass(frozen=True)
class BillingAccount:
    """An authenticated account with its funds as they were when read."""

    account_id: str
    customer_id: int
    customer: str
    billing_model: str
    balance: Decimal
    credit_limit: Decimal | None
    customer_balance: Decimal
    customer_credit_limit: Decimal | None
    product: str | None
    associated_number: str | None
    calls_via_ivr: str | None
    blocked: bool
    breakage: Decimal = Decimal(0)
    #: What the account may still spend now (calls in progress deducted); None: no limit.
    available: Decimal | None = None
    language: str | None = None

    @property
    def id(self) -> str:
        return self.account_id

    @property
    def prepaid(self) -> bool:
        return self.billing_model == "debit"

    @property
    def low_balance(self) -> bool:
        """The guide's "Check Low Balance": a debit balance below the product's breakage."""
        return self.prepaid and self.balance < self.breakage


@dataclasses.dataclass(frozen=True)
class Authorization:
    """A granted call: funds are held until :meth:`BillingEngine.charge` or
    :meth:`BillingEngine.release`. ``max_seconds`` is where the call must be
    cut (None: nothing limits it, e.g. a free rate); ``announced_seconds`` is
    what to announce (by the ANNOUNCE tariff when the product has one, else
    the same)."""

    id: int
    account_id: str
    customer_id: int
    destination: str
    max_seconds: int | None
    announced_seconds: int | None
    rate: Rate
    tariff: str
    reserved: Decimal
    call_class: CallClass
    access_code: str | None = None

    @property
    def granted(self) -> bool:
        return True

    @property
    def reason(self) -> None:
        return None


def _rate(record: RateRecord) -> Rate:
    return Rate(**dataclasses.asdict(record))


def _rate_dict(rate: Rate, call_class: CallClass) -> dict[str, Any]:
    values = {name: (str(value) if isinstance(value, Decimal) else value)
              for name, value in dataclasses.asdict(rate).items()}
    values["call_class"] = call_class.value
    return values


def _rate_from_dict(data: dict[str, Any]) -> tuple[Rate, CallClass]:
    values = dict(data)
    call_class = CallClass(values.pop("call_class", CallClass.TOLL.value))
    for name in ("price_per_minute", "next_price_per_minute", "connection_fee"):
        if values.get(name) is not None:
            values[name] = Decimal(values[name])
    return Rate(**values), call_class


def _amount(value: MoneyInput, what: str, *, positive: bool = True) -> Decimal:
    try:
        amount = to_money(value, what)
    except InvalidRateError as exc:
        raise InvalidAmount(str(exc)) from None
    if positive and amount <= 0:
        raise InvalidAmount(f"{what} must be more than zero, not {amount}")
    return amount


_FREE_PREFIX = "internal"


class BillingEngine:
    #: Failed PIN / service password checks within this window lock the subject...
    FAILURE_WINDOW = 15 * 60
    FAILURE_LIMIT = 5
    #: ...for this long.
    LOCK_FOR = 15 * 60

    def __init__(self, store, clock, *, max_call_seconds: int | None = None,
                 reservation_margin: int = 3600, unlimited_lifetime: int = 24 * 3600):
        """``max_call_seconds`` caps every call when given; without it a call
        that no funds limit (a free rate, a credit account without credit
        limits) is authorized with ``max_seconds`` None. A reservation not
        settled ``reservation_margin`` seconds after its call's latest end
        (``unlimited_lifetime`` for unlimited calls) is dropped: its node died."""
        self.store = store
        self._clock = clock
        self.max_call_seconds = max_call_seconds
        self.reservation_margin = reservation_margin
        self.unlimited_lifetime = unlimited_lifetime

    def _now(self) -> int:
        return int(self._clock.seconds())

    # --- accounts ------------------------------------------------------------

    async def _billing_account(self, record: AccountBilling) -> BillingAccount:
        funds = await self.store.billing.get_funds(record.account_id)
        record, customer = funds.account, funds.customer
        breakage = Decimal(0)
        if record.product is not None:
            breakage = (await self.store.billing.get_product(record.product)).breakage
        return BillingAccount(
            record.account_id, record.customer_id, record.customer, record.billing_model,
            record.balance, record.credit_limit, customer.balance, customer.credit_limit,
            record.product, record.associated_number, record.calls_via_ivr, record.blocked,
            breakage, _available(funds), record.language)

    async def _resolve(self, account: BillingAccount | str) -> BillingAccount:
        return await self.get_account(account) if isinstance(account, str) else account

    async def find_account(self, login: str) -> BillingAccount | None:
        """The account whose ID or alias ``login`` is (a card number, a translated
        ANI, an ``<associated number>#<PIN>`` auth ID), or None. No secret is
        checked: the caller has proved what it needed to reach this far."""
        try:
            return await self.get_account(login)
        except UnknownAccount:
            return None

    async def check_service_password(self, account: BillingAccount | str, password: str) -> bool:
        """Whether ``password`` is the account's service password; an account
        without one accepts any input (the guide's rule)."""
        account_id = account if isinstance(account, str) else account.account_id
        try:
            record = await self.store.billing.get_account_billing(account_id)
        except NotFound:
            return False
        if record.service_password_hash is None:
            return True
        return await threads.deferToThread(passwords.verify_secret, password or "",
                                           record.service_password_hash)

    async def get_account(self, account_id: str) -> BillingAccount:
        """The account (by ID or alias) with its current funds, no credentials asked."""
        try:
            record = await self.store.billing.get_account_billing_by_alias(account_id)
        except NotFound:
            raise UnknownAccount(f"no account or alias {account_id}") from None
        return await self._billing_account(record)

    async def authenticate(self, login: str | None = None, *, ani: str | None = None,
                           ani_rule: str | None = None, associated_number: str | None = None,
                           pin: str | None = None, service_password: str | None = None,
                           check_service_password: bool = False) -> BillingAccount:
        """Find the account a caller is, by one of:

        * ``login``: an account ID or alias (a card number); with ``pin`` the
          account's PIN must match;
        * ``ani`` (caller ID), turned into an authorization ID by ``ani_rule``
          (e.g. ``s/^0/ani44/``); with ``check_service_password`` the account's
          service password must match ``service_password`` (an account without
          one accepts any input, as the guide says);
        * ``associated_number`` + ``pin``: the alias ``<associated number>#<PIN>``
          (pass-through PIN IVR; the PIN is part of the account ID).

        Raises :class:`AuthenticationFailed` (one message for every reason)."""
        pin_checked_by_alias = False
        if associated_number is not None:
            if pin is None or login is not None or ani is not None:
                raise AuthenticationFailed("associated number authentication needs a PIN "
                                           "and nothing else")
            login = f"{associated_number}#{pin}"
            pin_checked_by_alias = True
        elif ani is not None:
            if login is not None:
                raise AuthenticationFailed("give either a login or an ANI, not both")
            try:
                login = translate(ani_rule, ani) if ani_rule else ani
            except TranslationError as exc:
                raise AuthenticationFailed(f"ANI {ani!r} cannot be translated: {exc}") from None
        if not login:
            raise AuthenticationFailed("no account ID, alias, ANI or associated number given")
        subject = f"billing:{login}"
        await self._check_not_locked(subject)
        try:
            record = await self.store.billing.get_account_billing_by_alias(login)
        except NotFound:
            record = None
        ok = record is not None
        if ok and pin is not None and not pin_checked_by_alias:
            ok = await threads.deferToThread(passwords.verify_secret, pin, record.pin_hash)
        if ok and check_service_password and record.service_password_hash is not None:
            ok = await threads.deferToThread(passwords.verify_secret, service_password or "",
                                             record.service_password_hash)
        if not ok:
            await self._count_failure(subject)
        await self.store.accounts.delete_auth_failures(subject)
        return await self._billing_account(record)

    async def _check_not_locked(self, subject: str) -> None:
        locked_until = await self.store.accounts.get_locked_until(subject)
        if locked_until > self._now():
            raise AuthenticationFailed("too many failed attempts; try again later", locked_until)

    async def _count_failure(self, subject: str):
        _, until = await self.store.accounts.add_auth_failure(
            subject, self.FAILURE_WINDOW, self.FAILURE_LIMIT, self.LOCK_FOR)
        raise AuthenticationFailed("authentication failed", until if until > self._now() else 0)

    async def set_service_password(self, account_id: str, password: str | None) -> None:
        """Set (or, with None or "", clear) the password PIN-less dialing may ask for."""
        if password:
            if not password.isdigit():
                raise InvalidSecret("a service password is keyed on a phone: digits only")
            hashed = await threads.deferToThread(passwords.hash_secret, password)
        else:
            hashed = None
        try:
            await self.store.billing.set_account_billing(account_id, service_password_hash=hashed)
        except NotFound:
            raise UnknownAccount(f"no account {account_id}") from None

    # --- rating --------------------------------------------------------------

    async def _is_internal(self, account: BillingAccount, destination: str) -> bool:
        try:
            other = await self.store.billing.get_account_billing_by_alias(destination)
        except NotFound:
            return False
        return other.customer_id == account.customer_id

    async def _tariff(self, account: BillingAccount, codes: Sequence[str]) -> str | None:
        record = await self.store.billing.get_account_billing(account.account_id)
        if record.product_id is None:
            return None
        return await self.store.billing.get_tariff_for_access(record.product_id, codes)

    async def rate(self, account: BillingAccount | str, destination: str,
                   access_code: str | None = None) -> tuple[str, Rate, CallClass]:
        """``(tariff, rate, class)`` of a call; raises the refusal when there is none."""
        _check_destination(destination)
        account = await self._resolve(account)
        if account.blocked:
            raise AccountBlocked(f"account {account.account_id} is blocked",
                                 account.account_id, destination)
        if await self._is_internal(account, destination):
            return "", Rate(_FREE_PREFIX, Decimal(0)), CallClass.INTERNAL
        codes = ([access_code] if access_code else []) + [""]
        tariff = await self._tariff(account, codes)
        if tariff is None:
            raise NoRate(f"account {account.account_id} has no product with a tariff",
                         account.account_id, destination)
        record = await self.store.billing.get_rate_for(tariff, destination)
        if record is None:
            raise NoRate(f"tariff {tariff!r} has no rate for {destination}",
                         account.account_id, destination)
        if record.forbidden:
            raise ForbiddenDestination(
                f"calls to {destination} are forbidden (tariff {tariff!r}, prefix {record.prefix})",
                account.account_id, destination)
        rate = _rate(record)
        free = rate.price_per_minute == 0 and rate.next_price_per_minute == 0 \
            and rate.connection_fee == 0
        return tariff, rate, CallClass.TOLL_FREE if free else CallClass.TOLL

    async def classify(self, account: BillingAccount | str, destination: str,
                       access_code: str | None = None) -> CallClass:
        try:
            return (await self.rate(account, destination, access_code))[2]
        except AuthorizationRefused:
            return CallClass.REFUSED

    async def ivr_for(self, account: BillingAccount | str, destination: str) -> str | None:
        """Where a call must pass through an IVR first ("calls via IVR"): the
        access number (pattern, e.g. ``AD%``) of the account's IVR application
        for toll calls; None for toll-free and internal calls, which go
        straight through, and for accounts without it."""
        account = await self._resolve(account)
        if not account.calls_via_ivr:
            return None
        if await self.classify(account, destination) in (CallClass.INTERNAL, CallClass.TOLL_FREE):
            return None
        return account.calls_via_ivr

    # --- authorization -------------------------------------------------------

    async def authorize(self, account: BillingAccount | str, destination: str,
                        access_code: str | None = None, *, announce_code: str | None = None,
                        minimum_seconds: int = 1, session_id: str | None = None) -> Authorization:
        """May ``account`` call ``destination``, and for how long?

        Reserves the cost of the longest call the funds allow (at most
        ``max_call_seconds``). ``access_code`` selects a tariff of the
        product's accessibility list; ``announce_code`` (e.g.
        ``access_code(ANNOUNCE, dnis)``) one for ``announced_seconds`` only.
        Raises :class:`AccountBlocked`, :class:`ForbiddenDestination`,
        :class:`NoRate` or :class:`InsufficientFunds` (fewer than
        ``minimum_seconds`` affordable). ``session_id`` is accepted for the
        calling applications' "authorize with IVR session ID" and changes
        nothing here (there are no routing plans to keep per session)."""
        account = await self._resolve(account)
        tariff, rate, call_class = await self.rate(account, destination, access_code)
        announce_rate = None
        if announce_code and call_class is not CallClass.INTERNAL:
            announce_tariff = await self._tariff(account, [announce_code])
            if announce_tariff is not None:
                record = await self.store.billing.get_rate_for(announce_tariff, destination)
                if record is not None and not record.forbidden:
                    announce_rate = _rate(record)
        limit = self.max_call_seconds
        decided: dict[str, Any] = {}

        def decide(funds: FundsSnapshot) -> ReservationPlan:
            if funds.account.blocked:
                raise AccountBlocked(f"account {account.account_id} is blocked",
                                     account.account_id, destination)
            available = _available(funds)
            seconds = limit if available is None else max_duration(available, rate, INTERNAL, limit)
            if seconds is not None and seconds < max(minimum_seconds, 1):
                raise InsufficientFunds(
                    f"account {account.account_id} has {available} available, not enough for "
                    f"{max(minimum_seconds, 1)} s to {destination}", account.account_id,
                    destination, available)
            # Unlimited calls reserve nothing: no limit could be overrun.
            amount = Decimal(0) if seconds is None or available is None else rate.charge(seconds)
            announced = seconds
            if announce_rate is not None:
                announced = (limit if available is None
                             else max_duration(available, announce_rate, INTERNAL, limit))
            decided["announced"] = announced
            lifetime = (self.unlimited_lifetime if seconds is None
                        else seconds + self.reservation_margin)
            return ReservationPlan(
                amount=amount, on_customer=funds.account.billing_model == "credit",
                max_seconds=-1 if seconds is None else seconds, destination=destination,
                tariff=tariff, rate=_rate_dict(rate, call_class), lifetime=lifetime)

        try:
            reservation = await self.store.billing.add_reservation(account.account_id, decide)
        except NotFound:
            raise UnknownAccount(f"no account {account.account_id}") from None
        return Authorization(
            reservation.id, account.account_id, reservation.customer_id, destination,
            _seconds(reservation.max_seconds), decided["announced"], rate, tariff, reservation.amount,
            call_class, access_code)

    async def authorization(self, authorization_id: int) -> Authorization:
        """An open authorization by id (e.g. from another node or after a restart)."""
        try:
            record = await self.store.billing.get_reservation(authorization_id)
        except NotFound as exc:
            raise AuthorizationClosed(str(exc)) from None
        rate, call_class = _rate_from_dict(record.rate)
        return Authorization(record.id, record.account_id, record.customer_id, record.destination,
                             _seconds(record.max_seconds), _seconds(record.max_seconds), rate,
                             record.tariff,
                             record.amount, call_class)

    async def charge(self, authorization: Authorization, duration: int, *, cli: str = "",
                     cld: str | None = None, access_number: str = "", leg: str = "",
                     description: str = "", start: int | None = None) -> Xdr:
        """Bill a finished call: one transaction writes the xDR, changes the
        balance and ends the reservation. Seconds past ``max_seconds`` are not
        billed (the call should have been cut there)."""
        if isinstance(duration, bool) or not isinstance(duration, int) or duration < 0:
            raise InvalidAmount(f"call duration must be a whole number of seconds >= 0, "
                                f"not {duration!r}")
        billable = (duration if authorization.max_seconds is None
                    else min(duration, authorization.max_seconds))
        amount = authorization.rate.charge(billable)
        fields = {
            "cli": cli, "cld": authorization.destination if cld is None else cld,
            "access_number": access_number, "leg": leg,
            "start_time": self._now() - duration if start is None else int(start),
            "duration": duration, "charged_seconds": authorization.rate.billed_seconds(billable),
            "tariff": authorization.tariff, "rate_prefix": authorization.rate.prefix,
            "description": description,
        }
        try:
            return await self.store.billing.settle_reservation(authorization.id, amount, fields)
        except NotFound as exc:
            raise AuthorizationClosed(
                f"authorization {authorization.id} for {authorization.destination} is closed "
                f"({exc})") from None

    async def release(self, authorization: Authorization) -> bool:
        """Give back the funds of a call that never connected (no xDR).

        False when there was nothing left to release (charged, released or
        expired already): releasing is safe to repeat on every failure path."""
        try:
            await self.store.billing.delete_reservation(authorization.id)
        except NotFound:
            return False
        return True

    # --- money in ------------------------------------------------------------

    async def top_up(self, account: BillingAccount | str, amount: MoneyInput,
                     source: str = "top-up") -> Xdr:
        """Put money into an account (a debit balance grows, a credit balance owed shrinks)."""
        value = _amount(amount, "top-up amount")
        account_id = account if isinstance(account, str) else account.account_id
        try:
            return await self.store.billing.add_account_transaction(
                account_id, -value, "payment", description=source)
        except NotFound:
            raise UnknownAccount(f"no account {account_id}") from None

    async def redeem_voucher(self, account: BillingAccount | str, voucher_number: str) -> Xdr:
        """Top up by a voucher; each voucher works once, even under concurrent use."""
        account_id = account if isinstance(account, str) else account.account_id
        try:
            await self.store.billing.get_voucher(voucher_number)
        except NotFound:
            raise UnknownVoucher(f"no voucher {voucher_number}") from None
        try:
            _, xdr = await self.store.billing.redeem_voucher(voucher_number, account_id)
        except VoucherUnavailable as exc:
            raise VoucherUsed(str(exc), "expired" if "expired" in exc.reason else "used") from None
        except NotFound as exc:
            raise UnknownVoucher(str(exc)) from None
        return xdr

    async def register_account(self, account_id: str, etalon_account: str,
                               voucher_number: str) -> BillingAccount:
        """Auto registration (callback): a new account with the etalon account's
        customer, product, billing model, credit limit and language, topped up
        by the voucher. A voucher that is not good leaves no account behind."""
        from ..accounts import InvalidValue, check_account_id
        try:
            check_account_id(account_id)
        except InvalidValue as exc:
            raise InvalidNumber(str(exc)) from None
        try:
            etalon = await self.store.billing.get_account_billing(etalon_account)
        except NotFound:
            raise UnknownAccount(f"no etalon account {etalon_account}") from None
        try:
            voucher = await self.store.billing.get_voucher(voucher_number)
        except NotFound:
            raise UnknownVoucher(f"no voucher {voucher_number}") from None
        if voucher.used_by is not None:
            raise VoucherUsed(f"voucher {voucher_number} was used already", "used")
        try:
            await self.store.accounts.add_account(
                account_id, etalon.customer_id, quota_bytes=0, mailbox_folders=(), um_enabled=0,
                language=etalon.language)
        except AlreadyExists as exc:
            raise AccountExists(str(exc)) from None
        try:
            await self.store.billing.set_account_billing(
                account_id, billing_model=etalon.billing_model, credit_limit=etalon.credit_limit,
                product=etalon.product, calls_via_ivr=etalon.calls_via_ivr)
            await self.redeem_voucher(account_id, voucher_number)
        except BaseException:
            await self.store.accounts.delete_account(account_id)
            raise
        return await self.get_account(account_id)

    # --- history -------------------------------------------------------------

    async def history(self, *, account: BillingAccount | str | None = None,
                      customer: str | int | None = None, since: int | None = None,
                      until: int | None = None, limit: int | None = None) -> list[Xdr]:
        """xDRs (calls and payments), oldest first, of one account or of one customer."""
        if (account is None) == (customer is None):
            raise ValueError("history needs exactly one of account and customer")
        if account is not None:
            account_id = account if isinstance(account, str) else account.account_id
            return await self.store.billing.get_xdrs(account_id=account_id, since=since,
                                                     until=until, limit=limit)
        if isinstance(customer, str):
            customer = (await self.store.billing.get_customer_billing(customer)).id
        return await self.store.billing.get_xdrs(customer_id=customer, since=since, until=until,
                                                 limit=limit)


def _seconds(stored: int) -> int | None:
    """Reservations keep -1 for "no limit"."""
    return None if stored < 0 else stored


def _check_destination(destination: str) -> None:
    if not isinstance(destination, str) or not destination or any(c.isspace() for c in destination):
        raise InvalidNumber(f"destination must be a non-empty number without spaces, not {destination!r}")


def _available(funds: FundsSnapshot) -> Decimal | None:
    """What an account may still spend, or None without limit."""
    account: AccountBilling = funds.account
    if account.billing_model == "debit":
        return max(account.balance - funds.account_reserved, Decimal(0))
    limits = []
    if account.credit_limit is not None:
        limits.append(account.credit_limit - account.balance - funds.account_reserved)
    customer: CustomerBilling = funds.customer
    if customer.credit_limit is not None:
        limits.append(customer.credit_limit - customer.balance - funds.customer_reserved)
    if not limits:
        return None
    return max(min(limits), Decimal(0))
