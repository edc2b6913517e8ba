"""Zoom out, pan, remix, depth, aspect ratios and styles on Telegram end to end: the real python-telegram-bot client
against the fake Bot API, through the real core and the tiny model."""

from __future__ import annotations

import test_telegram
from PIL import Image
from test_telegram import ANN, Bot, Start, jpeg
from test_telegram_moderation import ask

from bots.texts import render
from storage.records import JobState

start = test_telegram.start


async def test_zoom_and_pan_buttons_under_each_image_extend_it(start: Start) -> None:
    bot: Bot = await start()
    chat = bot.fake.private(bot.ann)
    bot.fake.text(bot.ann, chat, "a lighthouse --seed 11")
    [image] = await bot.images_in(ANN, 1)
    [job_id] = await bot.job_ids(1)
    rows = [[button["callback_data"] for button in row] for row in image["reply_markup"]["inline_keyboard"]]
    assert rows[1:] == [
        [f"zoomout:{job_id}:0", f"zoomout2:{job_id}:0"],
        [f"panleft:{job_id}:0", f"panright:{job_id}:0", f"panup:{job_id}:0", f"pandown:{job_id}:0"],
    ]
    zooms = image["reply_markup"]["inline_keyboard"][1]
    assert [button["text"] for button in zooms] == ["Zoom out 1.5x", "Zoom out 2x"]
    bot.fake.press(bot.ann, image, f"zoomout2:{job_id}:0")
    await bot.images_in(ANN, 2)
    bot.fake.press(bot.ann, image, f"panleft:{job_id}:0")
    images = await bot.images_in(ANN, 3)
    jobs = [await bot.stack.db.get_job(one) for one in await bot.job_ids(3)]
    assert [(job.operation, job.parent_id, job.prompt) for job in jobs[1:] if job] == [
        ("outpaint", job_id, "a lighthouse"),
        ("outpaint", job_id, "a lighthouse"),
    ]
    zoomed, panned = jobs[1], jobs[2]
    assert zoomed is not None and panned is not None
    assert (zoomed.parameters["zoom"], zoomed.parameters["width"], zoomed.parameters["height"]) == (2.0, 128, 128)
    assert (panned.parameters["pan"], panned.parameters["width"], panned.parameters["height"]) == ("left", 128, 64)
    assert all(len(image["reply_markup"]["inline_keyboard"]) == 3 for image in images)


async def test_outpaint_and_remix_commands_on_photos_and_on_results(start: Start, photo: Image.Image) -> None:
    bot: Bot = await start()
    chat = bot.fake.private(bot.ann)
    user_photo = bot.fake.photo(bot.ann, chat, jpeg(photo))
    bot.fake.text(bot.ann, chat, "/outpaint a harbour --pan up", reply_to=user_photo)
    [result] = await bot.images_in(ANN, 1)
    bot.fake.text(bot.ann, chat, "/outpaint --zoom 1.5", reply_to=result)
    await bot.images_in(ANN, 2)
    bot.fake.text(bot.ann, chat, "/remix in watercolour --strength 1", reply_to=result)
    await bot.images_in(ANN, 3)
    bot.fake.photo(bot.ann, chat, jpeg(photo), "/remix as a mosaic")
    await bot.images_in(ANN, 4)
    bot.fake.text(bot.ann, chat, "/depth a bronze statue --strength 0.5", reply_to=result)
    await bot.images_in(ANN, 5)
    jobs = [await bot.stack.db.get_job(one) for one in await bot.job_ids(5)]
    first = jobs[0]
    assert first is not None
    assert [(job.operation, job.prompt, job.parent_id) for job in jobs if job] == [
        ("outpaint", "a harbour", None),
        ("outpaint", "a harbour", first.id),
        ("remix", "in watercolour", first.id),
        ("remix", "as a mosaic", None),
        ("depth", "a bronze statue", first.id),
    ]
    assert (first.parameters["pan"], first.parameters["width"], first.parameters["height"]) == ("up", 64, 128)
    second, third = jobs[1], jobs[2]
    assert second is not None and third is not None
    assert (second.parameters["zoom"], second.parameters["width"]) == (1.5, 128)
    assert (third.parameters["strength"], third.parameters["width"], third.parameters["height"]) == (1.0, 64, 128)


async def test_bad_zooms_and_pans_are_refused_in_the_users_language_and_nothing_is_queued(
    start: Start, photo: Image.Image
) -> None:
    bot: Bot = await start()
    chat = bot.fake.private(bot.ann)
    user_photo = bot.fake.photo(bot.ann, chat, jpeg(photo))
    bot.fake.text(bot.ann, chat, "/outpaint a harbour --pan sideways", reply_to=user_photo)
    await bot.reply_in(ANN, render("request.expect.direction"))
    bot.fake.text(bot.ann, chat, "/outpaint a harbour --zoom 1.5 --pan up", reply_to=user_photo)
    await bot.reply_in(ANN, render("request.rule.zoom_or_pan"))
    bot.fake.text(bot.ann, chat, "/outpaint --zoom 2", reply_to=user_photo)
    await bot.reply_in(ANN, render("request.rule.needs_prompt", operation="outpaint"))
    bot.fake.text(bot.ann, chat, "/imagine a harbour --pan left")
    await bot.reply_in(ANN, render("request.rule.outpaint_only"))
    bot.fake.text(bot.ann, chat, "/remix in watercolour")
    await bot.reply_in(ANN, render("telegram.reply_to_photo", command="/remix"))
    assert await bot.stack.db.jobs_in_states(list(JobState)) == []


