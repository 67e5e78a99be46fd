"""The JSON API's plumbing: routes, validation at the edge, errors, responses.

Every endpoint is a :class:`Route` in one table; the dispatcher, the access
checks and the OpenAPI document are all derived from that table, so the
document cannot drift from what is served.  Request bodies are declared as
:class:`Field` lists and checked before a handler runs; whatever a user can
get wrong comes back as JSON ``{"error": {"code", "message", "field"?}}``
with a 4xx status.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any, Awaitable, Callable, Sequence

#: Who may call a route: anyone, a signed-in subscriber, a signed-in operator.
PUBLIC, USER, ADMIN = "public", "user", "admin"

MAX_JSON_BODY = 256 * 1024


class ApiError(Exception):
    """An error the client caused or must hear about; becomes a JSON response."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers or {}

    def body(self) -> dict:
        error = {"code": self.code, "message": self.message}
        if self.field:
            error["field"] = self.field
        return {"error": error}


def invalid(message: str, field: str | None = None) -> ApiError:
    return ApiError(400, "invalid", message, field)


def not_found(message: str) -> ApiError:
    return ApiError(404, "not_found", message)


@dataclasses.dataclass(frozen=True)
class Field:
    """One member of a JSON request body."""
    name: str
    type: str                     # "string", "integer", "boolean", "array" (of strings), "object"
    description: str
    required: bool = False
    enum: Sequence[str] | None = None
    max_length: int = 1000
    nullable: bool = False
    max_items: int = 100
    any_values: bool = False      # an object whose values are checked by the handler

    def schema(self) -> dict:
        schema: dict[str, Any] = {"type": self.type, "description": self.description}
        if self.type == "string":
            schema["maxLength"] = self.max_length
        if self.type == "array":
            schema["items"] = {"type": "string", "maxLength": self.max_length}
            schema["maxItems"] = self.max_items
        if self.type == "object":
            schema["additionalProperties"] = {} if self.any_values else {"type": "string"}
        if self.enum:
            schema["enum"] = list(self.enum)
        if self.nullable:
            schema["nullable"] = True
        return schema


_JSON_TYPES = {"string": str, "integer": int, "boolean": bool, "array": list, "object": dict}


def validate_body(fields: Sequence[Field], data: Any) -> dict[str, Any]:
    """Check a decoded JSON body against its declared fields."""
    if not isinstance(data, dict):
        raise invalid("request body must be a JSON object")
    known = {f.name: f for f in fields}
    for name in data:
        if name not in known:
            raise invalid(f"unknown field {name!r}; expected one of {', '.join(sorted(known))}",
                          name)
    result: dict[str, Any] = {}
    for field in fields:
        if field.name not in data:
            if field.required:
                raise invalid(f"{field.name} is required", field.name)
            continue
        value = data[field.name]
        if value is None:
            if not field.nullable:
                raise invalid(f"{field.name} must not be null", field.name)
            result[field.name] = None
            continue
        expected = _JSON_TYPES[field.type]
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise invalid(f"{field.name} must be a{'n' if field.type[0] in 'aeiou' else ''} "
                          f"{field.type}", field.name)
        if field.type == "string" and len(value) > field.max_length:
            raise invalid(f"{field.name} is longer than {field.max_length} characters", field.name)
        if field.type == "array":
            if len(value) > field.max_items:
                raise invalid(f"{field.name} has more than {field.max_items} items", field.name)
            if not all(isinstance(v, str) and len(v) <= field.max_length for v in value):
                raise invalid(f"{field.name} must be a list of strings", field.name)
        if field.type == "object" and field.any_values:
            if len(value) > field.max_items or not all(isinstance(k, str) and len(k) <= 64
                                                       for k in value):
                raise invalid(f"{field.name} must be an object of at most {field.max_items} members",
                              field.name)
        elif field.type == "object":
            if len(value) > field.max_items or not all(
                    isinstance(k, str) and isinstance(v, (str, int, float, bool))
                    and len(str(v)) <= field.max_length for k, v in value.items()):
                raise invalid(f"{field.name} must be an object of short text values", field.name)
        if field.enum and value not in field.enum:
            raise invalid(f"{field.name} must be one of {', '.join(field.enum)}, got {value!r}",
                          field.name)
        result[field.name] = value
    return result


