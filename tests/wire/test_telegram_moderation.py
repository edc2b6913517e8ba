"""Moderation on Telegram end to end: the real python-telegram-bot client against the fake Bot API, with
group administrators as the fake's getChatAdministrators names them, through the real core."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import test_telegram
from test_telegram import ANN, BLACK, BOB, Bot, Held, Start, jpeg

from bots.config import TierSettings
from bots.core.types import JobEvent
from bots.texts import render
from storage.records import JobState

CAROL = 1003
GROUP = -1001
OTHER_GROUP = -1002
REFUSED = render("moderation.not_allowed")

start = test_telegram.start
held = test_telegram.held


async def ask(
    bot: Bot, user: dict[str, Any], chat: dict[str, Any], text: str, *, photo: bool = False, **sent: Any
) -> str:
    """Send `text` as `user` (as a photo's caption with `photo`) and return the bot's answer to that message."""
    if photo:
        message = bot.fake.photo(user, chat, jpeg(BLACK), text, **sent)
    else:
        message = bot.fake.text(user, chat, text, **sent)
    return await bot.fake.wait_for(
        lambda: next(
            (
                answer.get("text", answer.get("caption", ""))
                for answer in bot.fake.bot_messages(chat["id"])
                if answer.get("reply_to_message", {}).get("message_id") == message["message_id"]
            ),
            None,
        ),
        what=f"an answer to {text!r}",
    )


async def status_of(bot: Bot, chat_id: int, job_id: str) -> dict[str, Any]:
    """The bot's status message of a job, with its Cancel button."""
    return await bot.fake.wait_for(
        lambda: next(
            (m for m in bot.fake.bot_messages(chat_id) if f"cancel:{job_id}" in str(m.get("reply_markup"))), None
        ),
        what=f"the status message of {job_id}",
    )


async def community_id(bot: Bot, chat_id: int) -> int:
    return (await bot.stack.db.get_or_create_community("telegram", str(chat_id))).id


async def test_a_member_is_refused_every_moderation_command_and_others_jobs(start: Start, held: Held) -> None:
    bot: Bot = await start(held=held)
    group = bot.fake.group(GROUP)
    bot.fake.admin(group, bot.ann, creator=True)
    bot.fake.text(bot.ann, group, "/imagine a cat")
    [job_id] = await bot.job_ids(1)
    bot.fake.press(bot.bob, await status_of(bot, GROUP, job_id), f"cancel:{job_id}")
    [alert] = await bot.fake.wait_for(lambda: bot.fake.sent("answerCallbackQuery"))
    assert "someone else" in alert.params["text"] and alert.params["show_alert"] is True
    assert "someone else" in await ask(bot, bot.bob, group, f"/cancel {job_id}")
    held.release()
    [image] = await bot.images_in(GROUP, 1)
    assert "someone else" in await ask(bot, bot.bob, group, "/delete", reply_to=image)
    anns_message = bot.fake.text(bot.ann, group, "hello all")
    commands = [
        "/banword cat",
        "/banword --regex c[a@]t",
        "/unbanword cat",
        "/banwords",
        f"/ban {ANN} 2d spamming",
        f"/unban {ANN}",
        "/nsfw spoiler",
        "/nsfw",
        "/limits",
        "/limits --max-steps 10",
        "/modlog",
        "/modlog csv",
        f"/purge {ANN}",
        "/addstyle ink ink drawing of {prompt}",
        "/removestyle ink",
        "/negative text",
        "/negative",
    ]
    for command in commands:
        assert await ask(bot, bot.bob, group, command) == REFUSED, command
    for command in ("/ban", "/unban", "/purge"):
        assert await ask(bot, bot.bob, group, command, reply_to=anns_message) == REFUSED, command
    assert await ask(bot, bot.bob, group, "/banword cat", photo=True) == REFUSED  # a caption is a command too
    assert "/banword" in await ask(bot, bot.bob, group, "/modhelp")  # help hides nothing the core guards
    private = bot.fake.private(bot.bob)
    assert await ask(bot, bot.bob, private, "/banword cat") == render("moderation.community_only")
    job = await bot.stack.db.get_job(job_id)
    assert job is not None and job.state is JobState.DONE and job.deleted_at is None
    assert bot.fake.images(GROUP) == [image]
    community = await bot.stack.db.get_or_create_community("telegram", str(GROUP))
    assert community.settings == {} and await bot.stack.db.moderation_log(community.id) == []
    assert len(bot.fake.sent("getChatAdministrators")) == 1  # every check within the cache's minute
    menus = {str(call.params.get("scope")): call.params["commands"] for call in bot.fake.sent("setMyCommands")}
    general = [command["command"] for command in menus["None"]]
    admins = [command["command"] for command in menus[str({"type": "all_chat_administrators"})]]
    assert "banword" not in general and admins[: len(general)] == general
    assert {"banword", "ban", "modlog", "purge", "delete", "modhelp"} <= set(admins)


async def test_an_admin_moderates_anyones_jobs_and_the_log_shows_every_action(start: Start, held: Held) -> None:
    bot: Bot = await start(held=held)
    group = bot.fake.group(GROUP)
    bot.fake.admin(group, bot.ann)
    bot.fake.text(bot.bob, group, "/imagine a fox")
    [fox] = await bot.job_ids(1)
    bot.fake.text(bot.bob, group, "/imagine an owl")
    _, owl = await bot.job_ids(2)
    bot.fake.press(bot.ann, await status_of(bot, GROUP, fox), f"cancel:{fox}")
    outcomes = {render(f"cancel.{outcome}", job_id=owl[:8]) for outcome in ("queued", "running")}
    assert await ask(bot, bot.ann, group, f"/cancel {owl}") in outcomes  # batched with the fox or not
    await bot.fake.wait_for(lambda: sum("was cancelled" in text for text in bot.fake.texts(GROUP)) == 2)
    held.release()
    bot.fake.text(bot.bob, group, "/imagine a tree")
    [tree] = await bot.images_in(GROUP, 1)
    assert "are deleted" in await ask(bot, bot.ann, group, "/delete", reply_to=tree)
    assert (GROUP, tree["message_id"]) in bot.fake.deleted
    bobs = bot.fake.text(bot.bob, group, "/imagine a lake --count 2")
    await bot.images_in(GROUP, 2)
    assert "messages removed" in await ask(bot, bot.ann, group, "/purge", reply_to=bobs)
    assert bot.fake.images(GROUP) == []
    jobs = {job.prompt: job for job in await bot.stack.db.jobs_in_states(list(JobState))}
    assert jobs["a fox"].state is JobState.CANCELLED and jobs["an owl"].state is JobState.CANCELLED
    assert jobs["a tree"].deleted_at is not None and jobs["a lake"].deleted_at is not None
    assert "dragon" in await ask(bot, bot.ann, group, "/banword dragon")
    assert await ask(bot, bot.bob, group, "/imagine a dragon") == render("moderation.blocked")
    await ask(bot, bot.ann, group, "/unbanword dragon")
    await ask(bot, bot.ann, group, f"/ban {BOB} 1h rude")
    await ask(bot, bot.ann, group, f"/unban {BOB}")
    await ask(bot, bot.ann, group, "/nsfw spoiler")
    await ask(bot, bot.ann, group, "/limits --max-steps 20")
    actions = [
        "cancel",
        "cancel",
        "delete",
        "purge",
        "banword.add",
        "blocked",
        "banword.remove",
        "ban",
        "unban",
        "nsfw",
        "limits",
    ]
    shown = await ask(bot, bot.ann, group, "/modlog")
    lines = shown.splitlines()[1:]
    assert [line.split()[2] for line in reversed(lines)] == actions  # newest first
    assert "rude" in shown and "pattern=dragon" in shown
    bot.fake.text(bot.ann, group, "/modlog csv")
    [upload] = await bot.fake.wait_for(lambda: bot.fake.sent("sendDocument"))
    assert upload.file_names["document"] == f"modlog-{GROUP}.csv"
    rows = list(csv.DictReader(io.StringIO(upload.files["document"].decode("utf-8-sig"))))
    assert [row["action"] for row in reversed(rows)] == actions


async def test_a_banned_word_blocks_prompts_in_that_group_only(start: Start) -> None:
    bot: Bot = await start()
    group, other = bot.fake.group(GROUP), bot.fake.group(OTHER_GROUP, "Others")
    bot.fake.admin(group, bot.ann)
    await ask(bot, bot.ann, group, "/banword dragon")
    await ask(bot, bot.ann, group, "/banword --regex sp[a4]+m", photo=True)
    listed = await ask(bot, bot.ann, group, "/banwords")
    assert "• dragon" in listed and "sp[a4]+m (regular expression)" in listed
    assert "cannot be a banned word" in await ask(bot, bot.ann, group, "/banword --regex (unclosed")
    blocked = render("moderation.blocked")
    assert await ask(bot, bot.bob, group, "/imagine a red Dragon") == blocked
    assert await ask(bot, bot.bob, group, "@easel_bot spaaam in the sky") == blocked
    assert await ask(bot, bot.bob, group, "/imagine a dragonfly") != blocked  # a word inside another word
    bot.fake.text(bot.bob, other, "/imagine a red dragon")
    bot.fake.text(bot.bob, bot.fake.private(bot.bob), "a red dragon")
    await bot.images_in(OTHER_GROUP, 1)
    [own] = await bot.images_in(BOB, 1)
    assert "are deleted" in await ask(bot, bot.bob, bot.fake.private(bot.bob), "/delete", reply_to=own)
    assert bot.fake.images(BOB) == []
    prompts = sorted(job.prompt for job in await bot.stack.db.jobs_in_states(list(JobState)))
    assert prompts == ["a dragonfly", "a red dragon", "a red dragon"]


async def test_bans_timed_permanent_and_global_keep_requests_out_of_the_queue(start: Start) -> None:
    bot: Bot = await start(moderation={"owners": [f"telegram:{CAROL}"]})
    group = bot.fake.group(GROUP)
    bot.fake.admin(group, bot.ann)
    carol = bot.fake.user(CAROL, "Carol")
    bobs = bot.fake.text(bot.bob, group, "hi")
    banned = await ask(bot, bot.ann, group, "/ban 2d spamming", reply_to=bobs)
    assert banned.startswith("Bob is banned from making images in this group until ") and "spamming" in banned
    refusal = await ask(bot, bot.bob, group, "/imagine a cat")
    assert refusal.startswith("You cannot make images here until ") and refusal.endswith("Reason: spamming.")
    assert await bot.stack.db.jobs_in_states(list(JobState)) == []
    bob = await bot.stack.db.get_or_create_user("telegram", str(BOB))
    ban = await bot.stack.db.community_ban(await community_id(bot, GROUP), bob.id)
    assert ban is not None and ban.until is not None
    assert abs(ban.until.replace(tzinfo=UTC) - datetime.now(UTC) - timedelta(days=2)) < timedelta(minutes=1)
    await bot.stack.db.ban_in_community(ban.community_id, bob.id, datetime.now(UTC) - timedelta(minutes=1), "spam")
    bot.fake.text(bot.bob, group, "/imagine after the ban")  # the ban's time is up
    await bot.images_in(GROUP, 1)
    assert "until unbanned" in await ask(bot, bot.ann, group, f"/ban {BOB}")
    assert (await ask(bot, bot.bob, group, "/imagine a dog")).startswith("You cannot make images here.")
    assert "again" in await ask(bot, bot.ann, group, f"/unban {BOB}")
    assert await ask(bot, bot.ann, group, f"/unban {BOB}") == render("moderation.not_banned")
    assert await ask(bot, bot.ann, group, f"/ban {BOB} --global") == REFUSED  # owners only
    assert "everywhere" in await ask(bot, carol, group, f"/ban {BOB} 1w rude --global")
    private = await ask(bot, bot.bob, bot.fake.private(bot.bob), "a cat")
    assert private.startswith("You cannot make images here until ") and "rude" in private
    assert [job.prompt for job in await bot.stack.db.jobs_in_states(list(JobState))] == ["after the ban"]


async def test_nsfw_spoiler_limits_and_the_admin_cache(start: Start) -> None:
    bot: Bot = await start(moderation={"admin_cache_seconds": 0})
    group = bot.fake.group(GROUP)
    bot.fake.admin(group, bot.ann)
    assert await ask(bot, bot.bob, group, "/nsfw spoiler") == REFUSED
    bot.fake.admin(group, bot.bob)  # promoted: with no cache, the next command knows
    assert (await ask(bot, bot.bob, group, "/nsfw")).startswith("This group's NSFW policy: blocked.")
    assert "spoiler now" in await ask(bot, bot.bob, group, "/nsfw spoiler")
    assert "does not exist" in await ask(bot, bot.bob, group, "/nsfw sometimes")
    assert len(bot.fake.sent("getChatAdministrators")) == 4
    assert "no limits of its own" in await ask(bot, bot.ann, group, "/limits")
    changed = await ask(bot, bot.ann, group, "/limits --images-per-day 20 --max-size 768x768 --max-steps 40")
    assert changed.endswith("--images-per-day 20, --max-width 768, --max-height 768, --max-steps 40.")
    assert "--max-steps" not in await ask(bot, bot.ann, group, "/limits --max-steps none")
    assert "from 0 to" in await ask(bot, bot.ann, group, "/limits --max-steps 5000")
    assert "cannot read --colour" in await ask(bot, bot.ann, group, "/limits --colour red")
    assert "--max-width 768" in await ask(bot, bot.ann, group, "/limits")
    adapter = bot.adapter

    async def spoiling(event: JobEvent) -> None:  # the core's classifier found the image NSFW here
        await adapter.delivery.on_event(replace(event, spoiler=event.kind == "done"))

    bot.stack.core.listen("telegram", spoiling)
    bot.fake.text(bot.ann, group, "/imagine a beach")
    [image] = await bot.images_in(GROUP, 1)
    assert image["has_media_spoiler"] is True and bot.fake.sent("sendPhoto")[0].params["has_spoiler"] is True


async def test_owners_put_users_in_tiers_anywhere_a_list_gives_one_and_the_log_shows_it(start: Start) -> None:
    tiers = {
        "default": TierSettings(images_per_day=100),
        "patron": TierSettings(images_per_day=7, telegram_users=[ANN]),
        "gold": TierSettings(images_per_day=9),
    }
    bot: Bot = await start(moderation={"owners": [f"telegram:{CAROL}"]}, tiers=tiers)
    group = bot.fake.group(GROUP)
    bot.fake.admin(group, bot.ann)
    carol = bot.fake.user(CAROL, "Carol")
    quota = "Today you have made 0 of {} images"
    assert quota.format(7) in await ask(bot, bot.ann, bot.fake.private(bot.ann), "/quota")  # the Telegram list
    assert quota.format(100) in await ask(bot, bot.bob, bot.fake.private(bot.bob), "/quota")

    in_private = bot.fake.private(carol)
    assert await ask(bot, carol, in_private, f"/tier {BOB} gold") == f"{BOB} is in tier gold now (before: default)."
    assert quota.format(9) in await ask(bot, bot.bob, bot.fake.private(bot.bob), "/quota")
    bobs = bot.fake.text(bot.bob, group, "hi")
    assert await ask(bot, carol, group, "/tier", reply_to=bobs) == "Bob is in tier gold."
    assert await ask(bot, carol, group, "/tier patron", reply_to=bobs) == "Bob is in tier patron now (before: gold)."
    assert await ask(bot, bot.ann, group, f"/tier {BOB} default") == render("moderation.owners_only")  # an admin
    unknown = await ask(bot, carol, in_private, f"/tier {BOB} platinum")
    assert unknown == "There is no tier platinum; tiers: default, gold, patron."
    assert "/tier" in await ask(bot, carol, in_private, "/tier")  # whom? the usage
    log = await ask(bot, bot.ann, group, "/modlog")
    assert "tier" in log and "from=gold, to=patron" in log
