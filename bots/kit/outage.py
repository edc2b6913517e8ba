"""A platform's reachability as an adapter sees it, shared by every chat adapter.

A platform that cannot be reached (at start-up, or while polling) is tried again with exponential backoff and
full jitter (tenacity's `wait_random_exponential`: a random wait up to `first` seconds, doubling up to
`longest`), so that many bots coming back after one outage do not all knock at once. An outage is told once, as
one warning line without a traceback, and its end as one line. Each time the platform answers again (the first
connection included), `on_back` runs, for the core to deliver at once what waited instead of at its next sweep.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_random_exponential

log = logging.getLogger(__name__)

T = TypeVar("T")

IsOutage = Callable[[BaseException], bool]
"""Whether an error means the platform cannot be reached now (a network error), rather than a refusal."""


class Link:
    def __init__(
        self,
        platform: str,
        *,
        first: float,
        longest: float,
        is_outage: IsOutage,
        on_back: Callable[[], Awaitable[object]],
        counted: Callable[[str, str], None] = lambda platform, kind: None,
    ) -> None:
        self.platform = platform
        self._counted = counted
        self.is_outage = is_outage
        self._on_back = on_back
        self._wait = wait_random_exponential(multiplier=first, max=longest)
        self._reached = False
        self._down_since: float | None = None
        self._closed = False
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def down(self) -> bool:
        return self._down_since is not None

    async def patiently(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """`attempt()`, tried again while the platform cannot be reached; other errors are raised at once. Once
        closed, an outage is raised too: a process that stops does not wait for the network."""
        retrying = AsyncRetrying(
            retry=retry_if_exception(lambda error: not self._closed and self.is_outage(error)),
            wait=self._wait,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        result: T = await retrying(attempt)
        self.answered()
        return result

    def lost(self, error: BaseException) -> None:
        """The platform did not answer: the first failure of an outage is logged, the others are not; each is
        counted (`counted(platform, kind)`, the metrics' platform errors) by the kind of error it was."""
        self._counted(self.platform, type(error).__name__)
        if self._down_since is None:
            self._down_since = asyncio.get_running_loop().time()
            log.warning("%s: cannot reach the platform (%r); trying again until it answers", self.platform, error)

    def answered(self) -> None:
        """The platform answered: the end of an outage is logged, and on the first answer and after each
        outage `on_back` runs in a task of its own."""
        if self._reached and self._down_since is None:
            return
        if self._down_since is not None:
            seconds = asyncio.get_running_loop().time() - self._down_since
            log.info("%s: reachable again after %.0f s", self.platform, seconds)
        self._reached, self._down_since = True, None
        task = asyncio.create_task(self._back(), name=f"easel-{self.platform}-back")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Stop waiting for the platform, and stop what its coming back started."""
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _before_sleep(self, state: RetryCallState) -> None:
        assert state.outcome is not None
        error = state.outcome.exception()
        assert error is not None
        self.lost(error)

    async def _back(self) -> None:
        try:
            await self._on_back()
        except Exception:  # a bug in what runs on the way back: logged, the adapter goes on
            log.exception("%s: what runs when the platform answers again failed", self.platform)
