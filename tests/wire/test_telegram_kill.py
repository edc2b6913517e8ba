"""SIGKILL during a delivery to Telegram, then a restart: an image whose answer came back and whose link was
written is never sent again; one whose answer never came back is (Telegram offers no idempotent send)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from easel_process import EaselProcess
from fake_telegram import TOKEN, FakeTelegram

PROMPT = "three lighthouses --count 3 --seed 5"


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    server = FakeTelegram()
    await server.start()
    yield server
    await server.stop()


async def test_a_kill_after_each_answered_photo_sends_only_the_images_without_a_link_again(
    tmp_path: Path, fake: FakeTelegram
) -> None:
    config = f'[model]\npreset = "tiny"\n[telegram]\napi_base_url = "{fake.base_url}"\n'
    database = tmp_path / "data" / "easel.db"
    ann = fake.user(1001, "Ann", "en")

    fake.held = {"sendPhoto": 1}  # the first photo is answered, the second never is
    first = await EaselProcess.start(tmp_path, config, {"TELEGRAM_BOT_TOKEN": TOKEN})
    try:
        await fake.wait_for(lambda: fake.sent("getMe"), timeout=90, what="easel to sign in")
        fake.text(ann, fake.private(ann), PROMPT)
        await until_linked(database, 1)
    finally:
        await first.kill()
    assert len(fake.images(1001)) == 1
    tried = len(fake.sent("sendPhoto"))  # the second photo may have been sent, unanswered, or not yet

    fake.held = {"deleteMessage": 0}  # every image goes; the kill comes before the delivery is marked
    second = await EaselProcess.start(tmp_path, config, {"TELEGRAM_BOT_TOKEN": TOKEN})
    try:
        await until_linked(database, 3)
    finally:
        await second.kill()
    assert "images already sent: 1; sending only 2, 3" in second.log, second.log
    assert len(fake.sent("sendPhoto")) == tried + 2, "images 2 and 3 went, once each"

    fake.held = {}
    third = await EaselProcess.start(tmp_path, config, {"TELEGRAM_BOT_TOKEN": TOKEN})
    try:
        await third.wait_for_log("images already sent: 1, 2, 3; none is sent again")
        delivered = "SELECT count(*) FROM jobs WHERE delivery_state = 'delivered'"
        await until(database, delivered, "the delivery to be marked")
    finally:
        code = await third.stop()
    assert code == 0, third.log
    assert "delivering job" in third.log and "Traceback" not in third.log
    assert len(fake.sent("sendPhoto")) == tried + 2, "no image was sent again"
    captions = [image["caption"].split("\n")[1].split(" · ")[0] for image in fake.images(1001)]
    assert captions == ["seed 5", "seed 6", "seed 7"], captions


async def until_linked(database: Path, images: int) -> None:
    """Until `images` images of the job are linked to their messages (written, committed)."""
    query = f"SELECT count(*) >= {images} FROM message_links WHERE output_index IS NOT NULL"
    await until(database, query, f"{images} images to be linked")


async def until(database: Path, query: str, what: str) -> None:
    """Until `query`'s one value is true in the database of a process that is running."""
    for _ in range(2400):
        try:
            with sqlite3.connect(database) as connection:
                if connection.execute(query).fetchone()[0]:
                    return
        except sqlite3.OperationalError:
            pass  # not created yet, or its schema is still being written
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
