"""The kit's buttons as Discord components, and the modal that asks how to edit an image.

Buttons are persistent dynamic items: their custom id carries the action and the job id (and the image number
for variations, the cell's for a grid), `easel:{action}:{job_id}[:{index}]`, nothing else, so buttons already in
channels keep working after a restart and across versions. What a press does is up to the buttons handler that the
client holds.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import discord

from bots.kit.views import Action, Button, Style
from bots.texts import render

MAX_TEXT_INPUT = 4000
MODAL_TIMEOUT_SECONDS = 15 * 60
"""An edit form left open longer is forgotten, so forms that are never sent do not pile up in memory."""

STYLES = {
    Style.PRIMARY: discord.ButtonStyle.primary,
    Style.SECONDARY: discord.ButtonStyle.secondary,
    Style.DANGER: discord.ButtonStyle.danger,
}


class Pressed(Protocol):
    async def on_button(self, interaction: discord.Interaction, action: Action, job_id: str, index: int | None) -> None:
        """A press on one of the job buttons."""


class JobButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=re.compile(rf"easel:(?P<action>{'|'.join(Action)}):(?P<job>[0-9a-f]{{32}})(?::(?P<index>\d{{1,2}}))?"),
):
    def __init__(
        self,
        action: Action,
        job_id: str,
        index: int | None = None,
        *,
        label: str = "",
        style: discord.ButtonStyle = discord.ButtonStyle.secondary,
        row: int | None = None,
    ) -> None:
        custom_id = f"easel:{action}:{job_id}" + ("" if index is None else f":{index}")
        super().__init__(discord.ui.Button(label=label, style=style, custom_id=custom_id), row=row)
        self.action = action
        self.job_id = job_id
        self.index = index

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> JobButton:
        index = match["index"]
        return cls(Action(match["action"]), match["job"], None if index is None else int(index))

    async def callback(self, interaction: discord.Interaction) -> None:
        buttons: Pressed = interaction.client.handlers.buttons  # type: ignore[attr-defined]
        await buttons.on_button(interaction, self.action, self.job_id, self.index)


def discord_view(buttons: Sequence[Button]) -> discord.ui.View | None:
    """The kit's buttons under a message; None (no components) when there are none. The first row's buttons
    flow into as many rows as they need (Discord fits five in a row); each later row starts a row of its own."""
    if not buttons:
        return None
    view = discord.ui.View(timeout=None)
    first = [button for button in buttons if button.row == 0]
    spill = (len(first) - 1) // 5
    for button in buttons:
        row = None if button.row == 0 else button.row + spill
        view.add_item(
            JobButton(
                button.action, button.job_id, button.index, label=button.label, style=STYLES[button.style], row=row
            )
        )
    return view


EditSubmit = Callable[[discord.Interaction, str, str], Awaitable[None]]
"""What a submitted edit modal calls with the interaction, the prompt and the image number as typed."""

FORM = re.compile(r"easel:form:(?P<opened>\d+):(?P<count>\d+):(?P<target>job:[0-9a-f]{32}|message:\d+:\d+)")
"""An edit form's custom id: the interaction that opened it (so that two open forms never share an id), how many
images it offers, and what it edits (a job, or the message of a result). The form is rebuilt from it when its
submission is handled again after a restart (`bots.discord.intake`)."""


def form_id(opened: int, count: int, target: str) -> str:
    return f"easel:form:{opened}:{count}:{target}"


class EditModal(discord.ui.Modal):
    """Asks for the new prompt (and which image, when there are several); needs no message-content intent. Its
    fields have fixed ids, so a rebuilt form reads a submission made to the one shown."""

    def __init__(
        self, submit: EditSubmit, *, custom_id: str, count: int, max_prompt_length: int, language: str | None
    ) -> None:
        super().__init__(
            title=render("discord.modal.title", language), timeout=MODAL_TIMEOUT_SECONDS, custom_id=custom_id
        )
        self._submit = submit
        self.prompt: discord.ui.TextInput[EditModal] = discord.ui.TextInput(
            label=render("discord.modal.prompt", language),
            style=discord.TextStyle.paragraph,
            max_length=min(max_prompt_length, MAX_TEXT_INPUT),
            custom_id="prompt",
        )
        self.add_item(self.prompt)
        self.image: discord.ui.TextInput[EditModal] | None = None
        if count > 1:
            self.image = discord.ui.TextInput(
                label=render("discord.modal.image", language, count=count),
                default="1",
                max_length=1,
                custom_id="image",
            )
            self.add_item(self.image)

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await self._submit(interaction, self.prompt.value, self.image.value if self.image is not None else "1")