def parse_json(raw: bytes) -> Any:
    if len(raw) > MAX_JSON_BODY:
        raise ApiError(413, "too_large", f"request body is larger than {MAX_JSON_BODY} bytes")
    if not raw.strip():
        return {}
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise invalid(f"request body is not valid JSON: {exc}") from None


@dataclasses.dataclass(frozen=True)
class Param:
    """A path or query parameter."""
    name: str
    description: str
    type: str = "string"          # "string" or "integer"
    where: str = "path"           # "path" or "query"
    required: bool = True


@dataclasses.dataclass
class Response:
    """A non-JSON (or non-200) answer from a handler."""
    body: bytes = b""
    content_type: str = "application/json"
    status: int = 200
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    ranged: bool = False          # honour Range requests (media seeking)


Handler = Callable[..., Awaitable[Any]]


@dataclasses.dataclass(frozen=True)
class Route:
    method: str
    path: str                      # OpenAPI style: /api/v1/folders/{folder}/messages/{uid}
    handler: Handler
    access: str
    summary: str
    tag: str
    params: Sequence[Param] = ()
    body: Sequence[Field] | None = None
    upload: bool = False           # the body is a file (any media type)
    produces: str = "application/json"
    status: int = 200

    @property
    def pattern(self) -> re.Pattern:
        return _compile(self.path)

    def path_params(self) -> list[Param]:
        names = re.findall(r"{(\w+)}", self.path)
        declared = {p.name: p for p in self.params if p.where == "path"}
        return [declared.get(n, Param(n, n)) for n in names]

    def query_params(self) -> list[Param]:
        return [p for p in self.params if p.where == "query"]


def _compile(path: str) -> re.Pattern:
    regex = re.sub(r"{(\w+)}", lambda m: f"(?P<{m.group(1)}>[^/]+)", re.escape(path)
                   .replace(r"\{", "{").replace(r"\}", "}"))
    return re.compile(f"^{regex}$")


class Router:
    def __init__(self, routes: Sequence[Route] = ()):
        self.routes: list[Route] = []
        for route in routes:
            self.add(route)

    def add(self, route: Route) -> None:
        for other in self.routes:
            if other.method == route.method and other.path == route.path:
                raise ValueError(f"route {route.method} {route.path} is declared twice")
        self.routes.append(route)

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        """The route and its raw (still percent-encoded) path parameters."""
        allowed = []
        for route in self.routes:
            found = route.pattern.match(path)
            if found:
                if route.method == method or (method == "HEAD" and route.method == "GET"):
                    return route, found.groupdict()
                allowed.append(route.method)
        if allowed:
            raise ApiError(405, "method_not_allowed",
                           f"{method} is not allowed on {path}; use {', '.join(sorted(set(allowed)))}",
                           headers={"Allow": ", ".join(sorted(set(allowed)))})
        raise ApiError(404, "no_route", f"no API endpoint at {path}")


def convert_param(param: Param, raw: str) -> Any:
    if param.type == "integer":
        if not raw.isdigit() or len(raw) > 18:
            raise invalid(f"{param.name} must be a whole number, got {raw!r}", param.name)
        return int(raw)
    if len(raw) > 200:
        raise invalid(f"{param.name} is too long", param.name)
    return raw


# --- byte ranges (RFC 9110 14) -----------------------------------------------

class RangeNotSatisfiable(Exception):
    pass


def parse_range(header: str | None, length: int) -> tuple[int, int] | None:
    """The one ``(first, last)`` byte range asked for, or None for the whole.
    Multiple ranges are answered with the whole body (allowed by RFC 9110)."""
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first_text, dash, last_text = spec.strip().partition("-")
    if not dash:
        return None
    try:
        if first_text == "":
            suffix = int(last_text)
            if suffix <= 0:
                raise RangeNotSatisfiable()
            return max(0, length - suffix), length - 1
        first = int(first_text)
        last = int(last_text) if last_text else length - 1
    except ValueError:
        return None
    if first >= length:
        raise RangeNotSatisfiable()
    if first < 0 or last < first:
        return None
    return first, min(last, length - 1)
