"""The one error family users see.

A `UserError` carries a message key and its values; adapters render it in the user's language through
`bots.texts`. Anything else that escapes is a bug: it is logged with the job id, and the user is told
only that something failed and the reference.
"""

from __future__ import annotations

from typing import Any

from generation.errors import InvalidImage, InvalidRequest
from generation.scheduler import QueueFull, QueueRefused, UserQueueFull


class UserError(Exception):
    def __init__(self, key: str, **values: Any) -> None:
        self.key = key
        self.values = values
        super().__init__(f"{key}: {values}")


def from_generation(error: InvalidRequest | InvalidImage) -> UserError:
    """Keep the engine's own explanation: it names the bad value and what is allowed."""
    if isinstance(error, InvalidImage):
        return UserError(f"image.{error.code}", detail=str(error))
    return UserError("request.invalid", field=error.field, value=error.value, allowed=error.allowed, detail=str(error))


def from_queue(error: QueueRefused) -> UserError:
    if isinstance(error, UserQueueFull):
        return UserError("queue.user_full", limit=error.limit)
    if isinstance(error, QueueFull):
        return UserError("queue.full", limit=error.limit)
    return UserError("queue.refused")
