"""What a monitoring system reads at /metrics: the queue, the jobs and their times, the GPU, deliveries and platforms.

Each core keeps a registry of its own (prometheus-client's global one would mix the cores a test process runs).
Counts of events (jobs ended, deliveries and platform errors) are kept as they happen; the queue's length is read
from the database when scraped, so that every front end and worker sharing one reports the same queue.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from generation.worker import Worker
from storage.records import Job

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
SECONDS_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600)
"""From a tiny image on a fast GPU to an hour's wait in a busy community."""


class Metrics:
    def __init__(self, worker: Worker, clock: Callable[[], float] = time.monotonic) -> None:
        self.registry = CollectorRegistry()
        self.jobs = Counter(
            "easel_jobs", "Jobs that ended, by operation and outcome", ["operation", "outcome"], registry=self.registry
        )
        self.generation = Histogram(
            "easel_generation_seconds",
            "GPU seconds of each job done, by operation",
            ["operation"],
            buckets=SECONDS_BUCKETS,
            registry=self.registry,
        )
        self.wait = Histogram(
            "easel_wait_seconds", "Seconds from queued to started", buckets=SECONDS_BUCKETS, registry=self.registry
        )
        self.deliveries_failed = Counter(
            "easel_deliveries_failed", "Attempts to deliver a result that failed, by platform", ["platform"],
            registry=self.registry,
        )  # fmt: skip
        self.platform_errors = Counter(
            "easel_platform_errors", "Errors talking to a chat platform, by platform and kind", ["platform", "kind"],
            registry=self.registry,
        )  # fmt: skip
        self.queue = Gauge("easel_queue_jobs", "Jobs queued or running, by state", ["state"], registry=self.registry)
        self.registry.register(_Gpu(worker, clock))

    def started(self, job: Job) -> None:
        if job.started_at is not None:
            self.wait.observe(max((job.started_at - job.created_at).total_seconds(), 0.0))

    def done(self, job: Job | None, gpu_seconds: float) -> None:
        operation = job.operation if job is not None else "unknown"
        self.jobs.labels(operation, "done").inc()
        self.generation.labels(operation).observe(gpu_seconds)

    def ended(self, job: Job | None, outcome: str) -> None:
        self.jobs.labels(job.operation if job is not None else "unknown", outcome).inc()

    def platform_error(self, platform: str, kind: str) -> None:
        self.platform_errors.labels(platform, kind).inc()

    def exposition(self, queue: dict[str, int]) -> bytes:
        """The text format, with the queue's length by state as read from the database just now."""
        for state in ("queued", "running"):
            self.queue.labels(state).set(queue.get(state, 0))
        return generate_latest(self.registry)


class _Gpu(Collector):
    """The GPU's busy time, and its share of the time since the worker was built, read when scraped."""

    def __init__(self, worker: Worker, clock: Callable[[], float]) -> None:
        self.worker = worker
        self.clock = clock
        self.since = clock()

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        busy = self.worker.busy_seconds
        yield CounterMetricFamily("easel_gpu_busy_seconds", "Seconds the GPU ran batches in this process", busy)
        elapsed = max(self.clock() - self.since, 1e-9)
        share = busy / elapsed
        yield GaugeMetricFamily("easel_gpu_busy_ratio", "Share of the time since start the GPU was busy", share)
