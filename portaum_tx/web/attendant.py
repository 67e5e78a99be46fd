"""The subscriber's auto attendant: menus with periods, event tables and prompts; the
dial-by-name directory with recorded names; call queues.

Every change goes through :class:`~portaum_tx.ivr.attendant.AttendantBook`, which
validates the whole menu set on each save (the CLI edits through it too), so the web
cannot store a menu the IVR would refuse.  Periods are parsed and put into words by
:mod:`portaum_tx.ivr.period`.
"""

from __future__ import annotations

import re

from ..ivr import attendant as model
from ..ivr import period as periods
from ..ivr.directory import DirectoryError
from ..ivr.queues import QueueError
from ..store import AlreadyExists
from .api import USER, ApiError, Field, Param, Response, Route, invalid, not_found
from .selfcare import au_as_wav, convert_upload

_PROMPT_KIND = re.compile(r"(intro|menu|timeout|unavailable|before-(?:[0-9*#]|timeout|fax|not_active))")


def _book(ctx) -> model.AttendantBook:
    return model.AttendantBook(ctx.node.store)


def _menu_errors(exc: Exception) -> ApiError:
    if isinstance(exc, AlreadyExists):
        return ApiError(409, "conflict", str(exc))
    return invalid(str(exc))


async def get_attendant(ctx):
    account_id = ctx.account_id
    store = ctx.node.store.attendant
    menus = []
    for menu in await _book(ctx).menus(account_id):
        data = menu.to_dict()
        recorded = await store.get_attendant_prompts(account_id, f"menu:{menu.name}")
        data["prompts"] = sorted(row[1] for row in recorded)
        menus.append(data)
    queues = [{"name": q.name, "destination": q.destination, "max_connected": q.max_connected,
               "average_seconds": q.average_seconds, "connected": q.connected}
              for q in await store.get_queues(account_id)]
    entries = [{"extension": e.extension, "first_name": e.first_name, "last_name": e.last_name,
                "excluded": e.excluded, "name_recorded": e.has_name_audio}
               for e in await store.get_directory_entries(account_id)]
    return {"account_id": account_id, "menus": menus, "queues": queues, "directory": entries,
            "hide_extensions": await store.get_hide_extensions(account_id),
            "events": list(model.EVENTS), "actions": list(model.ACTIONS),
            "prompt_kinds": list(model.PROMPT_KINDS)}


async def describe_period(ctx):
    text = ctx.query.get("text", "")
    try:
        parsed = periods.parse(text)
    except periods.PeriodSyntaxError as exc:
        raise invalid(str(exc), "text") from None
    return {"period": str(parsed), "description": parsed.describe()}


async def add_menu(ctx):
    try:
        menu = await _book(ctx).add_menu(ctx.account_id, ctx.body["name"].strip(),
                                         ctx.body.get("period", ""))
    except (model.MenuError, AlreadyExists) as exc:
        raise _menu_errors(exc) from None
    return menu.to_dict()


def _events(raw: dict) -> dict:
    events = {}
    for name, data in raw.items():
        try:
            event = model.parse_event(name)
            events[event] = model.EventAction.from_dict(data or {"action": "default"},
                                                        f"event {event}")
        except model.MenuError as exc:
            raise invalid(str(exc), "events") from None
    return events


async def change_menu(ctx, name):
    body = ctx.body
    try:
        menu = await _book(ctx).set_menu(
            ctx.account_id, name, new_name=(body.get("name") or "").strip() or None,
            period=body.get("period"), events=_events(body.get("events") or {}))
    except model.MenuError as exc:
        if "has no menu" in str(exc):
            raise not_found(str(exc)) from None
        raise _menu_errors(exc) from None
    return menu.to_dict()


async def delete_menu(ctx, name):
    try:
        await _book(ctx).remove_menu(ctx.account_id, name)
    except model.MenuError as exc:
        if "has no menu" in str(exc):
            raise not_found(str(exc)) from None
        raise ApiError(409, "conflict", str(exc)) from None
    return {"deleted": name}


async def _known_menu(ctx, name):
    try:
        await _book(ctx).menu(ctx.account_id, name)
    except model.MenuError as exc:
        raise not_found(str(exc)) from None


def _prompt_kind(kind: str) -> str:
    if not _PROMPT_KIND.fullmatch(kind):
        raise not_found(f"no prompt kind {kind!r}: intro, menu, timeout, unavailable or "
                        "before-<event>")
    return kind


async def put_menu_prompt(ctx, name, kind):
    await _known_menu(ctx, name)
    au = await convert_upload(ctx)
    await ctx.node.store.attendant.store_attendant_prompt(ctx.account_id, f"menu:{name}",
                                                          _prompt_kind(kind), au)
    return {"menu": name, "kind": kind, "seconds": round((len(au) - 24) / 8000, 1)}


