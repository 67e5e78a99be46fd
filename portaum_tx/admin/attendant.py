"""portaum-admin menu|directory|queue: the auto attendant of an account.

Menus are saved as a whole and validated on every save: ROOT always exists and cannot be
removed or renamed; no event may name a menu, queue or account that does not exist; a menu
or queue that an event uses cannot be removed. Prompts are uploaded from audio files in any
common format and stored as u-law .au.
"""

from __future__ import annotations

from ..convert.audio import upload_to_au
from ..ivr import attendant as model
from ..ivr.attendant import AttendantBook, MenuError
from .customers import _when

PROMPT_KINDS = model.PROMPT_KINDS


def register(nouns) -> None:
    _register_menu(nouns)
    _register_directory(nouns)
    _register_queue(nouns)


# --- menus ------------------------------------------------------------------------------

def _event_options(parser) -> None:
    parser.add_argument("--period", help="active period, e.g. 'hr{9am-5pm} wd{mo-fr}' "
                                         "(blank: always, none: never)")
    parser.add_argument("--event", "-e", action="append", default=[], metavar="EVENT=ACTION",
                        help="EVENT is 0-9, star, pound, timeout, fax or not-active; ACTION is "
                             "default, transfer:NUMBER, e164:NUMBER, extension[:MAXDIGITS], "
                             "voicemail[:ACCOUNT], menu:NAME, directory[:ACCOUNT], queue:NAME "
                             "or disconnect (repeatable)")
    parser.add_argument("--play-before", action="append", default=[], metavar="EVENT",
                        help="play the event's before-action prompt first (repeatable)")
    parser.add_argument("--no-play-before", action="append", default=[], metavar="EVENT")


def _register_menu(nouns) -> None:
    parser = nouns.add_parser("menu", help="auto-attendant menus of an account")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    add = verbs.add_parser("add", help="add a menu")
    add.add_argument("account")
    add.add_argument("name")
    _event_options(add)
    add.set_defaults(handler=add_menu)
    listing = verbs.add_parser("list", help="list an account's menus")
    listing.add_argument("account")
    listing.set_defaults(handler=list_menus)
    show = verbs.add_parser("show", help="a menu's period, event table and prompts")
    show.add_argument("account")
    show.add_argument("name")
    show.set_defaults(handler=show_menu)
    change = verbs.add_parser("set", help="change a menu")
    change.add_argument("account")
    change.add_argument("name")
    change.add_argument("--rename", metavar="NEW_NAME")
    change.add_argument("--always", action="store_true", help="active at all times")
    _event_options(change)
    change.set_defaults(handler=set_menu)
    remove = verbs.add_parser("remove", help="remove a menu no event uses")
    remove.add_argument("account")
    remove.add_argument("name")
    remove.set_defaults(handler=remove_menu)
    prompt = verbs.add_parser("prompt", help="upload or remove a menu prompt")
    prompt.add_argument("account")
    prompt.add_argument("name")
    prompt.add_argument("kind", help="intro, menu, timeout, unavailable or before-EVENT")
    prompt.add_argument("file", nargs="?", help="audio file (WAV, MP3, AU, OGG ...)")
    prompt.add_argument("--remove", action="store_true", help="go back to the default prompt")
    prompt.set_defaults(handler=menu_prompt)


def _events(args, menu: model.Menu | None = None) -> dict[str, model.EventAction]:
    """The event changes the options ask for, merged over ``menu``'s table."""
    current = dict(menu.events) if menu is not None else {}
    changes: dict[str, model.EventAction] = {}
    for item in args.event:
        event, sep, action = item.partition("=")
        if not sep:
            raise MenuError(f"--event must be EVENT=ACTION, got {item!r}")
        event = model.parse_event(event)
        keep_before = current.get(event, model.NO_ACTION).play_before
        changes[event] = model.parse_action(action, play_before=keep_before)
    for flag, value in ((args.play_before, True), (args.no_play_before, False)):
        for event in flag:
            event = model.parse_event(event)
            action = changes.get(event) or current.get(event) or model.NO_ACTION
            changes[event] = model.EventAction(action.action, action.target, action.max_digits, value)
    return changes


def _menu_data(menu: model.Menu) -> dict:
    return menu.to_dict()


