"""python-telegram-bot's own log records of a platform error, made one line.

Two of PTB's records carry a traceback for what is a platform error, and PTB logs them before easel's code
sees anything, so no error handler of PTB's or callback can take their place: the failure of the `getUpdates`
a stop makes to confirm the updates taken (PTB logs it and goes on stopping), and a call still refused with a
429 after the rate limiter's retries (PTB logs it, then raises it to the caller). So a logging filter on each of
the two loggers, matching only that record, is the one place left. The first becomes one warning line. The
second is dropped: the error is raised to easel's caller, which logs it in one line, with the job id where the
call was for a job.
"""

from __future__ import annotations

import logging

from telegram.error import RetryAfter, TelegramError


def _error_of(record: logging.LogRecord) -> BaseException | None:
    return record.exc_info[1] if record.exc_info else None


class _Unconfirmed(logging.Filter):
    """The updater's last `getUpdates` at a stop: the inbox has every update it took, so nothing is lost when
    Telegram sends them again (they are dropped as received before)."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = _error_of(record)
        if record.funcName == "_get_updates_cleanup" and isinstance(error, TelegramError):
            record.msg = "telegram: the stop could not confirm the updates taken (%r); sent again, they are dropped"
            record.args = (error,)
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.WARNING, logging.getLevelName(logging.WARNING)
        return True


class _RefusedAfterRetries(logging.Filter):
    """The rate limiter's last 429, raised to the caller right after this record."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.funcName == "process_request" and isinstance(_error_of(record), RetryAfter))


_FILTERS = {"telegram.ext.Updater": _Unconfirmed(), "telegram.ext.AIORateLimiter": _RefusedAfterRetries()}


def one_line_platform_errors() -> None:
    """Install the filters; installing them again changes nothing."""
    for name, record_filter in _FILTERS.items():
        logging.getLogger(name).addFilter(record_filter)
