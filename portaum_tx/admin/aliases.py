"""portaum-admin alias add|list|show|remove"""

from __future__ import annotations

from .customers import _when


def register(nouns) -> None:
    parser = nouns.add_parser("alias", help="other IDs of an account (extensions, PIN auth IDs)")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    add = verbs.add_parser("add", help="add an alias to an account")
    add.add_argument("alias")
    add.add_argument("--account", required=True)
    add.set_defaults(handler=add_alias)
    listing = verbs.add_parser("list", help="list aliases")
    listing.add_argument("--account", help="only this account's aliases")
    listing.set_defaults(handler=list_aliases)
    show = verbs.add_parser("show", help="show which account an alias belongs to")
    show.add_argument("alias")
    show.set_defaults(handler=show_alias)
    remove = verbs.add_parser("remove", help="remove an alias")
    remove.add_argument("alias")
    remove.set_defaults(handler=remove_alias)


async def add_alias(ctx, args) -> None:
    await ctx.accounts.add_alias(args.alias, args.account)
    ctx.out.done(f"alias {args.alias} added to account {args.account}",
                 {"alias": args.alias, "account": args.account})


async def list_aliases(ctx, args) -> None:
    rows = [{"alias": alias, "account": account, "created": _when(created)}
            for alias, account, created in await ctx.store.accounts.get_aliases(args.account)]
    ctx.out.table(rows, ["alias", "account", "created"])


async def show_alias(ctx, args) -> None:
    from ..store import NotFound
    for alias, account, created in await ctx.store.accounts.get_aliases():
        if alias == args.alias:
            ctx.out.record({"alias": alias, "account": account, "created": _when(created)})
            return
    raise NotFound(f"no alias {args.alias}")


async def remove_alias(ctx, args) -> None:
    await ctx.store.accounts.delete_alias(args.alias)
    ctx.out.done(f"alias {args.alias} removed")
