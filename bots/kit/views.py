"""Every job event as a neutral view, which an adapter only has to draw.

A view says what to show (its text in the reader's language), which buttons go with it, which images, and
whether they hide behind a spoiler; the platform decides how (a status message edited in place, a photo
per image, a line on a terminal). The acknowledgement of a queued job is the view of its `queued` event,
on every adapter.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

from bots.core.types import EventKind, JobEvent
from bots.formatting import ending_text, progress_text, queued_text, result_caption, untranslated_note
from bots.texts import render
from generation.asks import Options


class Action(StrEnum):
    """What a button does; a button carries nothing but its action, the job id and an image number."""

    REROLL = "reroll"
    VARY = "vary"
    EDIT = "edit"
    CANCEL = "cancel"
    DELETE = "delete"
    ZOOM_OUT = "zoomout"
    ZOOM_OUT_MORE = "zoomout2"
    PAN_LEFT = "panleft"
    PAN_RIGHT = "panright"
    PAN_UP = "panup"
    PAN_DOWN = "pandown"
    CELL = "cell"
    """A grid's cell sent alone; its index is the cell's."""


OUTPAINTS: dict[Action, Options] = {
    Action.ZOOM_OUT: Options(zoom=1.5),
    Action.ZOOM_OUT_MORE: Options(zoom=2.0),
    Action.PAN_LEFT: Options(pan="left"),
    Action.PAN_RIGHT: Options(pan="right"),
    Action.PAN_UP: Options(pan="up"),
    Action.PAN_DOWN: Options(pan="down"),
}
"""What each zoom and pan button asks of `Core.outpaint`."""
CELLS_PER_ROW = 5
_ARROWS = {Action.PAN_LEFT: "⬅️", Action.PAN_RIGHT: "➡️", Action.PAN_UP: "⬆️", Action.PAN_DOWN: "⬇️"}


class Style(StrEnum):
    PRIMARY = "primary"
    SECONDARY = "secondary"
    DANGER = "danger"


@dataclass(frozen=True)
class Button:
    action: Action
    job_id: str
    label: str
    index: int | None = None
    """The image it acts on, when the job has several."""
    style: Style = Style.SECONDARY
    row: int = 0
    """Buttons of one row go side by side: what acts on the job, then zoom, then pan."""


@dataclass(frozen=True)
class Picture:
    """One image of a result, with what goes with it when it is shown alone."""

    index: int
    path: Path
    seed: int | None
    buttons: tuple[Button, ...]


@dataclass(frozen=True)
class View:
    event: JobEvent
    text: str
    """The status, the ending, or (for a result) the caption uncut; `caption` cuts it to a platform's limit."""
    buttons: tuple[Button, ...] = ()
    pictures: tuple[Picture, ...] = ()

    @property
    def kind(self) -> EventKind:
        return self.event.kind

    @property
    def spoiler(self) -> bool:
        return self.event.spoiler

    @property
    def preview(self) -> bytes | None:
        """The picture of the image forming (JPEG), on a progress view that has one; behind `spoiler` if set."""
        return self.event.preview

    def caption(self, limit: int) -> str:
        """The result's caption for all its images, within `limit` characters (the prompt gives way first)."""
        return result_caption(self.event, limit)

    def picture_caption(self, picture: Picture, limit: int) -> str:
        """The caption of one image shown alone: its own seed only."""
        seeds = (picture.seed,) if picture.seed is not None else ()
        return result_caption(replace(self.event, seeds=seeds), limit)


def view_of(event: JobEvent) -> View:
    language = event.language
    if event.kind in (EventKind.QUEUED, EventKind.POSITION):
        text = queued_text(event.position, event.eta_seconds, language)
        if event.untranslated:
            text += "\n" + untranslated_note(event.untranslated, language)
    elif event.kind is EventKind.STARTED:
        text = render("status.started", language)
    elif event.kind is EventKind.PROGRESS:
        text = progress_text(event.progress, language)
    elif event.kind is EventKind.DONE and event.grid_cells:
        buttons = _grid_buttons(event)
        return View(event, result_caption(event), buttons, _pictures(event, buttons))
    elif event.kind is EventKind.DONE:
        return View(event, result_caption(event), _result_buttons(event), _pictures(event))
    else:
        return View(event, ending_text(event))
    cancel = Button(Action.CANCEL, event.job_id, render("button.cancel", language), style=Style.DANGER)
    return View(event, text, (cancel,))


def _outpaint_buttons(event: JobEvent, index: int | None) -> tuple[Button, ...]:
    """Zoom out 1.5x and 2x, then the four pans, of one image."""
    language, job_id = event.language, event.job_id
    zooms = (
        Button(action, job_id, render("button.zoom_out", language, factor=OUTPAINTS[action].zoom), index, row=1)
        for action in (Action.ZOOM_OUT, Action.ZOOM_OUT_MORE)
    )
    pans = (Button(action, job_id, arrow, index, row=2) for action, arrow in _ARROWS.items())
    return (*zooms, *pans)


def _result_buttons(event: JobEvent) -> tuple[Button, ...]:
    """For a message that shows every image: reroll, a variation of each image, edit, delete; zoom and pan when
    there is one image (a message of several would need them for each)."""
    language, job_id, count = event.language, event.job_id, len(event.files)
    variations = (
        [Button(Action.VARY, job_id, render("button.variations", language), 0)]
        if count == 1
        else [
            Button(Action.VARY, job_id, render("button.variation_of", language, number=index + 1), index)
            for index in range(count)
        ]
    )
    return (
        Button(Action.REROLL, job_id, render("button.reroll", language), style=Style.PRIMARY),
        *variations,
        Button(Action.EDIT, job_id, render("button.edit", language)),
        Button(Action.DELETE, job_id, render("button.delete", language), style=Style.DANGER),
        *(_outpaint_buttons(event, None) if count == 1 else ()),
    )


def _grid_buttons(event: JobEvent) -> tuple[Button, ...]:
    """For a grid's sheet: reroll (the same grid, a new seed), delete, then a button per cell that sends it alone,
    numbered as on the sheet, five to a row."""
    language, job_id = event.language, event.job_id
    cells = (
        Button(Action.CELL, job_id, f"#{index + 1}", index, row=1 + index // CELLS_PER_ROW)
        for index in range(event.grid_cells)
    )
    return (
        Button(Action.REROLL, job_id, render("button.reroll", language), style=Style.PRIMARY),
        Button(Action.DELETE, job_id, render("button.delete", language), style=Style.DANGER),
        *cells,
    )


def _pictures(event: JobEvent, buttons: tuple[Button, ...] | None = None) -> tuple[Picture, ...]:
    """For images shown one by one: each with reroll, its variations, its edit, zoom and pan (a grid's sheet with
    the grid's own `buttons`)."""
    language, job_id = event.language, event.job_id
    if buttons is not None:  # as under other pictures, deleting is left to the message's buttons
        kept = tuple(button for button in buttons if button.action is not Action.DELETE)
        return tuple(Picture(index, path, None, kept) for index, path in enumerate(event.files))
    return tuple(
        Picture(
            index,
            path,
            event.seeds[index] if index < len(event.seeds) else None,
            (
                Button(Action.REROLL, job_id, render("button.reroll", language)),
                Button(Action.VARY, job_id, render("button.variations", language), index),
                Button(Action.EDIT, job_id, render("button.edit", language), index),
                *_outpaint_buttons(event, index),
            ),
        )
        for index, path in enumerate(event.files)
    )
