"""What Discord itself imposes, through the real discord.py client and the fake Discord: rate limits (429 with
`retry_after`), the length of a message (2000 characters), and being unreachable when easel starts."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
import test_discord
from easel_process import EaselProcess, free_port
from fake_discord import CHANNEL_ID, GUILD_ID, MESSAGE_LIMIT, FakeDiscord
from test_discord import ALICE, TOKEN, StartBot, member

from bots.core.deliveries import Deliveries
from bots.moderation.policy import Moderator, Role

_endpoints_restored = test_discord._endpoints_restored
fake = test_discord.fake
start_bot = test_discord.start_bot

CAROL_ID = 1003
CAROL = member(CAROL_ID, "carol", permissions=(1 << 50) - 1)
"""An admin of the server."""


async def test_a_429_on_a_status_edit_is_waited_out_and_the_result_lands_once_in_place(start_bot: StartBot) -> None:
    bot = await start_bot()
    bot.fake.retry_after, bot.fake.rate_limited_edits = 0.5, 1

    interaction = await bot.fake.command("imagine", {"prompt": "a storm"}, member=ALICE)
    result = await bot.result_of(interaction)

    assert bot.fake.rate_limited_edits == 0 and bot.fake.early == []
    assert bot.fake.results() == [result] and result.id == interaction.original_id
    assert ("POST", f"/channels/{CHANNEL_ID}/messages") not in bot.fake.requests, "nothing went around the wait"


@pytest.mark.parametrize(
    ("option", "explained"),
    [
        ("--seed " + "9" * 4080, "is not allowed: a whole number from 0 to 4294967295."),
        ("--size " + "9" * 4000, "needs a size such as 768x512; got '99999"),
    ],
)
async def test_a_refusal_of_a_huge_value_fits_in_a_message_and_says_why(
    start_bot: StartBot, option: str, explained: str
) -> None:
    bot = await start_bot()

    answer = await bot.ephemeral_reply(await bot.fake.command("imagine", {"prompt": f"a cat {option}"}, member=ALICE))

    assert explained in answer and "…" in answer and len(answer) < 300


async def test_a_list_too_long_for_a_message_comes_whole_as_a_file(start_bot: StartBot) -> None:
    bot = await start_bot()
    moderator = Moderator("discord", str(CAROL_ID), str(GUILD_ID), Role.ADMIN)
    words = [f"{index:03} " + "w" * 95 for index in range(25)]
    for word in words:
        await bot.core.core.moderation.add_word(moderator, word)

    interaction = await bot.fake.command("mod banword list", member=CAROL)
    reply = await bot.fake.wait_for(
        lambda: next((m for m in bot.fake.replies_to(interaction) if m.attachments), None), what="the list as a file"
    )

    [attachment] = reply.attachments
    listed = bot.fake.data_of(attachment).decode()
    assert attachment["filename"] == "banned-words.txt" and reply.ephemeral
    assert all(word in listed for word in words) and len(listed) > MESSAGE_LIMIT


async def test_easel_run_started_while_discord_is_unreachable_serves_once_it_answers(tmp_path: Path) -> None:
    """First nothing answers, then the REST API does but the gateway does not, then both: one outage."""
    fake = FakeDiscord()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = (
        f'[model]\npreset = "tiny"\n[discord]\napi_base_url = "{base}/api/v10"\n'
        f'gateway_url = "ws://127.0.0.1:{port}/gateway"\nreconnect_first_seconds = 0.2\n'
        "reconnect_longest_seconds = 1.0\nprogress_interval_seconds = 0.0\n"
    )
    easel = await EaselProcess.start(tmp_path, config, {"DISCORD_BOT_TOKEN": TOKEN})
    try:
        await easel.wait_for_log("discord: cannot reach")
        await asyncio.sleep(1)  # a few tries with backoff while nothing answers
        fake.gateway_down = True
        await fake.start(port)
        await fake.wait_for(lambda: ("GET", "/users/@me") in fake.requests, timeout=30, what="a sign-in")
        fake.gateway_down = False
        await fake.wait_for(lambda: fake.identifies, timeout=30, what="the gateway connection")
        interaction = await fake.command("imagine", {"prompt": "a late cat"}, member=ALICE)
        result = await fake.wait_for(lambda: (m := fake.original(interaction)) and m.attachments and m, timeout=60)
        assert "a late cat" in result.content
    finally:
        code = await easel.stop()
        await fake.close()
    assert code == 0, easel.log
    assert "Traceback" not in easel.log
    assert easel.log.count("discord: cannot reach") == 1 and easel.log.count("discord: reachable again") == 1
    assert TOKEN not in easel.log


async def test_a_lost_gateway_connection_is_one_warning_and_one_line_when_it_is_back(
    start_bot: StartBot, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO)
    redelivered: list[str | None] = []
    sweep = Deliveries.redeliver

    async def redeliver(self: Deliveries, platform: str | None = None) -> int:
        redelivered.append(platform)
        return await sweep(self, platform)

    monkeypatch.setattr(Deliveries, "redeliver", redeliver)
    bot = await start_bot()
    await bot.fake.wait_for(lambda: redelivered == ["discord"], what="the redelivery on the first connection")
    await bot.fake.close()
    await bot.fake.wait_for(lambda: "discord: cannot reach" in caplog.text, what="the outage to be noticed")
    await bot.fake.start()
    await bot.fake.wait_for(lambda: "discord: reachable again" in caplog.text, timeout=30, what="the connection")

    await bot.fake.wait_for(lambda: len(redelivered) == 2, what="the redelivery once Discord is back")
    assert redelivered == ["discord", "discord"]
    assert caplog.text.count("discord: cannot reach") == 1
    assert not [record for record in caplog.records if record.exc_info], "no traceback for a lost connection"
