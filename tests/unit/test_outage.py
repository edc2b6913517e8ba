"""The kit's `Link`: an unreachable platform tried again with backoff, told once per outage, and `on_back` run
each time it answers again."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bots.kit.outage import Link


class Flaky:
    """Fails with a network error `failures` times, then answers."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError("unreachable")
        return "answer"


def link(backs: list[str], counted: list[tuple[str, str]] | None = None) -> Link:
    async def on_back() -> None:
        backs.append("back")

    return Link(
        "test",
        first=0.01,
        longest=0.02,
        is_outage=lambda error: isinstance(error, ConnectionError),
        on_back=on_back,
        counted=lambda platform, kind: (counted if counted is not None else []).append((platform, kind)),
    )


async def test_an_outage_is_waited_out_and_told_once_and_what_waited_runs_when_it_is_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    backs: list[str] = []
    counted: list[tuple[str, str]] = []
    platform = link(backs, counted)
    attempt = Flaky(failures=4)

    assert await platform.patiently(attempt) == "answer"
    await asyncio.sleep(0)
    assert counted == [("test", "ConnectionError")] * 4, "each failed attempt counted, for the metrics"

    assert attempt.calls == 5 and backs == ["back"] and not platform.down
    assert caplog.text.count("test: cannot reach") == 1 and caplog.text.count("test: reachable again") == 1
    assert not [record for record in caplog.records if record.exc_info]
    assert await platform.patiently(Flaky(failures=0)) == "answer"
    await asyncio.sleep(0)
    assert backs == ["back"], "an answer with no outage before it starts nothing"


async def test_other_errors_are_raised_at_once_and_a_closed_link_waits_no_more() -> None:
    platform = link([])

    async def refused() -> str:
        raise PermissionError("bad token")

    with pytest.raises(PermissionError):
        await platform.patiently(refused)
    await platform.close()
    with pytest.raises(ConnectionError):
        await platform.patiently(Flaky(failures=1))