async def get_menu_prompt(ctx, name, kind):
    audio = await ctx.node.store.attendant.get_attendant_prompt(ctx.account_id, f"menu:{name}",
                                                                _prompt_kind(kind))
    if audio is None:
        raise not_found(f"menu {name} has no {kind} recording")
    return Response(au_as_wav(audio), "audio/wav", ranged=True)


async def delete_menu_prompt(ctx, name, kind):
    if not await ctx.node.store.attendant.delete_attendant_prompt(ctx.account_id, f"menu:{name}",
                                                                  _prompt_kind(kind)):
        raise not_found(f"menu {name} has no {kind} recording")
    return {"deleted": kind}


# --- queues ------------------------------------------------------------------

def _queue(q) -> dict:
    return {"name": q.name, "destination": q.destination, "max_connected": q.max_connected,
            "average_seconds": q.average_seconds, "connected": q.connected}


async def add_queue(ctx):
    body = ctx.body
    try:
        queue = await _book(ctx).add_queue(ctx.account_id, body["name"].strip(), body["destination"],
                                           body.get("max_connected", 1),
                                           body.get("average_seconds", 180))
    except (model.MenuError, QueueError, AlreadyExists) as exc:
        raise _menu_errors(exc) from None
    return _queue(queue)


async def change_queue(ctx, name):
    try:
        queue = await _book(ctx).set_queue(ctx.account_id, name, **ctx.body)
    except (QueueError, model.MenuError) as exc:
        raise invalid(str(exc)) from None
    return _queue(queue)


async def delete_queue(ctx, name):
    try:
        await _book(ctx).remove_queue(ctx.account_id, name)
    except model.MenuError as exc:
        raise ApiError(409, "conflict", str(exc)) from None
    return {"deleted": name}


# --- directory --------------------------------------------------------------

def _entry(e) -> dict:
    return {"extension": e.extension, "first_name": e.first_name, "last_name": e.last_name,
            "excluded": e.excluded, "name_recorded": e.has_name_audio}


async def add_entry(ctx):
    body = ctx.body
    try:
        entry = await _book(ctx).add_entry(ctx.account_id, body["extension"].strip(),
                                           body.get("first_name", ""), body["last_name"],
                                           body.get("excluded", False))
    except (DirectoryError, AlreadyExists) as exc:
        raise _menu_errors(exc) from None
    return _entry(entry)


async def change_entry(ctx, extension):
    try:
        entry = await _book(ctx).set_entry(ctx.account_id, extension, **ctx.body)
    except DirectoryError as exc:
        raise invalid(str(exc)) from None
    return _entry(entry)


async def delete_entry(ctx, extension):
    await ctx.node.store.attendant.delete_directory_entry(ctx.account_id, extension)
    return {"deleted": extension}


async def import_entries(ctx):
    added = await _book(ctx).import_directory(ctx.account_id)
    return {"added": [_entry(e) for e in added]}


async def put_entry_name(ctx, extension):
    await ctx.node.store.attendant.get_directory_entry(ctx.account_id, extension)
    au = await convert_upload(ctx)
    await ctx.node.store.attendant.store_directory_name(ctx.account_id, extension, au)
    return {"extension": extension, "name_recorded": True}


async def get_entry_name(ctx, extension):
    audio = await ctx.node.store.attendant.get_directory_name(ctx.account_id, extension)
    if audio is None:
        raise not_found(f"extension {extension} has no recorded name")
    return Response(au_as_wav(audio), "audio/wav", ranged=True)


async def delete_entry_name(ctx, extension):
    await ctx.node.store.attendant.store_directory_name(ctx.account_id, extension, None)
    return {"extension": extension, "name_recorded": False}


async def set_hide_extensions(ctx):
    await ctx.node.store.attendant.set_hide_extensions(ctx.account_id, ctx.body["hide_extensions"])
    return {"hide_extensions": ctx.body["hide_extensions"]}


_AA = "/api/v1/attendant"
_MENU = Param("name", "menu name (ROOT is always there)")
_KIND = Param("kind", "intro, menu, timeout, unavailable or before-<event>")
_EXT = Param("extension", "directory extension")
_QUEUE = Param("name", "queue name")
_EVENTS_FIELD = Field("events", "object", "event (0-9 * # timeout fax not_active) -> {action, target, "
                      "max_digits, play_before}; {\"action\": \"default\"} clears an event",
                      any_values=True, max_items=20)