async def add_menu(ctx, args) -> None:
    book = AttendantBook(ctx.store)
    menu = await book.add_menu(args.account, args.name, args.period or "", _events(args))
    ctx.out.done(f"menu {menu.name} added to {args.account}", _menu_data(menu))


async def list_menus(ctx, args) -> None:
    rows = [{"name": m.name, "active": m.period or "always",
             "events": ", ".join(f"{e}={a}" for e, a in
                                 sorted(m.events.items(), key=lambda i: model.EVENTS.index(i[0])))}
            for m in await AttendantBook(ctx.store).menus(args.account)]
    ctx.out.table(rows, ["name", "active", "events"])


async def show_menu(ctx, args) -> None:
    book = AttendantBook(ctx.store)
    menu = await book.menu(args.account, args.name)
    recorded = {kind: size for _, kind, size, _ in
                await ctx.store.attendant.get_attendant_prompts(args.account, f"menu:{menu.name}")}
    data = _menu_data(menu)
    data["prompts"] = {kind: (f"recorded ({recorded[kind]} bytes)" if kind in recorded
                              else f"default ({model.DEFAULT_PROMPTS[kind]})") for kind in PROMPT_KINDS}
    data["prompts"].update({kind: f"recorded ({size} bytes)" for kind, size in recorded.items()
                            if kind not in PROMPT_KINDS})
    if ctx.out.as_json:
        ctx.out.record(data)
        return
    ctx.out.record({"name": menu.name, "active": menu.period or "always",
                    "description": model.describe_period(menu.period).replace("\n", "; ")})
    rows = [{"event": event, "action": str(menu.action_for(event))} for event in model.EVENTS]
    ctx.out.table(rows, ["event", "action"])
    ctx.out.table([{"prompt": k, "source": v} for k, v in data["prompts"].items()], ["prompt", "source"])


async def set_menu(ctx, args) -> None:
    book = AttendantBook(ctx.store)
    menu = await book.menu(args.account, args.name)
    period = "" if args.always else args.period
    changed = await book.set_menu(args.account, args.name, new_name=args.rename, period=period,
                                  events=_events(args, menu))
    ctx.out.done(f"menu {changed.name} of {args.account} saved", _menu_data(changed))


async def remove_menu(ctx, args) -> None:
    await AttendantBook(ctx.store).remove_menu(args.account, args.name)
    ctx.out.done(f"menu {args.name} removed from {args.account}")


def _prompt_kind(kind: str) -> str:
    if kind in PROMPT_KINDS:
        return kind
    if kind.startswith("before-"):
        return "before-" + model.parse_event(kind[len("before-"):])
    raise MenuError(f"prompt kind must be one of {', '.join(PROMPT_KINDS)} or before-EVENT, got {kind!r}")


