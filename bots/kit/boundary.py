"""The one error boundary of every adapter, and its one reference scheme.

A refusal (`UserError`, or an engine or queue refusal the error table turns into one) is explained in the
user's language, quoting each of its values shortened (`bots.texts.shortened`): a refusal that quoted a
4,000-character value whole would be cut by the platform's limit, or refused by it, and the user would not read
why. Anything else is a bug: it is logged once with a reference, and the user gets that
reference, which is the short job id when the event concerns a job, else a fresh one.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from bots.core.types import short_id
from bots.errors import Refusal, UserError, user_error
from bots.texts import render, shortened

log = logging.getLogger(__name__)

Say = Callable[[str], Awaitable[None]]
Known = Callable[[BaseException, str | None], str | None]
"""An adapter's own explanation of a platform error (a missing permission), or None when it has none."""


def reference_for(job_id: str | None = None) -> str:
    """What a user quotes to an operator: the short job id, or a fresh id that the log line carries too."""
    return short_id(job_id) if job_id else secrets.token_hex(4)


def explain(
    error: BaseException, language: str | None, *, job_id: str | None = None, what: str = "", known: Known | None = None
) -> str:
    """The text a user is shown for `error`; a bug is logged here, with its reference and `what` was handled."""
    if isinstance(error, Refusal):
        error = user_error(error)
    if isinstance(error, UserError):
        values = {name: shortened(value) if isinstance(value, str) else value for name, value in error.values.items()}
        return render(error.key, language, **values)
    if known is not None and (text := known(error, language)) is not None:
        return text
    reference = reference_for(job_id)
    log.error("%s failed (reference %s)", what or "a request", reference, exc_info=error)
    return render("error.internal", language, reference=reference)


@asynccontextmanager
async def guarded(
    say: Say, language: str | None, *, job_id: str | None = None, what: str = "", known: Known | None = None
) -> AsyncIterator[None]:
    """Run an event's handling; whatever escapes is explained through `say`, and never crashes the adapter."""
    try:
        yield
    except Exception as error:  # the boundary: every failure ends here, explained or logged
        await say(explain(error, language, job_id=job_id, what=what, known=known))
