"""Whether this process can do its work, for /healthz: its database answers, its worker runs, its model is loaded.

A front end without a worker of its own (`[worker] local = false`) has no worker or model to report: they run in
`easel worker` processes, which a monitoring system checks on their own hosts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from storage.database import Database

PING_SECONDS = 2.0
"""A database slower than this to answer one `SELECT 1` counts as not answering."""


@dataclass(frozen=True)
class Health:
    ok: bool
    checks: dict[str, str]


@dataclass(eq=False)
class HealthCheck:
    db: Database
    worker_alive: Callable[[], bool] | None
    """Whether this process's worker runs (None: a front end only); its model is loaded before it starts."""

    async def check(self) -> Health:
        checks = {"database": await self._database()}
        if self.worker_alive is None:
            checks["worker"] = checks["model"] = "elsewhere (a front end only)"
        else:
            alive = self.worker_alive()
            checks["worker"] = "running" if alive else "stopped"
            checks["model"] = "loaded" if alive else "not serving"
        ok = checks["database"] == "ok" and checks["worker"] != "stopped"
        return Health(ok, checks)

    async def _database(self) -> str:
        try:
            await asyncio.wait_for(self.db.ping(), PING_SECONDS)
        except Exception as error:  # whatever the driver raises: the answer is that it does not answer
            return f"unreachable: {error!r}"
        return "ok"
