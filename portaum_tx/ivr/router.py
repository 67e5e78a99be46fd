"""Which application an incoming call reaches (SPEC.md "Call routing").

1. An access number (exact, else the longest prefix pattern such as ``AD%``) starts the
   application configured on it, with that number's options.
2. Otherwise a mailbox: the original called number when the call was diverted
   (Diversion / History-Info, handed over by the SIP layer as ``call.original_called``),
   else the called number, naming an account or alias with unified messaging, starts
   voicemail deposit for it, with the diversion reason.
3. Otherwise 404.

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

    async def handle(self, call) -> Optional[Route]:
        """Route ``call`` and run its application to the end; the call is over afterwards.
        Unknown numbers are rejected with 404, a misconfigured access number with 500."""
        try:
            route = await self.route(call.called, call.original_called, call.diversion_reason)
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
