"""Seconds per unit of cost, measured: the basis of every ETA."""

from __future__ import annotations

from collections.abc import Hashable

from generation.costs import job_cost
from generation.requests import GenerationRequest


class Throughput:
    """Seconds per unit of cost for each operation, smoothed over recent batches; the basis of every ETA.

    An operation not yet measured borrows the figure of all operations together.
    """

    def __init__(self, initial: float, smoothing: float = 0.3) -> None:
        self.overall = initial
        self.smoothing = smoothing
        self._by_operation: dict[Hashable, float] = {}

    def rate(self, operation: Hashable | None) -> float:
        return self._by_operation.get(operation, self.overall)

    def seconds(self, request: GenerationRequest) -> float:
        """The expected GPU seconds of one request."""
        return job_cost(request) * self.rate(str(request.operation))

    def record(self, operation: Hashable, cost: float, seconds: float) -> None:
        if cost <= 0 or seconds <= 0:
            return
        sample = seconds / cost
        self.overall += self.smoothing * (sample - self.overall)
        current = self._by_operation.get(operation)
        self._by_operation[operation] = sample if current is None else current + self.smoothing * (sample - current)
