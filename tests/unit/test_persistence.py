"""What a database outage does to easel's own work (`bots.core.persistence`, the redelivery sweeps): tried again,
told once."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bots.core import persistence
from bots.core.persistence import persistently
from storage.errors import DatabaseUnavailable


@pytest.fixture(autouse=True)
def _quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(persistence, "FIRST_WAIT_SECONDS", 0.001)
    monkeypatch.setattr(persistence, "LONGEST_WAIT_SECONDS", 0.005)


async def test_a_write_is_tried_until_the_database_answers_and_the_outage_is_told_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="bots.core.persistence")
    tries: list[int] = []

    async def write() -> str:
        tries.append(1)
        if len(tries) < 5:
            raise DatabaseUnavailable("postgresql+asyncpg://db/easel", "the database cannot be reached")
        return "written"

    assert await persistently(write, "the result of job 1f2e") == "written"
    assert len(tries) == 5
    assert [record.levelname for record in caplog.records] == ["WARNING", "INFO"]
    assert caplog.records[0].getMessage().startswith("the result of job 1f2e waits for the database")
    assert caplog.records[1].getMessage().startswith("the result of job 1f2e written after")


async def test_any_other_error_is_raised_at_once(caplog: pytest.LogCaptureFixture) -> None:
    tries: list[int] = []

    async def write() -> None:
        tries.append(1)
        raise LookupError("no such job")

    with pytest.raises(LookupError):
        await persistently(write, "the result of job 1f2e")
    assert len(tries) == 1 and not caplog.records


async def test_a_write_that_succeeds_at_once_says_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bots.core.persistence")

    async def write() -> int:
        return 7

    assert await persistently(write, "the start of job 1f2e") == 7
    assert not caplog.records


async def test_a_redelivery_sweep_during_an_outage_is_one_warning_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from bots import run

    sweeps: list[int] = []

    class Core:
        async def redeliver(self) -> int:
            sweeps.append(1)
            if len(sweeps) == 1:
                raise DatabaseUnavailable("postgresql+asyncpg://db/easel", "the database cannot be reached")
            raise asyncio.CancelledError  # the second sweep ends the loop, as a stop would

    monkeypatch.setattr(run, "REDELIVERY_INTERVAL_SECONDS", 0.0)
    with pytest.raises(asyncio.CancelledError):
        await run._redeliver_periodically(Core())  # type: ignore[arg-type]
    [record] = caplog.records
    assert record.levelname == "WARNING" and record.exc_info is None
    assert record.getMessage() == (
        "redelivery waits for the database: postgresql+asyncpg://db/easel: the database cannot be reached"
    )
