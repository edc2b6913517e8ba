"""A community's moderation pages, for whoever signed in with a link that one of its moderators asked for
there (`/web` in the community): banned words, bans, the NSFW policy, limits, and the moderation log. Every
change goes through the same core calls as the chat's moderation commands, so the same roles are checked and
the same audit entries written."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from bots.core.facade import Core
from bots.errors import UserError
from bots.http.web.rendering import Pages
from bots.http.web.sessions import Viewer, check_form, viewer
from bots.moderation.policy import LIMIT_KEYS, NSFW_POLICIES, Moderator
from bots.parsing import parse_duration

LOG_SHOWN = 50
Change = Callable[[Moderator, Request], Awaitable[None]]


def moderation_router(core: Core, pages: Pages) -> APIRouter:
    router = APIRouter(prefix="/web/moderation", include_in_schema=False)
    moderation = core.moderation

    async def moderator_of(request: Request) -> tuple[Viewer, Moderator]:
        reader = await viewer(core, request)
        if reader.caller.moderator is None:
            raise UserError("web.not_a_moderator")
        return reader, reader.caller.moderator

    @router.get("")
    async def overview(request: Request, done: int = 0) -> Response:
        reader, moderator = await moderator_of(request)
        community = await moderation.community_of(moderator)
        words = await moderation.words(moderator)
        return pages.render(
            request,
            "moderation.html",
            reader.language,
            viewer=reader,
            community=community.name or community.platform_id,
            done=bool(done),
            words=words,
            policies=NSFW_POLICIES,
            nsfw=moderation.policy.nsfw_policy(community),
            limit_keys=LIMIT_KEYS,
            limits=moderation.limits_for(community),
            log=await moderation.log(moderator, LOG_SHOWN),
        )

    def change(name: str, run: Change) -> None:
        async def handle(request: Request) -> Response:
            reader, moderator = await moderator_of(request)
            form = await request.form(max_files=0, max_fields=10)
            check_form(reader, str(form.get("csrf", "")))
            await run(moderator, request)
            return RedirectResponse("/web/moderation?done=1", status_code=303)

        router.add_api_route(f"/{name}", handle, methods=["POST"], name=f"moderation-{name}")

    async def text(request: Request, name: str) -> str:
        return str((await request.form()).get(name, "")).strip()

    async def add_word(moderator: Moderator, request: Request) -> None:
        regex = await text(request, "regex") == "1"
        await moderation.add_word(moderator, await text(request, "word"), regex=regex)

    async def remove_word(moderator: Moderator, request: Request) -> None:
        await moderation.remove_word(moderator, await text(request, "word"))

    async def ban(moderator: Moderator, request: Request) -> None:
        typed = await text(request, "duration")
        length = parse_duration(typed) if typed else None
        if typed and length is None:
            raise UserError("moderation.bad_duration", value=typed)
        until = datetime.now(UTC) + length if length is not None else None
        reason = await text(request, "reason") or "-"
        await moderation.ban(moderator, await _user(request, text), until, reason, everywhere=False)

    async def unban(moderator: Moderator, request: Request) -> None:
        await moderation.unban(moderator, await _user(request, text), everywhere=False)

    async def nsfw(moderator: Moderator, request: Request) -> None:
        await moderation.set_nsfw(moderator, await text(request, "policy"))

    async def limits(moderator: Moderator, request: Request) -> None:
        changes: dict[str, int | None] = {}
        for key in LIMIT_KEYS:
            typed = await text(request, key)
            if typed and not typed.isdigit():
                raise UserError("web.moderation.not_a_number", value=typed)
            changes[key] = int(typed) if typed else None
        await moderation.set_limits(moderator, changes)

    for name, run in (
        ("words/add", add_word),
        ("words/remove", remove_word),
        ("bans/add", ban),
        ("bans/remove", unban),
        ("nsfw", nsfw),
        ("limits", limits),
    ):
        change(name, run)
    return router


async def _user(request: Request, text: Callable[[Request, str], Awaitable[str]]) -> str:
    """A member named by their platform id (as the chat commands take it, `@` and spaces dropped)."""
    user = (await text(request, "user")).lstrip("@")
    if not user:
        raise UserError("api.bad_request", field="user", detail="-")
    return user
