"""The calling applications' one doorway to the billing engine.

The applications ask billing a handful of questions (who is this card or caller, may it
call this number and for how long, what did the call cost, top it up); they ask them here,
so that the engine's interface is spelt in one module. Refusals come back as
:class:`Refused` with a reason the applications turn into a prompt.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any, Optional

INSUFFICIENT_FUNDS = "insufficient-funds"
FORBIDDEN = "forbidden"
NO_RATE = "no-rate"
UNKNOWN_ACCOUNT = "unknown-account"
BLOCKED = "blocked"


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
    balance: Decimal            # what the account may still spend
    currency: str
    language: Optional[str] = None
    associated_number: Optional[str] = None
    customer: Any = None
    low_balance: bool = False   # below the product's breakage
    raw: Any = dataclasses.field(default=None, compare=False, repr=False)


def _payer(account) -> Payer:
    return Payer(
        id=account.id,
        balance=Decimal(getattr(account, "available", getattr(account, "balance", 0)) or 0),
        currency=getattr(account, "currency", None) or "USD",
        language=getattr(account, "language", None),
        associated_number=getattr(account, "associated_number", None) or None,
        customer=getattr(account, "customer", getattr(account, "customer_id", None)),
        low_balance=bool(getattr(account, "low_balance", False)),
        raw=account,
    )


async def find_account(billing, login: str) -> Optional[Payer]:
    """The account whose ID or alias ``login`` is (an ANI, a card number, an auth ID)."""
    account = await billing.find_account(login)
    return None if account is None else _payer(account)


async def check_password(billing, payer: Payer, password: str) -> bool:
    """The account's service password matches (an account without one accepts anything)."""
    return bool(await billing.check_service_password(payer.id, password))


async def refresh(billing, payer: Payer) -> Payer:
    account = await billing.find_account(payer.id)
    return payer if account is None else _payer(account)


async def authorize(billing, payer: Payer, destination: str, *, access_code: Optional[str] = None,
                    session_id: Optional[str] = None):
    return await billing.authorize(payer.id, destination, access_code=access_code,
                                   session_id=session_id)


def max_seconds(authorization) -> Optional[int]:
    return authorization.max_seconds


def announced_seconds(authorization) -> Optional[int]:
    return getattr(authorization, "announced_seconds", None)


async def charge(billing, authorization, seconds: int):
    return await billing.charge(authorization, seconds)


async def release(billing, authorization) -> None:
    await billing.release(authorization)


async def redeem_voucher(billing, payer: Payer, code: str) -> Decimal:
    return await billing.redeem_voucher(payer.id, code)


async def top_up(billing, payer: Payer, amount: Decimal, reference: str) -> None:
    await billing.top_up(payer.id, amount, reference)


async def register_account(billing, account_id: str, etalon_account: str, voucher: str) -> Payer:
    """Auto registration: a new account like the etalon, topped up by the voucher (raises
    VoucherRefused when the voucher is not good)."""
    account = await billing.register_account(account_id, etalon_account, voucher)
    return _payer(account)
