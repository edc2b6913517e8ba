"""`easel run` as an operator starts it, against the fake Bot API: the outside view of the Telegram adapter, a
second process on the same token, and the order of a stop."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import time
from pathlib import Path

from easel_process import EaselProcess, free_port
from fake_telegram import TOKEN, FakeTelegram

SLOW = "a slow lighthouse --size 320x320 --steps 100 --prior-steps 50 --seed 7"
"""Slow enough on the tiny model (a few seconds) to be caught mid-job."""
OUTAGE_SECONDS = 20
"""How long Telegram is unreachable from the moment `easel run` starts (issue 12)."""


def config(base_url: str, file_base_url: str, extra: str = "") -> str:
    """The tiny model, and Telegram at the fake's addresses."""
    telegram = f'api_base_url = "{base_url}"\nfile_base_url = "{file_base_url}"\n{extra}'
    return f'[model]\npreset = "tiny"\n[telegram]\n{telegram}'


async def start(directory: Path, telegram_api: FakeTelegram, run_dir: Path | None = None) -> EaselProcess:
    """`easel run` in `directory` (its config, its database) serving the fake's token; the processes of one test
    that are to meet on the token share `run_dir`."""
    settings = config(telegram_api.base_url, telegram_api.file_base_url)
    return await EaselProcess.start(directory, settings, {"TELEGRAM_BOT_TOKEN": TOKEN}, run_dir=run_dir)


async def test_easel_run_serves_telegram_until_sigterm_and_never_logs_the_token(
    tmp_path: Path, telegram_api: FakeTelegram
) -> None:
    easel = await start(tmp_path, telegram_api)
    try:
        await telegram_api.wait_for(lambda: telegram_api.sent("getMe"), timeout=90, what="easel to sign in")
        ann = telegram_api.user(1001, "Ann", "en")
        telegram_api.text(ann, telegram_api.private(ann), "a lighthouse at dawn --seed 3")
        [image] = await telegram_api.wait_for(lambda: telegram_api.images(1001), timeout=60, what="the image")
        assert image["caption"].startswith("a lighthouse at dawn\nseed 3")
    finally:
        code = await easel.stop()
    assert code == 0, easel.log
    assert "telegram adapter started" in easel.log and "signed in as @easel_bot" in easel.log
    assert TOKEN not in easel.log and TOKEN.split(":")[1] not in easel.log
    assert "discord: DISCORD_BOT_TOKEN is not set" in easel.log


async def test_easel_run_waits_out_a_20_s_outage_from_its_start_and_delivers_at_once_after_an_outage(
    tmp_path: Path,
) -> None:
    """Down for the first 20 s of the process, start-up included: easel waits and serves once Telegram answers.
    Down while a job runs: the result that failed to go is delivered as soon as Telegram is back, not at the next
    sweep a minute later. Down at the stop: the updates taken cannot be confirmed, which is one line."""
    port = free_port()
    telegram_api = FakeTelegram()
    base = f"http://127.0.0.1:{port}"
    backoff = "reconnect_first_seconds = 0.2\nreconnect_longest_seconds = 1.0\n"
    started = time.monotonic()
    easel = await EaselProcess.start(
        tmp_path, config(f"{base}/bot", f"{base}/file/bot", backoff), {"TELEGRAM_BOT_TOKEN": TOKEN}
    )
    try:
        await easel.wait_for_log("telegram: cannot reach")
        await asyncio.sleep(started + OUTAGE_SECONDS - time.monotonic())  # tried again with backoff meanwhile
        await telegram_api.start(port)
        ann = telegram_api.user(1001, "Ann", "en")
        telegram_api.text(ann, telegram_api.private(ann), "before the outage")
        await telegram_api.wait_for(lambda: telegram_api.images(1001), timeout=60, what="the first image")
        telegram_api.down_after = "sendMessage"  # the queued status goes out, then Telegram is unreachable
        telegram_api.text(ann, telegram_api.private(ann), "during the outage")
        await easel.wait_for_log("delivering job", timeout=60)
        telegram_api.down = False
        images = await telegram_api.wait_for(
            lambda: len(telegram_api.images(1001)) == 2 and telegram_api.images(1001), timeout=15
        )
        assert images[1]["caption"].startswith("during the outage")
        telegram_api.down = True
        await easel.wait_for_log("telegram: cannot reach", count=3)
    finally:
        code = await easel.stop()
        await telegram_api.stop()
    assert code == 0, easel.log
    assert "Traceback" not in easel.log
    assert easel.log.count("telegram: cannot reach") == 3, "one warning for each outage"
    assert easel.log.count("telegram: reachable again") == 2
    assert "telegram: the stop could not confirm the updates taken (NetworkError(" in easel.log
    assert TOKEN.split(":")[1] not in easel.log


