"""The PostgreSQL tier's gate: skipped loudly on a developer's machine, a failed run under CI=true."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import postgres_tier
import pytest

ROOT = Path(__file__).resolve().parents[2]
NOBODY = "postgresql+asyncpg://postgres@127.0.0.1:9/test"  # the discard port: nothing listens there


def test_why_the_tier_cannot_run_names_the_variable_or_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(postgres_tier.VARIABLE, raising=False)
    assert postgres_tier.unavailable() == "EASEL_TEST_POSTGRES_URL is not set"
    monkeypatch.setenv(postgres_tier.VARIABLE, NOBODY)
    reason = postgres_tier.unavailable()
    assert reason is not None and reason.startswith("the PostgreSQL server at 127.0.0.1:9/test does not answer")


def test_under_ci_a_server_that_does_not_answer_fails_the_run_before_any_test() -> None:
    environment = {**os.environ, "CI": "true", postgres_tier.VARIABLE: NOBODY, "PYTHONPATH": str(ROOT / "tests")}
    only_the_tier = ["-p", "no:cacheprovider", "-p", "postgres_tier", "--noconftest"]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", *only_the_tier, "--co", "tests/integration/test_postgres_tier.py"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "CI=true needs the PostgreSQL tier, but the PostgreSQL server at 127.0.0.1:9/test" in done.stderr
