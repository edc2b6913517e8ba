"""Moderation through the core: roles checked on the server side, banned words on every path into the queue,
community bans, community limits, and the audit log; on SQLite and on PostgreSQL (tests/databases.py)."""

from __future__ import annotations

import asyncio
import csv
import io
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from core_stack import Launch, core_settings
from PIL import Image

from bots.core.facade import Core
from bots.core.types import Actor, JobEvent, Place
from bots.errors import UserError
from bots.moderation.policy import Moderator, Role
from generation.asks import Ask, Options
from generation.engine import GenerationResult
from generation.previews import Preview
from generation.requests import GenerationRequest
from generation.translation import PromptTranslation
from generation.worker import CancelCheck, ProgressCallback
from storage.database import Database
from storage.records import JobState

GUILD = Place("test", "channel-1", "guild-1", "Guild")
OTHER = Place("test", "channel-2", "guild-2", "Other guild")
PRIVATE = Place("test", "dm-1")
ANN = Actor("test", "ann", "Ann", "en")
TRANSLATIONS = {"красный дракон": "a red dragon"}
BOB = Actor("test", "bob", "Bob", "en")


def moderator(role: Role, user_id: str = "mod", community: str | None = "guild-1") -> Moderator:
    return Moderator("test", user_id, community, role)


class StandIn:
    """Plain images at once, after a preview of each that scores as its images do; a prompt in `TRANSLATIONS`
    reports its English as the translation it ran on, and one that says "spicy" (its images) or "spicy input"
    (its input image) scores as NSFW. It returns once the listener has seen the batch's previews: the results'
    reports would otherwise overtake them (a progress event after a job's end is not announced)."""

    def __init__(self) -> None:
        self.previews_seen = threading.Semaphore(0)

    def __call__(
        self, batch: Sequence[GenerationRequest], on_progress: ProgressCallback, should_cancel: CancelCheck
    ) -> list[GenerationResult]:
        translations = [
            PromptTranslation("ru", TRANSLATIONS[r.prompt], "", ()) if r.prompt in TRANSLATIONS else None for r in batch
        ]
        previews = [
            Preview(Image.new("RGB", (16, 16)), 0.95 if _spicy(r) else 0.05, _input_score(r), translation)
            for r, translation in zip(batch, translations, strict=True)
        ]
        on_progress(0.5, previews)
        for _ in batch:
            assert self.previews_seen.acquire(timeout=10), "a preview never reached the listener"
        results = []
        for request, translation in zip(batch, translations, strict=True):
            images = tuple(Image.new("RGB", (request.width, request.height)) for _ in request.seeds)
            scores = tuple(0.95 if _spicy(request) else 0.05 for _ in images)
            results.append(GenerationResult(request, images, request.seeds, translation, scores, _input_score(request)))
        return results


def _spicy(request: GenerationRequest) -> bool:
    return "spicy" in request.prompt and "input" not in request.prompt


def _input_score(request: GenerationRequest) -> float | None:
    return 0.99 if "spicy input" in request.prompt else None


@dataclass
class Harness:
    core: Core
    db: Database
    stand_in: StandIn
    events: list[JobEvent] = field(default_factory=list)

    async def listener(self, event: JobEvent) -> None:
        self.events.append(event)
        if event.kind == "progress":
            self.stand_in.previews_seen.release()

    async def final(self, job_id: str) -> JobEvent:
        async def wait() -> JobEvent:
            while not (found := [e for e in self.events if e.job_id == job_id and e.kind in ("done", "failed")]):
                await asyncio.sleep(0.01)
            return found[0]

        return await asyncio.wait_for(wait(), 30)

    async def refused(self, actor: Actor, place: Place, ask: Ask, key: str = "moderation.blocked") -> None:
        with pytest.raises(UserError) as caught:
            await self.core.submit(actor, place, ask)
        assert caught.value.key == key


@pytest.fixture
async def core(database_url: str, stack: Launch, tmp_path: Path) -> Harness:
    moderation = {"owners": ["test:owner"], "banned_words": ["gore"]}
    stand_in = StandIn()
    settings = core_settings(tmp_path, moderation=moderation, storage={"database_url": database_url})
    running = await stack(settings, stand_in)
    harness = Harness(running.core, running.db, stand_in)
    running.core.listen("test", harness.listener)
    return harness


