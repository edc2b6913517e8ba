"""The worker's writes outlast a database that cannot be reached (a PostgreSQL server restarting, a network cut).

A result the GPU has made, a batch's start, a failure or a delivery is written once the database answers again,
tried with exponential backoff and full jitter (tenacity, as the adapters' links do), instead of being dropped with
its job left running until the next start; so is the ending of a queued job that a user cancelled, which has
already left the queue in memory. Other requests are not retried: they are answered that the service cannot take
them now. Each write that meets an outage is told in one warning naming what waits, and its end in one line.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import AsyncRetrying, retry_if_exception_type, wait_random_exponential

from storage.errors import DatabaseUnavailable

log = logging.getLogger(__name__)

FIRST_WAIT_SECONDS = 0.5
LONGEST_WAIT_SECONDS = 30.0

T = TypeVar("T")


async def persistently(write: Callable[[], Awaitable[T]], what: str) -> T:
    """`write()`, tried again for as long as the database cannot be reached; any other error is raised at once.
    `what` names what waits in the log ("the result of job 1f2e..."). The first try costs nothing more than the
    write: the retrying (its first try at once, then waits) starts only once the database has failed to answer."""
    try:
        return await write()
    except DatabaseUnavailable as error:
        log.warning("%s waits for the database, which cannot be reached: %s", what, error)
    began = time.monotonic()
    retrying = AsyncRetrying(
        retry=retry_if_exception_type(DatabaseUnavailable),
        wait=wait_random_exponential(multiplier=FIRST_WAIT_SECONDS, max=LONGEST_WAIT_SECONDS),
        reraise=True,
    )

    async def attempt() -> T:  # tenacity awaits only what a coroutine function returns
        return await write()

    result: T = await retrying(attempt)
    log.info("%s written after %.0f s without the database", what, time.monotonic() - began)
    return result
