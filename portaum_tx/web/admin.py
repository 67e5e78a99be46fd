"""Operator endpoints: customers, accounts, aliases, access numbers, prompts.

The rules are the CLI's (:mod:`portaum_tx.admin`): accounts go through
:class:`~portaum_tx.accounts.AccountService`, patterns and application
names through the same checks, so the web and ``portaum-admin`` cannot
disagree about what is valid.
"""

from __future__ import annotations

import hmac
import types

from ..accounts import CHOICES, DEFAULT_QUOTA, AccountService, InvalidValue, parse_quota
from ..admin import accounts as cli_accounts
from ..admin.access_numbers import check_application, check_pattern
from ..ivr.prompts import _LANGUAGE, _TOKEN
from ..store import AlreadyExists, NotFound, StoreError
from . import app_options
from .api import ADMIN, PUBLIC, ApiError, Field, Param, Response, Route, invalid, not_found
from .selfcare import au_as_wav, convert_upload
from .sessions import ADMIN_COOKIE, LIFETIME

#: The default prompt set (no brand) is stored under this brand name.
DEFAULT_BRAND = ""
DEFAULT_BRAND_SEGMENT = "default"


def _enabled(ctx) -> str:
    password = ctx.node.config.web.admin_password
    if not password:
        raise ApiError(403, "admin_disabled",
                       "the admin site is switched off ([web] admin_password is empty)")
    return password


async def sign_in(ctx):
    password = _enabled(ctx)
    store = ctx.node.store.accounts
    subjects = ["admin:operator", f"address:{ctx.client}"]
    for subject in subjects:
        until = await store.get_locked_until(subject)
        if until > ctx.now:
            raise ApiError(429, "locked", "too many failed sign-ins; try again later",
                           headers={"Retry-After": str(until - ctx.now)})
    if not hmac.compare_digest(ctx.body["password"].encode(), password.encode()):
        for subject in subjects:
            await store.add_auth_failure(subject, AccountService.FAILURE_WINDOW,
                                         AccountService.FAILURE_LIMIT, AccountService.LOCK_FOR)
        raise ApiError(401, "unauthenticated", "wrong operator password")
    await store.delete_auth_failures(subjects[0])
    token, session = ctx.signer.issue("admin", "operator", ctx.now)
    ctx.set_cookie(ADMIN_COOKIE, token, LIFETIME)
    return {"role": "admin", "expires": session.expires, "csrf_token": ctx.signer.csrf_token(session)}


async def current_session(ctx):
    return {"role": "admin", "expires": ctx.session.expires,
            "csrf_token": ctx.signer.csrf_token(ctx.session)}


async def sign_out(ctx):
    ctx.set_cookie(ADMIN_COOKIE, "", 0)
    return {"signed_out": True}


def _store_errors(exc: Exception) -> ApiError:
    if isinstance(exc, NotFound):
        return not_found(str(exc))
    if isinstance(exc, AlreadyExists):
        return ApiError(409, "conflict", str(exc))
    if isinstance(exc, (InvalidValue, ValueError)):
        return invalid(str(exc))
    return ApiError(409, "conflict", str(exc))


# --- customers -----------------------------------------------------------

async def list_customers(ctx):
    store = ctx.node.store.accounts
    rows = []
    for customer in await store.get_customers():
        accounts = await store.get_accounts(customer.id)
        rows.append({"name": customer.name, "accounts": len(accounts), "created": customer.created})
    return {"customers": rows}


async def add_customer(ctx):
    name = ctx.body["name"].strip()
    if not name:
        raise invalid("customer name must not be empty", "name")
    try:
        customer = await ctx.node.store.accounts.add_customer(name)
    except StoreError as exc:
        raise _store_errors(exc) from None
    return {"name": customer.name, "accounts": 0, "created": customer.created}


async def delete_customer(ctx, name):
    try:
        await ctx.node.store.accounts.delete_customer(name)
    except StoreError as exc:
        raise _store_errors(exc) from None
    return {"deleted": name}


# --- accounts ------------------------------------------------------------

_PREFERENCES = ("email", "language", "timezone", "attachment_format", "fax_format", "forward_mode",
                "forward_address", "greeting", "associated_number", "mwi_contact")


async def _describe(ctx, account_id: str) -> dict:
    return await cli_accounts._describe(types.SimpleNamespace(store=ctx.node.store), account_id)


async def list_accounts(ctx):
    store = ctx.node.store.accounts
    customer_id = None
    if ctx.query.get("customer"):
        customer_id = (await store.get_customer(ctx.query["customer"])).id
    customers = {c.id: c.name for c in await store.get_customers()}
    return {"accounts": [{"id": a.id, "customer": customers.get(a.customer_id), "email": a.email,
                          "language": a.language, "unified_messaging": a.um_enabled}
                         for a in await store.get_accounts(customer_id)]}


