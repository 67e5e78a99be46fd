"""portaum-admin customer add|list|show|remove"""

from __future__ import annotations

import datetime as dt


def _when(seconds: int) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def register(nouns) -> None:
    parser = nouns.add_parser("customer", help="customers (who owns accounts)")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    add = verbs.add_parser("add", help="create a customer")
    add.add_argument("name")
    add.set_defaults(handler=add_customer)
    verbs.add_parser("list", help="list customers").set_defaults(handler=list_customers)
    show = verbs.add_parser("show", help="show one customer")
    show.add_argument("name")
    show.set_defaults(handler=show_customer)
    remove = verbs.add_parser("remove", help="remove a customer without accounts")
    remove.add_argument("name")
    remove.set_defaults(handler=remove_customer)


async def add_customer(ctx, args) -> None:
    name = args.name.strip()
    if not name:
        raise ValueError("customer name must not be empty")
    customer = await ctx.store.accounts.add_customer(name)
    ctx.out.done(f"customer {customer.name!r} created",
                 {"id": customer.id, "name": customer.name, "created": _when(customer.created)})


async def list_customers(ctx, args) -> None:
    rows = []
    for customer in await ctx.store.accounts.get_customers():
        accounts = await ctx.store.accounts.get_accounts(customer.id)
        rows.append({"name": customer.name, "accounts": len(accounts),
                     "created": _when(customer.created)})
    ctx.out.table(rows, ["name", "accounts", "created"])


async def show_customer(ctx, args) -> None:
    customer = await ctx.store.accounts.get_customer(args.name)
    accounts = await ctx.store.accounts.get_accounts(customer.id)
    ctx.out.record({"name": customer.name, "id": customer.id, "created": _when(customer.created),
                    "accounts": ", ".join(a.id for a in accounts) or "none"})


async def remove_customer(ctx, args) -> None:
    await ctx.store.accounts.delete_customer(args.name)
    ctx.out.done(f"customer {args.name!r} removed")