ROUTES = [
    Route("GET", _AA, get_attendant, USER,
          "The auto attendant: menus, queues, directory, and the events and actions there are",
          "attendant"),
    Route("GET", f"{_AA}/period", describe_period, USER,
          "Check a period in the guide's syntax and put it into words", "attendant",
          params=[Param("text", "a period such as hr{6pm-5am}, wd{sa su}", where="query",
                        required=False)]),
    Route("POST", f"{_AA}/menus", add_menu, USER, "Add a menu", "attendant", status=201, body=[
        Field("name", "string", "menu name", True, max_length=40),
        Field("period", "string", "active period (empty: always)", max_length=500)]),
    Route("PATCH", f"{_AA}/menus/{{name}}", change_menu, USER,
          "Rename a menu, set its period or events", "attendant", params=[_MENU], body=[
              Field("name", "string", "new name (not for ROOT)", max_length=40),
              Field("period", "string", "active period (empty: always; none: never)", max_length=500),
              _EVENTS_FIELD]),
    Route("DELETE", f"{_AA}/menus/{{name}}", delete_menu, USER,
          "Remove a menu no other menu uses", "attendant", params=[_MENU]),
    Route("GET", f"{_AA}/menus/{{name}}/prompts/{{kind}}", get_menu_prompt, USER,
          "Play a menu prompt (WAV)", "attendant", params=[_MENU, _KIND], produces="audio/wav"),
    Route("PUT", f"{_AA}/menus/{{name}}/prompts/{{kind}}", put_menu_prompt, USER,
          "Upload a menu prompt in any common audio format", "attendant", upload=True,
          params=[_MENU, _KIND]),
    Route("DELETE", f"{_AA}/menus/{{name}}/prompts/{{kind}}", delete_menu_prompt, USER,
          "Remove a menu prompt (the system prompt plays again)", "attendant",
          params=[_MENU, _KIND]),
    Route("POST", f"{_AA}/queues", add_queue, USER, "Add a call queue", "attendant", status=201, body=[
        Field("name", "string", "queue name", True, max_length=40),
        Field("destination", "string", "number the queue calls", True, max_length=32),
        Field("max_connected", "integer", "calls connected at once (default 1)"),
        Field("average_seconds", "integer", "average call duration for the wait estimate (default 180)")]),
    Route("PATCH", f"{_AA}/queues/{{name}}", change_queue, USER, "Change a call queue", "attendant",
          params=[_QUEUE], body=[
              Field("destination", "string", "number the queue calls", max_length=32),
              Field("max_connected", "integer", "calls connected at once"),
              Field("average_seconds", "integer", "average call duration in seconds")]),
    Route("DELETE", f"{_AA}/queues/{{name}}", delete_queue, USER,
          "Remove a queue no menu uses", "attendant", params=[_QUEUE]),
    Route("POST", f"{_AA}/directory", add_entry, USER, "Add a directory entry", "attendant",
          status=201, body=[
              Field("extension", "string", "extension (digits)", True, max_length=15),
              Field("first_name", "string", "first name", max_length=64),
              Field("last_name", "string", "last name (its first letters are dialled)", True,
                    max_length=64),
              Field("excluded", "boolean", "keep it out of the directory")]),
    Route("POST", f"{_AA}/directory/import", import_entries, USER,
          "Add the customer's other accounts to the directory", "attendant", status=201),
    Route("PATCH", f"{_AA}/directory/{{extension}}", change_entry, USER,
          "Change a directory entry", "attendant", params=[_EXT], body=[
              Field("first_name", "string", "first name", max_length=64),
              Field("last_name", "string", "last name", max_length=64),
              Field("excluded", "boolean", "keep it out of the directory")]),
    Route("DELETE", f"{_AA}/directory/{{extension}}", delete_entry, USER,
          "Remove a directory entry", "attendant", params=[_EXT]),
    Route("GET", f"{_AA}/directory/{{extension}}/name", get_entry_name, USER,
          "Play an entry's recorded name (WAV)", "attendant", params=[_EXT], produces="audio/wav"),
    Route("PUT", f"{_AA}/directory/{{extension}}/name", put_entry_name, USER,
          "Upload an entry's name prompt in any common audio format", "attendant", upload=True,
          params=[_EXT]),
    Route("DELETE", f"{_AA}/directory/{{extension}}/name", delete_entry_name, USER,
          "Remove an entry's recorded name", "attendant", params=[_EXT]),
    Route("PUT", f"{_AA}/directory-settings", set_hide_extensions, USER,
          "Whether the directory reads out extensions or sequence numbers", "attendant",
          body=[Field("hide_extensions", "boolean", "say sequence numbers, not extensions", True)]),
]
