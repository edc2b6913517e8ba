"""Which updates taken from a platform the current handling answers.

An adapter with durable intake sets them around the handling of an update (or of an album, several updates);
a job that handling writes marks them handled in the same transaction, so that a kill can never leave both the
job and its update to be handled again (a job twice).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

Received = tuple[str, tuple[int, ...]]
"""The inbox's source (platform and account) and the update ids."""

_received: ContextVar[Received | None] = ContextVar("received", default=None)


@contextmanager
def answering(source: str, update_ids: tuple[int, ...]) -> Iterator[None]:
    token = _received.set((source, update_ids))
    try:
        yield
    finally:
        _received.reset(token)


def answered() -> Received | None:
    """The updates the current handling answers, if it was set."""
    return _received.get()
