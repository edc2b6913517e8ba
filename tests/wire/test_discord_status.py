"""Status messages: edits coalesce, one in flight per job, the latest text winning; none after release."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from bots.discord.status import Status, StatusBoard
from bots.discord.uploads import Upload


class RecordingStatus(Status):
    """A status message that records its edits; `hold` keeps an edit in flight until it is set."""

    def __init__(self, usable: bool = True) -> None:
        super().__init__()
        self.edits: list[str] = []
        self.uploads: list[tuple[tuple[str, bool], ...]] = []
        self.hold = asyncio.Event()
        self.hold.set()
        self.in_flight = asyncio.Event()
        self._usable = usable

    def usable(self) -> bool:
        return self._usable

    async def show(self, text: str, view: Any = None, uploads: Sequence[Upload] = (), *, clear: bool = False) -> Any:
        self.in_flight.set()
        await self.hold.wait()
        self.edits.append(text)
        self.uploads.append(tuple((upload.filename, upload.spoiler) for upload in uploads))
        self.in_flight.clear()


async def until(check: Callable[[], bool]) -> None:
    while not check():
        await asyncio.sleep(0.01)


async def test_a_burst_of_progress_becomes_one_edit_with_the_latest_text() -> None:
    board = StatusBoard(interval=60.0)
    status = RecordingStatus()
    board.track("job", status)

    for percent in range(0, 101, 5):
        board.show("job", f"{percent}%")
    for _ in range(5):
        await asyncio.sleep(0)

    assert status.edits == ["100%"]
    board.show("job", "drawing")  # waits for the interval
    await asyncio.sleep(0.05)
    assert await board.release("job") is status
    await asyncio.sleep(0.05)
    assert status.edits == ["100%"], "the edit waiting for the interval is dropped: the result replaces it"


async def test_while_an_edit_is_in_flight_later_texts_wait_and_only_the_latest_is_sent() -> None:
    board = StatusBoard(interval=0.0)
    status = RecordingStatus()
    status.hold.clear()
    board.track("job", status)

    board.show("job", "queued")
    await status.in_flight.wait()
    board.show("job", "10%")
    board.show("job", "20%")
    status.hold.set()
    await asyncio.wait_for(until(lambda: len(status.edits) >= 2), timeout=5)
    await asyncio.sleep(0.05)

    assert status.edits == ["queued", "20%"]


async def test_an_expired_status_or_an_untracked_job_is_not_edited() -> None:
    board = StatusBoard(interval=0.0)
    expired = RecordingStatus(usable=False)
    board.track("old", expired)

    board.show("old", "50%")
    board.show("unknown", "50%")
    await asyncio.sleep(0.05)

    assert expired.edits == []
    assert await board.release("unknown") is None


async def test_closing_the_board_stops_every_pending_edit() -> None:
    board = StatusBoard(interval=0.0)
    status = RecordingStatus()
    status.hold.clear()
    board.track("job", status)
    board.show("job", "queued")
    await status.in_flight.wait()

    await board.close()
    status.hold.set()
    await asyncio.sleep(0.05)

    assert status.edits == []
    assert await board.release("job") is None


async def test_a_status_expected_for_a_request_is_claimed_by_its_queued_job_or_dropped_on_a_refusal() -> None:
    board = StatusBoard(interval=0.0)
    queued, refused = RecordingStatus(), RecordingStatus()
    board.expect("interaction-1", queued)
    board.expect("interaction-2", refused)

    board.claim("interaction-1", "job")
    board.drop("interaction-2")
    board.claim("interaction-2", "other")
    board.show("job", "queued")
    board.show("other", "queued")
    await asyncio.wait_for(until(lambda: bool(queued.edits)), timeout=5)
    await asyncio.sleep(0.05)

    assert queued.edits == ["queued"] and refused.edits == []
    assert await board.release("job") is queued
    assert await board.release("other") is None


async def test_a_preview_waiting_for_the_interval_is_kept_when_plain_progress_follows_it() -> None:
    board = StatusBoard(interval=0.0)
    status = RecordingStatus()
    status.hold.clear()
    board.track("job", status)
    board.show("job", "10%")
    await status.in_flight.wait()
    board.show("job", "40%", preview=b"jpeg", spoiler=True)
    board.show("job", "50%")
    status.hold.set()
    await asyncio.wait_for(until(lambda: len(status.edits) >= 2), timeout=5)
    board.show("job", "60%")
    await asyncio.wait_for(until(lambda: len(status.edits) >= 3), timeout=5)

    assert status.edits == ["10%", "50%", "60%"]
    assert status.uploads == [(), (("preview.jpg", True),), ()] and status.previewed
