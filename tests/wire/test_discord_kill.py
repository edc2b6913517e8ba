"""SIGKILL right after Discord answered a result's channel post, before easel linked it, then a restart: the repost
carries the same nonce, so Discord gives back the first message and the channel shows the result once."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import timedelta
from pathlib import Path

from easel_process import EaselProcess
from fake_discord import CHANNEL_ID, FakeDiscord, FakeMessage
from test_discord import ALICE, TOKEN
from test_telegram_kill import until


async def test_a_kill_between_a_result_post_and_its_link_leaves_one_result_after_the_restart(tmp_path: Path) -> None:
    fake = FakeDiscord()
    await fake.start()
    config = (
        f'[model]\npreset = "tiny"\n[discord]\napi_base_url = "{fake.api_base_url}"\n'
        f'gateway_url = "{fake.gateway_url}"\nprogress_interval_seconds = 0.0\n'
    )
    database = tmp_path / "data" / "easel.db"
    post = ("POST", f"/channels/{CHANNEL_ID}/messages")
    try:
        first = await EaselProcess.start(tmp_path, config, {"DISCORD_BOT_TOKEN": TOKEN})

        def kill_on_the_result(method: str, message: FakeMessage) -> None:
            if method == "POST" and message.attachments:
                first.process.kill()

        fake.answered = kill_on_the_result
        try:
            await fake.wait_for(lambda: fake.identifies, timeout=90, what="easel to connect")
            # an interaction 16 minutes old: its token is spent, so the result is posted in the channel
            await fake.command("imagine", {"prompt": "a late owl"}, member=ALICE, age=timedelta(minutes=16))
            await asyncio.wait_for(first.process.wait(), 90)
        finally:
            fake.answered = None
            if first.process.returncode is None:
                await first.kill()
        [posted] = fake.results()
        with sqlite3.connect(database) as connection:
            assert connection.execute("SELECT count(*) FROM message_links").fetchone() == (0,), "killed before"

        second = await EaselProcess.start(tmp_path, config, {"DISCORD_BOT_TOKEN": TOKEN})
        try:
            await until(database, "SELECT count(*) FROM jobs WHERE delivery_state = 'delivered'", "the delivery")
        finally:
            code = await second.stop()
        assert code == 0, second.log
        assert "delivering job" in second.log and "Traceback" not in second.log
        assert fake.requests.count(post) == 2, "posted again after the restart"
        assert fake.results() == [posted], "and Discord gave back the first message"
        with sqlite3.connect(database) as connection:
            assert connection.execute("SELECT message_id FROM message_links").fetchall() == [(str(posted.id),)]
    finally:
        await fake.close()
