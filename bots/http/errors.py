"""The API's one error boundary: a refusal is JSON with the chat texts' message key, its values and the message in
the caller's language, under the status that says what kind of refusal it is; a bug is logged with a reference
(`bots.kit.boundary.explain`), and the caller gets that reference, never a traceback."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import Match, Route

from bots.errors import Refusal, UserError, user_error
from bots.kit.boundary import explain
from bots.texts import Text, available_languages, render, shortened

STATUS_BY_PREFIX = (
    ("user.banned", 403),
    ("moderation.blocked", 403),
    ("moderation.channel_closed", 403),
    ("moderation.not_allowed", 403),
    ("job.not_yours", 404),
    ("job.not_found", 404),
    ("job.no_such_image", 404),
    ("job.no_images", 404),
    ("job.not_cancellable", 409),
    ("job.not_finished", 409),
    ("job.none_active", 409),
    ("grid.pick_a_cell", 409),
    ("quota.", 429),
    ("queue.user_full", 429),
    ("queue.full", 503),
    ("queue.refused", 503),
    ("service.unavailable", 503),
    ("upload.too_large", 413),
    ("api.too_large", 413),
    ("api.unauthorized", 401),
    ("api.too_many_attempts", 429),
    ("api.not_found", 404),
    ("web.link_spent", 401),
    ("web.signed_out_error", 401),
    ("web.expired_form", 403),
    ("web.not_a_moderator", 403),
)
"""The status of each refusal, by its key's start; any other refusal is a bad request (400)."""


def status_of(key: str) -> int:
    return next((status for prefix, status in STATUS_BY_PREFIX if key.startswith(prefix)), 400)


def language_of(request: Request) -> str | None:
    """The best of the caller's Accept-Language that easel speaks (`de-CH` is German), or None."""
    header = request.headers.get("accept-language", "")
    known = set(available_languages())
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        tag, _, parameters = part.strip().partition(";")
        quality = 1.0
        if parameters.strip().startswith("q="):
            try:
                quality = float(parameters.strip()[2:])
            except ValueError:
                continue
        language = tag.strip().lower().split("-")[0]
        if language in known and quality > 0:
            ranked.append((-quality, position, language))
    return min(ranked)[2] if ranked else None


def refusal(error: UserError, language: str | None, headers: dict[str, str] | None = None) -> JSONResponse:
    values = {name: _shown(value, language) for name, value in error.values.items()}
    message = explain(error, language)
    body = {"error": {"key": error.key, "message": message, "values": values}}
    return JSONResponse(body, status_code=status_of(error.key), headers=headers)


def _shown(value: Any, language: str | None) -> str:
    if isinstance(value, Text):
        return render(value.key, language, **value.values)
    return shortened(value) if isinstance(value, str) else str(value)


async def on_user_error(request: Request, error: Exception) -> JSONResponse:
    if isinstance(error, Refusal):
        error = user_error(error)
    assert isinstance(error, UserError)
    return refusal(error, language_of(request), getattr(error, "headers", None))


async def on_invalid_body(request: Request, error: Exception) -> JSONResponse:
    """A body or parameter of the wrong shape: the first problem, with where it is."""
    assert isinstance(error, RequestValidationError)
    problem = error.errors()[0] if error.errors() else {"loc": (), "msg": "invalid"}
    where = ".".join(str(part) for part in problem.get("loc", ()) if part != "body") or "body"
    return refusal(UserError("api.bad_request", field=where, detail=str(problem.get("msg", ""))), language_of(request))


async def on_http_error(request: Request, error: Exception) -> JSONResponse:
    """Starlette's own refusals (no such path, a method not allowed) in the same shape."""
    assert isinstance(error, HTTPException)
    if error.status_code == 404:
        return refusal(UserError("api.not_found", path=request.url.path), language_of(request))
    if error.status_code == 405:
        refused = UserError("api.method_not_allowed", method=request.method)
        response = refusal(refused, language_of(request), {"Allow": ", ".join(_methods_at(request))})
        response.status_code = 405
        return response
    response = refusal(UserError("api.bad_request", field="-", detail=str(error.detail)), language_of(request))
    response.status_code = error.status_code
    return response


def _methods_at(request: Request) -> list[str]:
    """Every method some route takes at this path (Starlette names only the first matching route's)."""
    methods: set[str] = set()
    for route in request.app.routes:
        if isinstance(route, Route) and route.matches(request.scope)[0] is not Match.NONE:
            methods |= route.methods or set()
    return sorted(methods)


async def on_bug(request: Request, error: Exception) -> JSONResponse:
    language = language_of(request)
    message = explain(error, language, what=f"{request.method} {request.url.path}")
    body = {"error": {"key": "error.internal", "message": message, "values": {}}}
    return JSONResponse(body, status_code=500)
