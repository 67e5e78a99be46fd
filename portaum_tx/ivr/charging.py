"""The calling applications' one doorway to the billing engine
(:class:`portaum_tx.billing.engine.BillingEngine`).

The applications ask billing a handful of questions (who is this card or caller, may it
call this number and for how long, what did the call cost, top it up); they ask them here,
so that the engine's interface and its exceptions are met in one module. Refusals come back
as :class:`Refused` / :class:`VoucherRefused` with a reason the applications turn into a
prompt.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any, Optional

from portaum_tx.billing.engine import (
    AccountExists, AuthenticationFailed, AuthorizationClosed, AuthorizationRefused, InvalidNumber,
    UnknownAccount, UnknownVoucher, VoucherUsed,
)

INSUFFICIENT_FUNDS = "insufficient-funds"
FORBIDDEN = "forbidden"
NO_RATE = "no-rate"
UNKNOWN_ACCOUNT = "unknown-account"
BLOCKED = "blocked"

#: The engine keeps no currency; amounts are spoken in this one.
CURRENCY = "USD"


class Refused(Exception):
    """Billing said no; ``reason`` is one of the constants above."""

    def __init__(self, reason: str, message: str = ""):
        super().__init__(message or reason)
        self.reason = reason


class VoucherRefused(Exception):
    """``reason``: invalid, used or expired."""

    def __init__(self, reason: str, message: str = ""):
        super().__init__(message or reason)
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class Payer:
    """What the applications need to know of a billing account."""

    id: str
    balance: Decimal            # what the account may still spend (0 when unlimited)
    currency: str
    language: Optional[str] = None
    associated_number: Optional[str] = None
    customer: Any = None
    low_balance: bool = False   # below the product's breakage
    unlimited: bool = False     # nothing limits its spending (a credit account without limits)
    raw: Any = dataclasses.field(default=None, compare=False, repr=False)


def _payer(account) -> Payer:
    available = getattr(account, "available", None)
    unlimited = available is None
    if unlimited:
        available = getattr(account, "balance", 0) if getattr(account, "prepaid", True) else 0
    return Payer(
        id=account.id,
        balance=Decimal(available or 0),
        currency=getattr(account, "currency", None) or CURRENCY,
        language=getattr(account, "language", None) or None,
        associated_number=getattr(account, "associated_number", None) or None,
        customer=getattr(account, "customer_id", getattr(account, "customer", None)),
        low_balance=bool(getattr(account, "low_balance", False)),
        unlimited=unlimited and not getattr(account, "prepaid", True),
        raw=account,
    )


async def find_account(billing, login: str) -> Optional[Payer]:
    """The account whose ID or alias ``login`` is (an ANI, a destination), no secret
    asked."""
    account = await billing.find_account(login)
    return None if account is None else _payer(account)


async def log_in(billing, login: str, *, associated_number: Optional[str] = None) -> Optional[Payer]:
    """A card number, or an authorization code behind an associated number
    (``<associated number>#<code>``), entered by a caller: failures count towards the
    engine's lock-out, so that codes cannot be tried one after another for ever."""
    try:
        if associated_number is not None:
            account = await billing.authenticate(associated_number=associated_number, pin=login)
        else:
            account = await billing.authenticate(login)
    except AuthenticationFailed:
        return None
    return _payer(account)


async def check_password(billing, payer: Payer, password: str) -> bool:
    """The account's service password matches (an account without one accepts anything)."""
    return bool(await billing.check_service_password(payer.id, password))


async def refresh(billing, payer: Payer) -> Payer:
    account = await billing.find_account(payer.id)
    return payer if account is None else _payer(account)


async def authorize(billing, payer: Payer, destination: str, *, access_code: Optional[str] = None,
                    announce_code: Optional[str] = None, session_id: Optional[str] = None):
    try:
        return await billing.authorize(payer.id, destination, access_code,
                                       announce_code=announce_code, session_id=session_id)
    except AuthorizationRefused as refused:
        raise Refused(refused.reason, str(refused)) from None
    except (UnknownAccount, InvalidNumber) as error:
        raise Refused(UNKNOWN_ACCOUNT if isinstance(error, UnknownAccount) else NO_RATE,
                      str(error)) from None


async def is_paid_call(billing, payer: Payer, destination: str) -> bool:
    """A toll call: neither internal (another account of the customer) nor toll-free."""
    call_class = await billing.classify(payer.id, destination)
    return call_class.value not in ("internal", "toll-free")


def max_seconds(authorization) -> Optional[int]:
    return authorization.max_seconds


def announced_seconds(authorization) -> Optional[int]:
    return getattr(authorization, "announced_seconds", None)


async def charge(billing, authorization, seconds: int, *, cli: str = "", cld: Optional[str] = None,
                 access_number: str = "", leg: str = ""):
    """The xDR of a finished leg (None when the authorization was closed meanwhile)."""
    try:
        return await billing.charge(authorization, int(seconds), cli=cli or "", cld=cld,
                                    access_number=access_number or "", leg=leg)
    except AuthorizationClosed:
        return None


async def release(billing, authorization) -> None:
    try:
        await billing.release(authorization)
    except AuthorizationClosed:
        pass


def _voucher_refusal(error: Exception) -> VoucherRefused:
    return VoucherRefused(getattr(error, "reason", "invalid"), str(error))


async def redeem_voucher(billing, payer: Payer, code: str) -> Decimal:
    """The amount the voucher put on the account."""
    try:
        xdr = await billing.redeem_voucher(payer.id, code)
    except (UnknownVoucher, VoucherUsed) as error:
        raise _voucher_refusal(error) from None
    return abs(Decimal(xdr.charge))


async def top_up(billing, payer: Payer, amount: Decimal, reference: str) -> None:
    await billing.top_up(payer.id, amount, f"credit card payment {reference}")


async def register_account(billing, account_id: str, etalon_account: str, voucher: str) -> Payer:
    """Auto registration: a new account like the etalon, topped up by the voucher (raises
    VoucherRefused when the voucher is not good or the number cannot be an account)."""
    try:
        account = await billing.register_account(account_id, etalon_account, voucher)
    except (UnknownVoucher, VoucherUsed) as error:
        raise _voucher_refusal(error) from None
    except (AccountExists, InvalidNumber, UnknownAccount) as error:
        raise VoucherRefused("invalid", str(error)) from None
    return _payer(account)
