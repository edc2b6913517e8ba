"""The boundaries of docs/architecture.md, read from every module's imports: dependencies point inward.

adapters (bots/discord, bots/telegram, bots/console, bots/http) -> the bots core -> generation, storage.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ADAPTERS = ("discord", "telegram", "console", "http")
ENTRY_POINTS = {"bots/run.py", "bots/cli.py", "bots/maintenance.py"}
"""The outermost layer: the launcher starts the adapters, and the command line syncs Discord's commands, so they
alone may import them."""
PLATFORM_LIBRARIES = ("discord", "telegram")
MODEL_LIBRARIES = ("diffusers", "torch", "transformers", "accelerate")


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def imports(path: Path) -> Iterator[str]:
    """Every module `path` imports, at any depth (lazy imports inside functions count too)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def crossing(path: Path, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        {name for name in imports(path) if any(name == root or name.startswith(f"{root}.") for root in forbidden)}
    )


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def adapter_of(path: Path) -> str | None:
    parts = path.relative_to(ROOT).parts
    return parts[1] if len(parts) > 2 and parts[0] == "bots" and parts[1] in ADAPTERS else None


@pytest.mark.parametrize("path", modules("generation"), ids=relative)
def test_generation_knows_no_chat_platform_and_no_database(path: Path) -> None:
    assert crossing(path, ("bots", "storage", "sqlalchemy", "alembic", *PLATFORM_LIBRARIES)) == []


@pytest.mark.parametrize("path", modules("storage"), ids=relative)
def test_storage_imports_nothing_of_the_project_nor_of_platforms_or_models(path: Path) -> None:
    assert crossing(path, ("bots", "generation", *PLATFORM_LIBRARIES, *MODEL_LIBRARIES)) == []


@pytest.mark.parametrize(
    "path", [p for p in modules("bots") if adapter_of(p) is None and relative(p) not in ENTRY_POINTS], ids=relative
)
def test_the_core_knows_no_adapter_and_no_platform(path: Path) -> None:
    adapters = tuple(f"bots.{name}" for name in ADAPTERS)
    assert crossing(path, (*adapters, *PLATFORM_LIBRARIES)) == []


@pytest.mark.parametrize("path", [p for p in modules("bots") if adapter_of(p) is not None], ids=relative)
def test_adapters_never_import_each_other_nor_reach_past_the_core(path: Path) -> None:
    own = adapter_of(path)
    others = tuple(f"bots.{name}" for name in ADAPTERS if name != own)
    assert crossing(path, others) == []
    assert (
        crossing(path, ("storage", "bots.core.lifecycle", "bots.core.deliveries", "bots.core.announcer", "bots.root"))
        == []
    )
    allowed_generation = {"generation.asks"}
    assert [name for name in crossing(path, ("generation",)) if name not in allowed_generation] == []


def test_every_package_is_checked() -> None:
    assert modules("generation") and modules("storage") and modules("bots")
    assert {adapter_of(path) for path in modules("bots")} >= {"discord", "telegram", "console"}


MAX_MODULE_LINES = 400
MAX_CLASS_LINES = 300


@pytest.mark.parametrize("path", [*modules("bots"), *modules("generation"), *modules("storage")], ids=relative)
def test_modules_and_classes_stay_small_enough_to_read(path: Path) -> None:
    """One job per module: past these sizes a module has grown a second job to split along its seam."""
    source = path.read_text(encoding="utf-8")
    assert len(source.splitlines()) <= MAX_MODULE_LINES
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef):
            assert node.end_lineno is not None
            assert node.end_lineno - node.lineno + 1 <= MAX_CLASS_LINES, node.name


def test_sqlite_needs_no_postgresql_driver() -> None:
    """`make run` installs easel without the postgres extra: only a PostgreSQL database imports asyncpg."""
    blocked = "import sys; sys.modules['asyncpg'] = None; import storage.database, storage.notifications, bots.cli"
    subprocess.run([sys.executable, "-c", blocked], check=True, cwd=ROOT)
