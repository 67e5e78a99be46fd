"""portaum-admin access-number add|list|show|set|remove"""

from __future__ import annotations

import re

from .customers import _when

_PATTERN = re.compile(r"[0-9A-Za-z+*#]{1,32}%?")
_APPLICATION = re.compile(r"[a-z][a-z0-9_-]{0,63}")


def register(nouns) -> None:
    parser = nouns.add_parser("access-number", help="numbers that start IVR applications")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    add = verbs.add_parser("add", help="route a number (or a prefix: AD%%) to an application")
    add.add_argument("pattern", help="called number, or a prefix followed by %%")
    add.add_argument("application", help="IVR application name")
    add.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE",
                     help="application option (repeatable)")
    add.set_defaults(handler=add_access_number)
    verbs.add_parser("list", help="list access numbers").set_defaults(handler=list_access_numbers)
    show = verbs.add_parser("show", help="show one access number and its options")
    show.add_argument("pattern")
    show.set_defaults(handler=show_access_number)
    change = verbs.add_parser("set", help="change an access number's application or options")
    change.add_argument("pattern")
    change.add_argument("--application")
    change.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE")
    change.add_argument("--unset", action="append", default=[], metavar="KEY",
                        help="drop an option so its default applies")
    change.set_defaults(handler=set_access_number)
    remove = verbs.add_parser("remove", help="remove an access number")
    remove.add_argument("pattern")
    remove.set_defaults(handler=remove_access_number)


def check_pattern(pattern: str) -> str:
    if not _PATTERN.fullmatch(pattern):
        raise ValueError(f"access number must be digits/letters/+*# with an optional trailing % "
                         f"for a prefix, got {pattern!r}")
    return pattern


def check_application(name: str) -> str:
    if not _APPLICATION.fullmatch(name):
        raise ValueError(f"application name must be lower-case letters, digits, - or _, got {name!r}")
    return name


def parse_options(items: list[str]) -> dict[str, str]:
    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"option must be KEY=VALUE, got {item!r}")
        options[key] = value.strip()
    return options


async def add_access_number(ctx, args) -> None:
    number = await ctx.store.access_numbers.add_access_number(
        check_pattern(args.pattern), check_application(args.application),
        parse_options(args.option))
    ctx.out.done(f"access number {number.pattern} starts {number.application}", _describe(number))


def _describe(number) -> dict:
    return {"pattern": number.pattern, "application": number.application,
            "options": number.options, "created": _when(number.created)}


async def list_access_numbers(ctx, args) -> None:
    rows = [{"pattern": n.pattern, "application": n.application,
             "options": ", ".join(f"{k}={v}" for k, v in sorted(n.options.items()))}
            for n in await ctx.store.access_numbers.get_access_numbers()]
    ctx.out.table(rows, ["pattern", "application", "options"])


async def show_access_number(ctx, args) -> None:
    number = await ctx.store.access_numbers.get_access_number(args.pattern)
    data = _describe(number)
    if not ctx.out.as_json:
        data["options"] = ", ".join(f"{k}={v}" for k, v in sorted(number.options.items())) or "none"
    ctx.out.record(data)


async def set_access_number(ctx, args) -> None:
    number = await ctx.store.access_numbers.get_access_number(args.pattern)
    options = dict(number.options)
    options.update(parse_options(args.option))
    for key in args.unset:
        options.pop(key, None)
    application = check_application(args.application) if args.application else number.application
    number = await ctx.store.access_numbers.set_access_number_options(
        args.pattern, application, options)
    ctx.out.done(f"access number {number.pattern} updated", _describe(number))


async def remove_access_number(ctx, args) -> None:
    await ctx.store.access_numbers.delete_access_number(args.pattern)
    ctx.out.done(f"access number {args.pattern} removed")
