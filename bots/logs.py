"""Where easel's log lines go and how they look: plain text for a person at a terminal, or one JSON object per
line for journald and log shippers, where a job's fields (`job_id`, `user_id`, `operation`, durations) are keys of
their own rather than words inside the message."""

from __future__ import annotations

import logging
import os
import sys

from pythonjsonlogger.json import JsonFormatter

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_JSON_FIELDS = {"levelname": "level", "name": "logger"}


def configure(level: str, form: str) -> None:
    """Every logger's lines on stderr, at `level` and in `form` ("text" or "json"). Where logging is set up
    already (a test runner, a program that embeds easel), its handlers stay and only the level changes, as
    `logging.basicConfig` does."""
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(handler(form))
    root.setLevel(level.upper())
    logging.captureWarnings(True)  # Python's warnings (each once per place, as by default) in the same format
    # alembic narrates every migration.
    logging.getLogger("alembic").setLevel(max(root.level, logging.WARNING))


def handler(form: str) -> logging.Handler:
    written = logging.StreamHandler(sys.stderr)
    if form == "json":
        written.setFormatter(
            JsonFormatter("{levelname}{name}{message}", style="{", rename_fields=_JSON_FIELDS, timestamp="time")
        )
    else:
        written.setFormatter(logging.Formatter(TEXT_FORMAT))
    return written


def quiet_progress_bars() -> None:
    """Download and loading progress bars help at a terminal; in a service's log (journald, a file, docker) each
    redraw is a line of noise. Set before huggingface_hub is imported, which reads it once."""
    if not sys.stderr.isatty():
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
