"""One error boundary for the whole server, which answers in the asker's kind: JSON under /api/v1 (and for the
operations endpoints), a page in the reader's language under /web, where a missing session leads to sign in."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from starlette.exceptions import HTTPException

from bots.core.facade import Core
from bots.errors import EaselError, Refusal, UserError, user_error
from bots.http.errors import language_of, on_bug, on_http_error, on_invalid_body, on_user_error, status_of
from bots.http.web.rendering import Pages
from bots.http.web.sessions import SignInNeeded, viewer
from bots.kit.boundary import explain

Handler = Callable[[Request, Exception], Awaitable[Response]]


def web_errors(app: FastAPI, core: Core, pages: Pages) -> None:
    async def page(request: Request, error: Exception, status: int) -> Response:
        """The refusal or the bug explained on a page, in the reader's language when they are signed in."""
        try:
            reader = await viewer(core, request)
        except (SignInNeeded, EaselError):
            reader = None
        language = reader.language if reader is not None else language_of(request)
        message = explain(error, language, what=f"{request.method} {request.url.path}")
        extra = {"viewer": reader} if reader is not None else {}
        return pages.render(request, "error.html", language, status, message=message, **extra)

    def either(api: Handler, web: Callable[[Request, Exception], Awaitable[Response]]) -> Handler:
        async def handle(request: Request, error: Exception) -> Response:
            return await (web if request.url.path.startswith("/web") else api)(request, error)

        return handle

    async def refused(request: Request, error: Exception) -> Response:
        if isinstance(error, Refusal):
            error = user_error(error)
        assert isinstance(error, UserError)
        return await page(request, error, status_of(error.key))

    async def signed_out(request: Request, error: Exception) -> Response:
        if request.method == "GET" and not request.url.path.endswith("/events"):
            return RedirectResponse("/web/login", status_code=303)
        return await page(request, UserError("web.signed_out_error"), 401)

    async def invalid(request: Request, error: Exception) -> Response:
        return await page(request, UserError("web.expired_form"), 400)

    async def http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        key = "api.not_found" if error.status_code == 404 else "api.method_not_allowed"
        return await page(request, UserError(key, path=request.url.path, method=request.method), error.status_code)

    async def bug(request: Request, error: Exception) -> Response:
        return await page(request, error, 500)

    app.add_exception_handler(EaselError, either(on_user_error, refused))
    app.add_exception_handler(SignInNeeded, signed_out)
    app.add_exception_handler(RequestValidationError, either(on_invalid_body, invalid))
    app.add_exception_handler(HTTPException, either(on_http_error, http_error))
    app.add_exception_handler(Exception, either(on_bug, bug))
