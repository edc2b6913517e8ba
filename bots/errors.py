"""The one error family users see, and the one table from domain errors to it.

Every error easel raises on purpose descends from `EaselError`. A `UserError` carries a message key and
its values; adapters render it in the user's language through `bots.texts`, at their one boundary
(`bots.kit.boundary`). The engine's, the queue's and the banned-word matcher's refusals are turned into one
by `user_error`, here and nowhere else. Anything else that escapes is a bug: it is logged with the job id,
and the user is told only that something failed and the reference.
"""

from __future__ import annotations

import logging
from typing import Any

from bots.moderation.matching import InvalidPattern
from bots.texts import OPTION_NAMES, Text, shortened
from generation.errors import EaselError, InvalidImage, InvalidRequest, QueueFull, QueueRefused, UserQueueFull
from storage.errors import DatabaseUnavailable

log = logging.getLogger(__name__)


class UserError(EaselError):
    def __init__(self, key: str, **values: Any) -> None:
        self.key = key
        self.values = values
        super().__init__(f"{key}: {values}")


Refusal = InvalidRequest | InvalidImage | QueueRefused | InvalidPattern | DatabaseUnavailable
"""What the engine, the queue and the banned-word matcher refuse, and a database that does not answer (a server
restarting, a network cut: the user may try again soon); the user is told why."""


def _detail(error: InvalidRequest) -> Text:
    """ "--steps 0 is not allowed: a whole number from 1 to 100", in the reader's language: the field as its option
    or a word, the value quoted, and the rule with its values (an operation by its name in that language)."""
    field = OPTION_NAMES.get(error.field) or Text(f"request.field.{error.field.replace(' ', '_')}")
    values = {
        name: Text(f"operation.{value}") if name == "operation" else value for name, value in error.values.items()
    }
    allowed = Text(f"request.rule.{error.rule}", **values)
    if error.value is None:
        return Text("request.detail_unquoted", field=field, allowed=allowed)
    return Text("request.detail", field=field, value=shortened(repr(error.value)), allowed=allowed)


def user_error(error: Refusal) -> UserError:
    """The refusal a user is shown; the engine's own explanation is kept, since it names the bad value and what
    is allowed, with the value shortened as every refusal quotes one (`bots.texts.shortened`)."""
    if isinstance(error, InvalidImage):
        return UserError(f"image.{error.code}", detail=str(error), **error.values)
    if isinstance(error, InvalidRequest):
        return UserError("request.invalid", detail=_detail(error))
    if isinstance(error, InvalidPattern):
        return UserError("moderation.bad_pattern", pattern=error.pattern.text, detail=error.detail)
    if isinstance(error, UserQueueFull):
        return UserError("queue.user_full", limit=error.limit)
    if isinstance(error, QueueFull):
        return UserError("queue.full", limit=error.limit)
    if isinstance(error, DatabaseUnavailable):
        log.warning("a request was refused: %s", error)  # the operator's to fix, not the user's
        return UserError("service.unavailable")
    return UserError("queue.refused")
