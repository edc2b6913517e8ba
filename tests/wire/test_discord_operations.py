"""Zoom out, pan, remix, depth, aspect ratios and styles on Discord end to end: the real discord.py client against
the fake, the core and the tiny model."""

from __future__ import annotations

import test_discord
from test_discord import ALICE, ALICE_ID, StartBot, buttons, png
from test_discord_moderation import CAROL, ask

from bots.texts import render

_endpoints_restored = test_discord._endpoints_restored
fake = test_discord.fake
start_bot = test_discord.start_bot

OUTPAINT_BUTTONS = ["zoomout", "zoomout2", "panleft", "panright", "panup", "pandown"]


async def test_a_single_image_gets_zoom_and_pan_buttons_that_extend_it(start_bot: StartBot) -> None:
    bot = await start_bot()
    first = await bot.result_of(await bot.fake.command("imagine", {"prompt": "a red cat", "seed": 5}, member=ALICE))
    job_id = first.custom_ids()[0].split(":")[2]
    assert buttons(first) == ["reroll", "vary:0", "edit", "delete", *OUTPAINT_BUTTONS]
    rows = [[item["custom_id"].split(":")[1] for item in row["components"]] for row in first.components]
    assert rows[1:] == [OUTPAINT_BUTTONS[:2], OUTPAINT_BUTTONS[2:]]

    zoomed = await bot.result_of(await bot.fake.press(first, f"easel:zoomout:{job_id}", member=ALICE))
    panned = await bot.result_of(await bot.fake.press(first, f"easel:pandown:{job_id}", member=ALICE))

    jobs = [await bot.core.db.get_job(link.job_id) for link in (await bot.link_of(zoomed), await bot.link_of(panned))]
    assert [(job.operation, job.parent_id, job.prompt) for job in jobs if job] == [
        ("outpaint", job_id, "a red cat"),
        ("outpaint", job_id, "a red cat"),
    ]
    assert [(job.parameters["zoom"], job.parameters["pan"]) for job in jobs if job] == [(1.5, None), (None, "down")]
    two = await bot.result_of(await bot.fake.command("imagine", {"prompt": "a dog", "count": 2}, member=ALICE))
    assert not set(buttons(two)) & set(OUTPAINT_BUTTONS), "several images: no buttons that would need an image each"


async def test_outpaint_and_remix_commands_take_an_attachment(start_bot: StartBot) -> None:
    bot = await start_bot()
    picture = bot.fake.attachment("cat.png", png((64, 64)), "image/png")
    commands = [
        ("outpaint", {"prompt": "a harbour", "pan": "right"}),
        ("outpaint", {"prompt": "a harbour", "zoom": 2.0}),
        ("remix", {"prompt": "in watercolour", "strength": 0.5}),
        ("depth", {"prompt": "a bronze statue"}),
    ]
    for name, options in commands:
        await bot.result_of(await bot.fake.command(name, options, member=ALICE, attachments={"image": picture}))

    jobs = await bot.core.core.history(bot.actor(ALICE_ID))
    stored = [await bot.core.db.get_job(job.job_id) for job in reversed(jobs)]
    assert [(job.operation, job.parameters["width"], job.parameters["height"]) for job in stored if job] == [
        ("outpaint", 128, 64),
        ("outpaint", 128, 128),
        ("remix", 64, 64),
        ("depth", 64, 64),
    ]

    both = await bot.fake.command(
        "outpaint", {"prompt": "a harbour", "zoom": 1.5, "pan": "up"}, member=ALICE, attachments={"image": picture}
    )
    assert render("request.rule.zoom_or_pan") in await bot.ephemeral_reply(both)
    assert len(await bot.core.core.history(bot.actor(ALICE_ID))) == 4


async def test_imagine_offers_aspect_ratios(start_bot: StartBot) -> None:
    bot = await start_bot()
    result = await bot.result_of(
        await bot.fake.command("imagine", {"prompt": "a beach", "aspect": "9:16"}, member=ALICE)
    )
    job = await bot.core.db.get_job((await bot.link_of(result)).job_id)
    assert job is not None and (job.parameters["width"], job.parameters["height"]) == (64, 128)


async def test_server_admins_add_styles_that_imagine_takes_by_name(start_bot: StartBot) -> None:
    bot = await start_bot()
    added = await ask(
        bot, "mod style add", {"name": "ink", "prompt": "ink of {prompt}", "negative": "photo"}, member=CAROL
    )
    assert added == render("moderation.style_added", name="ink", prompt="ink of {prompt}")
    negative = await ask(bot, "mod negative", {"text": "watermark"}, member=CAROL)
    assert negative == render("moderation.negative_set", negative="watermark")
    listed = await ask(bot, "styles", member=ALICE)
    assert "ink: ink of {prompt} (keeps out: photo)" in listed and "watermark" in listed
    result = await bot.result_of(await bot.fake.command("imagine", {"prompt": "a fox", "style": "ink"}, member=ALICE))
    job = await bot.core.db.get_job((await bot.link_of(result)).job_id)
    assert job is not None and (job.prompt, job.parameters["prompt"]) == ("a fox", "ink of a fox")
    assert job.negative_prompt == "photo, watermark"
    cleared = await ask(bot, "mod negative", {}, member=CAROL)
    assert cleared == render("moderation.negative_cleared")


async def test_the_template_option_shows_the_placeholder_as_typed_in_every_language(start_bot: StartBot) -> None:
    bot = await start_bot(sync_commands=True)
    mod = next(command for command in bot.fake.commands[None] if command["name"] == "mod")
    style = next(option for option in mod["options"] if option["name"] == "style")
    add = next(option for option in style["options"] if option["name"] == "add")
    template = next(option for option in add["options"] if option["name"] == "prompt")
    described = [template["description"], *template["description_localizations"].values()]
    assert len(described) == 19 and all("{prompt}" in text and "{{" not in text for text in described)


async def test_a_grid_comes_as_one_sheet_whose_buttons_send_each_cell_alone(start_bot: StartBot) -> None:
    bot = await start_bot()
    options = {"prompt": "a red cat --seed 4", "steps": "2, 3", "guidance": "2,4,6"}
    sheet = await bot.result_of(await bot.fake.command("grid", options, member=ALICE))
    assert buttons(sheet) == ["reroll", "delete", *(f"cell:{index}" for index in range(6))]
    rows = [[item["custom_id"].split(":")[1] for item in row["components"]] for row in sheet.components]
    assert rows == [["reroll", "delete"], ["cell"] * 5, ["cell"]]
    grid_id = (await bot.link_of(sheet)).job_id
    grid = await bot.core.db.get_job(grid_id)
    assert (
        grid is not None
        and grid.operation == "grid"
        and grid.parameters["grid"]
        == [
            ["steps", [2.0, 3.0]],
            ["guidance", [2.0, 4.0, 6.0]],
        ]
    )
    cell = await bot.result_of(await bot.fake.press(sheet, f"easel:cell:{grid_id}:5", member=CAROL))
    cells = await bot.core.db.grid_cells(grid_id)
    assert (await bot.link_of(cell)).job_id == cells[5].id
    assert buttons(cell)[:2] == ["reroll", "vary:0"], "a cell alone is a result like any"
    refused = await bot.fake.command("grid", {"prompt": "a red cat", "steps": "20"}, member=ALICE)
    assert await bot.ephemeral_reply(refused) == render("grid.no_axis", "en-US")
