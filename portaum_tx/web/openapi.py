"""The OpenAPI 3.0 document, built from the route table that also dispatches."""

from __future__ import annotations

from typing import Sequence

from .api import PUBLIC, USER, Route

_ERROR = {"$ref": "#/components/schemas/Error"}
_ERRORS = {
    "400": "the request is not valid (the message and field say what)",
    "401": "not signed in",
    "403": "signed in but not allowed, or the CSRF token is missing",
    "404": "no such object",
    "429": "too many failed sign-ins",
}


def _operation(route: Route) -> dict:
    operation: dict = {
        "operationId": route.handler.__module__.rsplit(".", 1)[-1] + "_" + route.handler.__name__,
        "summary": route.summary,
        "tags": [route.tag],
    }
    parameters = []
    for param in route.path_params() + route.query_params():
        parameters.append({"name": param.name, "in": param.where, "required": param.where == "path"
                           or param.required, "description": param.description,
                           "schema": {"type": param.type}})
    if parameters:
        operation["parameters"] = parameters
    if route.body is not None:
        required = [f.name for f in route.body if f.required]
        schema = {"type": "object", "additionalProperties": False,
                  "properties": {f.name: f.schema() for f in route.body}}
        if required:
            schema["required"] = required
        operation["requestBody"] = {"required": bool(required),
                                    "content": {"application/json": {"schema": schema}}}
    if route.upload:
        operation["requestBody"] = {"required": True, "description": "the audio file",
                                    "content": {"*/*": {"schema": {"type": "string",
                                                                   "format": "binary"}}}}
    if route.produces == "application/json":
        success = {"description": "success",
                   "content": {"application/json": {"schema": {"type": "object"}}}}
    else:
        success = {"description": "success", "content": {
            route.produces: {"schema": {"type": "string", "format": "binary"}}}}
    responses = {str(route.status): success}
    codes = ["400", "404"]
    if route.access != PUBLIC:
        codes += ["401", "403"]
        operation["security"] = [{"userSession": []}] if route.access == USER else [{"adminSession": []}]
    else:
        operation["security"] = []
    if route.path.endswith("/session") and route.method == "POST":
        codes += ["401", "429"]
    for code in sorted(set(codes)):
        responses[code] = {"description": _ERRORS[code],
                           "content": {"application/json": {"schema": _ERROR}}}
    operation["responses"] = responses
    return operation


def document(routes: Sequence[Route], version: str = "1") -> dict:
    paths: dict[str, dict] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "portaum_tx self-care and admin API",
            "version": version,
            "description": (
                "Sign in with POST /api/v1/session (subscriber) or POST /api/v1/admin/session "
                "(operator); the answer sets an HttpOnly session cookie and carries a csrf_token "
                "to send in the X-CSRF-Token header with every POST, PUT, PATCH and DELETE. "
                "Errors are JSON: {\"error\": {\"code\", \"message\", \"field\"}}."),
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "userSession": {"type": "apiKey", "in": "cookie", "name": "portaum_session"},
                "adminSession": {"type": "apiKey", "in": "cookie", "name": "portaum_admin"},
            },
            "schemas": {"Error": {
                "type": "object", "required": ["error"],
                "properties": {"error": {"type": "object", "required": ["code", "message"],
                                         "properties": {"code": {"type": "string"},
                                                        "message": {"type": "string"},
                                                        "field": {"type": "string"}}}}}},
        },
    }