def _read_audio(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as e:
        raise ValueError(f"cannot read {path}: {e.strerror}") from None
    return upload_to_au(data)


async def menu_prompt(ctx, args) -> None:
    menu = await AttendantBook(ctx.store).menu(args.account, args.name)
    kind = _prompt_kind(args.kind)
    scope = f"menu:{menu.name}"
    if args.remove:
        if not await ctx.store.attendant.delete_attendant_prompt(args.account, scope, kind):
            raise MenuError(f"menu {menu.name} has no recorded {kind} prompt")
        ctx.out.done(f"menu {menu.name} plays the default {kind} prompt again")
        return
    if not args.file:
        raise MenuError("give an audio file, or --remove")
    audio = _read_audio(args.file)
    await ctx.store.attendant.store_attendant_prompt(args.account, scope, kind, audio)
    ctx.out.done(f"{kind} prompt of menu {menu.name} stored ({len(audio)} bytes)",
                 {"menu": menu.name, "kind": kind, "bytes": len(audio)})


# --- directory ------------------------------------------------------------------------------

def _register_directory(nouns) -> None:
    parser = nouns.add_parser("directory", help="dial-by-name directory of an account")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    add = verbs.add_parser("add", help="list a person")
    add.add_argument("account")
    add.add_argument("extension")
    add.add_argument("last_name")
    add.add_argument("--first", default="", help="first name")
    add.add_argument("--excluded", action="store_true", help="not reachable by name")
    add.set_defaults(handler=add_entry)
    listing = verbs.add_parser("list", help="the directory and its mode")
    listing.add_argument("account")
    listing.set_defaults(handler=list_entries)
    change = verbs.add_parser("set", help="change an entry")
    change.add_argument("account")
    change.add_argument("extension")
    change.add_argument("--first")
    change.add_argument("--last")
    exclusion = change.add_mutually_exclusive_group()
    exclusion.add_argument("--exclude", action="store_true", help="not reachable by name")
    exclusion.add_argument("--include", action="store_true")
    name = change.add_mutually_exclusive_group()
    name.add_argument("--name-file", metavar="AUDIO", help="the recorded name")
    name.add_argument("--no-name", action="store_true", help="drop the recorded name")
    change.set_defaults(handler=set_entry)
    remove = verbs.add_parser("remove", help="remove an entry")
    remove.add_argument("account")
    remove.add_argument("extension")
    remove.set_defaults(handler=remove_entry)
    imported = verbs.add_parser("import", help="list the other accounts of the customer")
    imported.add_argument("account")
    imported.set_defaults(handler=import_entries)
    mode = verbs.add_parser("mode", help="callers choose by extension, or by sequence number "
                                         "when extensions are hidden")
    mode.add_argument("account")
    mode.add_argument("mode", choices=("extensions", "sequence"))
    mode.set_defaults(handler=set_mode)


def _entry_data(entry) -> dict:
    return {"extension": entry.extension, "first_name": entry.first_name,
            "last_name": entry.last_name, "excluded": entry.excluded,
            "recorded_name": entry.has_name_audio, "updated": _when(entry.updated)}


async def add_entry(ctx, args) -> None:
    entry = await AttendantBook(ctx.store).add_entry(args.account, args.extension, args.first,
                                                     args.last_name, args.excluded)
    ctx.out.done(f"extension {entry.extension} ({entry.first_name} {entry.last_name}) listed",
                 _entry_data(entry))


async def list_entries(ctx, args) -> None:
    await ctx.store.accounts.get_account(args.account)
    entries = await ctx.store.attendant.get_directory_entries(args.account)
    hidden = await ctx.store.attendant.get_hide_extensions(args.account)
    if ctx.out.as_json:
        ctx.out.record({"mode": "sequence" if hidden else "extensions",
                        "entries": [_entry_data(e) for e in entries]})
        return
    ctx.out.done(f"mode: {'sequence numbers (extensions hidden)' if hidden else 'extensions'}")
    ctx.out.table([dict(_entry_data(e), excluded="yes" if e.excluded else "",
                        recorded_name="yes" if e.has_name_audio else "") for e in entries],
                  ["extension", "first_name", "last_name", "excluded", "recorded_name"])


async def set_entry(ctx, args) -> None:
    excluded = True if args.exclude else False if args.include else None
    book = AttendantBook(ctx.store)
    entry = await book.set_entry(args.account, args.extension, first_name=args.first,
                                 last_name=args.last, excluded=excluded)
    if args.name_file:
        await ctx.store.attendant.store_directory_name(args.account, args.extension,
                                                       _read_audio(args.name_file))
    elif args.no_name:
        await ctx.store.attendant.store_directory_name(args.account, args.extension, None)
    entry = await ctx.store.attendant.get_directory_entry(args.account, args.extension)
    ctx.out.done(f"extension {entry.extension} updated", _entry_data(entry))


async def remove_entry(ctx, args) -> None:
    await ctx.store.attendant.delete_directory_entry(args.account, args.extension)
    ctx.out.done(f"extension {args.extension} removed from the directory of {args.account}")


async def import_entries(ctx, args) -> None:
    added = await AttendantBook(ctx.store).import_directory(args.account)
    unnamed = sum(1 for e in added if not e.last_name)
    note = f"; {unnamed} without a name are excluded until one is set" if unnamed else ""
    ctx.out.done(f"{len(added)} entries imported{note}", {"imported": [_entry_data(e) for e in added]})


async def set_mode(ctx, args) -> None:
    await ctx.store.accounts.get_account(args.account)
    await ctx.store.attendant.set_hide_extensions(args.account, args.mode == "sequence")
    ctx.out.done(f"directory of {args.account}: callers choose by "
                 f"{'sequence number' if args.mode == 'sequence' else 'extension'}")


# --- queues ------------------------------------------------------------------------------------

def _register_queue(nouns) -> None:
    parser = nouns.add_parser("queue", help="call queues of an account")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    add = verbs.add_parser("add", help="add a call queue")
    add.add_argument("account")
    add.add_argument("name")
    add.add_argument("destination", help="the number agents answer behind")
    add.add_argument("--max-connected", type=int, default=1, metavar="N")
    add.add_argument("--average-duration", type=int, default=180, metavar="SECONDS")
    add.add_argument("--music", metavar="AUDIO", help="music on hold (default: built-in)")
    add.set_defaults(handler=add_queue)
    listing = verbs.add_parser("list", help="an account's queues")
    listing.add_argument("account")
    listing.set_defaults(handler=list_queues)
    show = verbs.add_parser("show", help="a queue and the callers in it")
    show.add_argument("account")
    show.add_argument("name")
    show.set_defaults(handler=show_queue)
    change = verbs.add_parser("set", help="change a queue")
    change.add_argument("account")
    change.add_argument("name")
    change.add_argument("--destination")
    change.add_argument("--max-connected", type=int, metavar="N")
    change.add_argument("--average-duration", type=int, metavar="SECONDS")
    music = change.add_mutually_exclusive_group()
    music.add_argument("--music", metavar="AUDIO")
    music.add_argument("--no-music", action="store_true", help="back to the built-in music")
    change.set_defaults(handler=set_queue)
    remove = verbs.add_parser("remove", help="remove a queue no menu uses")
    remove.add_argument("account")
    remove.add_argument("name")
    remove.set_defaults(handler=remove_queue)


def _queue_data(queue, music: bool) -> dict:
    return {"name": queue.name, "destination": queue.destination,
            "max_connected": queue.max_connected, "average_duration": queue.average_seconds,
            "connected": queue.connected, "music_on_hold": "recorded" if music else "built-in"}


async def _has_music(ctx, queue) -> bool:
    return bool(await ctx.store.attendant.get_attendant_prompts(queue.account_id, f"queue:{queue.name}"))


async def add_queue(ctx, args) -> None:
    music = _read_audio(args.music) if args.music else None
    queue = await AttendantBook(ctx.store).add_queue(args.account, args.name, args.destination,
                                                     args.max_connected, args.average_duration)
    if music is not None:
        await ctx.store.attendant.store_attendant_prompt(args.account, f"queue:{queue.name}", "music", music)
    ctx.out.done(f"queue {queue.name} of {args.account} added", _queue_data(queue, music is not None))


async def list_queues(ctx, args) -> None:
    await ctx.store.accounts.get_account(args.account)
    rows = [_queue_data(q, await _has_music(ctx, q)) for q in await ctx.store.attendant.get_queues(args.account)]
    ctx.out.table(rows, ["name", "destination", "max_connected", "average_duration", "connected",
                         "music_on_hold"])


async def show_queue(ctx, args) -> None:
    queue = await ctx.store.attendant.get_queue(args.account, args.name)
    callers = await ctx.store.attendant.get_queue_callers(queue.id)
    data = _queue_data(queue, await _has_music(ctx, queue))
    data["callers"] = [{"call_id": c.call_id, "node": c.node, "state": c.state, "entered": _when(c.entered)}
                       for c in callers]
    if ctx.out.as_json:
        ctx.out.record(data)
        return
    data["callers"] = len(callers)
    ctx.out.record(data)


async def set_queue(ctx, args) -> None:
    music = _read_audio(args.music) if args.music else None
    queue = await AttendantBook(ctx.store).set_queue(
        args.account, args.name, destination=args.destination, max_connected=args.max_connected,
        average_seconds=args.average_duration)
    scope = f"queue:{queue.name}"
    if music is not None:
        await ctx.store.attendant.store_attendant_prompt(args.account, scope, "music", music)
    elif args.no_music:
        await ctx.store.attendant.delete_attendant_prompt(args.account, scope, "music")
    ctx.out.done(f"queue {queue.name} of {args.account} saved", _queue_data(queue, await _has_music(ctx, queue)))


async def remove_queue(ctx, args) -> None:
    await AttendantBook(ctx.store).remove_queue(args.account, args.name)
    ctx.out.done(f"queue {args.name} removed from {args.account}")
