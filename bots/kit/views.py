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


class Action(StrEnum):
    """What a button does; a button carries nothing but its action, the job id and an image number."""

    REROLL = "reroll"
    VARY = "vary"
    EDIT = "edit"
    CANCEL = "cancel"
    DELETE = "delete"


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
    elif event.kind is EventKind.DONE:
        return View(event, result_caption(event), _result_buttons(event), _pictures(event))
    else:
        return View(event, ending_text(event))
    cancel = Button(Action.CANCEL, event.job_id, render("button.cancel", language), style=Style.DANGER)
    return View(event, text, (cancel,))


def _result_buttons(event: JobEvent) -> tuple[Button, ...]:
    """For a message that shows every image: reroll, a variation of each image, edit, delete."""
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
    )


def _pictures(event: JobEvent) -> tuple[Picture, ...]:
    """For images shown one by one: each with reroll, its variations and its edit."""
    language, job_id = event.language, event.job_id
    return tuple(
        Picture(
            index,
            path,
            event.seeds[index] if index < len(event.seeds) else None,
            (
                Button(Action.REROLL, job_id, render("button.reroll", language)),
                Button(Action.VARY, job_id, render("button.variations", language), index),
                Button(Action.EDIT, job_id, render("button.edit", language), index),
            ),
        )
        for index, path in enumerate(event.files)
    )
