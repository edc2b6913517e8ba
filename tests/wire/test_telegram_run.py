"""`easel run` as an operator starts it, against the fake Bot API: the outside view of the Telegram adapter."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from easel_process import EaselProcess, free_port
from fake_telegram import TOKEN, FakeTelegram

EASEL = str(Path(sys.executable).with_name("easel"))


async def test_easel_run_serves_telegram_until_sigterm_and_never_logs_the_token(tmp_path: Path) -> None:
    fake = FakeTelegram()
    await fake.start()
    telegram = f'api_base_url = "{fake.base_url}"\nfile_base_url = "{fake.file_base_url}"\n'
    (tmp_path / "config.toml").write_text(f'[model]\npreset = "tiny"\n[telegram]\n{telegram}')
    environment = {name: value for name, value in os.environ.items() if not name.startswith(("EASEL_", "DISCORD_"))}
    environment |= {"TELEGRAM_BOT_TOKEN": TOKEN, "PYTHONUNBUFFERED": "1"}
    process = await asyncio.create_subprocess_exec(
        EASEL,
        "run",
        cwd=tmp_path,
        env=environment,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await fake.wait_for(lambda: fake.sent("getMe"), timeout=90, what="easel to sign in")
        ann = fake.user(1001, "Ann", "en")
        fake.text(ann, fake.private(ann), "a lighthouse at dawn --seed 3")
        [image] = await fake.wait_for(lambda: fake.images(1001), timeout=60, what="the image")
        assert image["caption"].startswith("a lighthouse at dawn\nseed 3")
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
        await fake.stop()
    log = stderr.decode()
    assert process.returncode == 0, log
    assert "telegram adapter started" in log and "signed in as @easel_bot" in log
    assert TOKEN not in log and TOKEN.split(":")[1] not in log + stdout.decode()
    assert "discord: DISCORD_BOT_TOKEN is not set" in log


async def test_easel_run_waits_out_telegram_down_at_start_and_delivers_at_once_after_an_outage(tmp_path: Path) -> None:
    """Down at start-up: easel waits and serves once Telegram answers. Down while a job runs: the result that
    failed to go is delivered as soon as Telegram is back, not at the next sweep a minute later."""
    port = free_port()
    fake = FakeTelegram()
    base = f"http://127.0.0.1:{port}"
    config = (
        f'[model]\npreset = "tiny"\n[telegram]\napi_base_url = "{base}/bot"\nfile_base_url = "{base}/file/bot"\n'
        "reconnect_first_seconds = 0.2\nreconnect_longest_seconds = 1.0\n"
    )
    easel = await EaselProcess.start(tmp_path, config, {"TELEGRAM_BOT_TOKEN": TOKEN})
    try:
        await easel.wait_for_log("telegram: cannot reach")
        await asyncio.sleep(2)  # a few tries with backoff while it stays down
        await fake.start(port)
        ann = fake.user(1001, "Ann", "en")
        fake.text(ann, fake.private(ann), "before the outage")
        await fake.wait_for(lambda: fake.images(1001), timeout=60, what="the first image")
        fake.down_after = "sendMessage"  # the queued status goes out, then Telegram is unreachable
        fake.text(ann, fake.private(ann), "during the outage")
        await easel.wait_for_log("delivering job", timeout=60)
        fake.down = False
        images = await fake.wait_for(lambda: len(fake.images(1001)) == 2 and fake.images(1001), timeout=15)
        assert images[1]["caption"].startswith("during the outage")
    finally:
        code = await easel.stop()
        await fake.stop()
    assert code == 0, easel.log
    assert "Traceback" not in easel.log
    assert easel.log.count("telegram: cannot reach") == 2, "one warning for each outage"
    assert easel.log.count("telegram: reachable again") == 2
    assert TOKEN.split(":")[1] not in easel.log
