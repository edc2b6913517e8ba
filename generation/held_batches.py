"""Batches taken in their fair turn whose model is still loading (the inpaint decoder, loaded on first use): held
aside while the batches behind them run, and run first once their model is ready, so that one user's first
inpaint does not stop everyone else's images for the length of a load."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

from generation.requests import GenerationRequest

if TYPE_CHECKING:
    from generation.worker import WorkItem

log = logging.getLogger(__name__)

POLL_SECONDS = 0.1
"""How often a worker with nothing else to run looks whether a held batch's model is ready."""


class Loading(Protocol):
    """What loads the models a job needs ahead of its turn (`Engine`)."""

    def prepare(self, request: GenerationRequest) -> None:
        """A job was queued: start loading what only it needs."""

    def ready(self, request: GenerationRequest) -> bool:
        """Whether what it needs is loaded."""


class HeldBatches:
    def __init__(self, loading: Loading | None) -> None:
        self._loading = loading
        self._held: list[list[WorkItem]] = []

    def __bool__(self) -> bool:
        return bool(self._held)

    def prepare(self, item: WorkItem) -> None:
        if self._loading is not None:
            self._loading.prepare(item.request)

    def hold(self, batch: list[WorkItem]) -> bool:
        """Hold `batch` if its model is still loading (and start loading it: a job queued in another process was
        not prepared here); False if it can run now."""
        if self._loading is None or all(self._loading.ready(item.request) for item in batch):
            return False
        for item in batch:
            self._loading.prepare(item.request)
        self._held.append(batch)
        log.info("job(s) %s wait for their model to load; the jobs behind them run meanwhile", _ids(batch))
        return True

    def take_ready(self) -> list[WorkItem] | None:
        """The first held batch whose model is ready, in the order they were taken."""
        for batch in self._held:
            if self._loading is None or all(self._loading.ready(item.request) for item in batch):
                self._held.remove(batch)
                return batch
        return None

    def holds(self, job_id: str) -> bool:
        return any(item.job_id == job_id for batch in self._held for item in batch)

    def release(self) -> list[list[WorkItem]]:
        """Every held batch, to run as taken batches do at a stop (waiting for the load)."""
        held, self._held = self._held, []
        return held


def _ids(batch: list[WorkItem]) -> str:
    return ", ".join(item.job_id for item in batch)