async def test_an_aspect_ratio_sets_the_size_and_a_size_beside_it_is_refused(start: Start) -> None:
    bot: Bot = await start()
    chat = bot.fake.private(bot.ann)
    bot.fake.text(bot.ann, chat, "a beach --ar 16:9")
    await bot.images_in(ANN, 1)
    bot.fake.text(bot.ann, chat, "a beach --ar 16:9 --size 64x64")
    await bot.reply_in(ANN, render("request.rule.size_or_aspect"))
    [job_id] = await bot.job_ids(1)
    job = await bot.stack.db.get_job(job_id)
    assert job is not None and (job.parameters["width"], job.parameters["height"]) == (128, 64)


async def test_group_admins_add_styles_and_a_negative_prompt_that_members_requests_get(start: Start) -> None:
    bot: Bot = await start()
    group = bot.fake.group(-1001)
    bot.fake.admin(group, bot.ann, creator=True)
    added = await ask(bot, bot.ann, group, "/addstyle Ink ink drawing of {prompt} --neg colour, photo")
    assert added == render("moderation.style_added", name="ink", prompt="ink drawing of {prompt}")
    assert await ask(bot, bot.ann, group, "/negative text, watermark") == render(
        "moderation.negative_set", negative="text, watermark"
    )
    assert await ask(bot, bot.bob, group, "/addstyle mine x {prompt}") == render("moderation.not_allowed")
    listed = await ask(bot, bot.bob, group, "/styles")
    assert "ink: ink drawing of {prompt} (keeps out: colour, photo)" in listed and "noir: " in listed
    assert render("styles.community_negative", negative="text, watermark") in listed
    bot.fake.text(bot.bob, group, "/imagine a lighthouse --style ink")
    await bot.images_in(-1001, 1)
    [job_id] = await bot.job_ids(1)
    job = await bot.stack.db.get_job(job_id)
    assert job is not None and job.prompt == "a lighthouse"
    assert (job.parameters["prompt"], job.negative_prompt) == (
        "ink drawing of a lighthouse",
        "colour, photo, text, watermark",
    )
    unknown = await ask(bot, bot.bob, group, "/imagine a lighthouse --style baroque")
    assert unknown.startswith(
        render("style.unknown", name="baroque", known="anime, cinematic, ink, noir, photo, pixel-art, watercolour")[:40]
    )
    assert await ask(bot, bot.ann, group, "/removestyle ink") == render("moderation.style_removed", name="ink")
    assert "ink:" not in await ask(bot, bot.bob, group, "/styles")


async def test_a_grid_comes_as_one_labelled_sheet_whose_buttons_send_each_cell_alone(start: Start) -> None:
    bot: Bot = await start()
    chat = bot.fake.private(bot.ann)
    bot.fake.text(bot.ann, chat, "/grid a lighthouse --steps 2,3 --guidance 2,4 --seed 5")
    [sheet] = await bot.images_in(ANN, 1)
    grid_id, *cells = await bot.job_ids(5, JobState.DONE)
    keyboard = [[button["callback_data"] for button in row] for row in sheet["reply_markup"]["inline_keyboard"]]
    assert keyboard == [[f"reroll:{grid_id}"], [f"cell:{grid_id}:{index}" for index in range(4)]]
    assert [button["text"] for button in sheet["reply_markup"]["inline_keyboard"][1]] == ["#1", "#2", "#3", "#4"]
    grid = await bot.stack.db.get_job(grid_id)
    assert grid is not None and grid.operation == "grid" and grid.prompt == "a lighthouse"
    bot.fake.press(bot.ann, sheet, f"cell:{grid_id}:2")
    [_, cell] = await bot.images_in(ANN, 2)
    assert "5" in cell["caption"] and cell["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == (
        f"reroll:{cells[2]}"
    )
    bot.fake.press(bot.ann, sheet, f"cell:{grid_id}:2")
    await bot.images_in(ANN, 3)  # asked again, sent again


async def test_a_grid_that_cannot_be_made_is_refused_in_the_users_language(start: Start) -> None:
    bot: Bot = await start()
    chat = bot.fake.private(bot.ann)
    bot.fake.text(bot.ann, chat, "/grid a lighthouse --steps 20")
    await bot.reply_in(ANN, render("grid.no_axis", "en")[:30])
    bot.fake.text(bot.ann, chat, "/grid a lighthouse --steps 1,2,3,4,5 --guidance 1,2,3")
    await bot.reply_in(ANN, "15")
    assert await bot.stack.db.jobs_in_states(list(JobState)) == []