async def jobs(core: Harness) -> list[Any]:
    return await core.db.jobs_in_states(list(JobState))


# --- who may do what -------------------------------------------------------------------------------


async def test_a_plain_member_is_refused_every_moderation_command(core: Harness) -> None:
    member = moderator(Role.USER)
    moderation = core.core.moderation
    commands = [
        moderation.add_word(member, "cat"),
        moderation.remove_word(member, "cat"),
        moderation.words(member),
        moderation.ban(member, "bob", None, "spam", everywhere=False),
        moderation.unban(member, "bob", everywhere=False),
        moderation.set_nsfw(member, "spoiler"),
        moderation.set_limits(member, {"max_steps": 10}),
        moderation.log(member),
        moderation.log_csv(member),
    ]
    for command in commands:
        with pytest.raises(UserError) as caught:
            await command
        assert caught.value.key == "moderation.not_allowed"
    assert await core.db.moderation_log(None) == []


async def test_roles_allow_what_they_should_and_owners_come_from_the_config(core: Harness) -> None:
    moderation = core.core.moderation
    await moderation.add_word(moderator(Role.MODERATOR), "cat")
    with pytest.raises(UserError) as caught:
        await moderation.set_nsfw(moderator(Role.MODERATOR), "spoiler")  # community settings need an admin
    assert caught.value.key == "moderation.not_allowed"
    await moderation.set_nsfw(moderator(Role.ADMIN), "spoiler")
    with pytest.raises(UserError) as caught:
        await moderation.ban(moderator(Role.ADMIN), "bob", None, "spam", everywhere=True)  # owners only
    assert caught.value.key == "moderation.not_allowed"
    owner = moderator(Role.USER, user_id="owner")  # no role on the platform, but named in the config
    await moderation.ban(owner, "bob", None, "spam", everywhere=True)
    with pytest.raises(UserError) as caught:
        await moderation.ban(moderator(Role.ADMIN), "owner", None, "revenge", everywhere=False)
    assert caught.value.key == "moderation.not_allowed"
    with pytest.raises(UserError) as caught:
        await moderation.add_word(moderator(Role.ADMIN, community=None), "cat")
    assert caught.value.key == "moderation.community_only"


# --- banned words ------------------------------------------------------------------------------------


async def test_a_banned_word_blocks_later_prompts_in_that_community_only(core: Harness) -> None:
    await core.core.moderation.add_word(moderator(Role.MODERATOR), "dragon")
    await core.refused(ANN, GUILD, Ask("txt2img", "a red Dragon over the sea"))
    await core.refused(ANN, GUILD, Ask("txt2img", "a castle", Options(negative_prompt="no dragon")))
    receipt = await core.core.submit(ANN, OTHER, Ask("txt2img", "a red dragon over the sea"))
    assert (await core.final(receipt.job_id)).kind == "done"
    assert [job.prompt for job in await jobs(core)] == ["a red dragon over the sea"]
    assert (await core.core.quota(ANN)).images == 1
    community = await core.db.get_or_create_community("test", "guild-1")
    blocked = [entry for entry in await core.db.moderation_log(community.id) if entry.action == "blocked"]
    assert len(blocked) == 2 and blocked[0].details["pattern"] == "dragon"


async def test_global_banned_words_block_everywhere_and_an_empty_list_blocks_nothing(core: Harness) -> None:
    for place in (GUILD, OTHER, PRIVATE):
        await core.refused(BOB, place, Ask("txt2img", "GORE everywhere"))
    receipt = await core.core.submit(BOB, PRIVATE, Ask("txt2img", "a gorge at dawn"))  # a word inside a word
    assert (await core.final(receipt.job_id)).kind == "done"


