"""Job events to the adapters, and the delivery ledger.

Every state change is written before it is announced. Adapters register one listener per platform; a
final event (done, failed, cancelled) counts as delivered when the listener returns, and is delivered
again later (and after a restart) when it raises. Other events are best effort: a lost progress update
is harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bots.core.accounts import now
from bots.core.metrics import Metrics
from bots.core.persistence import persistently
from bots.core.types import EventKind, JobEvent
from storage.database import Database
from storage.records import Job, User

log = logging.getLogger(__name__)

MAX_DELIVERY_ATTEMPTS = 10

Listener = Callable[[JobEvent], Awaitable[None]]
Relay = Callable[[EventKind, str, dict[str, Any]], Awaitable[None]]
"""Passes an event of a job whose platform this process does not serve to the processes that do: its kind, the
job and its values (progress, a preview). A final event relayed is not delivered yet: the process that serves the
platform delivers it from the database."""


@dataclass(frozen=True)
class Route:
    """Where a job's events go."""

    platform: str
    channel_id: str
    user_id: str
    language: str | None
    prompt: str
    reply_to: str | None = None


class Announcer:
    def __init__(self, db: Database, metrics: Metrics) -> None:
        self.db = db
        self.metrics = metrics
        self.relay: Relay | None = None
        self._listeners: dict[str, Listener] = {}
        self._routes: dict[str, Route] = {}
        self._delivering: set[str] = set()

    def listen(self, platform: str, listener: Listener) -> None:
        self._listeners[platform] = listener

    def serves(self, platform: str) -> bool:
        return platform in self._listeners

    @property
    def serves_any(self) -> bool:
        """Whether this process serves a platform at all (an `easel worker` serves none)."""
        return bool(self._listeners)

    def routes(self, job_id: str) -> bool:
        """Whether this process tells the job's owner its events."""
        route = self._routes.get(job_id)
        return route is not None and route.platform in self._listeners

    def has_pending(self, platform: str) -> bool:
        """Whether any job of this platform is still to finish or to be announced."""
        return any(route.platform == platform for route in self._routes.values())

    def route(self, job_id: str, route: Route) -> None:
        self._routes[job_id] = route

    async def route_stored(self, job: Job) -> User:
        """Route the events of a job found in the database (after a restart) to its owner."""
        owner = await self.db.get_user(job.owner_id)
        assert owner is not None, f"job {job.id} has no owner"
        self._routes[job.id] = Route(
            job.platform, job.channel_id, owner.platform_user_id, owner.chosen_language or owner.language, job.prompt
        )
        return owner

    def may_redeliver(self, job: Job) -> bool:
        """A platform serves the job, and this run is not announcing it right now."""
        return job.platform in self._listeners and job.id not in self._routes and job.id not in self._delivering

    async def emit(self, kind: EventKind, job_id: str, delivery_attempts: int = 0, **values: Any) -> None:
        """Tell the job's platform; a final event counts as delivered once its listener returns. A job whose
        platform is not served here is relayed, when there is a relay."""
        route = self._routes.get(job_id)
        if route is None or route.platform not in self._listeners:
            if kind.final:
                self._routes.pop(job_id, None)
            if self.relay is not None:
                await self.relay(kind, job_id, values)
            return
        event = JobEvent(
            kind,
            job_id,
            route.platform,
            route.channel_id,
            route.user_id,
            route.language,
            route.prompt,
            reply_to=route.reply_to,
            **values,
        )
        listener = self._listeners[route.platform]
        if kind.final:
            self._routes.pop(job_id, None)
        if not kind.final:
            try:
                await listener(event)
            except Exception as error:
                log.warning("announcing %s of job %s failed: %r", kind, job_id, error)
            return
        self._delivering.add(job_id)
        try:
            await self._deliver(listener, event, delivery_attempts)
        finally:
            self._delivering.discard(job_id)

    async def _deliver(self, listener: Listener, event: JobEvent, delivery_attempts: int) -> None:
        """A final event: delivered when the listener returns, recorded as a failed attempt when it raises."""
        try:
            await listener(event)
        except Exception as error:
            final = delivery_attempts + 1 >= MAX_DELIVERY_ATTEMPTS
            self.metrics.deliveries_failed.labels(event.platform).inc()
            log.log(
                logging.ERROR if final else logging.WARNING,
                "delivering job %s failed (attempt %d of %d): %r",
                event.job_id,
                delivery_attempts + 1,
                MAX_DELIVERY_ATTEMPTS,
                error,
            )
            attempted, reason = now(), repr(error)
            await persistently(
                lambda: self.db.mark_delivery_failed(event.job_id, attempted, reason, final=final),
                f"the delivery of job {event.job_id}",
            )
            return
        delivered = now()
        await persistently(
            lambda: self.db.mark_delivered(event.job_id, delivered), f"the delivery of job {event.job_id}"
        )
