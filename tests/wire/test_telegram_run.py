"""`easel run` as an operator starts it, against the fake Bot API: the outside view of the Telegram adapter."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

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
