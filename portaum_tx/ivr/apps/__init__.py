"""IVR applications and the registry that names them.

An application is ``async def app(call, context, options) -> None``: ``call`` a
:class:`~portaum_tx.ivr.call.Call`, ``context`` an :class:`AppContext` (the node's services
and why the call reached the application), ``options`` the access number's application
options (a dict; each application documents and checks its own).

Applications register under the names the guide and the access-number table use::

    from portaum_tx.ivr.apps import application

    @application("voicemail")
    async def deposit(call, context, options): ...

:func:`load_applications` imports every module of this package so that each registers itself;
a new application is a new module here.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import pkgutil
from typing import Any, Awaitable, Callable, Optional, Sequence

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from portaum_tx.ivr.call import DialFailed
from portaum_tx.ivr.prompts import language_preferences

log = Logger()

Application = Callable[[Any, "AppContext", dict], Awaitable[None]]


class UnknownApplication(LookupError):
    def __init__(self, name: str):
        super().__init__(f"no IVR application named {name!r}")
        self.name = name


class OptionError(ValueError):
    """An application option with a value the application cannot use; names the option."""


class ApplicationRegistry:
    def __init__(self):
        self._apps: dict[str, Application] = {}

    def register(self, name: str, app: Application, replace: bool = False) -> Application:
        if not replace and name in self._apps and self._apps[name] is not app:
            raise ValueError(f"IVR application {name!r} is already registered")
        self._apps[name] = app
        return app

    def unregister(self, name: str) -> None:
        self._apps.pop(name, None)

    def get(self, name: str) -> Application:
        try:
            return self._apps[name]
        except KeyError:
            raise UnknownApplication(name) from None

    def find(self, name: str) -> Optional[Application]:
        return self._apps.get(name)

    def __contains__(self, name: str) -> bool:
        return name in self._apps

    def names(self) -> list[str]:
        return sorted(self._apps)

    def copy(self) -> "ApplicationRegistry":
        other = ApplicationRegistry()
        other._apps = dict(self._apps)
        return other


#: The process-wide registry the modules of this package register into.
registry = ApplicationRegistry()


def application(name: str) -> Callable[[Application], Application]:
    def register(app: Application) -> Application:
        return registry.register(name, app)
    return register


def load_applications() -> ApplicationRegistry:
    """Import every application module of this package; returns the registry."""
    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")
    return registry


@dataclasses.dataclass
class AppContext:
    """What an application may use besides the call.

    ``store``: the domain stores (greetings live in ``store.accounts``);
    ``mailboxes``: MailboxService; ``accounts``: AccountService; ``clock``: IReactorTime;
    ``applications``: the registry (to hand a call on, e.g. to fax reception);
    ``access_number``: the AccessNumber the call came in on, or None;
    ``mailbox``: the account a voicemail deposit is for, when routing decided it;
    ``reason``: why the call was diverted there (busy, no-answer, unavailable ...);
    ``run_blocking``: runs a CPU-heavy function off the reactor (MP3 encoding), returning a
    Deferred; None runs it inline;
    ``billing``: the node's BillingEngine (None: the calling applications make one over
    ``store``); ``payment_gateway``: the node's PaymentGateway, None when ``[payment] url``
    is empty (card top-up is then "service not available");
    ``originator``: ``async (destination, caller_id, timeout) -> Call``, the SIP layer's
    outgoing call not tied to an incoming one (see :meth:`originate`);
    ``background_work``: the node's :class:`BackgroundWork` (see :meth:`background`).
    """

    store: Any
    mailboxes: Any
    accounts: Any
    clock: Any
    applications: ApplicationRegistry = dataclasses.field(default_factory=lambda: registry)
    access_number: Any = None
    mailbox: Optional[str] = None
    reason: Optional[str] = None
    run_blocking: Optional[Callable[..., Any]] = None
    billing: Any = None
    payment_gateway: Any = None
    originator: Optional[Callable[[str, Optional[str], float], Awaitable[Any]]] = None
    background_work: Optional["BackgroundWork"] = None

    async def blocking(self, function: Callable[..., Any], *args: Any) -> Any:
        if self.run_blocking is None:
            return function(*args)
        return await self.run_blocking(function, *args)

    async def originate(self, destination: str, caller_id: Optional[str] = None,
                        timeout: float = 60.0):
        """Call ``destination`` (a callback): the answered leg, a Call the application must
        hang up; raises :class:`~portaum_tx.ivr.call.DialFailed` (reason ``failed`` when
        this node places no calls)."""
        if self.originator is None:
            log.error("cannot call {destination}: this node places no outgoing calls",
                      destination=destination)
            raise DialFailed(destination, "failed")
        return await self.originator(destination, caller_id, timeout)

    def background(self, work: defer.Deferred, what: str = "background work") -> defer.Deferred:
        """Keep ``work`` (a Deferred) running after the call that started it has ended: the
        node's shutdown cancels it and waits for it, and a failure is logged."""
        if self.background_work is None:
            self.background_work = BackgroundWork()
        return self.background_work.track(work, what)


