"""Which application an incoming call reaches (SPEC.md "Call routing").

1. An access number (exact, else the longest prefix pattern such as ``AD%``) starts the
   application configured on it, with that number's options.
2. Otherwise a mailbox: the original called number when the call was diverted
   (Diversion / History-Info, handed over by the SIP layer as ``call.original_called``),
   else the called number, naming an account or alias with unified messaging, starts
   voicemail deposit for it, with the diversion reason.
3. Otherwise, when the SIP layer vouches for the caller (``caller``: an account number it
   trusts, see docs/pass-through-pin.md) and that is an account of ours, the call is the
   account's own call and billing says where it goes: to the account's IVR (a toll call of
   an account that calls via IVR: the access number's application runs with the called
   number rewritten as the IVR number, ``AD12125551234``) or straight through the trunk as
   the account's call (:mod:`portaum_tx.ivr.direct`).
4. Otherwise 404.

The SIP layer builds a :class:`~portaum_tx.ivr.call.Call` for each INVITE and hands it to
:meth:`Router.handle`, which runs the application to its end and makes sure the call is over
afterwards.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

from twisted.logger import Logger

from portaum_tx.ivr.apps import (
    AppContext, ApplicationRegistry, BackgroundWork, OptionError, UnknownApplication,
)
from portaum_tx.ivr.call import CallHungUp
from portaum_tx.store import NotFound

log = Logger()

DEPOSIT_APPLICATION = "voicemail"
#: The Route of an account's call placed straight through the trunk (no application runs).
DIRECT_CALL = "direct-call"


class NoRoute(LookupError):
    """Nothing answers this number: the SIP layer answers 404."""


@dataclasses.dataclass(frozen=True)
class Route:
    application: str
    options: dict
    access_number: Any = None   # the AccessNumber matched, or None
    mailbox: Optional[str] = None  # account ID of a deposit
    reason: Optional[str] = None


def greeting_reason(diversion_reason: Optional[str]) -> str:
    """The deposit reason a diversion reason means: busy, or unavailable for the rest."""
    return "busy" if diversion_reason == "busy" else "unavailable"


class Router:
    """Routes calls and builds each application's :class:`AppContext` from the node's
    services: ``billing`` (one BillingEngine for every call; made over ``store`` when not
    given and the store has billing tables), ``payment_gateway`` (None: card top-up off),
    ``originate`` (the SIP layer's outgoing calls, for callback) and ``background`` (a
    :class:`BackgroundWork` the node stops at shutdown; the router's own otherwise)."""

    def __init__(self, store, mailboxes, accounts, clock, applications: ApplicationRegistry,
                 run_blocking=None, *, billing=None, payment_gateway=None, originate=None,
                 background: Optional[BackgroundWork] = None):
        self.store = store
        self.mailboxes = mailboxes
        self.accounts = accounts
        self.clock = clock
        self.applications = applications
        self.run_blocking = run_blocking
        if billing is None and getattr(store, "billing", None) is not None:
            from portaum_tx.billing.engine import BillingEngine
            billing = BillingEngine(store, clock)
        self.billing = billing
        self.payment_gateway = payment_gateway
        self.originate = originate
        self.background = background if background is not None else BackgroundWork(clock)

    @classmethod
    def for_node(cls, node, applications: ApplicationRegistry, run_blocking=None, *,
                 originate=None) -> "Router":
        """The router over a server Node's services (see portaum_tx.server.Node)."""
        return cls(node.store, node.mailboxes, node.accounts, node.reactor, applications,
                   run_blocking, billing=getattr(node, "billing", None),
                   payment_gateway=getattr(node, "payment_gateway", None),
                   originate=originate, background=getattr(node, "background", None))

    async def stop(self, grace: float = 0.0) -> None:
        """Cancel (after ``grace`` seconds) and wait for the work calls left running."""
        await self.background.stop(grace)

    async def route(self, called: str, original_called: Optional[str] = None,
                    diversion_reason: Optional[str] = None) -> Route:
        access = await self.store.access_numbers.get_access_number_for(called)
        if access is not None:
            return Route(access.application, dict(access.options), access_number=access)
        for number in ([original_called] if original_called else []) + [called]:
            try:
                account_id = await self.mailboxes.resolve(number)
            except NotFound:
                continue
            return Route(DEPOSIT_APPLICATION, {}, mailbox=account_id,
                         reason=greeting_reason(diversion_reason))
        raise NoRoute(f"no access number or mailbox for {called}"
                      + (f" (diverted from {original_called})" if original_called else ""))

    def context(self, route: Route) -> AppContext:
        return AppContext(store=self.store, mailboxes=self.mailboxes, accounts=self.accounts,
                          clock=self.clock, applications=self.applications,
                          access_number=route.access_number, mailbox=route.mailbox,
                          reason=route.reason, run_blocking=self.run_blocking,
                          billing=self.billing, payment_gateway=self.payment_gateway,
                          originator=self.originate, background_work=self.background)

    async def handle(self, call, caller: Optional[str] = None) -> Optional[Route]:
        """Route ``call`` and run its application to the end; the call is over afterwards.
        ``caller``: the account number the SIP layer vouches for, if any; only such a
        caller's calls to other numbers are placed (see :meth:`account_call`). Unknown
        numbers are rejected with 404, a misconfigured access number with 500."""
        try:
            try:
                route = await self.route(call.called, call.original_called,
                                         call.diversion_reason)
            except NoRoute:
                route = await self.account_call(call, caller) if caller else None
                if route is None:
                    raise
                if route.application == DIRECT_CALL:
                    return route
            app = self.applications.get(route.application)
        except NoRoute as e:
            log.info("{call_id}: {reason}", call_id=call.call_id, reason=str(e))
            await call.reject(404, "Not Found")
            return None
        except UnknownApplication as e:
            log.error("{call_id}: access number for {called} names {error}",
                      call_id=call.call_id, called=call.called, error=str(e))
            await call.reject(500, "Application Not Available")
            return None
        await run_application(app, call, self.context(route), route.options, route.application)
        return route

    async def account_call(self, call, caller: str) -> Optional[Route]:
        """A call account ``caller`` places to a number that is not ours: None when the
        caller is no account of ours (or there is no billing); the IVR's Route, with
        ``call.called`` rewritten to the IVR number, when billing sends it through the
        account's IVR; else the call is placed through the trunk here and the Route is
        :data:`DIRECT_CALL`."""
        if self.billing is None:
            return None
        from portaum_tx.ivr import charging
        from portaum_tx.ivr.apps.passthrough import VIA_IVR, outgoing_route
        from portaum_tx.ivr.direct import place_direct_call
        payer = await charging.find_account(self.billing, caller)
        if payer is None:
            return None
        decision = await outgoing_route(self.billing, payer.id, call.called)
        if decision.kind == VIA_IVR:
            try:
                route = await self.route(decision.number)
            except NoRoute:
                log.error("{call_id}: account {account} calls via IVR {number}, which is no "
                          "access number", call_id=call.call_id, account=payer.id,
                          number=decision.number)
                raise
            log.info("{call_id}: {account} to {called}: via IVR {number}", call_id=call.call_id,
                     account=payer.id, called=call.called, number=decision.number)
            call.called = decision.number
            return route
        log.info("{call_id}: {account} to {called}: direct ({call_class})",
                 call_id=call.call_id, account=payer.id, called=call.called,
                 call_class=decision.call_class)
        try:
            await place_direct_call(call, self.billing, payer, decision.number)
        except CallHungUp:
            pass
        except Exception:
            log.failure("{call_id}: direct call to {called} failed", call_id=call.call_id,
                        called=call.called)
        finally:
            if not call.is_hungup:
                if call.answered:
                    await call.hangup()
                else:
                    await call.reject(480, "Temporarily Unavailable")
        return Route(DIRECT_CALL, {})


async def run_application(app, call, context: AppContext, options: dict, name: str = "") -> None:
    """Run ``app`` on ``call`` to its end: a hang-up ends it quietly, a failure is logged,
    and the call is over afterwards whatever happened."""
    try:
        await app(call, context, options)
    except CallHungUp:
        pass
    except OptionError as e:
        log.error("{call_id}: application {app} on {called}: {error}", call_id=call.call_id,
                  app=name, called=call.called, error=str(e))
    except Exception:
        log.failure("{call_id}: application {app} failed", call_id=call.call_id, app=name)
    finally:
        if not call.is_hungup:
            if call.answered:
                await call.hangup()
            else:
                await call.reject(480, "Temporarily Unavailable")
