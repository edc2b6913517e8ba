"""Errors the engine raises for input it refuses.

Each carries a stable `code` and the values that explain it, so the chat layer can render it in the
user's language; `str()` is a complete English sentence for logs and the command line.
"""

from __future__ import annotations

from typing import Any


class InvalidRequest(ValueError):
    """A request value outside what the engine accepts; names the value and what is allowed."""

    def __init__(self, code: str, field: str, value: Any, allowed: str) -> None:
        self.code = code
        self.field = field
        self.value = value
        self.allowed = allowed
        super().__init__(f"{field} {value!r} is not allowed: {allowed}")


class InvalidImage(ValueError):
    """An input image or mask that cannot be used; `code` says why."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


class GenerationCancelled(Exception):
    """Raised inside the pipeline's step loop when the caller asked to stop."""


class ModelLoadError(Exception):
    """Weights could not be loaded: a wrong id or path, no network, or an incomplete download."""
