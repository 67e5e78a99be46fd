"""portaum-admin tariff | rate | product | access-code | billing | balance | voucher | xdr

Everything a provider needs to bill calls: tariffs and their rates, products
(a default tariff plus access codes that select other tariffs), each
account's billing settings, balances, vouchers, and the xDR history.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import secrets
from decimal import Decimal

from ..billing.engine import BillingEngine, BillingError
from ..billing.rating import InvalidRateError, Rate, announce_time, to_money
from ..store.billing import RateRecord
from . import CommandError
from .customers import _when

_CODE = re.compile(r"[0-9A-Za-z+*#_]{1,64}")
_PREFIX = re.compile(r"[0-9A-Za-z+*#_]{1,32}")
_VOUCHER = re.compile(r"[0-9]{4,32}")
_NONE = ("none", "")


def _friendly(handler):
    """Billing refusals are user errors: one line, not a traceback."""
    @functools.wraps(handler)
    async def run(ctx, args):
        try:
            await handler(ctx, args)
        except BillingError as exc:
            raise CommandError(str(exc)) from None
    return run


def _money(text: str, what: str, *, negative: bool = False) -> Decimal:
    try:
        amount = to_money(text, what)
    except InvalidRateError as exc:
        raise CommandError(str(exc)) from None
    if not negative and amount < 0:
        raise CommandError(f"{what} must not be negative, got {text}")
    return amount


def _optional_money(text: str | None, what: str) -> Decimal | None:
    return None if text.strip().lower() in _NONE else _money(text, what)


def _show_money(amount: Decimal | None) -> str | None:
    """Amounts with at least cents and no trailing zeros past them: 5 -> 5.00, 0.04167 stays."""
    if amount is None:
        return None
    if amount.normalize().as_tuple().exponent >= -2:
        return format(amount.quantize(Decimal("0.01")), "f")
    return format(amount.normalize(), "f")


def _date(text: str, what: str) -> int:
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(f"{what} must be a date such as 2026-12-31 or 2026-12-31T18:00, "
                           f"got {text!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return int(when.timestamp())


def _check(pattern, value: str, what: str) -> str:
    if not pattern.fullmatch(value):
        raise CommandError(f"{what} may hold digits, letters and + * # _ only, got {value!r}")
    return value


def _engine(ctx) -> BillingEngine:
    from twisted.internet import reactor
    return BillingEngine(ctx.store, reactor)


def register(nouns) -> None:
    _register_tariffs(nouns)
    _register_rates(nouns)
    _register_products(nouns)
    _register_access_codes(nouns)
    _register_billing(nouns)
    _register_balance(nouns)
    _register_vouchers(nouns)
    _register_xdrs(nouns)


def _verb(verbs, name, handler, help_text, *aliases):
    parser = verbs.add_parser(name, help=help_text, aliases=list(aliases))
    parser.set_defaults(handler=_friendly(handler))
    return parser


# --- tariffs ------------------------------------------------------------------

def _register_tariffs(nouns) -> None:
    parser = nouns.add_parser("tariff", help="tariffs: sets of per-prefix rates")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    add = _verb(verbs, "add", add_tariff, "create an empty tariff")
    add.add_argument("name")
    add.add_argument("--description", default="")
    _verb(verbs, "list", list_tariffs, "list tariffs")
    show = _verb(verbs, "show", show_tariff, "show a tariff and its rates")
    show.add_argument("name")
    remove = _verb(verbs, "remove", remove_tariff, "remove a tariff no product uses")
    remove.add_argument("name")


async def add_tariff(ctx, args) -> None:
    name = args.name.strip()
    if not name:
        raise CommandError("tariff name must not be empty")
    tariff = await ctx.store.billing.add_tariff(name, args.description)
    ctx.out.done(f"tariff {tariff.name!r} created", {"name": tariff.name, "id": tariff.id})


async def list_tariffs(ctx, args) -> None:
    rows = []
    for tariff in await ctx.store.billing.get_tariffs():
        rows.append({"name": tariff.name, "rates": len(await ctx.store.billing.get_rates(tariff.name)),
                     "description": tariff.description, "created": _when(tariff.created)})
    ctx.out.table(rows, ["name", "rates", "description", "created"])


async def show_tariff(ctx, args) -> None:
    tariff = await ctx.store.billing.get_tariff(args.name)
    rates = [_rate_row(rate) for rate in await ctx.store.billing.get_rates(args.name)]
    if ctx.out.as_json:
        ctx.out.record({"name": tariff.name, "description": tariff.description,
                        "created": _when(tariff.created), "rates": rates})
        return
    ctx.out.record({"name": tariff.name, "description": tariff.description,
                    "created": _when(tariff.created)})
    ctx.out.table(rates, _RATE_TABLE)


async def remove_tariff(ctx, args) -> None:
    await ctx.store.billing.delete_tariff(args.name)
    ctx.out.done(f"tariff {args.name!r} removed")


# --- rates --------------------------------------------------------------------

_RATE_TABLE = ["prefix", "price", "next_price", "first", "next", "fee", "free_seconds", "grace",
               "forbidden"]


def _rate_row(rate: RateRecord) -> dict:
    return {"prefix": rate.prefix, "price": _show_money(rate.price_per_minute),
            "next_price": _show_money(rate.next_price_per_minute),
            "first": rate.first_interval, "next": rate.next_interval,
            "fee": _show_money(rate.connection_fee), "free_seconds": rate.free_seconds,
            "grace": rate.grace_period, "forbidden": "yes" if rate.forbidden else "no"}


def _register_rates(nouns) -> None:
    parser = nouns.add_parser("rate", help="a tariff's price for destinations with a prefix")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    add = _verb(verbs, "set", set_rate, "add or replace the rate for a prefix", "add")
    add.add_argument("tariff")
    add.add_argument("prefix", help="destination prefix; the longest matching prefix applies")
    add.add_argument("--price", required=True, help="price per minute, e.g. 0.02 (0 = free)")
    add.add_argument("--next-price", help="price per minute after the first interval")
    add.add_argument("--first", type=int, default=60, help="first (minimum) interval, seconds")
    add.add_argument("--next", type=int, default=60, help="next interval, seconds")
    add.add_argument("--fee", default="0", help="connection fee per answered call")
    add.add_argument("--free-seconds", type=int, default=0, help="free seconds per call")
    add.add_argument("--grace", type=int, default=0, help="calls this short are free")
    add.add_argument("--forbidden", action="store_true", help="refuse calls to this prefix")
    listing = _verb(verbs, "list", list_rates, "list a tariff's rates")
    listing.add_argument("tariff")
    remove = _verb(verbs, "remove", remove_rate, "remove the rate for a prefix")
    remove.add_argument("tariff")
    remove.add_argument("prefix")
    quote = _verb(verbs, "quote", quote_rate, "what a call costs, and how long funds last")
    quote.add_argument("tariff")
    quote.add_argument("number")
    quote.add_argument("--duration", type=int, default=60, help="call length in seconds")
    quote.add_argument("--funds", help="also say how long these funds last")


async def set_rate(ctx, args) -> None:
    prefix = _check(_PREFIX, args.prefix, "rate prefix")
    try:
        rate = Rate(prefix, _money(args.price, "--price"), args.first, args.next,
                    _money(args.fee, "--fee"), args.forbidden,
                    None if args.next_price is None else _money(args.next_price, "--next-price"),
                    args.free_seconds, args.grace)
    except InvalidRateError as exc:
        raise CommandError(str(exc)) from None
    next_price = None if args.next_price is None else rate.next_price_per_minute
    record = RateRecord(rate.prefix, rate.price_per_minute, next_price,
                        rate.first_interval, rate.next_interval, rate.connection_fee,
                        rate.free_seconds, rate.grace_period, rate.forbidden)
    stored = await ctx.store.billing.store_rate(args.tariff, record)
    ctx.out.done(f"rate {stored.prefix} of tariff {args.tariff!r} set", _rate_row(stored))


async def list_rates(ctx, args) -> None:
    ctx.out.table([_rate_row(r) for r in await ctx.store.billing.get_rates(args.tariff)], _RATE_TABLE)


async def remove_rate(ctx, args) -> None:
    await ctx.store.billing.delete_rate(args.tariff, args.prefix)
    ctx.out.done(f"rate {args.prefix} of tariff {args.tariff!r} removed")


async def quote_rate(ctx, args) -> None:
    from ..billing.rating import ANNOUNCE, ForbiddenDestinationError
    if args.duration < 0:
        raise CommandError("--duration must be 0 or more seconds")
    record = await ctx.store.billing.get_rate_for(args.tariff, args.number)
    if record is None:
        await ctx.store.billing.get_tariff(args.tariff)
        raise CommandError(f"tariff {args.tariff!r} has no rate for {args.number}")
    rate = Rate(**_fields(record))
    data = {"number": args.number, "tariff": args.tariff, "prefix": rate.prefix}
    try:
        data.update(duration=args.duration, billed_seconds=rate.billed_seconds(args.duration),
                    charge=str(rate.charge(args.duration)),
                    announced_charge=str(ANNOUNCE.round(rate.exact_charge(args.duration))))
        if args.funds is not None:
            seconds = rate.max_duration(_money(args.funds, "--funds"), limit=24 * 3600)
            spoken = announce_time(seconds)
            data.update(funds=args.funds, max_seconds=seconds,
                        announced=f"{spoken.minutes} min {spoken.seconds} s")
    except ForbiddenDestinationError as exc:
        raise CommandError(str(exc)) from None
    ctx.out.record(data)


def _fields(record: RateRecord) -> dict:
    return {name: getattr(record, name) for name in (
        "prefix", "price_per_minute", "first_interval", "next_interval", "connection_fee",
        "forbidden", "next_price_per_minute", "free_seconds", "grace_period")}


# --- products -----------------------------------------------------------------

def _register_products(nouns) -> None:
    parser = nouns.add_parser("product", help="products: what accounts buy (a default tariff "
                              "and access codes)")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    add = _verb(verbs, "add", add_product, "create a product")
    add.add_argument("name")
    add.add_argument("--tariff", required=True, help="the default tariff")
    add.add_argument("--breakage", default="0",
                     help="prepaid balances below this count as low")
    _verb(verbs, "list", list_products, "list products")
    show = _verb(verbs, "show", show_product, "show a product and its access codes")
    show.add_argument("name")
    change = _verb(verbs, "set", set_product, "change the default tariff or the breakage")
    change.add_argument("name")
    change.add_argument("--tariff")
    change.add_argument("--breakage")
    remove = _verb(verbs, "remove", remove_product, "remove a product no account uses")
    remove.add_argument("name")


async def add_product(ctx, args) -> None:
    name = args.name.strip()
    if not name:
        raise CommandError("product name must not be empty")
    product = await ctx.store.billing.add_product(name, args.tariff,
                                                  _money(args.breakage, "--breakage"))
    ctx.out.done(f"product {product.name!r} created with default tariff {args.tariff!r}",
                 await _describe_product(ctx, product.name))


async def _describe_product(ctx, name: str) -> dict:
    product = await ctx.store.billing.get_product(name)
    entries = await ctx.store.billing.get_access_entries(name)
    accounts = [a.account_id for a in await ctx.store.billing.get_accounts_billing()
                if a.product_id == product.id]
    default = next((e.tariff for e in entries if e.access_code == ""), None)
    return {"name": product.name, "tariff": default, "breakage": _show_money(product.breakage),
            "access_codes": {e.access_code: e.tariff for e in entries if e.access_code},
            "accounts": accounts, "created": _when(product.created)}


async def list_products(ctx, args) -> None:
    rows = []
    for product in await ctx.store.billing.get_products():
        data = await _describe_product(ctx, product.name)
        rows.append({"name": data["name"], "tariff": data["tariff"],
                     "access_codes": len(data["access_codes"]), "accounts": len(data["accounts"]),
                     "breakage": data["breakage"]})
    ctx.out.table(rows, ["name", "tariff", "access_codes", "accounts", "breakage"])


async def show_product(ctx, args) -> None:
    data = await _describe_product(ctx, args.name)
    if not ctx.out.as_json:
        data["access_codes"] = ", ".join(f"{c} -> {t}" for c, t in data["access_codes"].items()) \
            or "none"
        data["accounts"] = ", ".join(data["accounts"]) or "none"
    ctx.out.record(data)


async def set_product(ctx, args) -> None:
    if args.tariff is None and args.breakage is None:
        raise CommandError("nothing to change: give --tariff or --breakage")
    await ctx.store.billing.get_product(args.name)
    if args.tariff is not None:
        await ctx.store.billing.store_access_entry(args.name, "", args.tariff)
    if args.breakage is not None:
        await ctx.store.billing.set_product_breakage(args.name, _money(args.breakage, "--breakage"))
    ctx.out.done(f"product {args.name!r} updated", await _describe_product(ctx, args.name))


async def remove_product(ctx, args) -> None:
    await ctx.store.billing.delete_product(args.name)
    ctx.out.done(f"product {args.name!r} removed")


# --- access codes -------------------------------------------------------------

def _register_access_codes(nouns) -> None:
    parser = nouns.add_parser(
        "access-code", help="a product's accessibility list: access codes that select tariffs "
        "(an access number, ANNOUNCE<dnis>, LEG_A<dnis>, LEG_B<dnis>, CALLBACK_FAIL)")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    add = _verb(verbs, "set", set_access_code, "point an access code at a tariff", "add")
    add.add_argument("product")
    add.add_argument("code")
    add.add_argument("--tariff", required=True)
    listing = _verb(verbs, "list", list_access_codes, "list a product's access codes")
    listing.add_argument("product")
    remove = _verb(verbs, "remove", remove_access_code, "remove an access code")
    remove.add_argument("product")
    remove.add_argument("code")


async def set_access_code(ctx, args) -> None:
    code = _check(_CODE, args.code, "access code")
    await ctx.store.billing.store_access_entry(args.product, code, args.tariff)
    ctx.out.done(f"access code {code} of product {args.product!r} uses tariff {args.tariff!r}",
                 {"product": args.product, "access_code": code, "tariff": args.tariff})


async def list_access_codes(ctx, args) -> None:
    rows = [{"access_code": e.access_code or "(default)", "tariff": e.tariff}
            for e in await ctx.store.billing.get_access_entries(args.product)]
    ctx.out.table(rows, ["access_code", "tariff"])


async def remove_access_code(ctx, args) -> None:
    await ctx.store.billing.delete_access_entry(args.product, args.code)
    ctx.out.done(f"access code {args.code} removed from product {args.product!r}")


# --- account and customer billing settings ------------------------------------

def _register_billing(nouns) -> None:
    parser = nouns.add_parser("billing", help="billing settings of accounts and customers")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    show = _verb(verbs, "show", show_billing, "an account's billing settings and funds")
    show.add_argument("account")
    listing = _verb(verbs, "list", list_billing, "billing settings of all accounts")
    listing.add_argument("--customer")
    change = _verb(verbs, "set", set_billing, "change an account's billing settings")
    change.add_argument("account")
    change.add_argument("--product", help="product name, or none")
    change.add_argument("--model", choices=("credit", "debit"),
                        help="debit: prepaid, spends its balance; credit: postpaid, owes it")
    change.add_argument("--credit-limit", help="most a credit account may owe, or none")
    change.add_argument("--balance", help="set the balance (recorded as an adjustment)")
    change.add_argument("--service-password", help="digits PIN-less dialing may ask for, or none")
    change.add_argument("--calls-via-ivr", metavar="ACCESS_NUMBER",
                        help="send toll calls through the IVR on this access number "
                             "(e.g. AD%%), or none")
    change.add_argument("--blocked", choices=("on", "off"))
    check = _verb(verbs, "check", check_call,
                  "may this account call this number, and for how long (nothing is reserved)")
    check.add_argument("account", help="account ID or alias")
    check.add_argument("number")
    check.add_argument("--access-code", help="access code presented (e.g. the access number)")
    customer = _verb(verbs, "customer", customer_billing,
                     "show a customer's balance and credit limit, or set the limit")
    customer.add_argument("name")
    customer.add_argument("--credit-limit", help="most the customer's credit accounts may owe "
                          "together, or none")


async def _describe_billing(ctx, account_id: str) -> dict:
    engine = _engine(ctx)
    account = await engine.get_account(account_id)
    record = await ctx.store.billing.get_account_billing(account.account_id)
    reservations = await ctx.store.billing.get_reservations(account.account_id)
    return {"account": account.account_id, "customer": account.customer,
            "model": account.billing_model, "balance": _show_money(account.balance),
            "credit_limit": _show_money(account.credit_limit), "product": account.product,
            "associated_number": account.associated_number,
            "calls_via_ivr": account.calls_via_ivr, "blocked": account.blocked,
            "service_password_set": record.service_password_hash is not None,
            "calls_in_progress": len(reservations),
            "reserved": _show_money(sum((r.amount for r in reservations), Decimal(0))),
            "customer_balance": _show_money(account.customer_balance),
            "customer_credit_limit": _show_money(account.customer_credit_limit)}


async def show_billing(ctx, args) -> None:
    ctx.out.record(await _describe_billing(ctx, args.account))


async def list_billing(ctx, args) -> None:
    customer_id = None
    if args.customer:
        customer_id = (await ctx.store.billing.get_customer_billing(args.customer)).id
    rows = [{"account": a.account_id, "customer": a.customer, "model": a.billing_model,
             "balance": _show_money(a.balance), "credit_limit": _show_money(a.credit_limit),
             "product": a.product, "calls_via_ivr": a.calls_via_ivr,
             "blocked": "yes" if a.blocked else "no"}
            for a in await ctx.store.billing.get_accounts_billing(customer_id)]
    ctx.out.table(rows, ["account", "customer", "model", "balance", "credit_limit", "product",
                         "calls_via_ivr", "blocked"])


async def set_billing(ctx, args) -> None:
    fields = {}
    if args.product is not None:
        fields["product"] = None if args.product.lower() in _NONE else args.product
    if args.model is not None:
        fields["billing_model"] = args.model
    if args.credit_limit is not None:
        fields["credit_limit"] = _optional_money(args.credit_limit, "--credit-limit")
    if args.calls_via_ivr is not None:
        if args.calls_via_ivr.lower() in _NONE:
            fields["calls_via_ivr"] = None
        else:
            await ctx.store.access_numbers.get_access_number(args.calls_via_ivr)
            fields["calls_via_ivr"] = args.calls_via_ivr
    if args.blocked is not None:
        fields["blocked"] = args.blocked == "on"
    balance = None if args.balance is None else _money(args.balance, "--balance", negative=True)
    if not fields and balance is None and args.service_password is None:
        raise CommandError("nothing to change: give --product, --model, --credit-limit, "
                           "--balance, --service-password, --calls-via-ivr or --blocked")
    account = await _engine(ctx).get_account(args.account)
    if fields:
        await ctx.store.billing.set_account_billing(account.account_id, **fields)
    if args.service_password is not None:
        password = None if args.service_password.lower() in _NONE else args.service_password
        await _engine(ctx).set_service_password(account.account_id, password)
    if balance is not None:
        await ctx.store.billing.set_account_balance(account.account_id, balance,
                                                    "balance set by the administrator")
    ctx.out.done(f"billing of account {account.account_id} updated",
                 await _describe_billing(ctx, account.account_id))


async def check_call(ctx, args) -> None:
    from ..billing.engine import AuthorizationRefused
    engine = _engine(ctx)
    account = await engine.get_account(args.account)
    data = {"account": account.account_id, "number": args.number}
    try:
        grant = await engine.authorize(account, args.number, args.access_code)
    except AuthorizationRefused as exc:
        data.update(allowed=False, reason=exc.reason, detail=str(exc))
    else:
        await engine.release(grant)
        data.update(allowed=True, call_class=grant.call_class.value, tariff=grant.tariff,
                    prefix=grant.rate.prefix, max_seconds=grant.max_seconds,
                    would_reserve=_show_money(grant.reserved),
                    via_ivr=await engine.ivr_for(account, args.number))
    ctx.out.record(data)


async def customer_billing(ctx, args) -> None:
    if args.credit_limit is not None:
        customer = await ctx.store.billing.set_customer_credit_limit(
            args.name, _optional_money(args.credit_limit, "--credit-limit"))
    else:
        customer = await ctx.store.billing.get_customer_billing(args.name)
    accounts = await ctx.store.billing.get_accounts_billing(customer.id)
    ctx.out.record({"customer": customer.name, "balance": _show_money(customer.balance),
                    "credit_limit": _show_money(customer.credit_limit),
                    "accounts": ", ".join(a.account_id for a in accounts) or "none"})


# --- balances -----------------------------------------------------------------

def _register_balance(nouns) -> None:
    parser = nouns.add_parser("balance", help="account balances: show, top up, set")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    show = _verb(verbs, "show", show_balance, "an account's balance and available funds")
    show.add_argument("account")
    topup = _verb(verbs, "topup", topup_balance, "put money into an account", "top-up")
    topup.add_argument("account")
    topup.add_argument("amount")
    topup.add_argument("--note", default="top-up by the administrator")
    change = _verb(verbs, "set", set_balance, "set a balance (recorded as an adjustment)")
    change.add_argument("account")
    change.add_argument("amount")
    change.add_argument("--note", default="balance set by the administrator")
    pay = _verb(verbs, "customer-payment", customer_payment,
                "money a customer paid for its credit accounts")
    pay.add_argument("customer")
    pay.add_argument("amount")


async def show_balance(ctx, args) -> None:
    data = await _describe_billing(ctx, args.account)
    ctx.out.record({key: data[key] for key in (
        "account", "model", "balance", "credit_limit", "reserved", "calls_in_progress",
        "customer", "customer_balance", "customer_credit_limit")})


async def topup_balance(ctx, args) -> None:
    xdr = await _engine(ctx).top_up(args.account, _money(args.amount, "amount"), args.note)
    ctx.out.done(f"account {xdr.account_id} topped up by {_show_money(-xdr.charge)}; "
                 f"balance {_show_money(xdr.balance_after)}", _xdr_row(xdr))


async def set_balance(ctx, args) -> None:
    account = await _engine(ctx).get_account(args.account)
    xdr = await ctx.store.billing.set_account_balance(
        account.account_id, _money(args.amount, "amount", negative=True), args.note)
    ctx.out.done(f"balance of account {xdr.account_id} set to {_show_money(xdr.balance_after)}",
                 _xdr_row(xdr))


async def customer_payment(ctx, args) -> None:
    amount = _money(args.amount, "amount")
    if amount == 0:
        raise CommandError("amount must be more than zero")
    customer = await ctx.store.billing.add_customer_payment(args.customer, amount)
    ctx.out.done(f"payment recorded; customer {customer.name!r} balance "
                 f"{_show_money(customer.balance)}",
                 {"customer": customer.name, "balance": _show_money(customer.balance)})


# --- vouchers -----------------------------------------------------------------

def _register_vouchers(nouns) -> None:
    parser = nouns.add_parser("voucher", help="single-use top-up vouchers")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    add = _verb(verbs, "add", add_voucher, "create a voucher with a given number")
    add.add_argument("number")
    add.add_argument("--amount", required=True)
    add.add_argument("--expires", help="last valid date, e.g. 2026-12-31")
    generate = _verb(verbs, "generate", generate_vouchers, "create vouchers with random numbers")
    generate.add_argument("--count", type=int, default=1)
    generate.add_argument("--amount", required=True)
    generate.add_argument("--length", type=int, default=11, help="digits per number (default 11)")
    generate.add_argument("--expires")
    listing = _verb(verbs, "list", list_vouchers, "list vouchers")
    state = listing.add_mutually_exclusive_group()
    state.add_argument("--used", dest="used", action="store_const", const=True)
    state.add_argument("--unused", dest="used", action="store_const", const=False)
    show = _verb(verbs, "show", show_voucher, "show one voucher")
    show.add_argument("number")
    remove = _verb(verbs, "remove", remove_voucher, "remove a voucher")
    remove.add_argument("number")
    redeem = _verb(verbs, "redeem", redeem_voucher, "top up an account with a voucher")
    redeem.add_argument("number")
    redeem.add_argument("--account", required=True)


def _voucher_row(voucher) -> dict:
    return {"number": voucher.number, "amount": _show_money(voucher.amount),
            "expires": None if voucher.expires is None else _when(voucher.expires),
            "used_by": voucher.used_by,
            "used_at": None if voucher.used_at is None else _when(voucher.used_at),
            "created": _when(voucher.created)}


def _expiry(text: str | None) -> int | None:
    # A voucher is good through the whole of its last day.
    return None if text is None else _date(text, "--expires") + (
        86400 if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text) else 0)


async def add_voucher(ctx, args) -> None:
    number = args.number
    if not _VOUCHER.fullmatch(number):
        raise CommandError(f"voucher number must be 4 to 32 digits, got {number!r}")
    amount = _money(args.amount, "--amount")
    if amount == 0:
        raise CommandError("--amount must be more than zero")
    voucher = await ctx.store.billing.add_voucher(number, amount, _expiry(args.expires))
    ctx.out.done(f"voucher {voucher.number} for {_show_money(voucher.amount)} created",
                 _voucher_row(voucher))


async def generate_vouchers(ctx, args) -> None:
    if not 1 <= args.count <= 10000:
        raise CommandError("--count must be 1 to 10000")
    if not 6 <= args.length <= 32:
        raise CommandError("--length must be 6 to 32 digits")
    amount = _money(args.amount, "--amount")
    if amount == 0:
        raise CommandError("--amount must be more than zero")
    expires = _expiry(args.expires)
    from ..store import AlreadyExists
    made = []
    while len(made) < args.count:
        number = "".join(secrets.choice("0123456789") for _ in range(args.length))
        try:
            made.append(await ctx.store.billing.add_voucher(number, amount, expires))
        except AlreadyExists:
            continue
    ctx.out.table([_voucher_row(v) for v in made], ["number", "amount", "expires"])


async def list_vouchers(ctx, args) -> None:
    ctx.out.table([_voucher_row(v) for v in await ctx.store.billing.get_vouchers(args.used)],
                  ["number", "amount", "expires", "used_by", "used_at"])


async def show_voucher(ctx, args) -> None:
    ctx.out.record(_voucher_row(await ctx.store.billing.get_voucher(args.number)))


async def remove_voucher(ctx, args) -> None:
    await ctx.store.billing.delete_voucher(args.number)
    ctx.out.done(f"voucher {args.number} removed")


async def redeem_voucher(ctx, args) -> None:
    xdr = await _engine(ctx).redeem_voucher(args.account, args.number)
    ctx.out.done(f"voucher {args.number} credited {_show_money(-xdr.charge)} to account "
                 f"{xdr.account_id}; balance {_show_money(xdr.balance_after)}", _xdr_row(xdr))


# --- xDRs ---------------------------------------------------------------------

def _register_xdrs(nouns) -> None:
    parser = nouns.add_parser("xdr", help="call and payment history")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    listing = _verb(verbs, "list", list_xdrs, "xDRs of an account or a customer, oldest first")
    who = listing.add_mutually_exclusive_group(required=True)
    who.add_argument("--account")
    who.add_argument("--customer")
    listing.add_argument("--since", help="from this date/time (UTC), e.g. 2026-11-01")
    listing.add_argument("--until", help="before this date/time (UTC)")
    listing.add_argument("--limit", type=int, help="only the newest N records")


_XDR_TABLE = ["start", "account", "service", "cli", "cld", "access_number", "leg", "duration",
              "charge", "balance", "description"]


def _xdr_row(xdr) -> dict:
    return {"id": xdr.id, "start": _when(xdr.start_time), "account": xdr.account_id,
            "service": xdr.service, "cli": xdr.cli, "cld": xdr.cld,
            "access_number": xdr.access_number, "leg": xdr.leg, "duration": xdr.duration,
            "charged_seconds": xdr.charged_seconds, "charge": _show_money(xdr.charge),
            "balance": _show_money(xdr.balance_after), "tariff": xdr.tariff,
            "rate_prefix": xdr.rate_prefix, "description": xdr.description}


async def list_xdrs(ctx, args) -> None:
    if args.limit is not None and args.limit < 1:
        raise CommandError("--limit must be 1 or more")
    since = None if args.since is None else _date(args.since, "--since")
    until = None if args.until is None else _date(args.until, "--until")
    engine = _engine(ctx)
    if args.account:
        account = await engine.get_account(args.account)
        xdrs = await engine.history(account=account, since=since, until=until, limit=args.limit)
    else:
        xdrs = await engine.history(customer=args.customer, since=since, until=until,
                                    limit=args.limit)
    ctx.out.table([_xdr_row(x) for x in xdrs], _XDR_TABLE)