async def test_every_path_into_the_queue_is_screened(core: Harness, photo: Image.Image) -> None:
    buffer = io.BytesIO()
    photo.save(buffer, "PNG")
    image = buffer.getvalue()
    first = await core.core.submit(ANN, GUILD, Ask("txt2img", "a knight"))
    await core.final(first.job_id)
    await core.core.moderation.add_word(moderator(Role.MODERATOR), "knight")
    with pytest.raises(UserError):
        await core.core.reroll(ANN, GUILD, first.job_id)  # the old prompt is banned now
    with pytest.raises(UserError):
        await core.core.variations(BOB, GUILD, first.job_id)
    with pytest.raises(UserError):
        await core.core.edit(BOB, GUILD, first.job_id, 0, "the knight at night", Options())
    await core.refused(ANN, GUILD, Ask("mix", "", mix=(image, image, "a knight")))
    await core.refused(ANN, GUILD, Ask("img2img", "a knight", image=image))
    assert len(await jobs(core)) == 1


async def test_a_banned_word_in_the_translation_stops_the_result(core: Harness) -> None:
    await core.core.moderation.add_word(moderator(Role.MODERATOR), "dragon")
    receipt = await core.core.submit(ANN, GUILD, Ask("txt2img", "красный дракон"))
    final = await core.final(receipt.job_id)
    assert final.kind == "failed" and final.error_key == "moderation.blocked" and not final.files
    job = await core.db.get_job(receipt.job_id)
    assert job is not None and job.state is JobState.FAILED and job.error_code == "moderation.blocked"
    assert (await core.core.quota(ANN)).images == 0
    [progress] = [e for e in core.events if e.job_id == receipt.job_id and e.kind == "progress"]
    assert progress.preview is None  # judged as the result will be: the translation holds a banned word
    fine = await core.core.submit(ANN, GUILD, Ask("txt2img", "a quiet sea"))
    await core.final(fine.job_id)
    [shown] = [e for e in core.events if e.job_id == fine.job_id and e.kind == "progress"]
    assert shown.preview is not None


async def test_bad_patterns_are_refused_when_added(core: Harness) -> None:
    moderation = core.core.moderation
    for pattern, regex in (("  ", False), ("(unclosed", True)):
        with pytest.raises(UserError) as caught:
            await moderation.add_word(moderator(Role.MODERATOR), pattern, regex=regex)
        assert caught.value.key == "moderation.bad_pattern"
    await moderation.add_word(moderator(Role.MODERATOR), r"dr[a4]g[o0]n", regex=True)
    await core.refused(ANN, GUILD, Ask("txt2img", "a dr4g0n"))
    assert [word.text for word in await moderation.remove_word(moderator(Role.MODERATOR), r"dr[a4]g[o0]n")] == []
    with pytest.raises(UserError) as caught:
        await moderation.remove_word(moderator(Role.MODERATOR), "never added")
    assert caught.value.key == "moderation.no_such_word"


# --- bans and limits ---------------------------------------------------------------------------------


async def test_a_community_ban_keeps_the_user_out_of_that_community_only(core: Harness) -> None:
    moderation = core.core.moderation
    await moderation.ban(moderator(Role.MODERATOR), "bob", None, "spam", everywhere=False)
    await core.refused(BOB, GUILD, Ask("txt2img", "a cat"), key="user.banned")
    receipt = await core.core.submit(BOB, OTHER, Ask("txt2img", "a cat"))
    assert (await core.final(receipt.job_id)).kind == "done"
    until = datetime.now(UTC) + timedelta(hours=1)
    await moderation.ban(moderator(Role.MODERATOR), "bob", until, "cool down", everywhere=False)
    await core.refused(BOB, GUILD, Ask("txt2img", "a cat"), key="user.banned_until")
    await moderation.unban(moderator(Role.MODERATOR), "bob", everywhere=False)
    receipt = await core.core.submit(BOB, GUILD, Ask("txt2img", "a cat"))
    assert (await core.final(receipt.job_id)).kind == "done"
    with pytest.raises(UserError) as caught:
        await moderation.unban(moderator(Role.MODERATOR), "bob", everywhere=False)
    assert caught.value.key == "moderation.not_banned"


