"""The web pages: sign-in from the bot's link, the user's gallery and a prompt form, a job's page with live
progress, and the queue as everyone may see it. Server-rendered (Jinja2) and whole without JavaScript; a script
only follows a running job's events (`static/live.js`). Moderation is `bots.http.web.moderation`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse

from bots.config import HttpSettings
from bots.core.access import SESSION_DAYS
from bots.core.facade import Core
from bots.core.types import JobDetail, Place
from bots.errors import UserError
from bots.http.api import media_type
from bots.http.errors import language_of
from bots.http.feed import JobFeed
from bots.http.guards import Attempts
from bots.http.requests import ask_of, job_request
from bots.http.streams import job_events
from bots.http.web.rendering import JobView, Pages
from bots.http.web.sessions import Viewer, check_form, clear_session, set_session, viewer

WEB_PLACE = Place("http", "web")
STATIC = Path(__file__).with_name("static")
STATIC_TYPES = {".js": "text/javascript", ".css": "text/css"}
FORM_FIELDS = ("prompt", "negative", "size", "steps", "seed")

Token = Annotated[str, Form()]


def web_router(core: Core, settings: HttpSettings, feed: JobFeed, attempts: Attempts, pages: Pages) -> APIRouter:
    router = APIRouter(prefix="/web", include_in_schema=False)
    secure = settings.base_url.startswith("https://")

    async def who(request: Request) -> Viewer:
        return await viewer(core, request)

    @router.get("/login")
    async def login_page(request: Request, token: str = "") -> Response:
        """The link's page asks for a press before the link is spent: a chat's link preview fetches it too."""
        return pages.render(request, "login.html", language_of(request), token=token)

    @router.post("/login")
    async def login(request: Request, token: Token) -> Response:
        address = request.client.host if request.client else "-"
        if attempts.exhausted(address):
            raise UserError("api.too_many_attempts")
        session = await core.access.open_session(token.strip()) if token.strip() else None
        if session is None:
            await attempts.failed(address)
            raise UserError("web.link_spent")
        response = RedirectResponse("/web/", status_code=303)
        set_session(response, session, secure, SESSION_DAYS * 24 * 3600)  # the server ends a moderator's sooner
        return response

    @router.post("/logout")
    async def logout(request: Request, csrf: Token) -> Response:
        reader = await who(request)
        check_form(reader, csrf)
        await core.access.end_session(reader.caller, reader.session)
        response = pages.render(request, "login.html", reader.language, token="", signed_out=True)
        clear_session(response, secure)
        return response

    @router.get("/")
    async def gallery(request: Request) -> Response:
        reader = await who(request)
        jobs = await core.job_reads.jobs(reader.caller, 30)
        return pages.render(request, "gallery.html", reader.language, viewer=reader, jobs=[JobView(j) for j in jobs])

    @router.post("/jobs")
    async def submit(request: Request) -> Response:
        reader = await who(request)
        form = await request.form(max_files=0, max_fields=len(FORM_FIELDS) + 1)
        check_form(reader, str(form.get("csrf", "")))
        given = {name: str(form[name]).strip() for name in FORM_FIELDS if str(form.get(name, "")).strip()}
        ask, _ = ask_of(job_request(given), {})
        receipt = await core.submit(reader.caller.actor, WEB_PLACE, ask)
        return RedirectResponse(f"/web/jobs/{receipt.job_id}", status_code=303)

    @router.get("/jobs/{job_id}")
    async def job(request: Request, job_id: str) -> Response:
        reader = await who(request)
        detail = await core.job_reads.job(reader.caller, job_id)
        progress = 1.0 if detail.state == "done" else feed.progress(detail.job_id)
        return pages.render(request, "job.html", reader.language, viewer=reader, job=JobView(detail, progress))

    @router.get("/jobs/{job_id}/events")
    async def events(request: Request, job_id: str) -> StreamingResponse:
        reader = await who(request)
        detail = await core.job_reads.job(reader.caller, job_id)

        def shown(given: JobDetail) -> Any:
            return pages.shown(given, reader.language)

        stream = job_events(core, feed, reader.caller, detail, shown)
        return StreamingResponse(stream, media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    @router.get("/jobs/{job_id}/images/{number}")
    async def image(request: Request, job_id: str, number: int) -> Response:
        reader = await who(request)
        name, data = await core.job_reads.image(reader.caller, job_id, number)
        return Response(data, media_type=media_type(name), headers={"Cache-Control": "private, max-age=3600"})

    def action(run: Callable[[Viewer, str], Awaitable[str]]) -> Callable[..., Awaitable[Response]]:
        async def handle(request: Request, job_id: str, csrf: Token) -> Response:
            reader = await who(request)
            check_form(reader, csrf)
            detail = await core.job_reads.job(reader.caller, job_id)
            return RedirectResponse(await run(reader, detail.job_id), status_code=303)

        return handle

    async def reroll(reader: Viewer, job_id: str) -> str:
        return f"/web/jobs/{(await core.reroll(reader.caller.actor, WEB_PLACE, job_id)).job_id}"

    async def variations(reader: Viewer, job_id: str) -> str:
        return f"/web/jobs/{(await core.variations(reader.caller.actor, WEB_PLACE, job_id, 0)).job_id}"

    async def delete(reader: Viewer, job_id: str) -> str:
        await core.delete(reader.caller.actor, job_id)
        return "/web/"

    async def cancel(reader: Viewer, job_id: str) -> str:
        await core.cancel(reader.caller.actor, job_id)
        return f"/web/jobs/{job_id}"

    for name, run in (("reroll", reroll), ("variations", variations), ("delete", delete), ("cancel", cancel)):
        router.add_api_route(f"/jobs/{{job_id}}/{name}", action(run), methods=["POST"], name=f"web-{name}")

    @router.get("/queue")
    async def queue(request: Request) -> Response:
        reader = await who(request)
        spots = await core.job_reads.everyone(reader.caller)
        return pages.render(request, "queue.html", reader.language, viewer=reader, spots=spots)

    @router.get("/static/{name}")
    async def static(name: str) -> Response:
        """The pages' own files by name, from one folder: no listing, no path outside it."""
        path = STATIC / name
        if path.parent != STATIC or path.suffix not in STATIC_TYPES or not path.is_file():
            raise UserError("api.not_found", path=f"/web/static/{name}")
        return Response(path.read_bytes(), media_type=STATIC_TYPES[path.suffix])

    return router
