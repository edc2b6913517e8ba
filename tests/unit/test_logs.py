from __future__ import annotations

import json
import logging

import pytest

from bots.logs import configure, handler


def test_the_json_format_writes_one_object_per_line_with_the_records_fields_as_keys(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logger = logging.getLogger("test.json")
    logger.addHandler(handler("json"))
    logger.propagate = False
    try:
        logger.warning("job %s done", "abc", extra={"job_id": "abc", "gpu_seconds": 1.5})
        try:
            raise ValueError("bad")
        except ValueError:
            logger.exception("it broke")
    finally:
        logger.handlers.clear()
        logger.propagate = True
    first, second = (json.loads(line) for line in capsys.readouterr().err.splitlines())
    assert first["message"] == "job abc done" and first["level"] == "WARNING" and first["logger"] == "test.json"
    assert first["job_id"] == "abc" and first["gpu_seconds"] == 1.5 and first["time"].startswith("20")
    assert second["level"] == "ERROR" and "ValueError: bad" in second["exc_info"]


def test_configure_sets_the_level_and_keeps_the_handlers_of_whoever_set_logging_up() -> None:
    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    try:
        configure("debug", "json")
        assert root.level == logging.DEBUG and root.handlers == before[0]
        assert logging.getLogger("alembic").level == logging.WARNING
    finally:
        root.setLevel(before[1])
