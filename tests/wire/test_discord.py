"""The Discord adapter end to end: the real discord.py client against the fake Discord, the core and the tiny model."""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from fake_discord import ALL_PERMISSIONS, FakeDiscord, FakeInteraction, FakeMessage, user
from PIL import Image

from bots.config import Settings, load_settings
from bots.discord.adapter import DiscordAdapter
from bots.service import Actor

if TYPE_CHECKING:
    from conftest import Launch, Stack

ALICE_ID = 1001
BOB_ID = 1002


def member(user_id: int, name: str) -> dict[str, Any]:
    return {
        "user": user(user_id, name),
        "roles": [],
        "joined_at": "2026-01-01T00:00:00+00:00",
        "deaf": False,
        "mute": False,
        "permissions": str(ALL_PERMISSIONS),
        "flags": 0,
    }


ALICE = member(ALICE_ID, "alice")
BOB = member(BOB_ID, "bob")


def png(size: tuple[int, int] = (64, 64), *, transparent: bool = False) -> bytes:
    image = Image.linear_gradient("L").resize(size).convert("RGBA")
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
    task: asyncio.Task[None]

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task

    def actor(self, user_id: int) -> Actor:
        return Actor("discord", str(user_id))

    async def images_used(self, user_id: int) -> int:
        return (await self.core.service.quota(self.actor(user_id))).images

    async def result_of(self, interaction: FakeInteraction) -> FakeMessage:
        """The interaction's original response, once it shows a result."""
        return await self.fake.wait_for(lambda: _with_files(self.fake.original(interaction)))

    async def refusal(self, interaction: FakeInteraction) -> str:
        """The ephemeral reply to an interaction that was refused."""
        message = await self.fake.wait_for(
            lambda: next((m for m in self.fake.replies_to(interaction) if m.ephemeral and m.content), None)
        )
        return message.content


def buttons(message: FakeMessage) -> list[str]:
    """The actions of a message's buttons, without the job id they carry."""
    return [re.sub(r"^easel:|:[0-9a-f]{32}", "", custom_id) for custom_id in message.custom_ids()]


def _with_files(message: FakeMessage | None) -> FakeMessage | None:
    return message if message is not None and message.attachments and not message.deleted else None


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    server = FakeDiscord()
    await server.start()
    yield server
    await server.close()


StartBot = Callable[..., Awaitable[Bot]]


@pytest.fixture
async def start_bot(fake: FakeDiscord, stack: Launch, tmp_path: Path) -> AsyncIterator[StartBot]:
    """`await start_bot(settings=None, core=None, **discord_settings)`: the adapter connected to the fake."""
    bots: list[Bot] = []

    async def start(core: Stack | None = None, generate: Any = None, **overrides: Any) -> Bot:
        if core is None:
            core = await stack(settings_for(fake, tmp_path, **overrides), generate)
        adapter = DiscordAdapter(core.service, core.settings.discord, "fake-token", guild_ready_timeout=0.05)
        adapter.register()
        task = asyncio.create_task(adapter.run())
        bot = Bot(fake, core, adapter, task)
        bots.append(bot)
        await fake.wait_for(adapter.delivery.ready.is_set)
        return bot

    yield start
    for bot in bots:
        await bot.stop()


def settings_for(fake: FakeDiscord, root: Path, queue: dict[str, Any] | None = None, **discord: Any) -> Settings:
    """Tiny-model settings with storage under `root` and Discord pointed at the fake."""
    settings = load_settings(None, environ={"EASEL_MODEL__PRESET": "tiny"})
    values = {"api_base_url": fake.api_base_url, "gateway_url": fake.gateway_url, "progress_interval_seconds": 0.0}
    return settings.model_copy(
        update={
            "storage": settings.storage.model_copy(
                update={"database_url": f"sqlite+aiosqlite:///{root / 'easel.db'}", "outputs_dir": root / "files"}
            ),
            "discord": settings.discord.model_copy(update={**values, **discord}),
            "queue": settings.queue.model_copy(update=queue or {}),
        }
    )


async def test_imagine_defers_at_once_shows_progress_and_answers_with_the_images(start_bot: StartBot) -> None:
    bot = await start_bot()
    fake = bot.fake
    interaction = await fake.command("imagine", {"prompt": "a red cat", "count": 2, "seed": 7}, member=ALICE)

    result = await bot.result_of(interaction)

    assert interaction.response_type == 5  # deferred, publicly
    assert len(result.attachments) == 2
    assert all(Image.open(io.BytesIO(fake.data_of(item))).size == (64, 64) for item in result.attachments)
    assert "a red cat" in result.content and "seed 7, 8" in result.content
    assert result.edits >= 2  # queued, then the result
    link = await bot.core.service.job_of_message("discord", str(result.channel_id), str(result.id))
    assert link is not None and link.job_id[:8] in result.content
    assert buttons(result) == ["reroll", "vary:0", "vary:1", "edit", "delete"]
    assert await bot.images_used(ALICE_ID) == 2
