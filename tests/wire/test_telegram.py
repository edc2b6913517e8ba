"""The Telegram adapter end to end: the real python-telegram-bot client against a fake Bot API server,
through the real core and the tiny model."""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from core_stack import Launch, Stack, core_settings
from fake_telegram import FakeTelegram
from PIL import Image
from previewing import HeldAtPreview

from bots.config import Settings
from bots.core.types import Actor, EventKind, JobEvent
from bots.environment import read_environment
from bots.kit.lifetime import Adapters
from bots.telegram import delivery as delivery_module
from bots.telegram.adapter import TelegramAdapter
from bots.texts import available_languages, languages_list, render
from generation.engine import Engine, GenerationResult
from generation.errors import GenerationCancelled
from generation.models import KandinskyModels
from generation.requests import GenerationRequest
from generation.worker import CancelCheck, ProgressCallback
from storage.records import DeliveryState, Job, JobState

BLACK = Image.new("L", (64, 64))
ANN = 1001
BOB = 1002


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def half(data: bytes) -> bytes:
    return data[: len(data) // 2]


def jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG")
    return buffer.getvalue()


class Held:
    """The tiny engine behind a gate: batches wait until `release()`, so tests can see the queue."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.gate = threading.Event()
        self.batches: list[list[str]] = []

    def release(self) -> None:
        self.gate.set()

    def __call__(
        self, batch: Sequence[GenerationRequest], on_progress: ProgressCallback, should_cancel: CancelCheck
    ) -> list[GenerationResult]:
        self.batches.append([request.prompt for request in batch])
        while not self.gate.wait(0.01):
            if should_cancel():
                raise GenerationCancelled
        return self.engine.generate(batch, on_progress, should_cancel)


@dataclass
class Bot:
    fake: FakeTelegram
    stack: Stack
    adapter: TelegramAdapter
    lifetime: Adapters
    ann: dict[str, Any]
    bob: dict[str, Any]

    async def stop(self) -> None:
        """As `easel run` stops: no more updates, the batch finishes and is delivered, then the client closes."""
        await self.lifetime.stop_receiving()
        await self.stack.stop()
        await self.lifetime.close()

    async def crash(self) -> None:
        await self.stack.crash()
        await self.lifetime.stop_receiving()
        await self.lifetime.close()

    async def job_ids(self, expected: int, state: JobState | None = None) -> list[str]:
        """The ids of all jobs, oldest first, once there are `expected` of them (in `state`, when given)."""

        async def ready() -> list[str] | None:
            jobs = await self.stack.db.jobs_in_states(list(JobState))
            jobs = [job for job in jobs if state is None or job.state is state]
            return [job.id for job in jobs] if len(jobs) >= expected else None

        for _ in range(3000):
            found = await ready()
            if found is not None:
                return found
            await asyncio.sleep(0.01)
        raise AssertionError(f"expected {expected} jobs")

    async def delivered(self, job_id: str) -> Job:
        """The job once its delivery is recorded (the core writes it after the adapter returns)."""
        for _ in range(3000):
            job = await self.stack.db.get_job(job_id)
            if job is not None and job.delivery_state is not DeliveryState.PENDING:
                return job
            await asyncio.sleep(0.01)
        raise AssertionError(f"job {job_id} was never delivered")

    async def images_in(self, chat_id: int, count: int) -> list[dict[str, Any]]:
        return await self.fake.wait_for(
            lambda: (images := self.fake.images(chat_id)) and len(images) >= count and images,
            what=f"{count} images in chat {chat_id}",
        )

    async def reply_in(self, chat_id: int, fragment: str) -> str:
        return await self.fake.wait_for(
            lambda: next((text for text in self.fake.texts(chat_id) if fragment in text), None),
            what=f"a message containing {fragment!r}",
        )


Start = Callable[..., Any]


@pytest.fixture
async def start(stack: Launch, tmp_path: Path, tiny_models: KandinskyModels) -> AsyncIterator[Start]:
    fake = FakeTelegram()
    await fake.start()
    bots: list[Bot] = []

    async def launch(*, held: Held | None = None, recover: bool = False, **sections: dict[str, Any]) -> Bot:
        telegram = {
            "api_base_url": fake.base_url,
            "file_base_url": fake.file_base_url,
            "album_wait_seconds": 0.3,
            "group_messages_per_minute": 0,  # Telegram's 20 would make a test of many group commands wait
            **sections.pop("telegram", {}),
        }
        settings: Settings = core_settings(tmp_path, telegram=telegram, **sections)
        core = await stack(settings, held, recover=False)
        secret = read_environment(settings).telegram_webhook_secret
        cache = settings.moderation.admin_cache_seconds
        adapter = TelegramAdapter(
            core.core, settings.telegram, fake.token, webhook_secret=secret, admin_cache_seconds=cache
        )
        lifetime = Adapters([adapter])
        lifetime.register()
        if recover:
            await core.core.recover()
        lifetime.start()
        await fake.wait_for(lambda: fake.sent("getMe"), what="the bot to sign in")
        await core.core.redeliver()
        bot = Bot(fake, core, adapter, lifetime, fake.user(ANN, "Ann", "en"), fake.user(BOB, "Bob", "en"))
        bots.append(bot)
        return bot

    yield launch
    for bot in bots:
        await bot.stop()
    await fake.stop()


@pytest.fixture
def held(tiny_models: KandinskyModels) -> Iterator[Held]:
    """Released at teardown, before the bot stops: a failed test must not leave a batch held forever."""
    gate = Held(Engine(tiny_models))
    yield gate
    gate.release()


# --- txt2img ---------------------------------------------------------------------------------


async def test_a_private_message_becomes_images_with_captions_and_buttons(start: Start) -> None:
    bot: Bot = await start()
    chat = bot.fake.private(bot.ann)
    asked = bot.fake.text(bot.ann, chat, "a red cat --seed 5 --count 2")
    images = await bot.images_in(ANN, 2)
    assert [image["caption"].splitlines()[0] for image in images] == ["a red cat", "a red cat"]
    assert "seed 5" in images[0]["caption"] and "seed 6" in images[1]["caption"]
    assert all(image["reply_to_message"]["message_id"] == asked["message_id"] for image in images)
    buttons = [button["callback_data"] for button in images[1]["reply_markup"]["inline_keyboard"][0]]
    [job_id] = await bot.job_ids(1)
    assert buttons == [f"reroll:{job_id}", f"vary:{job_id}:1", f"edit:{job_id}:1"]
    status = bot.fake.sent("sendMessage")[0]
    assert "in line" in status.params["text"]
    assert status.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == f"cancel:{job_id}"
    await bot.fake.wait_for(lambda: bot.fake.sent("deleteMessage"), what="the status message to go")
    assert bot.fake.texts(ANN) == [image["caption"] for image in images]  # only the images remain
    job = await bot.delivered(job_id)
    assert job.state is JobState.DONE and job.delivery_state is DeliveryState.DELIVERED
    assert [link.output_index for link in await bot.stack.core.messages_of(job_id)][-2:] == [0, 1]


async def test_in_groups_the_bot_answers_only_when_addressed(start: Start) -> None:
    bot: Bot = await start()
    group = bot.fake.group()
    bot.fake.text(bot.ann, group, "a plain chat message about cats")
    bot.fake.text(bot.ann, group, "/imagine@other_bot a dog")
    bot.fake.text(bot.ann, group, "@easel_bot a blue fox")
    await bot.images_in(group["id"], 1)
    bot.fake.text(bot.bob, group, "/imagine@easel_bot a green owl")
    await bot.images_in(group["id"], 2)
    jobs = [await bot.stack.db.get_job(job_id) for job_id in await bot.job_ids(2)]
    assert [job.prompt for job in jobs if job] == ["a blue fox", "a green owl"]
    community = await bot.stack.db.get_community(jobs[0].community_id) if jobs[0] else None
    assert community is not None and community.platform_id == str(group["id"]) and community.name == "Artists"


async def test_group_trigger_command_ignores_mentions(start: Start) -> None:
    bot: Bot = await start(telegram={"group_trigger": "command"})
    group = bot.fake.group()
    bot.fake.text(bot.ann, group, "@easel_bot a blue fox")
    bot.fake.text(bot.ann, group, "/imagine a red fox")
    await bot.images_in(group["id"], 1)
    assert [job.prompt for job in await bot.stack.db.jobs_in_states(list(JobState))] == ["a red fox"]


# --- images in -------------------------------------------------------------------------------


async def test_a_captioned_photo_is_img2img_of_it(start: Start, photo: Image.Image) -> None:
    bot: Bot = await start()
    bot.fake.photo(bot.ann, bot.fake.private(bot.ann), jpeg(photo), "make it blue --strength 0.3")
    await bot.images_in(ANN, 1)
    [job_id] = await bot.job_ids(1)
    job = await bot.stack.db.get_job(job_id)
    assert job is not None and job.operation == "img2img" and job.parameters["strength"] == 0.3
    assert job.prompt == "make it blue"


async def test_replies_edit_images(start: Start, photo: Image.Image) -> None:
    bot: Bot = await start()
    chat = bot.fake.private(bot.ann)
    bot.fake.text(bot.ann, chat, "a house --seed 3")
    [image] = await bot.images_in(ANN, 1)
    bot.fake.text(bot.ann, chat, "the same house in snow", reply_to=image)
    await bot.images_in(ANN, 2)
    user_photo = bot.fake.photo(bot.ann, chat, jpeg(photo))
    bot.fake.text(bot.ann, chat, "/edit as a watercolour", reply_to=user_photo)
    await bot.images_in(ANN, 3)
    original, edited, from_photo = [await bot.stack.db.get_job(job_id) for job_id in await bot.job_ids(3)]
    assert edited is not None and original is not None and from_photo is not None
    assert (edited.operation, edited.parent_id, edited.prompt) == ("img2img", original.id, "the same house in snow")
    assert (from_photo.operation, from_photo.parent_id, from_photo.prompt) == ("img2img", None, "as a watercolour")
    replies = await bot.reply_in(ANN, "Add a caption")  # the uncaptioned photo was not a request
    assert replies


async def test_inpaint_by_transparency_by_mask_reply_and_by_region(start: Start, photo: Image.Image) -> None:
    bot: Bot = await start()
    chat = bot.fake.private(bot.ann)
    holed = photo.convert("RGBA")
    holed.paste((0, 0, 0, 0), (0, 0, 16, 16))
    bot.fake.document(bot.ann, chat, png(holed), "hole.png", "image/png", "a window")
    await bot.images_in(ANN, 1)
    source = bot.fake.photo(bot.ann, chat, jpeg(photo))
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (20, 20, 40, 40))
    bot.fake.photo(bot.ann, chat, jpeg(mask), "/inpaint a door", reply_to=source)
    await bot.images_in(ANN, 2)
    bot.fake.text(bot.ann, chat, "/inpaint --region 0,0,50,50 a bird", reply_to=source)
    await bot.images_in(ANN, 3)
    jobs = [await bot.stack.db.get_job(job_id) for job_id in await bot.job_ids(3)]
    assert [(job.operation, job.prompt) for job in jobs if job] == [
        ("inpaint", "a window"),
        ("inpaint", "a door"),
        ("inpaint", "a bird"),
    ]
    assert "mask_image" in jobs[1].parameters["inputs"] and jobs[2].parameters["inputs"]["region"] == [0, 0, 50, 50]


async def test_an_album_is_a_mix_and_its_caption_a_text_item(start: Start, photo: Image.Image) -> None:
    bot: Bot = await start()
    chat = bot.fake.private(bot.ann)
    bot.fake.photo(bot.ann, chat, jpeg(photo), "a storm --weights 0.2,0.3,0.5", media_group_id="album-1")
    bot.fake.photo(bot.ann, chat, jpeg(photo.rotate(90)), media_group_id="album-1")
    await bot.images_in(ANN, 1)
    [job_id] = await bot.job_ids(1)
    job = await bot.stack.db.get_job(job_id)
    assert job is not None and job.operation == "mix" and job.parameters["mix_weights"] == [0.2, 0.3, 0.5]
    assert [list(item) for item in job.parameters["inputs"]["mix"]] == [["image"], ["image"], ["text"]]


async def test_an_album_of_five_is_refused_and_nothing_is_queued(start: Start, photo: Image.Image) -> None:
    bot: Bot = await start()
    chat = bot.fake.private(bot.ann)
    for index in range(5):
        bot.fake.photo(bot.ann, chat, jpeg(photo), "mix these" if index == 0 else None, media_group_id="big")
    await bot.reply_in(ANN, "this one has 5")
    assert await bot.stack.db.jobs_in_states(list(JobState)) == []
    assert not bot.fake.sent("getFile")  # refused before downloading anything


# --- buttons -----------------------------------------------------------------------------------


async def test_reroll_variations_and_edit_buttons(start: Start) -> None:
    bot: Bot = await start()
    chat = bot.fake.private(bot.ann)
    bot.fake.text(bot.ann, chat, "a lighthouse --seed 11")
    [image] = await bot.images_in(ANN, 1)
    [job_id] = await bot.job_ids(1)
    bot.fake.press(bot.ann, image, f"reroll:{job_id}")
    bot.fake.press(bot.ann, image, f"vary:{job_id}:0")
    await bot.images_in(ANN, 3)
    bot.fake.press(bot.ann, image, f"edit:{job_id}:0")
    question = await bot.fake.wait_for(
        lambda: next((m for m in bot.fake.bot_messages(ANN) if "Reply to this image" in m.get("text", "")), None)
    )
    assert any("force_reply" in call.params.get("reply_markup", {}) for call in bot.fake.sent("sendMessage"))
    bot.fake.text(bot.ann, chat, "at night", reply_to=question)
    await bot.images_in(ANN, 4)
    jobs = [await bot.stack.db.get_job(job_id) for job_id in await bot.job_ids(4)]
    assert [(job.operation, job.parent_id) for job in jobs[1:] if job] == [
        ("txt2img", job_id),
        ("img2img", job_id),
        ("img2img", job_id),
    ]
    assert jobs[1] is not None and jobs[1].seed != 11 and jobs[3] is not None and jobs[3].prompt == "at night"
    assert len(bot.fake.sent("answerCallbackQuery")) == 3


async def test_cancel_button_works_for_the_owner_only(start: Start, held: Held) -> None:
    bot: Bot = await start(held=held)
    chat = bot.fake.private(bot.ann)
    bot.fake.text(bot.ann, chat, "first")
    bot.fake.text(bot.ann, chat, "second")
    first, second = await bot.job_ids(2)
    status = await bot.fake.wait_for(
        lambda: next((m for m in bot.fake.bot_messages(ANN) if f"cancel:{second}" in str(m.get("reply_markup"))), None)
    )
    bot.fake.press(bot.bob, status, f"cancel:{second}")
    refusal = await bot.fake.wait_for(lambda: bot.fake.sent("answerCallbackQuery"))
    assert "someone else" in refusal[0].params["text"] and refusal[0].params["show_alert"] is True
    bot.fake.press(bot.ann, status, f"cancel:{second}")
    await bot.reply_in(ANN, "was cancelled")
    held.release()
    await bot.images_in(ANN, 1)
    assert (await bot.stack.db.get_job(second)).state is JobState.CANCELLED  # type: ignore[union-attr]
    assert (await bot.stack.core.quota(_actor(ANN))).images == 1
    assert (await bot.stack.db.get_job(first)).state is JobState.DONE  # type: ignore[union-attr]


async def test_the_status_message_becomes_a_live_preview_then_gives_way_to_the_result_or_the_ending(
    start: Start, held_at_preview: HeldAtPreview
) -> None:
    engine = held_at_preview
    bot: Bot = await start(held=engine, telegram={"progress_interval_seconds": 0})
    chat = bot.fake.private(bot.ann)
    bot.fake.text(bot.ann, chat, "a red cat --steps 4")
    edit = (await bot.fake.wait_for(lambda: bot.fake.sent("editMessageMedia"), what="a preview"))[0]
    [job_id] = await bot.job_ids(1)
    status = bot.fake.messages[(ANN, int(edit.params["message_id"]))]
    assert status["photo"][0]["width"] == 32 and "%" in status["caption"]
    assert Image.open(io.BytesIO(bot.fake.files[status["photo"][0]["file_id"]])).format == "JPEG"
    assert status["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == f"cancel:{job_id}"
    engine.gates[0].set()
    await bot.fake.wait_for(lambda: (ANN, status["message_id"]) in bot.fake.deleted, what="the preview to go")
    [result] = bot.fake.images(ANN)
    assert result["caption"].startswith("a red cat") and result["message_id"] > status["message_id"]

    bot.fake.text(bot.ann, chat, "a blue dog --steps 4")
    edit = await bot.fake.wait_for(
        lambda: next(
            (c for c in bot.fake.sent("editMessageMedia") if c.params["message_id"] != edit.params["message_id"]), None
        ),
        what="the second job's preview",
    )
    second = bot.fake.messages[(ANN, int(edit.params["message_id"]))]
    [_, cancelled] = await bot.job_ids(2)
    bot.fake.press(bot.ann, second, f"cancel:{cancelled}")
    await bot.reply_in(ANN, "was cancelled")
    assert (ANN, second["message_id"]) in bot.fake.deleted  # the ending is a text of its own, not a caption
    assert bot.fake.images(ANN) == [result]


async def test_a_status_turned_photo_gets_caption_edits_even_from_a_process_that_did_not_turn_it(
    start: Start, held: Held
) -> None:
    """The status message's kind is not kept across a restart: a text edit refused with "no text in the message"
    tells the new process it is a photo; it edits captions from then on, and ends by deleting it."""
    bot: Bot = await start(held=held, telegram={"progress_interval_seconds": 0})
    chat = bot.fake.private(bot.ann)
    asked = bot.fake.text(bot.ann, chat, "a red cat")
    [job_id] = await bot.job_ids(1)
    await bot.fake.wait_for(lambda: bot.fake.sent("sendMessage"), what="the status message")
    # The job's own start is drawn first: drawn late (a loaded machine), it would overwrite the captions below.
    await bot.fake.wait_for(lambda: bot.fake.sent("editMessageText"), what="the start drawn")
    status_id = (ANN, status_id_of(bot, job_id))
    where = {"platform": "telegram", "channel_id": str(ANN), "user_id": str(ANN), "language": "en"}
    event = JobEvent(EventKind.PROGRESS, job_id, progress=0.4, reply_to=str(asked["message_id"]), **where)
    await bot.adapter.delivery.on_event(replace(event, preview=jpeg(Image.new("RGB", (32, 32)))))
    await bot.fake.wait_for(lambda: "photo" in bot.fake.messages[status_id], what="the preview")
    await bot.adapter.delivery.on_event(replace(event, progress=0.6))
    await bot.fake.wait_for(lambda: "60%" in bot.fake.messages[status_id].get("caption", ""), what="a caption edit")

    restarted = delivery_module.Delivery(bot.stack.core, bot.adapter.application.bot, bot.stack.settings.telegram)
    edits = len(bot.fake.sent("editMessageText"))
    await restarted.on_event(replace(event, progress=0.7))  # its text edit is refused: the status is a photo
    await bot.fake.wait_for(lambda: len(bot.fake.sent("editMessageText")) > edits, what="the refused text edit")
    await restarted.on_event(replace(event, progress=0.8))
    await bot.fake.wait_for(lambda: "80%" in bot.fake.messages[status_id].get("caption", ""), what="a caption edit")
    await restarted.on_event(replace(event, kind=EventKind.CANCELLED))
    ending = await bot.fake.wait_for(
        lambda: next((m for m in bot.fake.bot_messages(ANN) if "was cancelled" in m.get("text", "")), None)
    )
    assert status_id in bot.fake.deleted and ending["reply_to_message"]["message_id"] == asked["message_id"]
    await restarted.close()


def status_id_of(bot: Bot, job_id: str) -> int:
    return next(
        message["message_id"]
        for message in bot.fake.bot_messages(ANN)
        if f"cancel:{job_id}" in str(message.get("reply_markup"))
    )


def _actor(user_id: int) -> Actor:
    return Actor("telegram", str(user_id))


# --- commands ----------------------------------------------------------------------------------


async def test_commands_help_history_quota_queue_cancel_settings(start: Start, held: Held) -> None:
    bot: Bot = await start(held=held)
    chat = bot.fake.private(bot.ann)
    for command in ("/start", "/help"):
        bot.fake.text(bot.ann, chat, command)
    await bot.fake.wait_for(lambda: sum("any language" in text for text in bot.fake.texts(ANN)) == 2)
    bot.fake.text(bot.ann, chat, "/settings --size 128x128 --steps 3")
    await bot.reply_in(ANN, "Saved. Your defaults: --height 128, --steps 3, --width 128")
    bot.fake.text(bot.ann, chat, "a kite")
    bot.fake.text(bot.ann, chat, "a sail")
    first, second = await bot.job_ids(2)
    bot.fake.text(bot.ann, chat, "/queue")
    await bot.reply_in(ANN, f"{second[:8]} · queued · number")
    bot.fake.text(bot.ann, chat, f"/cancel {second[:6]}")
    await bot.reply_in(ANN, f"Job {second[:8]} was removed from the queue")
    held.release()
    [image] = await bot.images_in(ANN, 1)
    assert image["photo"][0]["width"] == 128
    bot.fake.text(bot.ann, chat, "/history")
    await bot.reply_in(ANN, f"{first[:8]}  done")
    bot.fake.text(bot.ann, chat, "/quota")
    await bot.reply_in(ANN, "Today you have made 1 of 100 images")
    bot.fake.text(bot.ann, chat, "/settings reset")
    await bot.reply_in(ANN, "Your defaults are cleared")
    bot.fake.text(bot.ann, chat, "/settings")
    await bot.reply_in(ANN, "You have no defaults of your own")
    bot.fake.text(bot.ann, chat, "/mix")
    await bot.reply_in(ANN, "send 2 to 4 photos as one album")
    bot.fake.text(bot.ann, chat, "/frobnicate")
    await bot.reply_in(ANN, "I do not know /frobnicate")
    menus = {call.params.get("language_code"): call.params["commands"] for call in bot.fake.sent("setMyCommands")}
    assert menus[None][0] == {"command": "imagine", "description": "Draw an image from a description"}
    assert set(menus) == {None} | (set(available_languages()) - {"en"})
    assert all(menu[0]["command"] == "imagine" for menu in menus.values())


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("send", "answer"),
    [
        (lambda f, u, c, p: f.document(u, c, b"%PDF-1.4 ...", "paper.pdf", "application/pdf", "draw"), "not an image"),
        (lambda f, u, c, p: f.document(u, c, b"GIF89a broken", "x.gif", "image/gif", "draw"), "damaged or incomplete"),
        (lambda f, u, c, p: f.document(u, c, half(png(p)), "cut.png", "image/png", "draw"), "damaged or incomplete"),
        (lambda f, u, c, p: f.photo(u, c, jpeg(p), "big", reported_size=25 * 1024 * 1024), "at most 20 MB"),
        (lambda f, u, c, p: f.text(u, c, "/imagine"), "Tell me what to draw"),
        (lambda f, u, c, p: f.text(u, c, "a cat " * 300), "1000"),
        (lambda f, u, c, p: f.text(u, c, "a cat --steps 5000"), "steps"),
        (lambda f, u, c, p: f.text(u, c, "a cat --size big"), "a size such as 768x512"),
        (lambda f, u, c, p: f.text(u, c, "/inpaint a door"), "with a photo, or as a reply to one"),
        (lambda f, u, c, p: f.document(u, c, png(p), "plain.png", "image/png", "/inpaint x"), "request"),
        (
            lambda f, u, c, p: f.photo(
                u, c, jpeg(Image.new("L", (64, 64))), "/inpaint x", reply_to=f.photo(u, c, jpeg(p))
            ),
            "marks nothing to repaint",
        ),
    ],
)
async def test_bad_input_gets_a_clear_reply_and_nothing_is_queued_or_charged(
    start: Start, photo: Image.Image, send: Callable[..., Any], answer: str
) -> None:
    bot: Bot = await start()
    send(bot.fake, bot.ann, bot.fake.private(bot.ann), photo)
    await bot.reply_in(ANN, answer)
    assert await bot.stack.db.jobs_in_states(list(JobState)) == []
    assert (await bot.stack.core.quota(_actor(ANN))).images == 0
    if "MB" in answer:
        assert not bot.fake.sent("getFile")  # the reported size was checked before downloading


async def test_a_flood_is_capped_per_user_and_others_still_get_in(start: Start, held: Held) -> None:
    bot: Bot = await start(held=held, queue={"max_pending_per_user": 2})
    chat = bot.fake.private(bot.ann)
    for index in range(6):
        bot.fake.text(bot.ann, chat, f"cat {index}")
    await bot.fake.wait_for(lambda: sum("requests waiting" in text for text in bot.fake.texts(ANN)) >= 3)
    bot.fake.text(bot.bob, bot.fake.private(bot.bob), "a dog")
    held.release()
    await bot.images_in(BOB, 1)
    jobs = await bot.stack.db.jobs_in_states(list(JobState))
    accepted = [job for job in jobs if job.prompt.startswith("cat") and job.state is not JobState.FAILED]
    assert len(accepted) == 3  # one running and two waiting; a refusal may leave a failed row, never a charge
    assert (await bot.stack.core.quota(_actor(ANN))).images == 3


# --- fairness, restarts, delivery ------------------------------------------------------------------


async def test_two_users_at_once_get_a_fair_order(start: Start, held: Held) -> None:
    bot: Bot = await start(held=held, queue={"max_batch_images": 1})  # one job at a time: the order shows
    for index in range(3):
        bot.fake.text(bot.ann, bot.fake.private(bot.ann), f"ann {index}")
        await bot.job_ids(index + 1)
    bot.fake.text(bot.bob, bot.fake.private(bot.bob), "bob 0")
    await bot.job_ids(4)
    held.release()
    await bot.images_in(ANN, 3)
    await bot.images_in(BOB, 1)
    delivered = [call.params["caption"].splitlines()[0] for call in bot.fake.sent("sendPhoto")]
    assert delivered == ["ann 0", "bob 0", "ann 1", "ann 2"]


async def test_a_burst_does_not_fill_a_later_users_batch(start: Start, held: Held) -> None:
    """Issue 13: Ann sends 6 prompts at once, Bob one while Ann's first runs; Bob's image comes second."""
    bot: Bot = await start(held=held)
    for index in range(6):
        bot.fake.text(bot.ann, bot.fake.private(bot.ann), f"ann {index}")
    await bot.job_ids(6)
    await bot.fake.wait_for(lambda: held.batches, what="Ann's first job on the GPU")
    bot.fake.text(bot.bob, bot.fake.private(bot.bob), "bob")
    await bot.job_ids(7)
    held.release()
    await bot.images_in(ANN, 6)
    await bot.images_in(BOB, 1)
    delivered = [call.params["caption"].splitlines()[0] for call in bot.fake.sent("sendPhoto")]
    assert delivered[1] == "bob" and delivered[0].startswith("ann")
    assert held.batches[1] == ["bob"]  # not topped up with Ann's backlog
    assert all(len(batch) == 1 for batch in held.batches)


async def test_a_job_in_flight_survives_a_restart_and_is_delivered_once(
    start: Start, held: Held, photo: Image.Image
) -> None:
    bot: Bot = await start(held=held)
    bot.fake.text(bot.ann, bot.fake.private(bot.ann), "before the restart")
    bot.fake.text(bot.ann, bot.fake.private(bot.ann), "queued behind it")
    jobs = await bot.job_ids(2)
    await bot.fake.wait_for(lambda: held.batches, what="the first job to reach the GPU")
    for job_id in jobs:  # each status message posted and linked: what the restart reuses
        while not await bot.stack.db.messages_of(job_id):
            await asyncio.sleep(0.01)
    await bot.crash()
    held.release()  # the abandoned batch finishes in its thread; nobody hears of it
    again: Bot = await start(recover=True)
    images = await again.images_in(ANN, 2)
    assert sorted(image["caption"].splitlines()[0] for image in images) == ["before the restart", "queued behind it"]
    await asyncio.sleep(0.5)
    assert len(again.fake.sent("sendPhoto")) == 2
    statuses = [call for call in again.fake.sent("sendMessage") if "in line" in call.params["text"]]
    assert len(statuses) == 2  # the status messages of the first run were reused, not posted again
    jobs = await again.stack.db.jobs_in_states(list(JobState))
    assert all(job.state is JobState.DONE and job.delivery_state.value == "delivered" for job in jobs)


async def test_a_failed_delivery_is_retried_without_sending_twice(start: Start) -> None:
    bot: Bot = await start()
    bot.fake.fail("sendPhoto", 502, "Bad Gateway", after=1)
    bot.fake.text(bot.ann, bot.fake.private(bot.ann), "a moon --count 2")
    [job_id] = await bot.job_ids(1)
    await bot.fake.wait_for(lambda: len(bot.fake.sent("sendPhoto")) == 2)  # the first went, the second failed
    job = await bot.stack.db.get_job(job_id)
    while job is None or job.delivery_attempts == 0:
        await asyncio.sleep(0.01)
        job = await bot.stack.db.get_job(job_id)
    assert job.delivery_state.value == "pending"
    await bot.stack.core.redeliver()
    await bot.images_in(ANN, 2)
    assert len(bot.fake.sent("sendPhoto")) == 3
    assert (await bot.stack.db.get_job(job_id)).delivery_state.value == "delivered"  # type: ignore[union-attr]


async def test_status_edits_are_throttled_and_wait_out_a_429(start: Start, held: Held) -> None:
    bot: Bot = await start(held=held, telegram={"progress_interval_seconds": 0.5})
    delivery = bot.adapter.delivery
    bot.fake.text(bot.ann, bot.fake.private(bot.ann), "a held job")
    [job_id] = await bot.job_ids(1)

    def edits() -> list[str]:
        return [call.params["text"] for call in bot.fake.sent("editMessageText")]

    def event(kind: str, **values: Any) -> JobEvent:
        return JobEvent(EventKind(kind), job_id, "telegram", str(ANN), str(ANN), "en", "a held job", **values)

    started = render("status.started", "en")
    await bot.fake.wait_for(lambda: started in edits(), what="the started status")  # the held job goes no further
    for fraction in (0.1, 0.2, 0.3):
        await delivery.on_event(event("progress", progress=fraction))
    await asyncio.sleep(0.2)
    assert edits() == [started]  # within the interval of the last edit
    await bot.fake.wait_for(lambda: len(edits()) == 2)
    assert edits()[-1].endswith("30%")  # only the latest of the three
    bot.fake.flood(ANN, calls=1, retry_after=1)
    await delivery.on_event(event("progress", progress=0.4))
    await bot.fake.wait_for(lambda: len(edits()) == 3, what="the refused edit")
    await delivery.on_event(event("progress", progress=0.5))
    await bot.fake.wait_for(lambda: edits()[-1].endswith("50%"), what="the latest progress")
    assert bot.fake.early == []  # nothing while asked to wait
    assert [text[-3:] for text in edits()[2:]] == ["40%", "40%", "50%"]  # the refused edit made again, then 50%


async def test_images_telegram_refuses_as_photos_go_as_documents(start: Start, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(delivery_module, "PHOTO_MAX_SIDES", 100)
    bot: Bot = await start()
    bot.fake.text(bot.ann, bot.fake.private(bot.ann), "a wide field")
    [image] = await bot.images_in(ANN, 1)
    assert "document" in image and image["caption"].startswith("a wide field")


async def test_webhook_mode_takes_updates_posted_to_it(
    start: Start, unused_tcp_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", "s3cret")
    telegram = {
        "mode": "webhook",
        "webhook_url": "https://bot.example/telegram",
        "webhook_listen": "127.0.0.1",
        "webhook_port": unused_tcp_port,
    }
    bot: Bot = await start(telegram=telegram)
    [call] = await bot.fake.wait_for(lambda: bot.fake.sent("setWebhook"))
    assert call.params["url"] == "https://bot.example/telegram" and call.params["secret_token"] == "s3cret"
    message = bot.fake.text(bot.ann, bot.fake.private(bot.ann), "a webhook cat")
    url = f"http://127.0.0.1:{unused_tcp_port}/telegram"
    async with aiohttp.ClientSession() as session:
        for _ in range(100):  # PTB registers the webhook before its server listens
            try:
                async with session.post(url, json={"update_id": 1, "message": message}) as refused:
                    assert refused.status == 403  # no secret, no update
                break
            except aiohttp.ClientConnectorError:
                await asyncio.sleep(0.05)
        headers = {"X-Telegram-Bot-Api-Secret-Token": "s3cret"}
        async with session.post(url, json={"update_id": 2, "message": message}, headers=headers) as accepted:
            assert accepted.status == 200
    [image] = await bot.images_in(ANN, 1)
    assert image["caption"].startswith("a webhook cat")
    assert not bot.fake.sent("getUpdates")


async def test_each_user_is_answered_in_their_own_language(start: Start, held: Held) -> None:
    bot: Bot = await start(held=held)
    ivan = bot.fake.user(1003, "Ivan", "ru")
    chat = bot.fake.private(ivan)
    bot.fake.text(ivan, chat, "/quota")
    await bot.reply_in(1003, render("quota.status", "ru", images=0, images_limit=100, seconds=0, seconds_limit=1800))
    bot.fake.text(ivan, chat, "кот в шляпе")
    await bot.reply_in(1003, render("status.queued", "ru", position=1, eta=render("eta.moment", "ru")))
    bot.fake.text(bot.ann, bot.fake.private(bot.ann), "/frobnicate")
    await bot.reply_in(ANN, "I do not know /frobnicate")


async def test_language_chooses_the_language_easel_answers_in_until_auto(start: Start, held: Held) -> None:
    bot: Bot = await start(held=held)
    ivan = bot.fake.user(1004, "Ivan", "ru")
    chat = bot.fake.private(ivan)
    bot.fake.text(ivan, chat, "/language")
    await bot.reply_in(1004, render("language.current_platform", "ru", name="русский", languages=languages_list()))
    bot.fake.text(ivan, chat, "/language de")
    await bot.reply_in(1004, render("language.chosen", "de", name="Deutsch"))
    bot.fake.text(ivan, chat, "/quota")
    await bot.reply_in(1004, render("quota.status", "de", images=0, images_limit=100, seconds=0, seconds_limit=1800))
    bot.fake.text(ivan, chat, "кот в шляпе")
    await bot.reply_in(1004, render("status.queued", "de", position=1, eta=render("eta.moment", "de")))
    bot.fake.text(ivan, chat, "/language klingonisch")
    await bot.reply_in(1004, render("language.unknown", "de", value="klingonisch", languages=languages_list()))
    bot.fake.text(ivan, chat, "/language auto")
    await bot.reply_in(1004, render("language.following", "ru", name="русский"))
    bot.fake.text(ivan, chat, "/quota")  # the queued job counts already
    await bot.reply_in(1004, render("quota.status", "ru", images=1, images_limit=100, seconds=0, seconds_limit=1800))


async def test_token_is_shown_in_a_private_chat_only_and_works_until_revoked(start: Start, held: Held) -> None:
    bot: Bot = await start(held=held)
    ivan = bot.fake.user(1005, "Ivan", "ru")
    bot.fake.text(ivan, bot.fake.group(), "/token")
    await bot.reply_in(-1001, render("token.private_only", "ru"))
    chat = bot.fake.private(ivan)
    bot.fake.text(ivan, chat, "/token")
    shown = await bot.reply_in(1005, "easel_")
    token = next(word for word in shown.split() if word.startswith("easel_"))
    assert shown == render("token.created", "ru", token=token, url="http://127.0.0.1:8080/api/v1")
    access = bot.stack.core.access
    caller = await access.caller(token)
    assert caller is not None and (caller.user.platform, caller.user.platform_user_id) == ("telegram", "1005")
    bot.fake.text(ivan, chat, "/token revoke")
    await bot.reply_in(1005, render("token.revoked", "ru"))
    assert await access.caller(token) is None
    bot.fake.text(ivan, chat, "/token revoke")
    await bot.reply_in(1005, render("token.none", "ru"))


async def test_web_links_go_to_the_private_chat_and_open_moderation_for_a_group_admin(start: Start) -> None:
    bot: Bot = await start()
    group = bot.fake.group()
    bot.fake.admin(group, bot.ann)
    access = bot.stack.core.access

    async def link(user: dict[str, Any], chat: dict[str, Any]) -> str:
        bot.fake.text(user, chat, "/web")
        found = await bot.reply_in(user["id"], "/web/login?token=")
        return found.split()[-1]

    private = await link(bot.bob, bot.fake.private(bot.bob))
    assert private.startswith("http://127.0.0.1:8080/web/login?token=")
    sent = bot.fake.sent("sendMessage")[-1]
    assert sent.params["link_preview_options"] == {"is_disabled": True}
    admin = await link(bot.ann, group)
    await bot.reply_in(group["id"], render("web.sent_privately", "en"))
    for given, moderates in ((private, False), (admin, True)):
        session = await access.open_session(given.split("token=")[1])
        assert session is not None and await access.open_session(given.split("token=")[1]) is None
        caller = await access.session_caller(session)
        assert caller is not None and (caller.moderator is not None) == moderates
    assert caller.moderator is not None and caller.moderator.community_id == str(group["id"])
    stranger = bot.fake.user(1009, "Zed", "en")
    bot.fake.fail("sendMessage", 403, "Forbidden: bot can't initiate conversation with a user")
    bot.fake.text(stranger, group, "/web")
    await bot.reply_in(group["id"], render("web.open_private_chat", "en"))
