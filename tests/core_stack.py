"""A running core for tests that drive it from outside: database, file store, service and worker, tiny model."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bots.config import Settings, load_settings
from bots.service import Service
from generation.worker import Worker
from storage.database import Database
from storage.files import FileStore


@dataclass
class Stack:
    settings: Settings
    db: Database
    files: FileStore
    service: Service
    worker: Worker
    task: asyncio.Task[None]
    stopped: bool = False

    async def stop(self) -> None:
        """Let the batch on the worker finish, then close everything; a second call does nothing."""
        if self.stopped:
            return
        self.stopped = True
        await self.worker.stop()
        await self.task
        self.worker.close()
        await self.db.close()

    async def crash(self) -> None:
        """Stop as a killed process would: the batch on the GPU is abandoned and nothing more is written."""
        self.stopped = True
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.db.close()


def core_settings(root: Path, **sections: dict[str, Any]) -> Settings:
    """Tiny-preset settings with storage under `root`; `sections` override whole settings sections' keys."""
    settings = load_settings(None, environ={"EASEL_MODEL__PRESET": "tiny"})
    updates: dict[str, Any] = {
        "storage": settings.storage.model_copy(
            update={"database_url": f"sqlite+aiosqlite:///{root / 'easel.db'}", "outputs_dir": root / "files"}
        )
    }
    for name, values in sections.items():
        updates[name] = getattr(settings, name).model_copy(update=values)
    return settings.model_copy(update=updates)


Launch = Callable[..., Awaitable[Stack]]
