"""SIGKILL during a delivery to Telegram, then a restart: an image whose answer came back and whose link was
written is never sent again; one whose answer never came back is (Telegram offers no idempotent send). SIGKILL
while a photo a user sent downloads, or while a result uploads, and SIGTERM while a restart delivers it again:
one job, one image."""

from __future__ import annotations

import asyncio
import io
import sqlite3
from pathlib import Path

from easel_process import EaselProcess
from fake_telegram import TOKEN, FakeTelegram
from PIL import Image

PROMPT = "three lighthouses --count 3 --seed 5"


async def test_a_kill_after_each_answered_photo_sends_only_the_images_without_a_link_again(
    tmp_path: Path, telegram_api: FakeTelegram
) -> None:
    config = f'[model]\npreset = "tiny"\n[telegram]\napi_base_url = "{telegram_api.base_url}"\n'
    database = tmp_path / "data" / "easel.db"
    ann = telegram_api.user(1001, "Ann", "en")

    telegram_api.held = {"sendPhoto": 1}  # the first photo is answered, the second never is
    first = await EaselProcess.start(tmp_path, config, {"TELEGRAM_BOT_TOKEN": TOKEN})
    try:
        await telegram_api.wait_for(lambda: telegram_api.sent("getMe"), timeout=90, what="easel to sign in")
        telegram_api.text(ann, telegram_api.private(ann), PROMPT)
        await until_linked(database, 1)
    finally:
        await first.kill()
    assert len(telegram_api.images(1001)) == 1
    tried = len(telegram_api.sent("sendPhoto"))  # the second photo may have been sent, unanswered, or not yet

    telegram_api.held = {"deleteMessage": 0}  # every image goes; the kill comes before the delivery is marked
    second = await EaselProcess.start(tmp_path, config, {"TELEGRAM_BOT_TOKEN": TOKEN})
    try:
        await until_linked(database, 3)
    finally:
        await second.kill()
    assert "images already sent: 1; sending only 2, 3" in second.log, second.log
    assert len(telegram_api.sent("sendPhoto")) == tried + 2, "images 2 and 3 went, once each"

    telegram_api.held = {}
    third = await EaselProcess.start(tmp_path, config, {"TELEGRAM_BOT_TOKEN": TOKEN})
    try:
        await third.wait_for_log("images already sent: 1, 2, 3; none is sent again")
        delivered = "SELECT count(*) FROM jobs WHERE delivery_state = 'delivered'"
        await until(database, delivered, "the delivery to be marked")
    finally:
        code = await third.stop()
    assert code == 0, third.log
    assert "delivering job" in third.log and "Traceback" not in third.log
    assert len(telegram_api.sent("sendPhoto")) == tried + 2, "no image was sent again"
    captions = [image["caption"].split("\n")[1].split(" · ")[0] for image in telegram_api.images(1001)]
    assert captions == ["seed 5", "seed 6", "seed 7"], captions


async def test_a_kill_during_a_download_then_during_the_upload_then_a_stop_during_the_redelivery_leaves_one_image(
    tmp_path: Path, telegram_api: FakeTelegram
) -> None:
    """A captioned photo (img2img) is handled again from the inbox after a kill while it downloads; the result whose
    upload a kill cut short goes again after the restart; a SIGTERM while it goes lets it be answered and recorded,
    where cancelling it would leave the photo in the chat and unrecorded, to be sent again by the next start."""
    config = f'[model]\npreset = "tiny"\n[telegram]\napi_base_url = "{telegram_api.base_url}"\n'
    config += f'file_base_url = "{telegram_api.file_base_url}"\n'
    ann = telegram_api.user(1001, "Ann", "en")
    photo = io.BytesIO()
    Image.new("RGB", (64, 64), "navy").save(photo, "JPEG")

    telegram_api.held = {"getFile": 0}
    downloading = await EaselProcess.start(tmp_path, config, {"TELEGRAM_BOT_TOKEN": TOKEN})
    await telegram_api.wait_for(lambda: telegram_api.sent("getMe"), timeout=90, what="easel to sign in")
    telegram_api.photo(ann, telegram_api.private(ann), photo.getvalue(), "make it blue --seed 3")
    await telegram_api.wait_for(lambda: telegram_api.sent("getFile"), timeout=30, what="the download")
    await downloading.kill()

    telegram_api.held = {"sendPhoto": 0}
    uploading = await EaselProcess.start(tmp_path, config, {"TELEGRAM_BOT_TOKEN": TOKEN})
    await telegram_api.wait_for(lambda: telegram_api.sent("sendPhoto"), timeout=90, what="the upload")
    await uploading.kill()
    assert "was received before a stop and is handled again" in uploading.log, uploading.log

    telegram_api.held = {"sendPhoto": 0}
    delivering = await EaselProcess.start(tmp_path, config, {"TELEGRAM_BOT_TOKEN": TOKEN})
    try:
        await telegram_api.wait_for(
            lambda: len(telegram_api.sent("sendPhoto")) == 2, timeout=90, what="the upload again"
        )
    finally:
        delivering.process.terminate()
    await delivering.wait_for_log("signal received")
    telegram_api.release()  # Telegram answers the photo once the stop has begun
    assert await delivering.wait() == 0, delivering.log
    with sqlite3.connect(tmp_path / "data" / "easel.db") as connection:
        jobs = connection.execute("SELECT operation, state, delivery_state FROM jobs").fetchall()
    assert jobs == [("img2img", "done", "delivered")], delivering.log
    [image] = telegram_api.images(1001)
    assert image["caption"].startswith("make it blue\nseed 3")
    assert all("Traceback" not in easel.log for easel in (downloading, uploading, delivering))


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