async def add_account(ctx):
    body = dict(ctx.body)
    try:
        quota = parse_quota(body.pop("quota")) if body.get("quota") else DEFAULT_QUOTA
        body.pop("quota", None)
        account = await ctx.node.accounts.create_account(
            body.pop("id"), body.pop("customer"), pin=body.pop("pin", None),
            password=body.pop("password", None), quota=quota,
            um_enabled=body.pop("unified_messaging", True), **body)
    except (StoreError, InvalidValue) as exc:
        raise _store_errors(exc) from None
    return await _describe(ctx, account.id)


async def get_account(ctx, account_id):
    return await _describe(ctx, account_id)


async def change_account(ctx, account_id):
    body = dict(ctx.body)
    await ctx.node.store.accounts.get_account(account_id)
    if not body:
        raise invalid("nothing to change")
    try:
        quota = parse_quota(body.pop("quota")) if body.get("quota") else None
        body.pop("quota", None)
        pin, password = body.pop("pin", None), body.pop("password", None)
        if "unified_messaging" in body:
            body["um_enabled"] = body.pop("unified_messaging")
        if pin is not None or password is not None:
            await ctx.node.accounts.set_secrets(account_id, pin=pin, password=password)
        if body:
            await ctx.node.accounts.set_preferences(account_id, **body)
        if quota is not None:
            await ctx.node.store.mailboxes.set_quota(account_id, quota)
    except (StoreError, InvalidValue) as exc:
        raise _store_errors(exc) from None
    return await _describe(ctx, account_id)


async def delete_account(ctx, account_id):
    try:
        await ctx.node.store.accounts.delete_account(account_id)
    except StoreError as exc:
        raise _store_errors(exc) from None
    return {"deleted": account_id}


# --- aliases -------------------------------------------------------------

async def list_aliases(ctx):
    rows = await ctx.node.store.accounts.get_aliases(ctx.query.get("account") or None)
    return {"aliases": [{"alias": a, "account": b, "created": c} for a, b, c in rows]}


async def add_alias(ctx):
    try:
        await ctx.node.accounts.add_alias(ctx.body["alias"], ctx.body["account"])
    except (StoreError, InvalidValue) as exc:
        raise _store_errors(exc) from None
    return {"alias": ctx.body["alias"], "account": ctx.body["account"]}


async def delete_alias(ctx, alias):
    try:
        await ctx.node.store.accounts.delete_alias(alias)
    except StoreError as exc:
        raise _store_errors(exc) from None
    return {"deleted": alias}


# --- applications and access numbers -----------------------------------------

async def list_applications(ctx):
    return {"applications": [
        {"name": name, "description": description, "options": [o.as_json() for o in options]}
        for name, (description, options) in sorted(app_options.applications().items())]}


def _number(number) -> dict:
    return {"pattern": number.pattern, "application": number.application,
            "options": number.options, "created": number.created}


async def list_access_numbers(ctx):
    return {"access_numbers": [_number(n) for n in
                               await ctx.node.store.access_numbers.get_access_numbers()]}


def _checked(application: str, options: dict) -> tuple[str, dict]:
    try:
        check_application(application)
        return application, app_options.check_options(application, options)
    except ValueError as exc:
        raise invalid(str(exc), "options" if "option" in str(exc) else "application") from None


async def add_access_number(ctx):
    try:
        pattern = check_pattern(ctx.body["pattern"])
    except ValueError as exc:
        raise invalid(str(exc), "pattern") from None
    application, options = _checked(ctx.body["application"], ctx.body.get("options") or {})
    try:
        number = await ctx.node.store.access_numbers.add_access_number(pattern, application, options)
    except StoreError as exc:
        raise _store_errors(exc) from None
    return _number(number)


async def get_access_number(ctx, pattern):
    return _number(await ctx.node.store.access_numbers.get_access_number(pattern))


async def change_access_number(ctx, pattern):
    numbers = ctx.node.store.access_numbers
    number = await numbers.get_access_number(pattern)
    application = ctx.body.get("application") or number.application
    options = dict(number.options) if application == number.application else {}
    if "options" in ctx.body:
        options = dict(ctx.body["options"] or {})
    for key in ctx.body.get("unset", []):
        options.pop(key, None)
    application, options = _checked(application, options)
    return _number(await numbers.set_access_number_options(pattern, application, options))


async def delete_access_number(ctx, pattern):
    await ctx.node.store.access_numbers.delete_access_number(pattern)
    return {"deleted": pattern}


# --- prompts ---------------------------------------------------------------

