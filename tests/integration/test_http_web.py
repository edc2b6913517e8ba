"""The web pages over HTTP with a real client (cookies kept as a browser keeps them), on SQLite and PostgreSQL:
sign-in links used once, the session cookie's flags, CSRF on every form, the rate limit on sign-in, images only
for their owner, the queue without others' prompts, and the moderation forms with their audit entries."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from http_server import ANN, Served, Start

from bots.core.types import Actor, Place
from bots.moderation.policy import Moderator, Role
from bots.texts import render

BOB = Actor("telegram", "bob", "Bob")
GROUP = Place("telegram", "-100", "-100", "Artists")


def shown(key: str, **values: Any) -> str:
    """A text as a page shows it: in English, escaped as HTML (Jinja2 writes an apostrophe as &#39;)."""
    return html.escape(render(key, "en", **values)).replace("&#x27;", "&#39;")


CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')


class Browser:
    """One reader's cookies, as a browser keeps them (an IP host's cookies too)."""

    def __init__(self, server: Served) -> None:
        self.server = server
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf = ""

    async def get(self, path: str) -> tuple[int, str]:
        async with self.session.get(self.server.url + path, allow_redirects=True) as answer:
            text = await answer.text() if answer.content_type.startswith("text/") else ""
            if found := CSRF.search(text):
                self.csrf = found.group(1)
            return answer.status, text

    async def post(self, path: str, **form: str) -> tuple[int, str, str]:
        """The status, the page, and where a redirect pointed (without following it)."""
        async with self.session.post(self.server.url + path, data=form, allow_redirects=False) as answer:
            return answer.status, await answer.text(), answer.headers.get("Location", "")

    async def sign_in(self, actor: Actor = ANN, place: Place | None = None, moderator: Moderator | None = None) -> str:
        link = await self.server.stack.core.access.login_link(actor, place or Place("telegram", "dm"), moderator)
        token = link.split("token=")[1]
        status, page = await self.get(link.removeprefix(self.server.url))
        assert status == 200 and 'id="sign-in"' in page
        status, _, location = await self.post("/web/login", token=token)
        assert (status, location) == (303, "/web/")
        await self.get("/web/")
        return token

    async def close(self) -> None:
        await self.session.close()


@pytest.fixture
async def browsers(served: Served) -> AsyncIterator[Callable[[], Browser]]:
    made: list[Browser] = []

    def new() -> Browser:
        made.append(Browser(served))
        return made[-1]

    yield new
    for browser in made:
        await browser.close()


async def test_a_link_signs_in_once_with_a_protected_cookie_and_sign_out_ends_it(
    served: Served, browsers: Callable[[], Browser]
) -> None:
    reader = browsers()
    assert (await reader.get("/web/"))[1].count('id="sign-in"') == 0  # sent to the sign-in page, no link
    token = await reader.sign_in()
    async with reader.session.post(served.url + "/web/login", data={"token": token}, allow_redirects=False) as again:
        assert again.status == 401 and shown("web.link_spent") in await again.text()
    link = await served.stack.core.access.login_link(ANN, Place("telegram", "dm"))
    async with aiohttp.ClientSession() as fresh:
        async with fresh.post(served.url + "/web/login", data={"token": link.split("token=")[1]}) as answer:
            cookie = answer.history[0].headers["Set-Cookie"] if answer.history else answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/web" in cookie and "Secure" not in cookie
    status, page = await reader.get("/web/")
    assert status == 200 and shown("web.gallery.empty") in page
    status, _, _ = await reader.post("/web/logout", csrf=reader.csrf)
    assert status == 200
    status, page = await reader.get("/web/")
    assert 'action="/web/login"' not in page and shown("web.sign_in.no_link") in page


async def test_every_form_needs_its_csrf_token(served: Served, browsers: Callable[[], Browser]) -> None:
    reader = browsers()
    await reader.sign_in()
    for path in ("/web/jobs", "/web/logout"):
        status, page, _ = await reader.post(path, csrf="forged", prompt="a cat")
        assert status == 403 and shown("web.expired_form") in page
    status, page, _ = await reader.post("/web/jobs", prompt="a cat")
    assert status == 403
    status, _, location = await reader.post("/web/jobs", csrf=reader.csrf, prompt="a cat", steps="2")
    assert status == 303 and location.startswith("/web/jobs/")
    job_id = location.rsplit("/", 1)[1]
    for action in ("reroll", "variations", "delete", "cancel"):
        status, _, _ = await reader.post(f"/web/jobs/{job_id}/{action}", csrf="forged")
        assert status == 403, action
    status, page, _ = await reader.post("/web/jobs", csrf=reader.csrf, prompt="a cat", steps="900")
    assert status == 400 and "--steps" in page


async def test_sign_in_attempts_are_limited_per_address(start: Start) -> None:
    async with start(http={"sign_in_attempts_per_minute": 2}) as server:
        async with aiohttp.ClientSession() as client:
            statuses = []
            for _ in range(3):
                async with client.post(server.url + "/web/login", data={"token": "guess"}) as answer:
                    statuses.append(answer.status)
            assert statuses == [401, 401, 429]


async def test_images_and_jobs_are_their_owners_alone_and_the_queue_hides_others_prompts(
    served: Served, browsers: Callable[[], Browser]
) -> None:
    ann, bob = browsers(), browsers()
    await ann.sign_in()
    await bob.sign_in(BOB)
    _, _, location = await ann.post("/web/jobs", csrf=ann.csrf, prompt="a secret garden")
    job_id = location.rsplit("/", 1)[1]
    await served.finished(await served.token(), job_id)
    assert (await ann.get(f"/web/jobs/{job_id}/images/1"))[0] == 200
    for path in (f"/web/jobs/{job_id}", f"/web/jobs/{job_id}/images/1"):
        status, page = await bob.get(path)
        assert status == 404 and "a secret garden" not in page
    slow = await served.stack.core.submit(ANN, Place("telegram", "dm"), _slow_ask())
    status, page = await bob.get("/web/queue")
    assert status == 200 and shown("web.queue.someone") in page and "slowly" not in page
    status, page = await ann.get("/web/queue")
    assert "slowly" in page and f"/web/jobs/{slow.job_id}" in page
    for path in ("/web/static/", "/web/static/..%2Fpages.py", "/web/static/style.css.map"):
        assert (await ann.get(path))[0] == 404
    assert (await ann.get("/web/static/live.js"))[0] == 200


async def test_moderation_forms_change_the_community_and_write_the_audit_log(
    served: Served, browsers: Callable[[], Browser]
) -> None:
    moderator = browsers()
    await moderator.sign_in(ANN, GROUP, Moderator("telegram", "ann", "-100", Role.ADMIN, "Ann"))
    status, page = await moderator.get("/web/moderation")
    assert status == 200 and shown("web.moderation.title", community="Artists") in page
    for path, form in (
        ("/web/moderation/words/add", {"word": "gore"}),
        ("/web/moderation/bans/add", {"user": "bob", "duration": "1d", "reason": "spam"}),
        ("/web/moderation/bans/remove", {"user": "bob"}),
        ("/web/moderation/nsfw", {"policy": "spoiler"}),
        ("/web/moderation/limits", {"images_per_day": "7", "max_steps": ""}),
        ("/web/moderation/words/remove", {"word": "gore"}),
    ):
        status, _, location = await moderator.post(path, csrf=moderator.csrf, **form)
        assert (status, location) == (303, "/web/moderation?done=1"), path
    status, page, _ = await moderator.post("/web/moderation/limits", csrf=moderator.csrf, images_per_day="many")
    assert status == 400 and shown("web.moderation.not_a_number", value="many") in page
    community = await served.stack.db.get_or_create_community("telegram", "-100")
    assert community.settings["nsfw"] == "spoiler" and community.settings["limits"] == {"images_per_day": 7}
    entries = await served.stack.db.moderation_log(community.id, limit=20)
    assert [entry.action for entry in reversed(entries)] == [
        "banword.add",
        "ban",
        "unban",
        "nsfw",
        "limits",
        "banword.remove",
    ]
    status, page = await moderator.get("/web/moderation")
    assert 'value="7"' in page and "banword.remove" in page
    user = browsers()
    await user.sign_in(BOB, GROUP, Moderator("telegram", "bob", "-100", Role.USER, "Bob"))
    status, page = await user.get("/web/moderation")
    assert status == 403 and shown("web.not_a_moderator") in page


def _slow_ask() -> Any:
    from generation.asks import Ask, Options

    return Ask("txt2img", "slowly", Options(steps=60, width=256, height=256))