async def test_a_second_process_on_the_token_refuses_naming_the_first_and_a_killed_one_blocks_nothing(
    tmp_path: Path, telegram_api: FakeTelegram
) -> None:
    run_dir = tmp_path / "run"
    first = await start(tmp_path / "a", telegram_api, run_dir)
    try:
        await telegram_api.wait_for(lambda: telegram_api.sent("getMe"), timeout=90, what="the first process to sign in")
        second = await start(tmp_path / "b", telegram_api, run_dir)
        assert await second.wait() == 1, second.log
        assert second.lines[-1] == (
            f"easel: error: another easel process (pid {first.pid}) serves the telegram bot token in "
            "TELEGRAM_BOT_TOKEN: a token is served by one process at a time"
        )
        assert "Traceback" not in second.log and TOKEN.split(":")[1] not in second.log
        assert [name for name in os.listdir(run_dir) if TOKEN.split(":")[1] in name] == []
        assert len(telegram_api.sent("getMe")) == 1  # the second never reached Telegram
    finally:
        await first.kill()

    third = await start(tmp_path / "b", telegram_api, run_dir)
    try:
        await telegram_api.wait_for(
            lambda: len(telegram_api.sent("getMe")) == 2, timeout=90, what="a new process to sign in"
        )
    finally:
        code = await third.stop()
    assert code == 0, third.log


async def test_sigterm_delivers_the_running_job_through_the_open_client_then_exits(
    tmp_path: Path, telegram_api: FakeTelegram
) -> None:
    easel = await start(tmp_path, telegram_api)
    try:
        await telegram_api.wait_for(lambda: telegram_api.sent("getMe"), timeout=90, what="easel to sign in")
        ann = telegram_api.user(1001, "Ann", "en")
        telegram_api.text(ann, telegram_api.private(ann), SLOW)
        await until_running(tmp_path / "data" / "easel.db")
    finally:
        code = await easel.stop()
    assert code == 0, easel.log
    assert "Traceback" not in easel.log
    images = telegram_api.images(1001)
    assert len(images) == 1, easel.log
    assert images[0]["caption"].startswith("a slow lighthouse")
    with sqlite3.connect(tmp_path / "data" / "easel.db") as connection:
        assert connection.execute("SELECT state, delivery_state FROM jobs").fetchall() == [("done", "delivered")]


async def test_sigterm_stops_a_poller_in_its_retry_backoff_within_30_seconds(
    tmp_path: Path, telegram_api: FakeTelegram
) -> None:
    easel = await start(tmp_path, telegram_api)
    try:
        await telegram_api.wait_for(
            lambda: telegram_api.sent("deleteWebhook"), timeout=90, what="easel to start polling"
        )
        telegram_api.fail("getUpdates", 429, "Too Many Requests: retry after 60", retry_after=60)
        await telegram_api.wait_for(lambda: not telegram_api.failures, what="the poller to be told to wait")
        await asyncio.sleep(0.5)  # the poller is in its 60 s backoff
    finally:
        code = await easel.stop(timeout=30)
    assert code == 0, easel.log
    assert "Traceback" not in easel.log


async def test_prompts_confirmed_to_telegram_before_a_sigkill_are_all_answered_after_the_restart_once(
    tmp_path: Path, telegram_api: FakeTelegram
) -> None:
    """SIGKILL the moment easel confirms a batch of prompts (the next `getUpdates` offset), when their jobs are
    not yet written: Telegram will not send them again, so the restart must find them in easel's inbox."""
    easel = await start(tmp_path, telegram_api)
    users = [telegram_api.user(2001 + number, f"User {number}", "en") for number in range(8)]

    def kill_on_confirmation(offset: int) -> None:
        if offset > len(users):
            telegram_api.on_offset = None
            easel.process.kill()

    await telegram_api.wait_for(lambda: telegram_api.sent("deleteWebhook"), timeout=90, what="easel to start polling")
    telegram_api.on_offset = kill_on_confirmation
    for number, user in enumerate(users):
        telegram_api.text(user, telegram_api.private(user), f"prompt {number} --seed 1")
    assert await easel.wait() == -signal.SIGKILL, easel.log

    easel = await start(tmp_path, telegram_api)
    try:
        await telegram_api.wait_for(
            lambda: all(telegram_api.bot_messages(user["id"]) for user in users),
            timeout=90,
            what="every prompt's answer",
        )
    finally:
        await easel.stop()
    assert "Traceback" not in easel.log
    with sqlite3.connect(tmp_path / "data" / "easel.db") as connection:
        prompts = [prompt for (prompt,) in connection.execute("SELECT prompt FROM jobs ORDER BY prompt")]
    assert prompts == [f"prompt {number}" for number in range(8)]


async def until_running(database: Path) -> None:
    for _ in range(1200):
        if database.exists():
            try:
                with sqlite3.connect(database) as connection:
                    if connection.execute("SELECT 1 FROM jobs WHERE state = 'running'").fetchall():
                        return
            except sqlite3.OperationalError:
                pass  # the schema is still being created
        await asyncio.sleep(0.05)
    raise AssertionError("the job never started")
