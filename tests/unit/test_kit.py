"""The adapter kit: views of events, the error boundary, the upload policy, the status throttle, the catalogue."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from bots.core.types import EventKind, JobEvent
from bots.errors import UserError
from bots.kit.boundary import explain, guarded, reference_for
from bots.kit.catalogue import CATALOGUE, Audience, Capability, check_served, commands_for
from bots.kit.throttle import Throttle
from bots.kit.uploads import Attachment, UploadPolicy
from bots.kit.views import OUTPAINTS, Action, Style, view_of
from generation.errors import InvalidRequest, UserQueueFull

JOB = "0123456789abcdef0123456789abcdef"


def event(kind: EventKind, language: str | None = "en", **values: object) -> JobEvent:
    return JobEvent(kind, JOB, "test", "channel", "user", language, "a red cat", **values)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", [EventKind.QUEUED, EventKind.POSITION, EventKind.STARTED, EventKind.PROGRESS])
def test_a_waiting_or_drawing_job_shows_its_status_with_a_cancel_button(kind: EventKind) -> None:
    view = view_of(event(kind, position=2, eta_seconds=40.0, progress=0.5))
    assert view.text and not view.pictures
    [cancel] = view.buttons
    assert (cancel.action, cancel.job_id, cancel.style, cancel.label) == (Action.CANCEL, JOB, Style.DANGER, "Cancel")


def test_the_queued_view_is_the_acknowledgement_in_the_readers_language() -> None:
    assert view_of(event(EventKind.QUEUED, position=3)).text.startswith("Queued: number 3 in line")
    assert view_of(event(EventKind.QUEUED, "ru", position=3)).text != view_of(event(EventKind.QUEUED, position=3)).text


def test_a_result_has_buttons_for_the_whole_message_and_for_each_image(tmp_path: Path) -> None:
    files = (tmp_path / "a.png", tmp_path / "b.png")
    view = view_of(event(EventKind.DONE, files=files, seeds=(7, 9), spoiler=True))
    actions = [(button.action, button.index) for button in view.buttons]
    assert actions == [
        (Action.REROLL, None),
        (Action.VARY, 0),
        (Action.VARY, 1),
        (Action.EDIT, None),
        (Action.DELETE, None),
    ]
    assert view.spoiler and [picture.seed for picture in view.pictures] == [7, 9]
    second = view.pictures[1]
    outpaints = [Action.ZOOM_OUT, Action.ZOOM_OUT_MORE, Action.PAN_LEFT, Action.PAN_RIGHT, Action.PAN_UP]
    assert [(button.action, button.index, button.row) for button in second.buttons] == [
        (Action.REROLL, None, 0),
        (Action.VARY, 1, 0),
        (Action.EDIT, 1, 0),
        *((action, 1, 1 if action in (Action.ZOOM_OUT, Action.ZOOM_OUT_MORE) else 2) for action in outpaints),
        (Action.PAN_DOWN, 1, 2),
    ]
    caption = view.picture_caption(second, 1024)
    assert "seed 9" in caption and "7" not in caption.replace("01234567", "")
    assert len(view.caption(40)) <= 40


def test_one_image_has_one_variations_button(tmp_path: Path) -> None:
    view = view_of(event(EventKind.DONE, files=(tmp_path / "a.png",), seeds=(5,)))
    assert [button.label for button in view.buttons if button.action is Action.VARY] == ["Variations"]


def test_one_image_can_be_zoomed_out_and_panned_from_its_message(tmp_path: Path) -> None:
    """A message of several images has no zoom or pan buttons of its own: each image shown alone has them."""
    view = view_of(event(EventKind.DONE, files=(tmp_path / "a.png",), seeds=(5,)))
    outpaints = [(button.label, button.row) for button in view.buttons if button.action in OUTPAINTS]
    assert outpaints == [("Zoom out 1.5x", 1), ("Zoom out 2x", 1), ("⬅️", 2), ("➡️", 2), ("⬆️", 2), ("⬇️", 2)]
    assert OUTPAINTS[Action.ZOOM_OUT].zoom == 1.5 and OUTPAINTS[Action.PAN_UP].pan == "up"


@pytest.mark.parametrize(
    ("kind", "error_key", "expected"),
    [
        (EventKind.CANCELLED, None, "was cancelled"),
        (EventKind.FAILED, "moderation.nsfw", "NSFW"),
        (EventKind.FAILED, "error.internal", "01234567"),
    ],
)
def test_endings_have_no_buttons(kind: EventKind, error_key: str | None, expected: str) -> None:
    view = view_of(event(kind, error_key=error_key))
    assert expected.lower() in view.text.lower() and view.buttons == ()


def test_refusals_are_explained_and_bugs_logged_once_with_their_reference(caplog: pytest.LogCaptureFixture) -> None:
    assert explain(UserError("queue.empty"), "en") == "You have nothing waiting or drawing."
    assert "steps" in explain(InvalidRequest("out_of_range", "steps", 0, "whole_number", low=1, high=100), "en")
    assert "3" in explain(UserQueueFull(3), "en")
    with caplog.at_level(logging.ERROR):
        text = explain(RuntimeError("boom"), "en", job_id=JOB, what="a button")
    assert "01234567" in text
    [record] = caplog.records
    assert "a button failed (reference 01234567)" in record.getMessage() and record.exc_info is not None


def test_a_platform_error_an_adapter_knows_is_explained_by_it() -> None:
    def known(error: BaseException, language: str | None) -> str | None:
        return "no permission" if isinstance(error, PermissionError) else None

    assert explain(PermissionError(), "en", known=known) == "no permission"
    assert reference_for(None) != reference_for(None) and reference_for(JOB) == "01234567"


async def test_the_boundary_says_what_went_wrong_and_swallows_it() -> None:
    said: list[str] = []

    async def say(text: str) -> None:
        said.append(text)

    async with guarded(say, "en"):
        raise UserError("queue.empty")
    async with guarded(say, "en"):
        pass
    assert said == ["You have nothing waiting or drawing."]


async def test_nothing_is_downloaded_while_any_attachment_would_be_refused() -> None:
    fetched: list[str] = []

    def fetch(name: str, size: int) -> tuple[Attachment, object]:
        async def read() -> bytes:
            fetched.append(name)
            return b"x" * size

        return Attachment(name, "image/png", size), read

    policy = UploadPolicy(1.0)
    with pytest.raises(UserError) as refused:
        await policy.fetch_all([fetch("a.png", 10), (Attachment("b.pdf", "application/pdf", 10), None)])  # type: ignore[list-item]
    assert refused.value.key == "upload.not_an_image" and fetched == []
    with pytest.raises(UserError) as refused:
        await policy.fetch_all([fetch("a.png", 10), fetch("big.png", 2 * 1024 * 1024)])  # type: ignore[list-item]
    assert refused.value.key == "upload.too_large" and refused.value.values["name"] == "big.png" and fetched == []
    assert await policy.fetch_all([fetch("a.png", 10)]) == [b"x" * 10]  # type: ignore[list-item]


async def test_a_file_larger_than_it_said_is_refused_once_downloaded() -> None:
    async def read() -> bytes:
        return b"x" * (2 * 1024 * 1024)

    with pytest.raises(UserError) as refused:
        await UploadPolicy(1.0).fetch_all([(Attachment("liar.png", "image/png; q=1", 10), read)])
    assert refused.value.key == "upload.too_large"


async def test_status_draws_are_coalesced_the_latest_winning() -> None:
    drawn: list[tuple[str, int]] = []

    async def draw(job_id: str, value: int) -> None:
        drawn.append((job_id, value))

    throttle: Throttle[int] = Throttle(0.05, draw)
    for value in range(5):
        throttle.show("job", value)
    await asyncio.sleep(0)
    throttle.show("job", 5)
    throttle.show("job", 6)
    await asyncio.sleep(0.2)
    assert drawn == [("job", 4), ("job", 6)]
    throttle.show("job", 7)
    await throttle.release("job")
    await asyncio.sleep(0.15)
    assert drawn[-1] == ("job", 6), "a released job is never drawn again"


async def test_a_draw_in_flight_is_let_finish_when_the_final_view_takes_over() -> None:
    """It may be waiting out a rate limit: cancelling it would let the final call go before the platform allows."""
    gate = asyncio.Event()
    drawn: list[int] = []

    async def draw(job_id: str, value: int) -> None:
        await gate.wait()
        drawn.append(value)

    throttle: Throttle[int] = Throttle(0.0, draw)
    throttle.show("job", 1)
    await asyncio.sleep(0)
    throttle.show("job", 2)
    release = asyncio.create_task(throttle.release("job"))
    await asyncio.sleep(0.02)
    assert not release.done()
    gate.set()
    await release
    assert drawn == [1], "the draw in flight finished; the value not drawn yet was dropped"


async def test_a_failed_draw_is_logged_and_the_next_value_tries_again(caplog: pytest.LogCaptureFixture) -> None:
    drawn: list[int] = []

    async def draw(job_id: str, value: int) -> None:
        if value == 1:
            raise ConnectionError("down")
        drawn.append(value)

    throttle: Throttle[int] = Throttle(0.0, draw)
    throttle.show("job", 1)
    await asyncio.sleep(0.01)
    throttle.show("job", 2)
    await asyncio.sleep(0.01)
    await throttle.close()
    assert drawn == [2] and "drawing the status of job job failed" in caplog.text


def test_the_catalogue_names_each_command_once_and_moderation_needs_communities() -> None:
    names = [command.name for command in CATALOGUE]
    assert len(names) == len(set(names))
    assert all(Capability.COMMUNITIES in c.needs for c in CATALOGUE if c.audience is Audience.MODERATORS)
    assert {c.name for c in commands_for(())} == {c.name for c in CATALOGUE if c.audience is Audience.EVERYONE}
    assert "mod.channels" not in {c.name for c in commands_for({Capability.COMMUNITIES})}


def test_an_adapter_serving_other_commands_than_the_catalogue_does_not_start() -> None:
    served = {command.name: None for command in commands_for(())}
    check_served("test", (), served)
    with pytest.raises(RuntimeError, match=r"missing \['help'\]"):
        check_served("test", (), {name: None for name in served if name != "help"})
    with pytest.raises(RuntimeError, match=r"not in it \['dance'\]"):
        check_served("test", (), {**served, "dance": None})


def test_a_refusal_quotes_a_huge_value_by_its_start_and_still_says_what_is_allowed() -> None:
    seed = int("9" * 4080)
    text = explain(InvalidRequest("out_of_range", "seed", seed, "whole_number", low=0, high=4294967295), "en")
    assert text.endswith("… is not allowed: a whole number from 0 to 4294967295.") and len(text) < 200
    command = explain(UserError("telegram.unknown_command", command="/" + "x" * 5000), "en")
    assert "x" * 99 + "…" in command and len(command) < 200
