"""portaum-admin account add|list|show|set|remove"""

from __future__ import annotations

from ..accounts import CHOICES, DEFAULT_QUOTA, parse_quota
from .customers import _when

_PREFERENCE_OPTIONS = (
    ("--email", "email", "e-mail address (also a login name)"),
    ("--language", "language", "prompt language, e.g. en or es"),
    ("--timezone", "timezone", "time zone, e.g. America/New_York"),
    ("--attachment-format", "attachment_format", "voice attachments: wav or mp3"),
    ("--fax-format", "fax_format", "fax documents: pdf or tiff"),
    ("--forward", "forward_mode", "forward new messages: none, copy or notify"),
    ("--forward-address", "forward_address", "where forwarded messages go"),
    ("--greeting", "greeting", "which greeting plays: personal, name or system"),
    ("--associated-number", "associated_number", "number that prefixes PIN auth IDs"),
    ("--mwi-contact", "mwi_contact", "SIP URI for unsolicited message-waiting NOTIFY"),
)


def _add_preferences(parser) -> None:
    for flag, dest, text in _PREFERENCE_OPTIONS:
        kwargs = {"choices": CHOICES[dest]} if dest in CHOICES else {}
        parser.add_argument(flag, dest=dest, help=text, **kwargs)


def register(nouns) -> None:
    parser = nouns.add_parser("account", help="accounts (a phone number with a mailbox)")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)

    add = verbs.add_parser("add", help="create an account and its mailbox")
    add.add_argument("id", help="account ID: the phone number")
    add.add_argument("--customer", required=True, help="owning customer's name")
    add.add_argument("--pin", help="voicemail PIN (digits)")
    add.add_argument("--password", help="password for mail, web and SIP")
    add.add_argument("--quota", default=None, help=f"mailbox quota, e.g. 100M (default {DEFAULT_QUOTA // 2**20}M)")
    add.add_argument("--no-unified-messaging", dest="um_enabled", action="store_false",
                     default=True, help="an account without a mailbox")
    _add_preferences(add)
    add.set_defaults(handler=add_account)

    listing = verbs.add_parser("list", help="list accounts")
    listing.add_argument("--customer", help="only this customer's accounts")
    listing.set_defaults(handler=list_accounts)

    show = verbs.add_parser("show", help="show one account")
    show.add_argument("id")
    show.set_defaults(handler=show_account)

    change = verbs.add_parser("set", help="change PIN, password, quota or preferences")
    change.add_argument("id")
    change.add_argument("--pin")
    change.add_argument("--password")
    change.add_argument("--quota")
    change.add_argument("--unified-messaging", dest="um_enabled", choices=("on", "off"))
    _add_preferences(change)
    change.set_defaults(handler=set_account)

    remove = verbs.add_parser("remove", help="remove an account, its aliases and its mailbox")
    remove.add_argument("id")
    remove.set_defaults(handler=remove_account)


def _preferences(args) -> dict:
    return {dest: getattr(args, dest) for _, dest, _ in _PREFERENCE_OPTIONS
            if getattr(args, dest) is not None}


async def add_account(ctx, args) -> None:
    quota = parse_quota(args.quota) if args.quota else DEFAULT_QUOTA
    account = await ctx.accounts.create_account(
        args.id, args.customer, pin=args.pin, password=args.password, quota=quota,
        um_enabled=args.um_enabled, **_preferences(args))
    ctx.out.done(f"account {account.id} created" + (" with a mailbox" if account.um_enabled else ""),
                 await _describe(ctx, account.id))


async def list_accounts(ctx, args) -> None:
    customer_id = None
    if args.customer:
        customer_id = (await ctx.store.accounts.get_customer(args.customer)).id
    customers = {c.id: c.name for c in await ctx.store.accounts.get_customers()}
    rows = [{"id": a.id, "customer": customers.get(a.customer_id), "email": a.email,
             "language": a.language, "mailbox": "yes" if a.um_enabled else "no"}
            for a in await ctx.store.accounts.get_accounts(customer_id)]
    ctx.out.table(rows, ["id", "customer", "email", "language", "mailbox"])


async def _describe(ctx, account_id: str) -> dict:
    from ..store import NotFound
    account = await ctx.store.accounts.get_account(account_id)
    customer = await ctx.store.accounts.get_customer_by_id(account.customer_id)
    aliases = [row[0] for row in await ctx.store.accounts.get_aliases(account_id)]
    data = {"id": account.id, "customer": customer.name, "email": account.email,
            "language": account.language, "timezone": account.timezone,
            "attachment_format": account.attachment_format, "fax_format": account.fax_format,
            "forward_mode": account.forward_mode, "forward_address": account.forward_address,
            "greeting": account.greeting, "unified_messaging": account.um_enabled,
            "associated_number": account.associated_number, "mwi_contact": account.mwi_contact,
            "pin_set": account.pin_hash is not None,
            "password_set": account.password_hash is not None,
            "aliases": aliases, "created": _when(account.created)}
    try:
        mailbox = await ctx.store.mailboxes.get_mailbox(account_id)
        data["quota_bytes"] = mailbox.quota_bytes
        data["used_bytes"] = mailbox.used_bytes
    except NotFound:
        pass
    return data


async def show_account(ctx, args) -> None:
    data = await _describe(ctx, args.id)
    if not ctx.out.as_json:
        data["aliases"] = ", ".join(data["aliases"]) or "none"
    ctx.out.record(data)


async def set_account(ctx, args) -> None:
    preferences = _preferences(args)
    if args.um_enabled is not None:
        preferences["um_enabled"] = args.um_enabled == "on"
    if args.pin is None and args.password is None and args.quota is None and not preferences:
        raise ValueError("nothing to change: give --pin, --password, --quota or a preference")
    await ctx.store.accounts.get_account(args.id)
    quota = parse_quota(args.quota) if args.quota is not None else None
    if args.pin is not None or args.password is not None:
        await ctx.accounts.set_secrets(args.id, pin=args.pin, password=args.password)
    if preferences:
        await ctx.accounts.set_preferences(args.id, **preferences)
    if quota is not None:
        await ctx.store.mailboxes.set_quota(args.id, quota)
    ctx.out.done(f"account {args.id} updated", await _describe(ctx, args.id))


async def remove_account(ctx, args) -> None:
    await ctx.store.accounts.delete_account(args.id)
    ctx.out.done(f"account {args.id} removed")
