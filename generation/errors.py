"""Every error easel raises on purpose: refused input, a stopped generation, unloadable weights, a full queue.

Each carries a stable `code` where a user may see it, and the values that explain it, so the chat layer can render
it in the user's language; `str()` is a complete English sentence for logs and the command line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar


class EaselError(Exception):
    """The root of every error easel raises on purpose.

    One tree gives each adapter one boundary: whatever it catches as `EaselError` is an expected outcome to tell
    the user about, and anything else is a bug to log.
    """


class InvalidRequest(EaselError, ValueError):
    """A request value outside what the engine accepts; names the value and what is allowed."""

    def __init__(self, code: str, field: str, value: Any, allowed: str) -> None:
        self.code = code
        self.field = field
        self.value = value
        self.allowed = allowed
        super().__init__(self.describe(repr))

    def describe(self, quote: Callable[[Any], str]) -> str:
        """The sentence, with the value as `quote` writes it (a chat shortens a long one)."""
        return f"{self.field} {quote(self.value)} is not allowed: {self.allowed}"


class InvalidImage(EaselError, ValueError):
    """An input image or mask that cannot be used; `code` says why, and `values` what the user's text needs."""

    def __init__(self, code: str, message: str, **values: Any) -> None:
        self.code = code
        self.values = values
        super().__init__(message)


class GenerationCancelled(EaselError):
    """Raised inside the pipeline's step loop when the caller asked to stop."""


class ModelLoadError(EaselError):
    """Weights could not be loaded: a wrong id or path, no network, or an incomplete download."""


class QueueRefused(EaselError):
    """The queue will not take a job; `code` and `limit` let the chat layer say why in the user's language."""

    code: ClassVar[str]

    def __init__(self, limit: int, message: str) -> None:
        self.limit = limit
        super().__init__(message)


class UserQueueFull(QueueRefused):
    code = "user_queue_full"

    def __init__(self, limit: int) -> None:
        super().__init__(
            limit,
            f"You already have {limit} jobs waiting, the most one person may queue; please wait for one to start.",
        )


class QueueFull(QueueRefused):
    code = "queue_full"

    def __init__(self, limit: int) -> None:
        super().__init__(limit, f"The queue is full ({limit} jobs waiting); please try again in a little while.")
