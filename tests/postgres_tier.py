"""Whether the PostgreSQL tier runs: a server named by EASEL_TEST_POSTGRES_URL that answers, and the hooks that act
on it (tests/conftest.py takes them from here; a test loads them alone with `-p postgres_tier --noconftest`).

Checked once, before any test: with CI=true a server that is not named or does not answer fails the run at once
(CI has one, so its absence is a broken machine, not a reason to pass); elsewhere the tier is skipped, and the
run ends by saying so loudly, with why, so that a green `make test` is never mistaken for a full one.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest
from sqlalchemy.engine import make_url

VARIABLE = "EASEL_TEST_POSTGRES_URL"
CONNECT_TIMEOUT_SECONDS = 5.0


def url() -> str:
    return os.environ.get(VARIABLE, "")


def unavailable() -> str | None:
    """None when the server answers; otherwise why the tier cannot run."""
    if not url():
        return f"{VARIABLE} is not set"
    try:
        import asyncpg
    except ImportError:
        return "asyncpg is not installed"
    address = make_url(url())
    dsn = address.set(drivername="postgresql").render_as_string(hide_password=False)

    async def ping() -> None:
        connection = await asyncpg.connect(dsn, timeout=CONNECT_TIMEOUT_SECONDS)
        await connection.close()

    try:
        asyncio.run(ping())
    except (TimeoutError, OSError, asyncpg.PostgresError) as error:
        where = f"{address.host or 'localhost'}:{address.port or 5432}/{address.database or ''}"
        return f"the PostgreSQL server at {where} does not answer: {error!r}"
    return None


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


POSTGRES_SKIPPED = pytest.StashKey[str | None]()


def pytest_configure(config: pytest.Config) -> None:
    """The tier is decided once, before any test: under CI=true a missing server ends the run here."""
    reason = unavailable()
    if reason is not None and in_ci():
        raise pytest.UsageError(f"CI=true needs the PostgreSQL tier, but {reason}")
    config.stash[POSTGRES_SKIPPED] = reason


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = config.stash.get(POSTGRES_SKIPPED, None)
    if reason is None:
        return
    for item in items:
        if item.get_closest_marker("postgres"):
            item.add_marker(pytest.mark.skip(reason=f"PostgreSQL tier: {reason}"))


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    reason = config.stash.get(POSTGRES_SKIPPED, None)
    if reason is not None:
        terminalreporter.section("PostgreSQL tier SKIPPED", sep="!", red=True, bold=True)
        terminalreporter.line(f"The PostgreSQL tests did not run: {reason}.", red=True, bold=True)
        terminalreporter.line(
            f"Set {VARIABLE} (e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test) to run them; "
            "CI=true fails without them."
        )
