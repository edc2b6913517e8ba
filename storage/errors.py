"""Errors `Database` raises on purpose; each names what it refers to, so the core can log or render it."""

from __future__ import annotations


class StorageError(Exception):
    """Base of everything `storage` raises on purpose."""


class NotFound(StorageError, LookupError):
    def __init__(self, kind: str, key: object) -> None:
        self.kind = kind
        self.key = key
        super().__init__(f"no {kind} {key!r}")


class InvalidTransition(StorageError):
    """A state change refused because of the current state, e.g. cancelling a job that is done."""

    def __init__(self, subject: str, current: str, target: str) -> None:
        self.subject = subject
        self.current = current
        self.target = target
        super().__init__(f"{subject} cannot become {target}: it is {current}")


class QuotaExceeded(StorageError):
    """A reservation would take a user past a daily limit; nothing was written.

    `resource` is "images" or "gpu_seconds"; `used` is what the day had used before this request.
    """

    def __init__(self, resource: str, used: float, requested: float, limit: float) -> None:
        self.resource = resource
        self.used = used
        self.requested = requested
        self.limit = limit
        super().__init__(f"{resource} quota exceeded: {used:g} used, {requested:g} requested, limit {limit:g}")


class MessageAlreadyLinked(StorageError):
    """A platform message is already linked to another job or image; a message shows one thing."""

    def __init__(self, platform: str, chat_id: str, message_id: str) -> None:
        super().__init__(f"message {message_id} in {platform} chat {chat_id} is already linked elsewhere")


class DatabaseUnavailable(StorageError):
    """The database at `where` (its URL without the password) cannot be used: a URL or driver easel cannot open,
    a server that does not answer, a database that does not exist, or a schema this code cannot migrate."""

    def __init__(self, where: str, reason: str) -> None:
        self.where = where
        self.reason = reason
        super().__init__(f"{where}: {reason}")
