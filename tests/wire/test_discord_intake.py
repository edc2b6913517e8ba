"""Durable intake on Discord: what easel acknowledged is recorded first, so a kill loses nothing that Discord
will not send again; what a restart can no longer answer is let go with one line."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
import test_discord
from core_stack import Launch
from easel_process import EaselProcess
from fake_discord import ANSWER_WINDOW, APPLICATION_ID, CHANNEL_ID, FakeDiscord, FakeMessage
from test_discord import ALICE, ALICE_ID, TOKEN, StartBot, settings_for

from bots.discord.intake import stored

_endpoints_restored = test_discord._endpoints_restored
fake = test_discord.fake
start_bot = test_discord.start_bot

SOURCE = f"discord:{APPLICATION_ID}"


async def test_an_imagine_deferred_just_before_a_kill_is_answered_once_after_the_restart(
    tmp_path: Path, fake: FakeDiscord, stack: Launch, start_bot: StartBot, caplog: pytest.LogCaptureFixture
) -> None:
    """`easel run` is killed; the restart is in this process, over the same database (a second `easel run` would
    only add its start-up time)."""
    caplog.set_level(logging.INFO)
    settings = settings_for(fake, tmp_path)
    config = (
        f'[model]\npreset = "tiny"\n[storage]\ndatabase_url = "{settings.storage.database_url}"\n'
        f'outputs_dir = "{settings.storage.outputs_dir}"\n'
        f'[discord]\napi_base_url = "{fake.api_base_url}"\ngateway_url = "{fake.gateway_url}"\n'
    )
    fake.callbacks_held = True  # Discord shows the deferral; easel is killed before it hears back
    easel = await EaselProcess.start(tmp_path, config, {"DISCORD_BOT_TOKEN": TOKEN})
    try:
        await fake.wait_for(lambda: fake.connected, timeout=120, what="easel on the gateway")
        interaction = await fake.command("imagine", {"prompt": "a kept cat"}, member=ALICE)
        await fake.wait_for(lambda: interaction.response_type is not None, what="the deferral")
    finally:
        await easel.kill()
    fake.callbacks_held = False
    assert "Traceback" not in easel.log, easel.log

    bot = await start_bot(core=await stack(settings, recover=True))
    result = await bot.result_of(interaction)

    assert fake.results() == [result] and result.id == interaction.original_id, "in the deferred response, once"
    assert [job.prompt for job in await bot.core.core.history(bot.actor(ALICE_ID))] == ["a kept cat"]
    callback = ("POST", f"/interactions/{interaction.id}/{interaction.token}/callback")
    assert fake.requests.count(callback) == 2, "deferred, then found deferred already after the restart"
    assert f"discord: {interaction.id} was received before a stop and is handled again" in caplog.text
    assert not [record for record in caplog.records if record.exc_info or record.levelno >= logging.ERROR]


async def test_a_restart_handles_again_what_it_can_and_lets_go_of_the_rest_with_one_line(
    start_bot: StartBot, caplog: pytest.LogCaptureFixture
) -> None:
    """Recorded by a process that was killed: an edit form's submission it had deferred, a reply to one of the
    bot's images, an interaction it never acknowledged (Discord told its user it failed), and one whose token
    has expired."""
    caplog.set_level(logging.INFO)
    first = await start_bot()
    fake = first.fake
    result = await first.result_of(await fake.command("imagine", {"prompt": "a cat"}, member=ALICE))
    job_id = (await first.link_of(result)).job_id
    opened = await fake.press(result, f"easel:edit:{job_id}", member=ALICE)
    await fake.wait_for(lambda: opened.modal, what="the edit form")
    await first.stop()

    form = await fake.submit_modal(opened, ["in red"], member=ALICE, dispatched=False)
    async with aiohttp.ClientSession() as session:  # as the killed process did
        callback = f"{fake.api_base_url}/interactions/{form.id}/{form.token}/callback"
        async with session.post(callback, json={"type": 5, "data": {}}) as response:
            assert response.status == 200
    reply = FakeMessage(fake.snowflake(), CHANNEL_ID, ALICE["user"], "in blue", reference=result.id)
    fake.messages[reply.id] = reply
    message = {**fake.payload(reply), "member": {key: value for key, value in ALICE.items() if key != "user"}}
    unanswered = await fake.command("imagine", {"prompt": "a lost cat"}, member=ALICE, dispatched=False)
    unanswered.dispatched -= ANSWER_WINDOW
    expired = await fake.command(
        "imagine", {"prompt": "an old cat"}, member=ALICE, age=timedelta(minutes=16), dispatched=False
    )
    core = first.core.core
    for update_id, event, data in [
        (form.id, "INTERACTION_CREATE", form.payload),
        (reply.id, "MESSAGE_CREATE", message),
        (unanswered.id, "INTERACTION_CREATE", unanswered.payload),
        (expired.id, "INTERACTION_CREATE", expired.payload),
    ]:
        await core.receive_update(SOURCE, update_id, stored(event, data))

    await start_bot(core=first.core)
    await fake.wait_for(lambda: len(fake.results()) == 3, what="both edits")

    in_red = fake.original(form)
    assert in_red is not None and in_red in fake.results() and "in red" in in_red.content
    (in_blue,) = [message for message in fake.results() if message.reference == reply.id]
    assert "in blue" in in_blue.content, "shown in easel's one answer to the reply"
    assert sum(message.reference == reply.id for message in fake.messages.values()) == 1
    prompts = sorted(job.prompt for job in await core.history(first.actor(ALICE_ID)))
    assert prompts == ["a cat", "in blue", "in red"]
    for _ in range(100):
        if not await core.unhandled_updates(SOURCE):
            break
        await asyncio.sleep(0.02)
    assert await core.unhandled_updates(SOURCE) == []
    warnings = [
        record.getMessage()
        for record in caplog.records
        if record.levelno >= logging.WARNING and record.name.startswith("bots.")
    ]
    assert sorted(warnings) == [
        f"discord /imagine (interaction {unanswered.id}) was not acknowledged in time; Discord told its user it failed",
        f"discord: interaction {expired.id} (/imagine) was received before a stop; its token has expired, so its "
        "user cannot be answered any more",
    ], warnings
    assert not any(f"/interactions/{expired.id}/" in path for _, path in fake.requests)


async def test_a_clean_stop_lets_what_was_taken_be_answered_and_marked(start_bot: StartBot) -> None:
    """Not handled again after the restart: its answer would be given twice."""
    bot = await start_bot()
    fake = bot.fake
    fake.callbacks_held = True
    asked = await fake.command("queue", member=ALICE)
    await fake.wait_for(lambda: asked.response_type is not None, what="the deferral")

    stopping = asyncio.create_task(bot.stop())
    await asyncio.sleep(0.3)
    assert not stopping.done(), "the stop waits for the handling"
    fake.callbacks_held = False
    await stopping

    assert await bot.ephemeral_reply(asked)
    assert await bot.core.core.unhandled_updates(SOURCE) == []
