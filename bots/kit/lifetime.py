"""The adapters' lifetimes, in the order a clean stop needs.

An adapter's `run` connects and takes work until it is cancelled (the console's also ends with its input);
`stop_receiving` then stops what takes work in the background (a poller, a webhook server, a gateway) and lets
what was taken be handled; `close` closes the platform client. Between the two the core finishes the batch on
the GPU and delivers its results, through clients that are still open. `Adapters` runs each step for every
adapter alike, each bounded in time: a step that does not end (a poller in its retry backoff, a platform that
does not answer) is cancelled, not waited out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Protocol

log = logging.getLogger(__name__)

STEP_SECONDS = 5.0
"""The most one adapter's `stop_receiving` or `close` is waited for before it is cancelled."""
STOPPED_AT_ONCE = "easel: stopped at once; whatever was running resumes at the next start"
"""What a process says when a stop is cut short (a second signal, or Ctrl-C before it takes work): it ends as a
kill does, and the next start recovers what was running."""


class Adapter(Protocol):
    name: str

    def register(self) -> None:
        """Hand the core this platform's listener (before the core recovers jobs that announce to it)."""

    async def run(self) -> None:
        """Connect and take work until cancelled; raise when the platform cannot be served."""

    async def stop_receiving(self) -> None:
        """Take no more work and let what was taken be handled; the client stays open for deliveries."""

    async def close(self) -> None:
        """Close the platform client."""


def started(name: str) -> None:
    """Said by an adapter once it has really connected (signed in, taking updates), once per run: an operator
    reading it may rely on the platform being reached."""
    log.info("%s adapter started", name)


class Adapters:
    """Every adapter of a process: started together, then stopped step by step (also when the block of
    `async with` ends early)."""

    def __init__(self, adapters: Sequence[Adapter], step_seconds: float = STEP_SECONDS) -> None:
        self.adapters = list(adapters)
        self.step_seconds = step_seconds
        self.tasks: set[asyncio.Task[None]] = set()
        self.failure: Exception | None = None
        """What ended a `run` that failed, once `stop_receiving` has collected it."""
        self._receiving = self._open = False

    def register(self) -> None:
        for adapter in self.adapters:
            adapter.register()

    def start(self) -> None:
        self._receiving = self._open = True
        for adapter in self.adapters:
            self.tasks.add(asyncio.create_task(adapter.run(), name=f"easel-{adapter.name}"))

    async def stop_receiving(self) -> None:
        """Every `run` is ended (a failed one kept in `failure`), then every adapter stops its intake."""
        if not self._receiving:
            return
        self._receiving = False
        for task in self.tasks:
            task.cancel()
        ended = await asyncio.gather(*self.tasks, return_exceptions=True)
        self.failure = next((error for error in ended if isinstance(error, Exception)), None)
        await self._each(lambda adapter: adapter.stop_receiving(), "stopping the intake")

    async def close(self) -> None:
        if not self._open:
            return
        self._open = False
        await self._each(lambda adapter: adapter.close(), "closing the client")

    async def __aenter__(self) -> Adapters:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.stop_receiving()
        await self.close()

    async def _each(self, step: Callable[[Adapter], Awaitable[None]], what: str) -> None:
        await asyncio.gather(*(self._bounded(adapter.name, step(adapter), what) for adapter in self.adapters))

    async def _bounded(self, name: str, work: Awaitable[None], what: str) -> None:
        try:
            await asyncio.wait_for(work, self.step_seconds)
        except TimeoutError:
            log.warning("%s: %s took over %.0f s and was cancelled", name, what, self.step_seconds)
        except Exception as error:
            log.warning("%s: %s failed: %r", name, what, error)