def _prompt_key(brand: str, language: str, name: str) -> tuple[str, str, str]:
    if brand != DEFAULT_BRAND_SEGMENT and not _TOKEN.match(brand):
        raise invalid(f"brand must be a plain name (letters, digits, . _ -), got {brand!r}", "brand")
    if not _LANGUAGE.match(language):
        raise invalid(f"language must be a code such as en or es, got {language!r}", "language")
    if not _TOKEN.match(name) or len(name) > 64:
        raise invalid(f"prompt name must be a plain name (letters, digits, . _ -), got {name!r}", "name")
    return (DEFAULT_BRAND if brand == DEFAULT_BRAND_SEGMENT else brand), language, name


async def list_prompts(ctx):
    brand = ctx.query.get("brand")
    if brand == DEFAULT_BRAND_SEGMENT:
        brand = DEFAULT_BRAND
    rows = await ctx.node.store.prompts.get_prompt_list(brand)
    return {"prompts": [{"brand": b or DEFAULT_BRAND_SEGMENT, "language": lang, "name": n,
                         "seconds": round(max(0, size - 24) / 8000, 1), "updated": updated}
                        for b, lang, n, size, updated in rows]}


async def get_prompt(ctx, brand, language, name):
    key = _prompt_key(brand, language, name)
    audio = await ctx.node.store.prompts.get_prompt(*key)
    if audio is None:
        raise not_found(f"no uploaded prompt {name} for {brand}/{language}")
    return Response(au_as_wav(audio), "audio/wav", ranged=True)


async def put_prompt(ctx, brand, language, name):
    key = _prompt_key(brand, language, name)
    au = await convert_upload(ctx)
    await ctx.node.store.prompts.store_prompt(*key, au)
    return {"brand": brand, "language": language, "name": name,
            "seconds": round((len(au) - 24) / 8000, 1)}


async def delete_prompt(ctx, brand, language, name):
    key = _prompt_key(brand, language, name)
    if not await ctx.node.store.prompts.delete_prompt(*key):
        raise not_found(f"no uploaded prompt {name} for {brand}/{language}")
    return {"deleted": name}


# --- active calls ------------------------------------------------------------

def describe_call(call) -> dict:
    return {"call_id": getattr(call, "call_id", None), "caller": getattr(call, "calling", None) or None,
            "caller_name": getattr(call, "calling_name", None) or None,
            "called": getattr(call, "called", None) or None,
            "original_called": getattr(call, "original_called", None) or None,
            "diversion_reason": getattr(call, "diversion_reason", None) or None,
            "answered": bool(getattr(call, "answered", False))}


async def list_calls(ctx):
    """The SIP front end's calls in progress on this node (read-only)."""
    sip = ctx.node.services.get("sip")
    calls = getattr(sip, "calls", None)
    if calls is None:
        raise ApiError(503, "no_call_view", "this node has no SIP service, so no calls to show")
    rows = [describe_call(call) for call in list(calls)]
    rows.sort(key=lambda row: row["call_id"] or "")
    return {"node": ctx.node.name, "calls": rows}


_PREFERENCE_FIELDS = [
    Field("email", "string", "e-mail address (also a login name)", nullable=True, max_length=200),
    Field("language", "string", "prompt language, e.g. en or es", max_length=10),
    Field("timezone", "string", "time zone, e.g. America/New_York", max_length=64),
    Field("attachment_format", "string", "voice attachments", enum=CHOICES["attachment_format"]),
    Field("fax_format", "string", "fax documents", enum=CHOICES["fax_format"]),
    Field("forward_mode", "string", "forward new messages", enum=CHOICES["forward_mode"]),
    Field("forward_address", "string", "where forwarded messages go", nullable=True, max_length=200),
    Field("greeting", "string", "which greeting callers hear", enum=CHOICES["greeting"]),
    Field("associated_number", "string", "number that prefixes PIN auth IDs", nullable=True, max_length=32),
    Field("mwi_contact", "string", "SIP URI for unsolicited MWI NOTIFY", nullable=True, max_length=300),
    Field("pin", "string", "voicemail PIN (digits)", max_length=20),
    Field("password", "string", "password for mail, web and SIP", max_length=200),
    Field("quota", "string", "mailbox quota, e.g. 100M", max_length=20),
    Field("unified_messaging", "boolean", "the account has a mailbox"),
]
_ACCOUNT = Param("account_id", "account ID")
_PATTERN = Param("pattern", "access number or prefix pattern (URL-encode % as %25)")
_PROMPT = [Param("brand", f"brand directory, or {DEFAULT_BRAND_SEGMENT} for the default set"),
           Param("language", "language code"), Param("name", "prompt name")]
_A = "/api/v1/admin"