class BackgroundWork:
    """Work that outlives the call that started it (a callback placed after the caller hung
    up). A failure is logged; :meth:`stop` refuses new work, lets what runs finish within a
    grace time, then cancels the rest and waits until it has unwound (legs hung up)."""

    def __init__(self, clock=None):
        self.clock = clock
        self.stopping = False
        # work -> (what it is, fires once the work has ended)
        self._pending: dict[defer.Deferred, tuple[str, defer.Deferred]] = {}

    @property
    def pending(self) -> list[str]:
        """What is still running, by description."""
        return [what for what, _ in self._pending.values()]

    def track(self, work: defer.Deferred, what: str = "background work") -> defer.Deferred:
        """Returns a Deferred that fires (with None) once ``work`` has ended, however."""
        if not isinstance(work, defer.Deferred):
            raise TypeError(f"background work must be a Deferred, got {type(work).__name__}")
        finished = defer.Deferred()
        if self.stopping:
            log.warn("node stopping: {what} not started", what=what)
            work.addErrback(lambda failure: None)
            work.cancel()
            finished.callback(None)
            return finished
        self._pending[work] = (what, finished)

        def ended(result):
            self._pending.pop(work, None)
            if isinstance(result, Failure) and not result.check(defer.CancelledError):
                log.failure("{what} failed", result, what=what)
            finished.callback(None)
            return None

        work.addBoth(ended)
        return finished

    def _all_finished(self) -> defer.Deferred:
        return defer.DeferredList([finished for _, finished in self._pending.values()])

    async def stop(self, grace: float = 0.0) -> None:
        self.stopping = True
        if self._pending and grace > 0 and self.clock is not None:
            gate = defer.Deferred()
            open_gate = lambda *_: None if gate.called else gate.callback(None)  # noqa: E731
            self._all_finished().addBoth(open_gate)
            timer = self.clock.callLater(grace, open_gate)
            await gate
            if timer.active():
                timer.cancel()
        if self._pending:
            log.info("node stopping: cancelling {what}", what=", ".join(self.pending))
            waits = self._all_finished()
            for work in list(self._pending):
                work.cancel()
            await waits


# --- option parsing shared by applications (names as in the guide's Appendix A) ---------

def option_bool(options: dict, name: str, default: bool) -> bool:
    value = options.get(name, default)
    if isinstance(value, bool):
        return value
    if isinstance(value, (int,)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("yes", "no", "true", "false", "1", "0", "on", "off"):
        return value.strip().lower() in ("yes", "true", "1", "on")
    raise OptionError(f"option {name} must be yes or no, got {value!r}")


def option_number(options: dict, name: str, default: float, minimum: float, maximum: float,
                  integer: bool = False) -> float:
    value = options.get(name, default)
    try:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, str):
            value = value.strip()
        # float() and int() of a float accept nan and inf; no option means either.
        number = float(value) if isinstance(value, (float, str)) else value
        if isinstance(number, float) and not math.isfinite(number):
            raise ValueError
        number = int(value) if integer else float(value)
        if integer and isinstance(value, float) and value != int(value):
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        raise OptionError(f"option {name} must be a{'n integer' if integer else ' number'}, "
                          f"got {options.get(name, default)!r}") from None
    if not minimum <= number <= maximum:
        raise OptionError(f"option {name} must be between {minimum:g} and {maximum:g}, got {value!r}")
    return number


def choice_option(name: str, default: str, choices: Sequence[str], help: str) -> tuple:
    """An option declaration whose value is one of ``choices``: the fifth element of an
    ``OPTIONS`` entry, so that the admin pages offer (and accept) exactly what
    :func:`option_choice` will."""
    if default not in choices:
        raise ValueError(f"option {name}: default {default!r} is not one of {choices}")
    return (name, "choice", default, help, tuple(choices))


def option_choice(options: dict, name: str, default: str, choices: Sequence[str]) -> str:
    value = options.get(name, default)
    text = str(value).strip().lower() if value is not None else default
    if text not in choices:
        raise OptionError(f"option {name} must be one of {', '.join(choices)}, got {value!r}")
    return text


def option_languages(options: dict) -> list[str]:
    value = options.get("languages", [])
    if isinstance(value, str):
        value = [part for part in value.replace(",", " ").split() if part]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise OptionError(f"option languages must be a list of language codes, got {value!r}")
    return list(value)


def option_brand(options: dict) -> Optional[str]:
    value = options.get("prompts_brand") or None
    if value is not None and (not isinstance(value, str) or "/" in value or value.startswith(".")):
        raise OptionError(f"option prompts_brand must be a directory name, got {value!r}")
    return value


def apply_language_options(call, options: dict, account_language: Optional[str]) -> None:
    """Set the call's prompt languages and brand from the common options (Languages,
    Conf Language List is Preferred, Prompts Brand) and the account's language."""
    call.languages = language_preferences(
        account_language, option_languages(options),
        option_bool(options, "language_list_preferred", False))
    call.brand = option_brand(options)