async def test_community_limits_override_the_global_ones(core: Harness) -> None:
    moderation = core.core.moderation
    limits = await moderation.set_limits(moderator(Role.ADMIN), {"max_steps": 3, "images_per_day": 2})
    assert limits == {"max_steps": 3, "images_per_day": 2}
    await core.refused(ANN, GUILD, Ask("txt2img", "a cat", Options(steps=4)), key="request.invalid")
    receipt = await core.core.submit(ANN, GUILD, Ask("txt2img", "a cat"))  # the default shrinks to fit
    await core.final(receipt.job_id)
    job = await core.db.get_job(receipt.job_id)
    assert job is not None and job.parameters["steps"] == 3
    await core.refused(ANN, GUILD, Ask("txt2img", "two more", Options(count=2)), key="quota.images")
    receipt = await core.core.submit(ANN, OTHER, Ask("txt2img", "elsewhere", Options(steps=4, count=2)))
    assert (await core.final(receipt.job_id)).kind == "done"
    for changes, key in (({"max_steps": 10_000}, "moderation.limit_range"), ({"colour": 1}, "moderation.bad_limit")):
        with pytest.raises(UserError) as caught:
            await moderation.set_limits(moderator(Role.ADMIN), changes)
        assert caught.value.key == key
    assert await moderation.set_limits(moderator(Role.ADMIN), {"max_steps": None}) == {"images_per_day": 2}


# --- the audit log -----------------------------------------------------------------------------------


async def test_every_action_is_in_the_audit_log_and_its_csv_export(core: Harness) -> None:
    moderation = core.core.moderation
    mod = moderator(Role.ADMIN)
    await moderation.add_word(mod, "dragon")
    await moderation.ban(mod, "bob", None, "spam", everywhere=False)
    await moderation.unban(mod, "bob", everywhere=False)
    await moderation.set_nsfw(mod, "nsfw_channels")
    await moderation.set_limits(mod, {"max_steps": 20})
    await moderation.remove_word(mod, "dragon")
    await core.refused(ANN, GUILD, Ask("txt2img", "gore"))
    actions = [entry.action for entry in await moderation.log(mod)]
    assert actions == ["blocked", "banword.remove", "limits", "nsfw", "unban", "ban", "banword.add"]
    rows = list(csv.reader(io.StringIO((await moderation.log_csv(mod)).decode("utf-8-sig"))))
    assert rows[0] == ["time", "action", "target", "actor", "reason", "details"] and len(rows) == 8
    assert rows[-1][1] == "banword.add" and rows[-1][3] == "test mod"  # people by platform account
    ban = next(entry for entry in await moderation.log(mod) if entry.action == "ban")
    assert (ban.target, ban.actor, ban.reason) == ("test bob", "test mod", "spam")  # Bob never wrote here
    with pytest.raises(UserError) as caught:
        await moderation.set_nsfw(mod, "sometimes")
    assert caught.value.key == "moderation.bad_nsfw"


async def test_moderators_delete_and_cancel_any_job_of_their_community_and_purge_a_user(core: Harness) -> None:
    made = []
    for prompt in ("one", "two"):
        receipt = await core.core.submit(BOB, GUILD, Ask("txt2img", prompt))
        made.append((await core.final(receipt.job_id)).job_id)
    elsewhere = await core.core.submit(BOB, OTHER, Ask("txt2img", "three"))
    await core.final(elsewhere.job_id)
    await core.core.link_message("test", "channel-1", "m1", made[0], 0)
    mod = moderator(Role.MODERATOR, user_id="mia")
    mia = Actor("test", "mia")
    for who, key in ((moderator(Role.USER, user_id="mia"), "job.not_yours"), (None, "job.not_yours")):
        with pytest.raises(UserError) as caught:
            await core.core.delete(mia, made[0], who)
        assert caught.value.key == key
    with pytest.raises(UserError):
        await core.core.delete(mia, elsewhere.job_id, mod)  # another community's job
    links = await core.core.delete(mia, made[0], mod)
    assert [link.message_id for link in links] == ["m1"]
    purged = await core.core.purge(mod, "bob")
    assert purged == []  # the second job had no message; the first was deleted already
    states = {job.id: job.deleted_at is not None for job in await jobs(core)}
    assert states == {made[0]: True, made[1]: True, elsewhere.job_id: False}
    community = await core.db.get_or_create_community("test", "guild-1")
    assert [entry.action for entry in await core.db.moderation_log(community.id)] == ["purge", "delete"]


