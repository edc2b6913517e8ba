"""The Discord adapter end to end: the real discord.py client against the fake Discord, the core and the tiny model."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import re
import signal
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import discord
import pytest
import yarl
from core_stack import Launch, Stack, core_settings
from discord import app_commands
from fake_discord import (
    ALL_PERMISSIONS,
    CHANNEL_ID,
    GUILD_ID,
    MEMBER_PERMISSIONS,
    MESSAGE_CONTENT_INTENT,
    FakeDiscord,
    FakeInteraction,
    FakeMessage,
    user,
)
from PIL import Image
from previewing import HeldAtPreview

from bots.cli import main
from bots.config import Settings
from bots.core.types import Actor, EventKind, JobEvent
from bots.discord import delivery as delivery_module
from bots.discord.adapter import DiscordAdapter
from bots.discord.commands import build_commands, served
from bots.discord.endpoints import point_at
from bots.discord.spellings import CAPABILITIES
from bots.discord.status import StatusBoard
from bots.environment import read_environment
from bots.errors import UserError
from bots.formatting import quota_text
from bots.kit.catalogue import check_served, commands_for
from bots.kit.lifetime import Adapters
from bots.moderation.policy import Role
from bots.parsing import parse_prompt
from bots.run import serve
from bots.texts import available_languages, languages_list, render
from generation.engine import Engine
from generation.models import KandinskyModels
from storage.records import MessageLink

TOKEN = "ODk5.fake-bot-token.for-wire-tests"
ALICE_ID = 1001
BOB_ID = 1002


def member(
    user_id: int, name: str, permissions: int = MEMBER_PERMISSIONS, roles: tuple[int, ...] = ()
) -> dict[str, Any]:
    """A member of the guild: by default neither an admin (no Manage Server) nor a moderator (no roles)."""
    return {
        "user": user(user_id, name),
        "roles": [str(role) for role in roles],
        "joined_at": "2026-01-01T00:00:00+00:00",
        "deaf": False,
        "mute": False,
        "permissions": str(permissions),
        "flags": 0,
    }


ALICE = member(ALICE_ID, "alice")
BOB = member(BOB_ID, "bob")


def png(size: tuple[int, int] = (64, 64), *, transparent: bool = False) -> bytes:
    image = Image.effect_noise(size, 64).convert("RGBA")
    if transparent:
        image.paste((0, 0, 0, 0), (16, 16, 48, 48))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@dataclass
class Bot:
    fake: FakeDiscord
    core: Stack
    adapter: DiscordAdapter
    lifetime: Adapters

    async def stop(self) -> None:
        await self.lifetime.stop_receiving()
        await self.lifetime.close()

    def actor(self, user_id: int) -> Actor:
        return Actor("discord", str(user_id))

    async def images_used(self, user_id: int) -> int:
        return (await self.core.core.quota(self.actor(user_id))).images

    async def result_of(self, interaction: FakeInteraction) -> FakeMessage:
        """The interaction's original response, once it shows a result and is linked to its job."""
        message = await self.fake.wait_for(lambda: _with_files(self.fake.original(interaction)))
        await self.link_of(message)
        return message

    async def link_of(self, message: FakeMessage) -> MessageLink:
        """The job a result message shows: linked just after the message is posted, so polled."""
        for _ in range(250):
            link = await self.core.core.job_of_message("discord", str(message.channel_id), str(message.id))
            if link is not None:
                return link
            await asyncio.sleep(0.02)
        raise AssertionError(f"message {message.id} is not linked to a job")

    async def ephemeral_reply(self, interaction: FakeInteraction) -> str:
        """The ephemeral reply to an interaction (a refusal, or a lookup's answer)."""
        message = await self.fake.wait_for(
            lambda: next((m for m in self.fake.replies_to(interaction) if m.ephemeral and m.content), None),
            what=f"an ephemeral reply to {interaction.payload['data']}",
        )
        return message.content


def buttons(message: FakeMessage) -> list[str]:
    """The actions of a message's buttons, without the job id they carry."""
    return [re.sub(r"^easel:|:[0-9a-f]{32}", "", custom_id) for custom_id in message.custom_ids()]


def _with_files(message: FakeMessage | None) -> FakeMessage | None:
    return message if message is not None and message.attachments and not message.deleted else None


@pytest.fixture(autouse=True)
def _endpoints_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    """The adapter points discord.py's class attributes at the fake; each test gets the originals back."""
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    gateway = discord.gateway.DiscordWebSocket
    monkeypatch.setattr(gateway, "DEFAULT_GATEWAY", gateway.DEFAULT_GATEWAY)


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    server = FakeDiscord()
    await server.start()
    yield server
    await server.close()


StartBot = Callable[..., Coroutine[Any, Any, Bot]]


@pytest.fixture
async def start_bot(fake: FakeDiscord, stack: Launch, tmp_path: Path) -> AsyncIterator[StartBot]:
    """`await start_bot(core=None, generate=None, queue=None, **discord_settings)`: the adapter, connected to the
    fake, over `core` or over a new core with these settings."""
    bots: list[Bot] = []

    async def start(core: Stack | None = None, generate: Any = None, **overrides: Any) -> Bot:
        if core is None:
            core = await stack(settings_for(fake, tmp_path, **overrides), generate)
        adapter = DiscordAdapter(core.core, core.settings, TOKEN, guild_ready_timeout=0.05)
        lifetime = Adapters([adapter])
        lifetime.register()
        lifetime.start()
        bot = Bot(fake, core, adapter, lifetime)
        bots.append(bot)
        await fake.wait_for(adapter.delivery.ready.is_set)
        return bot

    yield start
    for bot in bots:
        await bot.stop()