ROUTES = [
    Route("POST", f"{_A}/session", sign_in, PUBLIC, "Operator sign-in", "admin",
          body=[Field("password", "string", "the operator password ([web] admin_password)", True,
                      max_length=200)]),
    Route("GET", f"{_A}/session", current_session, ADMIN, "The operator session and CSRF token", "admin"),
    Route("DELETE", f"{_A}/session", sign_out, ADMIN, "Operator sign-out", "admin"),
    Route("GET", f"{_A}/customers", list_customers, ADMIN, "Customers", "admin"),
    Route("POST", f"{_A}/customers", add_customer, ADMIN, "Create a customer", "admin", status=201,
          body=[Field("name", "string", "customer name", True, max_length=200)]),
    Route("DELETE", f"{_A}/customers/{{name}}", delete_customer, ADMIN,
          "Remove a customer without accounts", "admin", params=[Param("name", "customer name")]),
    Route("GET", f"{_A}/accounts", list_accounts, ADMIN, "Accounts", "admin",
          params=[Param("customer", "only this customer's accounts", where="query", required=False)]),
    Route("POST", f"{_A}/accounts", add_account, ADMIN, "Create an account and its mailbox", "admin",
          status=201, body=[Field("id", "string", "account ID: the phone number", True, max_length=33),
                            Field("customer", "string", "owning customer's name", True, max_length=200),
                            *_PREFERENCE_FIELDS]),
    Route("GET", f"{_A}/accounts/{{account_id}}", get_account, ADMIN, "One account", "admin",
          params=[_ACCOUNT]),
    Route("PATCH", f"{_A}/accounts/{{account_id}}", change_account, ADMIN,
          "Change PIN, password, quota or preferences", "admin", params=[_ACCOUNT],
          body=_PREFERENCE_FIELDS),
    Route("DELETE", f"{_A}/accounts/{{account_id}}", delete_account, ADMIN,
          "Remove an account, its aliases and its mailbox", "admin", params=[_ACCOUNT]),
    Route("GET", f"{_A}/aliases", list_aliases, ADMIN, "Aliases", "admin",
          params=[Param("account", "only this account's aliases", where="query", required=False)]),
    Route("POST", f"{_A}/aliases", add_alias, ADMIN, "Add an alias to an account", "admin", status=201,
          body=[Field("alias", "string", "the alias", True, max_length=64),
                Field("account", "string", "account ID", True, max_length=33)]),
    Route("DELETE", f"{_A}/aliases/{{alias}}", delete_alias, ADMIN, "Remove an alias", "admin",
          params=[Param("alias", "the alias")]),
    Route("GET", f"{_A}/applications", list_applications, ADMIN,
          "IVR applications and every option with its default and help", "admin"),
    Route("GET", f"{_A}/access-numbers", list_access_numbers, ADMIN, "Access numbers", "admin"),
    Route("POST", f"{_A}/access-numbers", add_access_number, ADMIN,
          "Route a number (or prefix%) to an application", "admin", status=201, body=[
              Field("pattern", "string", "called number, or a prefix followed by %", True, max_length=33),
              Field("application", "string", "IVR application name", True, max_length=64),
              Field("options", "object", "application options (name: value)")]),
    Route("GET", f"{_A}/access-numbers/{{pattern}}", get_access_number, ADMIN, "One access number",
          "admin", params=[_PATTERN]),
    Route("PATCH", f"{_A}/access-numbers/{{pattern}}", change_access_number, ADMIN,
          "Change an access number's application or options", "admin", params=[_PATTERN], body=[
              Field("application", "string", "IVR application name", max_length=64),
              Field("options", "object", "all options (replaces the current ones)"),
              Field("unset", "array", "options to drop so their defaults apply", max_length=64)]),
    Route("DELETE", f"{_A}/access-numbers/{{pattern}}", delete_access_number, ADMIN,
          "Remove an access number", "admin", params=[_PATTERN]),
    Route("GET", f"{_A}/prompts", list_prompts, ADMIN, "Uploaded prompts", "admin",
          params=[Param("brand", "only this brand", where="query", required=False)]),
    Route("GET", f"{_A}/prompts/{{brand}}/{{language}}/{{name}}", get_prompt, ADMIN,
          "Play an uploaded prompt (WAV)", "admin", params=_PROMPT, produces="audio/wav"),
    Route("PUT", f"{_A}/prompts/{{brand}}/{{language}}/{{name}}", put_prompt, ADMIN,
          "Upload or replace a prompt in any common audio format", "admin", upload=True,
          params=_PROMPT + [Param("format", "for headerless audio only: s16le, ulaw, alaw or gsm",
                                  where="query", required=False)]),
    Route("DELETE", f"{_A}/prompts/{{brand}}/{{language}}/{{name}}", delete_prompt, ADMIN,
          "Remove an uploaded prompt (the shipped one applies again)", "admin", params=_PROMPT),
    Route("GET", f"{_A}/calls", list_calls, ADMIN,
          "Calls in progress on this node (each node shows its own)", "admin"),
]
