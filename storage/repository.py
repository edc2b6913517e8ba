"""What `Database`'s groups of methods share: the session factory and the clock.

Each group (users, communities, jobs, ...) is a mixin in its own module; `Database` combines them,
so callers see one object with flat method names, and each method is one short transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from storage.columns import as_utc
from storage.turns import Sessions

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class Repository:
    _sessions: Sessions
    _clock: Clock

    def _now(self) -> datetime:
        return as_utc(self._clock())
