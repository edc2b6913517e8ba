"""What Telegram itself imposes, through the real python-telegram-bot client and the fake Bot API: flood control
(429 with `retry_after`), the length of every text (4096 characters, 1024 in a caption), and no idempotent send."""

from __future__ import annotations

import asyncio
import logging

import pytest
import test_telegram
from fake_telegram import BOT_USER, MESSAGE_LIMIT
from telegram.error import RetryAfter
from test_telegram import ANN, Bot, Held, Start

from bots.core.types import EventKind, JobEvent
from bots.moderation.policy import Moderator, Role
from bots.telegram import adapter as adapter_module
from bots.telegram.delivery import Delivery
from storage.records import DeliveryState

start = test_telegram.start
held = test_telegram.held

GROUP = -1001


def posted_texts(bot: Bot, chat_id: int) -> list[str]:
    """Every text message the bot posted in the chat, deleted ones too."""
    return [
        message["text"]
        for (chat, _), message in sorted(bot.fake.messages.items())
        if chat == chat_id and message["from"]["id"] == BOT_USER["id"] and "text" in message
    ]


async def test_a_429_storm_is_waited_out_and_the_result_is_delivered_once(start: Start) -> None:
    bot: Bot = await start()
    bot.fake.flood(ANN, calls=3, retry_after=1)  # the status message is refused three times in a row

    bot.fake.text(bot.ann, bot.fake.private(bot.ann), "a storm at sea --count 2")
    images = await bot.images_in(ANN, 2)
    [job_id] = await bot.job_ids(1)

    assert bot.fake.early == [], "nothing reached the chat before Telegram's retry_after had passed"
    assert (await bot.delivered(job_id)).delivery_state is DeliveryState.DELIVERED
    assert len(images) == 2 and len(bot.fake.sent("sendPhoto")) == 2
    assert len(posted_texts(bot, ANN)) == 1, "one status message, edited from then on"


async def test_a_429_storm_that_outlasts_the_retries_is_one_line_with_the_job_id(
    start: Start, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO)
    monkeypatch.setattr(adapter_module, "RATE_LIMIT_RETRIES", 1)  # two refusals outlast it, not six
    bot: Bot = await start()
    for _ in range(2):
        bot.fake.fail("sendPhoto", 429, "Too Many Requests: retry after 1", retry_after=1)

    bot.fake.text(bot.ann, bot.fake.private(bot.ann), "a storm that does not end")
    [job_id] = await bot.job_ids(1)
    while (job := await bot.stack.db.get_job(job_id)) is None or job.delivery_attempts == 0:
        await asyncio.sleep(0.01)

    assert "Traceback" not in caplog.text and not [record for record in caplog.records if record.exc_info]
    refused = [record.getMessage() for record in caplog.records if "RetryAfter" in record.getMessage()]
    assert refused == [f"delivering job {job_id} failed (attempt 1 of 10): {RetryAfter(1)!r}"], refused


async def test_after_a_failed_status_post_the_updates_post_nothing_and_the_result_still_comes(start: Start) -> None:
    bot: Bot = await start(telegram={"progress_interval_seconds": 0.0})
    bot.fake.fail("sendMessage", 502, "Bad Gateway")

    bot.fake.text(bot.ann, bot.fake.private(bot.ann), "a lighthouse")
    await bot.images_in(ANN, 1)

    assert posted_texts(bot, ANN) == [], "the failed post may have reached the chat: it is not made again"


async def test_an_ending_sent_on_its_own_is_not_sent_again_when_announced_again_after_a_restart(
    start: Start, held: Held
) -> None:
    """With no status message to edit, the ending is a message of its own; a kill before its delivery is recorded
    has it announced again to a new process, which finds it linked and edits the same text into it: no change."""
    bot: Bot = await start(held=held)
    bot.fake.fail("sendMessage", 502, "Bad Gateway")  # the status message
    chat = bot.fake.private(bot.ann)
    bot.fake.text(bot.ann, chat, "a storm")
    [job_id] = await bot.job_ids(1)
    await bot.fake.wait_for(lambda: held.batches, what="the job to reach the GPU")
    bot.fake.text(bot.ann, chat, "/cancel")
    await bot.delivered(job_id)
    restarted = Delivery(bot.stack.core, bot.adapter.delivery.bot, bot.stack.settings.telegram)

    await restarted.on_event(JobEvent(EventKind.CANCELLED, job_id, "telegram", str(ANN), str(ANN), None, "a storm"))
    assert len([text for text in posted_texts(bot, ANN) if "was cancelled" in text]) == 1


@pytest.mark.parametrize(
    ("option", "explained"),
    [
        ("--seed " + "9" * 4080, "is not allowed: a whole number from 0 to 4294967295."),
        ("--size " + "9" * 4000, "needs a size such as 768x512; got '99999"),
    ],
)
async def test_a_refusal_of_a_huge_value_fits_in_a_message_and_says_why(
    start: Start, option: str, explained: str
) -> None:
    bot: Bot = await start()

    bot.fake.text(bot.ann, bot.fake.private(bot.ann), f"a cat {option}")
    answer = await bot.reply_in(ANN, "…")

    assert explained in answer and len(answer) < 300


async def test_a_list_too_long_for_a_message_comes_whole_as_a_file(start: Start) -> None:
    bot: Bot = await start()
    group = bot.fake.group()
    bot.fake.admin(group, bot.ann)
    moderator = Moderator("telegram", str(ANN), str(GROUP), Role.ADMIN)
    words = [f"{index:03} " + "w" * 95 for index in range(50)]
    for word in words:
        await bot.stack.core.moderation.add_word(moderator, word)

    bot.fake.text(bot.ann, group, "/banwords")
    [document] = await bot.fake.wait_for(lambda: bot.fake.sent("sendDocument"), what="the list as a file")

    assert document.file_names["document"] == "banned-words.txt"
    listed = document.files["document"].decode()
    assert all(word in listed for word in words) and len(listed) > MESSAGE_LIMIT


async def test_telegram_refusing_a_call_inside_a_handler_is_one_line_and_no_traceback(
    start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    """The Edit button's question is refused by Telegram: a platform error, not a bug of easel's."""
    bot: Bot = await start()
    bot.fake.text(bot.ann, bot.fake.private(bot.ann), "a lighthouse")
    [image] = await bot.images_in(ANN, 1)
    [job_id] = await bot.job_ids(1)
    bot.fake.fail("sendMessage", 403, "Forbidden: bot was blocked by the user")

    bot.fake.press(bot.ann, image, f"edit:{job_id}:0")
    [alert] = await bot.fake.wait_for(lambda: [c for c in bot.fake.sent("answerCallbackQuery") if c.params.get("text")])
    assert "Telegram did not accept part of my answer" in alert.params["text"]
    assert "telegram refused a call: Forbidden('Forbidden: bot was blocked by the user')" in caplog.text
    assert "Traceback" not in caplog.text and not any(record.exc_info for record in caplog.records)