def settings_for(fake: FakeDiscord, root: Path, queue: dict[str, Any] | None = None, **discord: Any) -> Settings:
    """Tiny-model settings with storage under `root` and Discord pointed at the fake."""
    values = {"api_base_url": fake.api_base_url, "gateway_url": fake.gateway_url, "progress_interval_seconds": 0.0}
    return core_settings(root, discord={**values, **discord}, queue=queue or {})


async def test_imagine_defers_at_once_shows_progress_and_answers_with_the_images(
    start_bot: StartBot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bot = await start_bot()
    fake = bot.fake
    interaction = await fake.command("imagine", {"prompt": "a red cat", "count": 2, "seed": 7}, member=ALICE)

    result = await bot.result_of(interaction)

    assert interaction.response_type == 5  # deferred, publicly
    assert len(result.attachments) == 2
    assert all(Image.open(io.BytesIO(fake.data_of(item))).size == (64, 64) for item in result.attachments)
    assert "a red cat" in result.content and "seed 7, 8" in result.content
    assert result.pings() == set()
    assert result.edits >= 2  # queued, then the result
    assert (await bot.link_of(result)).job_id[:8] in result.content
    assert buttons(result) == ["reroll", "vary:0", "vary:1", "edit", "delete"]
    assert await bot.images_used(ALICE_ID) == 2
    assert "logging in using static token" in caplog.text and TOKEN not in caplog.text, "the token is never logged"


async def test_easel_run_serves_discord_until_it_is_signalled(
    fake: FakeDiscord, tmp_path: Path, tiny_models: KandinskyModels, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    environ = {"DISCORD_BOT_TOKEN": TOKEN}
    generate = Engine(tiny_models).generate
    settings = settings_for(fake, tmp_path)
    service = asyncio.create_task(
        serve(settings, read_environment(settings, environ), console=False, generate=generate)
    )
    await fake.wait_for(lambda: fake.identifies, what="the client connecting")

    interaction = await fake.command("imagine", {"prompt": "a served cat"}, member=ALICE)
    result = await fake.wait_for(lambda: _with_files(fake.original(interaction)))
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.wait_for(service, timeout=30)

    assert "a served cat" in result.content
    assert "discord adapter started" in caplog.text and "stopped" in caplog.text
    assert TOKEN not in caplog.text


async def test_the_endpoints_discord_py_offers_no_setting_for_still_exist_and_follow_the_settings(
    fake: FakeDiscord, tmp_path: Path
) -> None:
    """A discord.py upgrade that drops these would make the adapter talk to discord.com: fail here instead."""
    assert isinstance(discord.http.Route.BASE, str)
    assert isinstance(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY, yarl.URL)
    point_at(settings_for(fake, tmp_path).discord)
    assert discord.http.Route("GET", "/users/@me").url == f"{fake.api_base_url}/users/@me"
    assert str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY) == fake.gateway_url


async def test_pointing_discord_py_elsewhere_fails_loudly_once_it_lacks_the_attribute(
    fake: FakeDiscord, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY")

    with pytest.raises(RuntimeError, match="DiscordWebSocket.DEFAULT_GATEWAY"):
        point_at(settings_for(fake, tmp_path).discord)


async def test_options_reach_the_core_and_bad_input_gets_an_ephemeral_reply_with_nothing_queued(
    start_bot: StartBot,
) -> None:
    bot = await start_bot(max_download_mb=1.0)
    fake = bot.fake
    picture = fake.attachment("cat.png", png(), "image/png")
    refused = {
        "prompt": await fake.command("imagine", {"prompt": "   "}, member=ALICE),
        "steps": await fake.command("imagine", {"prompt": "a cat", "steps": 1000}, member=ALICE),
        "count": await fake.command("imagine", {"prompt": "a cat", "count": 9}, member=ALICE),
        "--size": await fake.command("imagine", {"prompt": "a cat --size big"}, member=ALICE),
        "got 'huge'": await fake.command("imagine", {"prompt": "a cat", "size": "huge"}, member=ALICE),
        "not an image": await fake.command(
            "edit",
            {"prompt": "blue"},
            member=ALICE,
            attachments={"image": fake.attachment("a.txt", b"hi", "text/plain")},
        ),
        "at most 1 MB": await fake.command(
            "edit",
            {"prompt": "blue"},
            member=ALICE,
            attachments={"image": fake.attachment("huge.png", png(), "image/png", size=200 * 1024 * 1024)},
        ),
        "damaged": await fake.command(
            "edit",
            {"prompt": "blue"},
            member=ALICE,
            attachments={"image": fake.attachment("broken.png", png()[:2000], "image/png")},
        ),
        "region": await fake.command(
            "inpaint", {"prompt": "a hat", "region": "left"}, member=ALICE, attachments={"image": picture}
        ),
        "at least 2 images; this one has 1": await fake.command(
            "mix", {"prompt": "cats"}, member=ALICE, attachments={"image1": picture}
        ),
        "--weights needs numbers": await fake.command(
            "mix", {"weights": "a lot"}, member=ALICE, attachments={"image1": picture, "image2": picture}
        ),
        "attach_files": await fake.command(
            "imagine", {"prompt": "a cat"}, member=ALICE, app_permissions=ALL_PERMISSIONS & ~(1 << 15)
        ),
    }

    for expected, interaction in refused.items():
        reply = await bot.ephemeral_reply(interaction)
        assert expected in reply, (expected, reply)
        public = [m for m in fake.replies_to(interaction) if not m.ephemeral and not m.deleted]
        assert not public, "a refusal is seen only by the one who asked"
    declared_only = [
        refused[name].payload["data"]["resolved"]["attachments"] for name in ("not an image", "at most 1 MB")
    ]
    assert not {key for resolved in declared_only for key in resolved} & set(fake.cdn_fetches)
    assert await bot.images_used(ALICE_ID) == 0
    assert await bot.core.core.history(bot.actor(ALICE_ID)) == []
    assert await bot.core.core.queue(bot.actor(ALICE_ID)) == []

    accepted = await fake.command(
        "imagine",
        {"prompt": "a cat --prior-steps 3", "negative": "dogs", "size": "64x64", "steps": 3, "guidance": 5.5},
        member=ALICE,
    )
    await bot.result_of(accepted)
    (job,) = await bot.core.core.history(bot.actor(ALICE_ID))
    stored = await bot.core.db.get_job(job.job_id)
    assert stored is not None
    chosen = {"steps": 3, "prior_steps": 3, "guidance_scale": 5.5, "negative_prompt": "dogs", "width": 64}
    assert {key: stored.parameters[key] for key in chosen} == chosen


async def test_edit_inpaint_and_mix_take_attachments(start_bot: StartBot) -> None:
    bot = await start_bot()
    fake = bot.fake
    picture = fake.attachment("cat.png", png((96, 64)), "image/png")
    other = fake.attachment("dog.png", png((64, 64)), "image/png")
    holed = fake.attachment("hole.png", png(transparent=True), "image/png")
    interactions = [
        await fake.command(
            "edit", {"prompt": "in blue", "strength": 0.6}, member=ALICE, attachments={"image": picture}
        ),
        await fake.command("inpaint", {"prompt": "a hat"}, member=ALICE, attachments={"image": holed}),
        await fake.command(
            "inpaint", {"prompt": "a hat", "region": "10,10,50,50"}, member=ALICE, attachments={"image": picture}
        ),
        await fake.command("inpaint", {"prompt": "a hat"}, member=ALICE, attachments={"image": picture, "mask": holed}),
        await fake.command(
            "mix",
            {"prompt": "sunset", "weights": "0.5, 0.3, 0.2"},
            member=ALICE,
            attachments={"image1": picture, "image2": other},
        ),
    ]

    for interaction in interactions:
        await bot.result_of(interaction)

    jobs = await bot.core.core.history(bot.actor(ALICE_ID))
    assert sorted(job.operation for job in jobs) == ["img2img", "inpaint", "inpaint", "inpaint", "mix"]
    mix = await bot.core.db.get_job(next(job.job_id for job in jobs if job.operation == "mix"))
    assert mix is not None and mix.parameters["mix_weights"] == [0.5, 0.3, 0.2]
    assert mix.parameters["mix_texts"][2] == "sunset"


async def test_buttons_reroll_vary_edit_and_delete_by_job_id(start_bot: StartBot) -> None:
    bot = await start_bot()
    fake = bot.fake
    first = await bot.result_of(await fake.command("imagine", {"prompt": "a red cat", "seed": 5}, member=ALICE))
    job_id = first.custom_ids()[0].split(":")[2]

    rerolled = await bot.result_of(await fake.press(first, f"easel:reroll:{job_id}", member=BOB))
    varied = await bot.result_of(await fake.press(first, f"easel:vary:{job_id}:0", member=ALICE))
    opened = await fake.press(first, f"easel:edit:{job_id}", member=ALICE)
    await fake.wait_for(lambda: opened.modal)
    edited = await bot.result_of(await fake.submit_modal(opened, ["now in blue"], member=ALICE))

    assert "a red cat" in rerolled.content and not re.search(r"seed 5\b", rerolled.content)
    assert await bot.images_used(BOB_ID) == 1, "a reroll is the new job of whoever pressed it"
    assert "now in blue" in edited.content
    assert sorted(job.operation for job in await bot.core.core.history(bot.actor(ALICE_ID))) == [
        "img2img",
        "img2img",
        "txt2img",
    ]
    assert varied.attachments

    not_yours = await fake.press(first, f"easel:delete:{job_id}", member=BOB)
    assert "belongs to someone else" in await bot.ephemeral_reply(not_yours)
    assert not first.deleted
    deleted = await fake.press(first, f"easel:delete:{job_id}", member=ALICE)
    assert "Deleted job" in await bot.ephemeral_reply(deleted)
    assert first.deleted

    two = await bot.result_of(await fake.command("imagine", {"prompt": "two dogs", "count": 2}, member=ALICE))
    two_id = two.custom_ids()[0].split(":")[2]
    second_image = await bot.result_of(await fake.press(two, f"easel:vary:{two_id}:1", member=ALICE))
    assert "two dogs" in second_image.content
    form = await fake.press(two, f"easel:edit:{two_id}", member=ALICE)
    await fake.wait_for(lambda: form.modal)
    assert "no image 3" in await bot.ephemeral_reply(await fake.submit_modal(form, ["hats", "3"], member=ALICE))
    form = await fake.press(two, f"easel:edit:{two_id}", member=ALICE)
    await fake.wait_for(lambda: form.modal)
    not_a_number = await bot.ephemeral_reply(await fake.submit_modal(form, ["hats", "x"], member=ALICE))
    assert "A number from 1 to 2; got 'x'" in not_a_number
    form = await fake.press(two, f"easel:edit:{two_id}", member=ALICE)
    await fake.wait_for(lambda: form.modal)
    assert "hats" in (await bot.result_of(await fake.submit_modal(form, ["hats", "2"], member=ALICE))).content


def gated(engine: Engine, gate: threading.Event) -> Any:
    """The tiny engine, held at 50% until `gate` opens: a job that stays running while the test looks at it."""

    def generate(batch: Any, on_progress: Any, should_cancel: Any) -> Any:
        if not gate.is_set():
            on_progress(0.5)
        gate.wait(30)
        return engine.generate(batch, on_progress, should_cancel)

    return generate


async def test_a_stop_leaves_the_gateway_then_delivers_the_running_job_through_rest_then_closes(
    start_bot: StartBot, tiny_models: KandinskyModels
) -> None:
    gate = threading.Event()
    bot = await start_bot(generate=gated(Engine(tiny_models), gate))
    fake = bot.fake
    interaction = await fake.command("imagine", {"prompt": "a last cat"}, member=ALICE)
    await fake.wait_for(lambda: (m := fake.original(interaction)) and m.content == "Drawing your image… 50%")

    await bot.lifetime.stop_receiving()
    await fake.wait_for(lambda: not fake.connected, what="the client to leave the gateway")
    gate.set()
    await bot.core.stop()  # the batch finishes and is delivered
    result = fake.original(interaction)
    assert result is not None and len(result.attachments) == 1 and "a last cat" in result.content
    await bot.lifetime.close()
    assert bot.adapter.client is not None and bot.adapter.client.is_closed()


async def test_cancel_queue_quota_and_history(start_bot: StartBot, tiny_models: KandinskyModels) -> None:
    gate = threading.Event()
    bot = await start_bot(generate=gated(Engine(tiny_models), gate), queue={"max_batch_images": 1})
    fake = bot.fake
    running = await fake.command("imagine", {"prompt": "first"}, member=ALICE)
    await fake.wait_for(lambda: (m := fake.original(running)) and m.content == "Drawing your image… 50%")
    waiting = await fake.command("imagine", {"prompt": "second"}, member=ALICE)
    status = await fake.wait_for(lambda: (m := fake.original(waiting)) and m.content.startswith("Queued") and m)
    assert buttons(status) == ["cancel"]

    queue = await bot.ephemeral_reply(await fake.command("queue", member=ALICE))
    assert "drawing now · first" in queue and "number 1 in line" in queue and "second" in queue
    assert "someone else" in await bot.ephemeral_reply(await fake.press(status, status.custom_ids()[0], member=BOB))
    removed = await bot.ephemeral_reply(await fake.press(status, status.custom_ids()[0], member=ALICE))
    assert "removed from the queue" in removed
    await fake.wait_for(lambda: "was cancelled" in status.content and not status.components)

    stopping = await bot.ephemeral_reply(await fake.command("cancel", member=ALICE))
    assert "will stop at its next step" in stopping
    gate.set()
    first = fake.original(running)
    assert first is not None
    await fake.wait_for(lambda: "was cancelled" in first.content)

    quota = await bot.ephemeral_reply(await fake.command("quota", member=ALICE))
    assert "made 0 of 100 images" in quota
    history = await bot.ephemeral_reply(await fake.command("history", member=ALICE))
    assert history.count("cancelled") == 2
    nothing = await bot.ephemeral_reply(await fake.command("cancel", {"job": "zzzz"}, member=ALICE))
    assert "There is no job zzzz" in nothing


async def test_a_live_preview_is_the_status_messages_attachment_until_the_result_or_the_ending(
    start_bot: StartBot, held_at_preview: HeldAtPreview
) -> None:
    bot = await start_bot(generate=held_at_preview)
    fake = bot.fake
    drawing = await fake.command("imagine", {"prompt": "a red cat", "steps": 4}, member=ALICE)
    status = await fake.wait_for(lambda: _with_files(fake.original(drawing)), what="a preview")
    [preview] = status.attachments
    assert preview["filename"] == "preview.jpg" and "%" in status.content and buttons(status) == ["cancel"]
    assert Image.open(io.BytesIO(fake.data_of(preview))).size == (32, 32)
    held_at_preview.gates[0].set()
    await fake.wait_for(lambda: status.attachments[0]["filename"] != "preview.jpg", what="the result")
    assert [item["filename"] for item in status.attachments] == [status.attachments[0]["filename"]]
    assert "a red cat" in status.content and buttons(status)[0] == "reroll"

    stopped = await fake.command("imagine", {"prompt": "a blue dog", "steps": 4}, member=ALICE)
    second = await fake.wait_for(lambda: _with_files(fake.original(stopped)), what="the second preview")
    assert "will stop at its next step" in await bot.ephemeral_reply(await fake.command("cancel", member=ALICE))
    await fake.wait_for(lambda: "was cancelled" in second.content, what="the ending")
    assert second.attachments == [] and second.components == []


async def test_replying_to_a_result_or_using_the_menu_edits_it(start_bot: StartBot) -> None:
    bot = await start_bot()
    fake = bot.fake
    result = await bot.result_of(await fake.command("imagine", {"prompt": "a red cat"}, member=ALICE))
    chatter = await fake.say("nice", member=BOB)
    ignored = await fake.say("what is this", member=BOB, reply_to=chatter)
    asked = await fake.say("now in blue --strength 0.6", member=BOB, reply_to=result)

    answer = await fake.wait_for(lambda: next((m for m in fake.results() if m.reference == asked.id), None), timeout=15)
    assert "now in blue" in answer.content
    assert not any(m.reference == ignored.id for m in fake.messages.values())
    link = await bot.link_of(answer)
    (bob_job,) = await bot.core.core.history(bot.actor(BOB_ID))
    assert link.job_id == bob_job.job_id and bob_job.operation == "img2img"

    menu = await fake.message_command("Edit image", result, member=ALICE)
    await fake.wait_for(lambda: menu.modal)
    assert "in green" in (await bot.result_of(await fake.submit_modal(menu, ["in green"], member=ALICE))).content
    wrong = await fake.message_command("Edit image", chatter, member=ALICE)
    await fake.wait_for(lambda: wrong.modal)
    assert "not one of my images" in await bot.ephemeral_reply(await fake.submit_modal(wrong, ["x"], member=ALICE))


async def test_a_refused_reply_is_answered_in_the_language_easel_knows_for_its_author(start_bot: StartBot) -> None:
    """A message says no language: the one stored for its author wins, else the server's."""
    bot = await start_bot()
    fake = bot.fake
    result = await bot.result_of(await fake.command("imagine", {"prompt": "a red cat"}, member=ALICE))
    await bot.ephemeral_reply(await fake.command("quota", member=BOB, locale="ru"))
    text = "in blue --bogus 3"
    with pytest.raises(UserError) as bad:
        parse_prompt(text)

    async def refusal_of(asked: FakeMessage) -> str:
        answer = await fake.wait_for(
            lambda: next(
                (m for m in fake.messages.values() if m.reference == asked.id and "--bogus" in m.content), None
            )
        )
        return answer.content

    assert await refusal_of(await fake.say(text, member=BOB, reply_to=result)) == render(
        bad.value.key, "ru", **bad.value.values
    )
    await fake.create_guild(GUILD_ID, preferred_locale="de")
    await fake.wait_for(lambda: bot.adapter.client and bot.adapter.client.get_guild(GUILD_ID))
    newcomer = member(1009, "nina")
    assert await refusal_of(await fake.say(text, member=newcomer, reply_to=result)) == render(
        bad.value.key, "de", **bad.value.values
    )
    assert await bot.core.core.history(bot.actor(BOB_ID)) == []
    assert await bot.core.core.history(bot.actor(1009)) == []


async def test_settings_show_save_and_reset_the_defaults_that_later_requests_use(start_bot: StartBot) -> None:
    bot = await start_bot()
    fake = bot.fake

    async def settings(options: dict[str, Any] | None = None, locale: str = "en-US") -> str:
        return await bot.ephemeral_reply(await fake.command("settings", options, member=ALICE, locale=locale))

    assert await settings() == "You have no defaults of your own; requests use the bot's."
    saved = await settings({"size": "64x64", "steps": 3, "guidance": 5.5, "negative": "dogs"})
    assert saved == "Saved. Your defaults: --guidance 5.5, --height 64, --neg dogs, --steps 3, --width 64."
    assert await settings() == "Your defaults: --guidance 5.5, --height 64, --neg dogs, --steps 3, --width 64."
    assert "steps" in await settings({"steps": 1000})
    assert "got 'huge'" in await settings({"size": "huge"})

    await bot.result_of(await fake.command("imagine", {"prompt": "a cat"}, member=ALICE))
    (job,) = await bot.core.core.history(bot.actor(ALICE_ID))
    stored = await bot.core.db.get_job(job.job_id)
    assert stored is not None
    assert (stored.parameters["steps"], stored.parameters["negative_prompt"]) == (3, "dogs")

    assert await settings({"reset": True}, locale="ru") == render("settings.reset", "ru")
    assert await settings() == "You have no defaults of your own; requests use the bot's."
    assert await settings({"reset": True, "count": 2}) == "Saved. Your defaults: --count 2."


async def test_help_lists_the_commands_everyone_may_use_in_the_users_language(start_bot: StartBot) -> None:
    bot = await start_bot()
    fake = bot.fake

    shown = await bot.ephemeral_reply(await fake.command("help", member=ALICE))
    russian = await bot.ephemeral_reply(await fake.command("help", member=ALICE, locale="ru"))

    commands = (
        "imagine",
        "edit",
        "inpaint",
        "mix",
        "history",
        "queue",
        "quota",
        "cancel",
        "settings",
        "language",
        "help",
    )
    for name in commands:
        assert f"**/{name}** — {render(f'discord.command.{name}')}" in shown
        assert f"**/{name}** — {render(f'discord.command.{name}', 'ru')}" in russian
    assert "/mod" not in shown
    assert [m.ephemeral for m in fake.messages.values() if m.author.get("bot")] == [True, True]


async def test_language_sets_the_language_of_every_later_answer_until_auto_follows_discord_again(
    start_bot: StartBot,
) -> None:
    bot = await start_bot()
    fake = bot.fake

    async def ask(command: str, value: str | None = None, locale: str = "en-US") -> str:
        options = {"language": value} if value is not None else None
        return await bot.ephemeral_reply(await fake.command(command, options, member=ALICE, locale=locale))

    everyone = languages_list()
    assert await ask("language") == render("language.current_platform", "en", name="English", languages=everyone)
    assert await ask("language", "ja") == render("language.chosen", "ja", name="日本語")
    quota = render("quota.status", "ja", images=0, images_limit=100, seconds=0, seconds_limit=1800)
    assert await ask("quota") == quota
    assert await ask("language") == render("language.current_chosen", "ja", name="日本語", languages=everyone)
    first = await bot.result_of(await fake.command("imagine", {"prompt": "a red cat"}, member=ALICE))
    opened = await fake.press(first, f"easel:edit:{first.custom_ids()[0].split(':')[2]}", member=ALICE)
    await fake.wait_for(lambda: opened.modal)
    assert opened.modal is not None and opened.modal["title"] == render("discord.modal.title", "ja")
    assert await ask("language", "auto", locale="ru") == render("language.following", "ru", name="русский")
    assert await ask("quota", locale="ru") == quota_text(await bot.core.core.quota(bot.actor(ALICE_ID)), "ru")


def test_the_language_option_offers_every_catalog_by_its_own_name_and_auto(tmp_path: Path) -> None:
    (language,) = [command for command in build_commands(core_settings(tmp_path)) if command.name == "language"]
    assert isinstance(language, app_commands.Command)
    choices = {choice.value: choice.name for choice in language.parameters[0].choices}
    assert set(choices) == {"auto", *available_languages()} and len(choices) <= 25
    assert choices["ja"] == "日本語" and choices["ar"] == "العربية"


def test_the_commands_are_the_catalogues_and_a_missing_one_fails_the_build(tmp_path: Path) -> None:
    commands = build_commands(core_settings(tmp_path))
    assert set(served(commands)) == {command.name for command in commands_for(CAPABILITIES)}

    with pytest.raises(RuntimeError, match=r"missing \['history'\]"):
        check_served("discord", CAPABILITIES, served([command for command in commands if command.name != "history"]))


async def test_without_the_message_content_intent_the_bot_connects_without_it(
    fake: FakeDiscord, start_bot: StartBot
) -> None:
    fake.refuse_message_content = True
    bot = await start_bot()

    assert [bool(intents & MESSAGE_CONTENT_INTENT) for intents in fake.identifies] == [True, False]
    await bot.result_of(await fake.command("imagine", {"prompt": "a cat"}, member=ALICE))


async def test_a_result_after_the_token_expired_is_posted_in_the_channel_with_a_mention(start_bot: StartBot) -> None:
    bot = await start_bot()
    fake = bot.fake
    prompt = f"a slow cat @everyone <@{BOB_ID}>"
    late = await fake.command("imagine", {"prompt": prompt}, member=ALICE, age=timedelta(minutes=16))

    posted = await fake.wait_for(lambda: fake.results())
    (message,) = posted
    assert message.content.startswith(f"<@{ALICE_ID}> {prompt}")
    assert message.pings() == {str(ALICE_ID)}, "only the owner is notified, whatever the prompt says"
    assert message.interaction_id is None and buttons(message)[0] == "reroll"
    assert (await bot.link_of(message)).job_id[:8] in message.content
    original = fake.original(late)
    assert original is not None and original.loading and original.edits == 0, "an expired token cannot edit it"
    await fake.wait_for(lambda: original.deleted, what="the stale deferred response removed through the channel")


async def test_a_result_over_the_upload_limit_is_re_encoded_to_fit(start_bot: StartBot) -> None:
    bot = await start_bot()
    fake = bot.fake
    limit = 1500
    interaction = await fake.command("imagine", {"prompt": "a cat"}, member=ALICE, attachment_size_limit=limit)

    (attachment,) = (await bot.result_of(interaction)).attachments
    (job,) = await bot.core.core.history(bot.actor(ALICE_ID))
    assert job.files[0].stat().st_size > limit, "the original is kept on disk as it was"
    assert attachment["filename"].endswith(".webp") and attachment["size"] <= limit
    assert Image.open(io.BytesIO(fake.data_of(attachment))).format == "WEBP"


async def test_rate_limited_status_edits_are_retried(start_bot: StartBot) -> None:
    bot = await start_bot()
    fake = bot.fake
    fake.rate_limited_edits = 2

    result = await bot.result_of(await fake.command("imagine", {"prompt": "a cat"}, member=ALICE))

    assert fake.rate_limited_edits == 0
    assert len(result.attachments) == 1 and len(fake.results()) == 1


async def test_two_users_at_once_each_get_their_own_result(start_bot: StartBot) -> None:
    bot = await start_bot()
    fake = bot.fake
    alice, bob = await asyncio.gather(
        fake.command("imagine", {"prompt": "alice's cat"}, member=ALICE),
        fake.command("imagine", {"prompt": "bob's dog"}, member=BOB),
    )

    for interaction, user_id, prompt in ((alice, ALICE_ID, "alice's cat"), (bob, BOB_ID, "bob's dog")):
        result = await bot.result_of(interaction)
        (job,) = await bot.core.core.history(bot.actor(user_id))
        assert job.prompt == prompt and job.job_id[:8] in result.content and prompt in result.content
    assert len(fake.results()) == 2


async def test_a_result_announced_again_is_not_posted_again(start_bot: StartBot) -> None:
    """The core may announce a final event twice (a redelivery racing a job that just finished)."""
    bot = await start_bot()
    fake = bot.fake
    result = await bot.result_of(await fake.command("imagine", {"prompt": "a cat"}, member=ALICE))
    (job,) = await bot.core.core.history(bot.actor(ALICE_ID))
    again = JobEvent(
        EventKind.DONE, job.job_id, "discord", str(CHANNEL_ID), str(ALICE_ID), None, job.prompt, files=job.files
    )

    await asyncio.gather(bot.adapter.delivery.on_event(again), bot.adapter.delivery.on_event(again))

    assert fake.results() == [result]


async def test_a_result_with_no_connected_client_is_left_for_a_later_delivery(
    stack: Launch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(delivery_module, "READY_TIMEOUT_SECONDS", 0.0)
    core = await stack()
    delivery = delivery_module.Delivery(core.core, StatusBoard(0.0))
    done = JobEvent(
        EventKind.DONE, "0" * 32, "discord", str(CHANNEL_ID), str(ALICE_ID), None, "a cat", files=(tmp_path,)
    )

    with pytest.raises(delivery_module.ClientClosed, match="not running"):
        await delivery.on_event(done)
    delivery.attach(discord.Client(intents=discord.Intents.none()))
    with pytest.raises(delivery_module.ClientClosed, match="not connected"):
        await delivery.on_event(done)


async def test_a_result_announced_again_by_a_restarted_process_is_not_posted_again(start_bot: StartBot) -> None:
    """A new process has no status message to edit (the interaction token was the old one's); the result's link
    shows it went, so nothing is posted."""
    bot = await start_bot()
    fake = bot.fake
    link = await bot.link_of(await bot.result_of(await fake.command("imagine", {"prompt": "a cat"}, member=ALICE)))
    files = tuple(bot.core.files.path_of(output.path) for output in await bot.core.db.outputs_of(link.job_id))
    restarted = delivery_module.Delivery(bot.core.core, StatusBoard(0.0))
    assert bot.adapter.client is not None
    restarted.attach(bot.adapter.client)
    restarted.ready.set()
    done = JobEvent(EventKind.DONE, link.job_id, "discord", str(CHANNEL_ID), str(ALICE_ID), None, "a cat", files=files)

    await restarted.on_event(done)
    assert len(fake.results()) == 1
    assert ("POST", f"/channels/{CHANNEL_ID}/messages") not in fake.requests


async def test_an_ending_shown_before_a_restart_is_not_posted_again(
    start_bot: StartBot, tiny_models: KandinskyModels
) -> None:
    """As a kill after the ending was shown and before its delivery was recorded leaves it: announced again to a
    process with no status message to edit. The ending's link shows it went, however late the restart."""
    gate = threading.Event()
    bot = await start_bot(generate=gated(Engine(tiny_models), gate))
    fake = bot.fake
    interaction = await fake.command("imagine", {"prompt": "a storm"}, member=ALICE)
    status = await fake.wait_for(lambda: (m := fake.original(interaction)) and m.content.endswith("50%") and m)
    await bot.ephemeral_reply(await fake.press(status, status.custom_ids()[0], member=ALICE))
    gate.set()
    await fake.wait_for(lambda: "was cancelled" in status.content)
    [job] = await bot.core.core.history(bot.actor(ALICE_ID))
    assert await settled(bot.core), "the first delivery is recorded (its link came before)"
    restarted = delivery_module.Delivery(bot.core.core, StatusBoard(0.0))
    assert bot.adapter.client is not None
    restarted.attach(bot.adapter.client)
    restarted.ready.set()
    fake.nonce_window = 0.0  # a restart later than Discord keeps a nonce

    ending = JobEvent(EventKind.CANCELLED, job.job_id, "discord", str(CHANNEL_ID), str(ALICE_ID), None, "a storm")
    await restarted.on_event(ending)
    assert ("POST", f"/channels/{CHANNEL_ID}/messages") not in fake.requests
    assert [m for m in fake.visible() if "was cancelled" in m.content] == [status]


async def test_a_channel_that_refuses_the_bot_loses_nothing(start_bot: StartBot) -> None:
    bot = await start_bot()
    fake = bot.fake
    result = await bot.result_of(await fake.command("imagine", {"prompt": "a cat"}, member=ALICE))
    fake.forbidden_channels.add(CHANNEL_ID)

    await fake.say("in blue", member=ALICE, reply_to=result)
    await fake.wait_for(lambda: ("POST", f"/channels/{CHANNEL_ID}/messages") in fake.requests)
    await fake.command("imagine", {"prompt": "a late cat"}, member=ALICE, age=timedelta(minutes=16))
    await fake.wait_for(lambda: fake.requests.count(("POST", f"/channels/{CHANNEL_ID}/messages")) >= 2)

    jobs = await bot.core.core.history(bot.actor(ALICE_ID))
    assert [job.prompt for job in jobs] == ["a late cat", "a cat"], (
        "the reply that could not be answered queued nothing"
    )
    assert await bot.images_used(ALICE_ID) == 2
    fake.forbidden_channels.clear()
    await bot.core.core.redeliver()
    await fake.wait_for(lambda: len(fake.results()) == 2)
    assert await settled(bot.core)
    assert fake.results()[1].content.startswith(f"<@{ALICE_ID}> a late cat"), "delivered once the channel allows it"


async def settled(core: Stack) -> bool:
    """Whether every finished job's delivery is recorded, within a few seconds."""
    for _ in range(250):
        if not await core.db.undelivered_jobs():
            return True
        await asyncio.sleep(0.02)
    return False


async def test_a_restart_with_jobs_in_flight_delivers_each_result_once_and_old_buttons_still_work(
    fake: FakeDiscord, start_bot: StartBot, stack: Launch, tmp_path: Path, tiny_models: KandinskyModels
) -> None:
    gate = threading.Event()
    gate.set()
    settings = settings_for(fake, tmp_path, queue={"max_batch_images": 1})
    first = await start_bot(core=await stack(settings, gated(Engine(tiny_models), gate)))
    earlier = await first.result_of(await fake.command("imagine", {"prompt": "earlier owl"}, member=ALICE))
    gate.clear()
    running = await fake.command("imagine", {"prompt": "running cat"}, member=ALICE)
    await fake.wait_for(lambda: (m := fake.original(running)) and m.content.startswith("Drawing"))
    waiting = await fake.command("imagine", {"prompt": "waiting dog"}, member=BOB)
    await fake.wait_for(lambda: (m := fake.original(waiting)) and m.content.startswith("Queued"))

    await first.stop()
    stopping = asyncio.create_task(first.core.stop())
    gate.set()
    await stopping
    assert fake.results() == [earlier], "the client was closed: nothing more could be posted"

    core = await stack(settings, recover=True)
    second = asyncio.create_task(start_bot(core=core))
    await asyncio.sleep(0)  # as in `easel run`: the listener is registered, the client not connected yet
    assert await core.core.redeliver() == 1, "the running job finished while the client was closed"
    restarted = await second
    await fake.wait_for(lambda: len(fake.results()) == 3)

    assert await settled(core), "every result is recorded as delivered"
    late = [message.content for message in fake.results()[1:]]
    assert sorted(content.split(" · ")[0].split("\n")[0] for content in late) == [
        f"<@{ALICE_ID}> running cat",
        f"<@{BOB_ID}> waiting dog",
    ]
    earlier_id = earlier.custom_ids()[0].split(":")[2]
    varied = await restarted.result_of(await fake.press(earlier, f"easel:vary:{earlier_id}:0", member=ALICE))
    assert "earlier owl" in varied.content


async def test_commands_are_synced_by_easel_discord_sync_or_on_start(
    fake: FakeDiscord,
    start_bot: StartBot,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[model]\npreset = "tiny"\n[discord]\napi_base_url = "{fake.api_base_url}"\nguild_ids = [{GUILD_ID}]\n'
    )
    monkeypatch.delenv("DISCORD_BOT_TOKEN", raising=False)
    assert await asyncio.to_thread(main, ["--config", str(config), "discord", "sync"]) == 1
    assert "DISCORD_BOT_TOKEN is not set" in capsys.readouterr().err
    monkeypatch.setenv("DISCORD_BOT_TOKEN", TOKEN)

    assert await asyncio.to_thread(main, ["--config", str(config), "discord", "sync"]) == 0
    assert "synced 20 Discord commands in guilds" in capsys.readouterr().out

    names = {command["name"] for command in fake.commands[GUILD_ID]}
    assert names == {
        "imagine",
        "edit",
        "outpaint",
        "remix",
        "depth",
        "inpaint",
        "mix",
        "grid",
        "history",
        "quota",
        "queue",
        "cancel",
        "settings",
        "styles",
        "language",
        "token",
        "web",
        "help",
        "Edit image",
        "mod",
    }
    imagine = next(command for command in fake.commands[GUILD_ID] if command["name"] == "imagine")
    count = next(option for option in imagine["options"] if option["name"] == "count")
    assert (count["min_value"], count["max_value"]) == (1, 4)
    assert imagine["description_localizations"]["ru"] == render("discord.command.imagine", "ru")
    assert imagine["description_localizations"]["ru"] != imagine["description"]
    assert "ru" in count["description_localizations"] and "en-US" not in imagine["description_localizations"]
    assert None not in fake.commands

    await start_bot(sync_commands=True)
    assert {command["name"] for command in fake.commands[None]} == names


async def test_token_is_answered_to_its_owner_alone_and_revoked_on_request(start_bot: StartBot) -> None:
    bot = await start_bot()
    shown = await bot.ephemeral_reply(await bot.fake.command("token", member=ALICE, locale="de"))
    token = next(word for word in shown.split() if word.startswith("easel_"))
    assert shown == render("token.created", "de", token=token, url="http://127.0.0.1:8080/api/v1")
    assert all(m.ephemeral for m in bot.fake.messages.values() if m.author.get("bot"))
    access = bot.core.core.access
    caller = await access.caller(token)
    assert caller is not None and (caller.user.platform, caller.user.platform_user_id) == ("discord", str(ALICE_ID))
    revoked = await bot.fake.command("token", {"revoke": True}, member=ALICE, locale="de")
    assert await bot.ephemeral_reply(revoked) == render("token.revoked", "de")
    assert await access.caller(token) is None


async def test_web_sends_a_link_only_its_owner_sees_which_opens_moderation_for_an_admin(start_bot: StartBot) -> None:
    bot = await start_bot()
    access = bot.core.core.access
    admin = member(1003, "carol", permissions=ALL_PERMISSIONS)
    for who, moderates in ((ALICE, False), (admin, True)):
        shown = await bot.ephemeral_reply(await bot.fake.command("web", member=who))
        link = shown.split()[-1]
        assert link.startswith("http://127.0.0.1:8080/web/login?token=")
        session = await access.open_session(link.split("token=")[1])
        assert session is not None
        caller = await access.session_caller(session)
        assert caller is not None and (caller.moderator is not None) == moderates
        if caller.moderator is not None:
            assert (caller.moderator.community_id, caller.moderator.role) == (str(GUILD_ID), Role.ADMIN)
            assert shown.startswith(render("web.link_moderator", "en", url="", minutes=10, community="", hours=12)[:40])
    assert all(m.ephemeral for m in bot.fake.messages.values() if m.author.get("bot"))