async def test_a_channel_allowlist_closes_the_other_channels(core: Harness) -> None:
    moderation = core.core.moderation
    assert await moderation.set_channels(moderator(Role.ADMIN), ["channel-9", "channel-1"]) == [
        "channel-1",
        "channel-9",
    ]
    await core.refused(
        ANN, Place("test", "channel-2", "guild-1"), Ask("txt2img", "a cat"), key="moderation.channel_closed"
    )
    receipt = await core.core.submit(ANN, GUILD, Ask("txt2img", "a cat"))
    assert (await core.final(receipt.job_id)).kind == "done"
    assert await moderation.set_channels(moderator(Role.ADMIN), []) == []
    receipt = await core.core.submit(ANN, Place("test", "channel-2", "guild-1"), Ask("txt2img", "a cat"))
    assert (await core.final(receipt.job_id)).kind == "done"
    with pytest.raises(UserError):
        await moderation.set_channels(moderator(Role.MODERATOR), ["channel-1"])


async def test_the_nsfw_policy_blocks_spoilers_or_allows_per_community_and_channel(core: Harness) -> None:
    moderation = core.core.moderation
    blocked = await core.core.submit(ANN, GUILD, Ask("txt2img", "something spicy"))  # the default: blocked
    final = await core.final(blocked.job_id)
    assert (final.kind, final.error_key, final.files) == ("failed", "moderation.nsfw", ())
    assert (await core.core.quota(ANN)).images == 0
    fine = await core.core.submit(ANN, GUILD, Ask("txt2img", "a calm lake"))
    assert (await core.final(fine.job_id)).spoiler is False

    await moderation.set_nsfw(moderator(Role.ADMIN), "nsfw_channels")
    in_nsfw_channel = await core.core.submit(ANN, replace(GUILD, nsfw=True), Ask("txt2img", "spicy again"))
    assert (await core.final(in_nsfw_channel.job_id)).kind == "done"
    elsewhere = await core.core.submit(ANN, GUILD, Ask("txt2img", "spicy here"))
    assert (await core.final(elsewhere.job_id)).error_key == "moderation.nsfw"

    await moderation.set_nsfw(moderator(Role.ADMIN), "spoiler")
    hidden = await core.core.submit(ANN, GUILD, Ask("txt2img", "spicy hidden"))
    done = await core.final(hidden.job_id)
    assert done.kind == "done" and done.spoiler is True
    outputs = await core.db.outputs_of(hidden.job_id)
    assert [output.nsfw_score for output in outputs] == [0.95]
    community = await core.db.get_or_create_community("test", "guild-1")
    blocks = [e for e in await core.db.moderation_log(community.id) if e.action == "blocked"]
    assert len(blocks) == 2 and blocks[0].reason == "nsfw image"
    previews = {e.job_id: (e.preview, e.spoiler) for e in core.events if e.kind == "progress"}
    assert previews[blocked.job_id] == (None, False) and previews[elsewhere.job_id] == (None, False)
    shown, spoiler = previews[hidden.job_id]
    assert shown is not None and shown.startswith(b"\xff\xd8") and spoiler is True  # a JPEG, behind a spoiler
    assert previews[fine.job_id][0] is not None and previews[fine.job_id][1] is False
    assert previews[in_nsfw_channel.job_id][0] is not None


async def test_an_nsfw_input_image_counts_too(core: Harness, photo: Image.Image) -> None:
    buffer = io.BytesIO()
    photo.save(buffer, "PNG")
    receipt = await core.core.submit(ANN, GUILD, Ask("img2img", "a spicy input redrawn", image=buffer.getvalue()))
    assert (await core.final(receipt.job_id)).error_key == "moderation.nsfw"
    [progress] = [e for e in core.events if e.job_id == receipt.job_id and e.kind == "progress"]
    assert progress.preview is None  # the input's score counts for its previews too
