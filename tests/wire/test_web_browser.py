"""The web pages in a real headless Chromium (Debian's, driven by Playwright), signed in with the link the bot
sends through the real python-telegram-bot client and a fake Bot API, on a running core (tiny model): the
gallery, a prompt made and watched to its end, a moderator's banned word refused in the group next time, and
the moderation pages closed to a user who is not a moderator."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from core_stack import Launch, core_settings
from fake_telegram import FakeTelegram
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from bots.core.health import HealthCheck
from bots.environment import read_environment
from bots.http.adapter import HttpAdapter
from bots.kit.lifetime import Adapters
from bots.telegram.adapter import TelegramAdapter
from bots.texts import render

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ANN, BOB = 2001, 2002
LINK = re.compile(r"http://127\.0\.0\.1:\d+/web/login\?token=\S+")

if not Path(CHROMIUM).exists():
    if os.environ.get("CI") == "true":
        raise RuntimeError("CI needs Debian's chromium for the browser tests: .ci/run installs it")
    pytest.skip("no chromium here (apt install chromium)", allow_module_level=True)


@dataclass
class Site:
    fake: FakeTelegram
    adapter: HttpAdapter
    browser: Browser
    root: Path
    ann: dict[str, Any]
    bob: dict[str, Any]
    group: dict[str, Any]

    async def link(self, user: dict[str, Any], chat: dict[str, Any]) -> str:
        """The sign-in link the bot sends `user` for `/web` sent in `chat` (always in their private chat)."""
        seen = {match.group(0) for text in self.fake.texts(user["id"]) for match in LINK.finditer(text)}
        self.fake.text(user, chat, "/web")

        def new_link() -> str | None:
            links = [match.group(0) for text in self.fake.texts(user["id"]) for match in LINK.finditer(text)]
            return next((link for link in links if link not in seen), None)

        return str(await self.fake.wait_for(new_link, what="the link"))

    async def signed_in(self, link: str, name: str) -> Page:
        """A fresh browser profile of its own, signed in through `link`."""
        context: BrowserContext = await self.browser.new_context(locale="en-US")
        page = await context.new_page()
        await page.goto(link)
        await page.click("#sign-in")
        await expect(page.locator("h1").first).to_have_text(render("web.new.title", "en"))
        return page


@pytest.fixture
async def site(stack: Launch, tmp_path: Path) -> AsyncIterator[Site]:
    fake = FakeTelegram()
    await fake.start()
    telegram = {"api_base_url": fake.base_url, "file_base_url": fake.file_base_url, "group_messages_per_minute": 0}
    settings = core_settings(
        tmp_path, telegram=telegram, http={"enabled": True, "port": 0}, defaults={"width": 64, "height": 64}
    )
    core = await stack(settings)
    token = fake.token
    secret = read_environment(settings).telegram_webhook_secret
    bot = TelegramAdapter(core.core, settings.telegram, token, webhook_secret=secret)
    task = core.runtime.task
    http = HttpAdapter(core.core, settings.http, HealthCheck(core.db, lambda: task is not None))
    adapters = Adapters([bot, http])
    adapters.register()
    adapters.start()
    await fake.wait_for(lambda: fake.sent("getMe"), what="the bot to sign in")
    await http.ready.wait()
    group = fake.group()
    ann, bob = fake.user(ANN, "Ann", "en"), fake.user(BOB, "Bob", "en")
    fake.admin(group, ann)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield Site(fake, http, browser, tmp_path, ann, bob, group)
        finally:
            await browser.close()
    await adapters.stop_receiving()
    await core.stop()
    await adapters.close()
    await fake.stop()


async def test_sign_in_with_the_bots_link_see_the_gallery_then_make_an_image_and_watch_it_finish(site: Site) -> None:
    private = site.fake.private(site.ann)
    site.fake.text(site.ann, private, "a red cat --seed 5 --steps 2")
    await site.fake.wait_for(lambda: site.fake.images(ANN), what="the first image")
    page = await site.signed_in(await site.link(site.ann, private), "ann")
    cookie = next(c for c in await page.context.cookies() if c["name"] == "easel_session")
    assert (cookie["httpOnly"], cookie["sameSite"], cookie["path"]) == (True, "Lax", "/web")
    await expect(page.locator(".job .prompt")).to_have_text(["a red cat"])
    await expect(page.locator(".job img")).to_have_count(1)
    assert await page.locator(".job img").evaluate("image => image.naturalWidth") == 64

    await page.fill("#prompt", "a blue bird")
    await page.fill("input[name=steps]", "12")
    await page.click("#make")
    await expect(page).to_have_url(re.compile(r"/web/jobs/[0-9a-f]{32}$"))
    await expect(page.locator(".images img")).to_have_count(1, timeout=60_000)
    await expect(page.locator("#job")).to_have_attribute("data-state", "done")
    await expect(page.locator(".facts")).to_contain_text(render("state.done", "en"))
    await page.goto(f"http://127.0.0.1:{site.adapter.port}/web/")
    await expect(page.locator(".job .prompt")).to_have_text(["a blue bird", "a red cat"])

    await page.click("button[value=reroll] >> nth=0")
    await expect(page.locator(".images img")).to_have_count(1, timeout=60_000)
    await page.click("button[value=delete]")
    await expect(page.locator(".job .prompt")).to_have_count(2)


async def test_a_moderator_bans_a_word_on_the_web_and_the_group_refuses_it_next_time(site: Site) -> None:
    page = await site.signed_in(await site.link(site.ann, site.group), "ann")
    await page.click("text=" + render("web.nav.moderation", "en"))
    await expect(page.locator("h1")).to_have_text(render("web.moderation.title", "en", community="Artists"))
    await page.fill("#word", "dragon")
    await page.click("#add-word")
    await expect(page.locator("[role=status]")).to_have_text(render("web.saved", "en"))
    await expect(page.locator("#words code")).to_have_text(["dragon"])
    await expect(page.locator("table.log")).to_contain_text("banword.add")
    site.fake.text(site.bob, site.group, "/imagine a green dragon")
    refusal = render("moderation.blocked", "en")
    await site.fake.wait_for(lambda: refusal in site.fake.texts(site.group["id"]), what="the refusal")


async def test_a_user_who_is_not_a_moderator_cannot_open_the_moderation_pages(site: Site) -> None:
    page = await site.signed_in(await site.link(site.bob, site.group), "bob")
    await expect(page.locator("nav")).not_to_contain_text(render("web.nav.moderation", "en"))
    answer = await page.goto(f"http://127.0.0.1:{site.adapter.port}/web/moderation")
    assert answer is not None and answer.status == 403
    await expect(page.locator("[role=alert]")).to_have_text(render("web.not_a_moderator", "en"))
    answer = await page.context.request.post(
        f"http://127.0.0.1:{site.adapter.port}/web/moderation/words/add", form={"word": "cat", "csrf": "x"}
    )
    assert answer.status == 403
