"""The payment gateway client the credit-card top-up IVR charges cards through.

The gateway is an HTTPS service configured in tap.conf's ``[payment]`` section. One charge
is one request::

    POST <url>                      (HTTP basic authentication: username / password)
    Content-Type: application/json
    {"reference": "<unique id>", "account": "12065557777", "card_number": "4111111111111111",
     "expiry": "0929", "amount": "10.00", "currency": "USD"}

and the gateway answers ``200`` with JSON::

    {"status": "approved", "transaction_id": "T-1234"}
    {"status": "declined", "reason": "insufficient funds"}

A declined card is an answer, not an error: :meth:`PaymentGateway.charge` returns it as a
:class:`Payment` with ``approved`` false. Anything else (no connection, a timeout, a non-200
status, a body that is not that JSON) raises :class:`GatewayUnavailable`, naming what went
wrong and never the card number.

Card numbers only travel over HTTPS; plain ``http://`` is accepted for a loopback gateway
(a local relay) and refused for anything else.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
from decimal import Decimal
from typing import Any, Optional
from urllib.parse import urlsplit

import treq
from treq.client import HTTPClient
from twisted.internet import defer
from twisted.internet.error import ConnectError, TimeoutError as ConnectTimeout
from twisted.web._newclient import RequestTransmissionFailed, ResponseNeverReceived
from twisted.web.client import Agent, BrowserLikePolicyForHTTPS, ResponseFailed

__all__ = ["GatewayConfigError", "GatewayUnavailable", "Payment", "PaymentGateway"]

_LOOPBACK_NAMES = ("localhost",)
_MAX_BODY = 64 * 1024


class GatewayConfigError(ValueError):
    """The [payment] settings cannot be used; the message names the option."""


class GatewayUnavailable(Exception):
    """The gateway could not be asked or gave no usable answer."""


@dataclasses.dataclass(frozen=True)
class Payment:
    approved: bool
    reference: str
    amount: Decimal
    transaction_id: Optional[str] = None
    reason: Optional[str] = None


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def mask_card(number: str) -> str:
    """What a log may show of a card number: its last four digits."""
    return "*" * max(0, len(number) - 4) + number[-4:]


class PaymentGateway:
    """``trust_root`` (a ``twisted.internet.ssl.Certificate``) replaces the system CAs, for a
    gateway with a private certificate; ``agent`` replaces the HTTP agent altogether."""

    def __init__(self, reactor, url: str, username: str = "", password: str = "",
                 timeout: float = 30.0, *, trust_root=None, agent=None):
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise GatewayConfigError(f"[payment] url must be an https:// URL, got {url!r}")
        if parts.scheme == "http" and not _is_loopback(parts.hostname):
            raise GatewayConfigError(
                f"[payment] url must use https (card numbers travel in it); plain http is only "
                f"allowed to a loopback address, got {url!r}")
        if timeout <= 0:
            raise GatewayConfigError(f"[payment] timeout must be positive, got {timeout!r}")
        self.reactor = reactor
        self.url = url
        self.timeout = timeout
        self._auth = (username, password) if username or password else None
        if agent is None:
            policy = BrowserLikePolicyForHTTPS(trustRoot=trust_root)
            agent = Agent(reactor, contextFactory=policy, connectTimeout=timeout)
        self._http = HTTPClient(agent)

    @classmethod
    def from_config(cls, config, reactor) -> Optional["PaymentGateway"]:
        """The configured gateway, or None when ``[payment] url`` is empty."""
        section = config.payment
        if not section.url:
            return None
        return cls(reactor, section.url, section.username, section.password, section.timeout)

    async def charge(self, *, reference: str, account: str, card_number: str, expiry: str,
                     amount: Decimal, currency: str) -> Payment:
        if not isinstance(amount, Decimal) or amount <= 0:
            raise ValueError(f"amount to charge must be a positive Decimal, got {amount!r}")
        body = {"reference": reference, "account": account, "card_number": card_number,
                "expiry": expiry, "amount": f"{amount:.2f}", "currency": currency}
        try:
            response = await self._http.post(
                self.url, json=body, auth=self._auth, timeout=self.timeout,
                headers={"Accept": ["application/json"]}, reactor=self.reactor)
            data = await self._read(response)
        except GatewayUnavailable:
            raise
        except defer.CancelledError:
            raise GatewayUnavailable(
                f"payment gateway {self.url} did not answer within {self.timeout:g} s") from None
        except (ConnectError, ConnectTimeout, ResponseFailed, ResponseNeverReceived,
                RequestTransmissionFailed, OSError) as e:
            if _was_cancelled(e):
                raise GatewayUnavailable(
                    f"payment gateway {self.url} did not answer within {self.timeout:g} s") from None
            raise GatewayUnavailable(f"payment gateway {self.url} unreachable: "
                                     f"{_describe_failure(e)}") from None
        return self._payment(data, reference, amount)

    async def _read(self, response) -> Any:
        if response.code != 200:
            await _discard(response)
            raise GatewayUnavailable(f"payment gateway {self.url} answered HTTP {response.code}")
        content = await treq.content(response)
        if len(content) > _MAX_BODY:
            raise GatewayUnavailable(f"payment gateway {self.url} answered {len(content)} bytes; "
                                     f"at most {_MAX_BODY} expected")
        try:
            return json.loads(content.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise GatewayUnavailable(f"payment gateway {self.url} answered something that is "
                                     f"not JSON") from None

    def _payment(self, data: Any, reference: str, amount: Decimal) -> Payment:
        if not isinstance(data, dict) or data.get("status") not in ("approved", "declined"):
            raise GatewayUnavailable(f"payment gateway {self.url} answered without a status of "
                                     f"approved or declined")
        transaction = data.get("transaction_id")
        reason = data.get("reason")
        if transaction is not None and not isinstance(transaction, (str, int)):
            raise GatewayUnavailable(f"payment gateway {self.url} answered a transaction_id "
                                     f"that is not a string")
        if data["status"] == "approved":
            if transaction is None:
                raise GatewayUnavailable(f"payment gateway {self.url} approved a charge "
                                         f"without a transaction_id")
            return Payment(True, reference, amount, str(transaction))
        return Payment(False, reference, amount,
                       str(transaction) if transaction is not None else None,
                       str(reason) if reason is not None else None)


async def _discard(response) -> None:
    try:
        await treq.content(response)
    except Exception:
        pass


def _was_cancelled(error: Exception) -> bool:
    """treq's timeout cancels the request, which the agent reports wrapped."""
    reasons = getattr(error, "reasons", None) or []
    return any(reason.check(defer.CancelledError) for reason in reasons)


def _describe_failure(error: Exception) -> str:
    if isinstance(error, (ResponseFailed, ResponseNeverReceived, RequestTransmissionFailed)):
        reasons = [str(f.value) for f in error.reasons] or [str(error)]
        return "; ".join(reasons)
    return str(error) or type(error).__name__
