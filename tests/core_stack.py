"""A running core for tests that drive it from outside: the composition root's runtime on the tiny model."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from bots.config import Settings, load_settings
from bots.core.facade import Core
from bots.root import Runtime
from generation.worker import Worker
from storage.database import Database
from storage.files import FileStore


@dataclass
class Stack:
    runtime: Runtime
    stopped: bool = False

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    @property
    def db(self) -> Database:
        return self.runtime.db

    @property
    def files(self) -> FileStore:
        return self.runtime.files

    @property
    def core(self) -> Core:
        return self.runtime.core

    @property
    def worker(self) -> Worker:
        return self.runtime.worker

    async def stop(self) -> None:
        """Let the batch on the worker finish, then close everything; a second call does nothing."""
        if self.stopped:
            return
        self.stopped = True
        await self.runtime.stop()

    async def crash(self) -> None:
        """Stop as a killed process would: the batch on the GPU is abandoned and nothing more is written."""
        self.stopped = True
        task = self.runtime.task
        assert task is not None
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await self.db.close()


def core_settings(root: Path, **sections: dict[str, Any]) -> Settings:
    """Tiny-preset settings with storage under `root`; `sections` override settings sections' keys (a mapping
    such as `tiers` is replaced whole)."""
    settings = load_settings(None, environ={"EASEL_MODEL__PRESET": "tiny"})
    updates: dict[str, Any] = {
        "storage": settings.storage.model_copy(
            update={"database_url": f"sqlite+aiosqlite:///{root / 'easel.db'}", "outputs_dir": root / "files"}
        )
    }
    for name, values in sections.items():
        current = updates.get(name, getattr(settings, name))
        updates[name] = current.model_copy(update=values) if isinstance(current, BaseModel) else values
    return settings.model_copy(update=updates)


Launch = Callable[..., Awaitable[Stack]]
