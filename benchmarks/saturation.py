"""Saturation benchmark: the service with a queue that users would recognise, delivered through Telegram.

Why it exists: the duty-cycle and overhead cases of `benchmarks/scheduler.py` never queue anyone for long (50 jobs
of a whole batch each, or one job at a time into an idle worker) and their listener is a dict write, so the cost
of telling hundreds of waiting users where they stand, and of a burst of submissions fighting the worker for the
database, never shows there. These cases run the real core as `easel run` opens it (the composition root, a SQLite
file, a file store in a scratch directory) with the real Telegram `Delivery` on python-telegram-bot's `ExtBot`
(no rate limiter: every call the service asks for is made and counted), against the wire tests' fake Bot API in a
process of its own, as Telegram would be. The pipeline is a stand-in that sleeps `seconds` per call, reports four
progress steps and returns noise images; every prompt asks for one image, so up to four share a call.

- queue1000: QUEUE_USERS users send QUEUE_PROMPTS prompts each (1,000) at the same time, each user in a private
  chat of their own and each sending their next prompt once the last one is queued; the pipeline runs meanwhile.
  Figures: the duty cycle (the stand-in's busy time over the wall time from its first start to its last return),
  the status-message edits per job (`editMessageText` calls over the jobs), the gaps between pipeline calls, the
  time to drain, every Bot API call by method and the most calls in any one second, and the core's events by kind.
- burst50: BURST_USERS users send one prompt each at the same moment, to an idle service. The "queued" reply is
  the time from the submission to Telegram's answer to the job's status message (its link being written).
- queue200: OVERHEAD_QUEUED prompts are queued before the pipeline's first call returns; for the jobs whose batch
  started with at least OVERHEAD_WAITING others waiting, the milliseconds from the pipeline call's start to the
  job's "started" event (the running state written), and from its return to the done event and to the end of
  the done report (PNG stored, job written, photo sent to Telegram, delivery recorded). A batch's results are
  told one after another, so a job's done event also waits for the deliveries of those before it in its
  batch: the `_own_ms` figures leave out what is Telegram's, the time the done event waited for the earlier
  deliveries (the listener's) and the time the done report waited for Bot API calls; `done_to_delivered_by_place`
  gives the whole delay by the job's place among its batch's results. `--size` makes the images that large, and
  `--photo-latency` has the fake Bot API answer each sendPhoto that late, as an upload to Telegram takes a while.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from bench_settings import PROXY_VARIABLES, bench_settings, scratch_postgres
from PIL import Image
from telegram.ext import ExtBot

from bots.core.facade import Core
from bots.core.types import Actor, EventKind, JobEvent, Place
from bots.heap import set_start_up_aside
from bots.root import Runtime, running_core
from bots.telegram.aiohttp_request import AiohttpRequest
from bots.telegram.delivery import Delivery
from generation.asks import Ask, Options
from generation.engine import CancelCheck, GenerationResult, ProgressCallback
from generation.language_detection import load as load_detector
from generation.requests import GenerationRequest

WIRE = Path(__file__).resolve().parents[1] / "tests" / "wire"
TOKEN = "123456:TEST-token"
PLATFORM = "telegram"
SECONDS = 0.2
STEPS = 4
SIZE = 64
QUEUE_USERS = 200
QUEUE_PROMPTS = 5
QUEUE_DUTY_TARGET = 0.98
QUEUE_EDITS_TARGET = 5.0
BURST_USERS = 50
BURST_TARGET_MS = 100.0
OVERHEAD_QUEUED = 300
OVERHEAD_WAITING = 200
OVERHEAD_TARGET_MS = 10.0
WAIT_LIMIT_SECONDS = 900.0
FIRST_USER = 1001
T = TypeVar("T")

_FAKE = f"""
import asyncio, json, sys
sys.path.insert(0, {str(WIRE)!r})
from fake_telegram import FakeTelegram

async def main():
    fake = FakeTelegram()
    fake.latency = json.loads(sys.argv[1])
    await fake.start()
    print(fake.port, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await fake.stop()

asyncio.run(main())
"""


class StandIn:
    """A `GenerateFn` that sleeps instead of computing and notes when each call ran (perf_counter seconds).

    Its first call waits until `gate` is set, so that a queue can be built before anything leaves it.
    """

    def __init__(self, seconds: float, size: int = SIZE) -> None:
        self.seconds = seconds
        self.size = size
        self.calls: list[tuple[float, float]] = []
        self.started: dict[int, float] = {}  # by the request's seed
        self.returned: dict[int, float] = {}
        self.gate = threading.Event()
        self.gate.set()

    def __call__(
        self, requests: Sequence[GenerationRequest], on_progress: ProgressCallback, should_cancel: CancelCheck
    ) -> list[GenerationResult]:
        started = time.perf_counter()
        for request in requests:
            self.started[request.seed] = started
        self.gate.wait()
        results = [GenerationResult(request, _noise(request.seeds, self.size), request.seeds) for request in requests]
        for step in range(1, STEPS + 1):
            time.sleep(max(0.0, started + self.seconds * step / STEPS - time.perf_counter()))
            on_progress(step / STEPS)
        finished = time.perf_counter()
        self.calls.append((started, finished))
        for request in requests:
            self.returned[request.seed] = finished
        return results


def _noise(seeds: tuple[int, ...], size: int) -> tuple[Image.Image, ...]:
    return tuple(Image.frombytes("RGB", (size, size), random.Random(seed).randbytes(size * size * 3)) for seed in seeds)


class OutOfTime(RuntimeError):
    """The jobs did not all end within the limit."""


class Watch:
    """What the benchmark sees of the service: Bot API calls by method and time, when each job's events reached
    the Telegram delivery, when its status message was answered, and when its done report ended."""

    def __init__(self, runtime: Runtime, delivery: Delivery) -> None:
        self.delivery = delivery
        self.calls: list[tuple[str, float]] = []
        self.events: dict[tuple[str, str], float] = {}
        self.kinds: Counter[str] = Counter()
        self.posted: dict[str, float] = {}
        self.reported: dict[str, float] = {}
        self.problems: list[str] = []
        self.listened: dict[str, float] = {}  # by job: the done listeners' time before its own, in its task
        self.waited: dict[str, float] = {}  # by job: the Bot API time its task had waited for when it ended
        self._listening: weakref.WeakKeyDictionary[asyncio.Task[Any], float] = weakref.WeakKeyDictionary()
        self._calling: weakref.WeakKeyDictionary[asyncio.Task[Any], float] = weakref.WeakKeyDictionary()
        self._ended = asyncio.Event()
        core, announcer = runtime.core, runtime.core.lifecycle.announcer
        link_message, emit = core.link_message, announcer.emit

        async def timed_link(
            platform: str, chat_id: str, message_id: str, job_id: str, output_index: int | None = None
        ) -> None:
            await link_message(platform, chat_id, message_id, job_id, output_index)
            if output_index is None:
                self.posted.setdefault(job_id, time.perf_counter())

        async def timed_emit(kind: EventKind, job_id: str, delivery_attempts: int = 0, **values: Any) -> None:
            await emit(kind, job_id, delivery_attempts, **values)
            if kind is EventKind.DONE:
                self.reported[job_id] = time.perf_counter()
                self.waited[job_id] = self._calling.get(_task(), 0.0)
                self._ended.set()

        core.link_message = timed_link  # type: ignore[method-assign]
        announcer.emit = timed_emit  # type: ignore[method-assign]
        core.listen(PLATFORM, self.on_event)

    async def on_event(self, event: JobEvent) -> None:
        began = time.perf_counter()
        self.events.setdefault((event.kind, event.job_id), began)
        self.kinds[event.kind] += 1
        if event.kind.final and event.kind != "done":
            self.problems.append(f"job {event.job_id} ended {event.kind} ({event.error_key})")
            self._ended.set()
        if event.kind != "done":
            await self.delivery.on_event(event)
            return
        task = _task()
        self.listened[event.job_id] = self._listening.get(task, 0.0)
        try:
            await self.delivery.on_event(event)
        finally:
            self._listening[task] = self._listening.get(task, 0.0) + time.perf_counter() - began

    async def timed_call(self, call: Callable[[], Awaitable[T]]) -> T:
        """A Bot API call, its time counted to the task that waits for it."""
        began = time.perf_counter()
        try:
            return await call()
        finally:
            task = _task()
            self._calling[task] = self._calling.get(task, 0.0) + time.perf_counter() - began

    async def wait_for(self, jobs: int, worker: asyncio.Task[None], limit: float = WAIT_LIMIT_SECONDS) -> None:
        """Until `jobs` done reports have ended; a job that ends otherwise, or a dead or stuck worker, fails the run,
        and `limit` seconds raise `OutOfTime`."""
        deadline = time.monotonic() + limit
        while len(self.reported) < jobs and not self.problems:
            if worker.done():
                worker.result()
            if time.monotonic() > deadline:
                raise OutOfTime(f"only {len(self.reported)} of {jobs} jobs ended within {limit} s")
            self._ended.clear()
            try:
                await asyncio.wait_for(self._ended.wait(), 1.0)
            except TimeoutError:
                pass
        if self.problems:
            raise RuntimeError("; ".join(self.problems[:5]))

    def count(self, method: str) -> int:
        return sum(1 for name, _ in self.calls if name == method)


async def _with_telegram(
    stand_in: StandIn,
    jobs: int,
    use: Callable[[Runtime, Watch], Awaitable[T]],
    postgres: str | None = None,
    latency: dict[str, float] | None = None,
) -> T:
    """The core with the Telegram delivery, against the fake Bot API in a process of its own (answering the methods
    of `latency` that many seconds late); on a scratch database of the PostgreSQL server at `postgres` when given,
    else on a SQLite file."""
    with fake_bot_api(latency) as port:
        await asyncio.to_thread(load_detector)  # as `easel run` does before taking requests
        async with scratch_postgres(postgres) as database_url:
            with tempfile.TemporaryDirectory(prefix="easel-bench-") as root:
                settings = bench_settings(Path(root), jobs, database_url)
                async with running_core(settings, stand_in) as runtime:
                    watch: Watch | None = None
                    request = AiohttpRequest(connection_pool_size=256)  # as the adapter's
                    do_request = request.do_request

                    async def timed_request(url: str, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
                        if watch is None:
                            return await do_request(url, *args, **kwargs)
                        watch.calls.append((url.rsplit("/", 1)[-1], time.perf_counter()))
                        return await watch.timed_call(lambda: do_request(url, *args, **kwargs))

                    request.do_request = timed_request  # type: ignore[method-assign]
                    bot = ExtBot(
                        TOKEN,
                        base_url=f"http://127.0.0.1:{port}/bot",
                        base_file_url=f"http://127.0.0.1:{port}/file/bot",
                        request=request,
                    )
                    await bot.initialize()
                    delivery = Delivery(runtime.core, bot, settings.telegram)
                    set_start_up_aside()  # as `easel run` does once its adapters are built
                    watch = Watch(runtime, delivery)
                    try:
                        return await use(runtime, watch)
                    finally:
                        await delivery.close()
                        await bot.shutdown()


@contextmanager
def fake_bot_api(latency: dict[str, float] | None = None) -> Iterator[int]:
    """The wire tests' fake Bot API in a process of its own, as Telegram is: its port on 127.0.0.1. It answers the
    methods of `latency` that many seconds late."""
    fake = subprocess.Popen(
        [sys.executable, "-c", _FAKE, json.dumps(latency or {})],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=_no_proxy(),
    )
    try:
        assert fake.stdout is not None
        yield int(fake.stdout.readline())
    finally:
        assert fake.stdin is not None
        fake.stdin.close()
        fake.wait(10)


def _task() -> asyncio.Task[Any]:
    task = asyncio.current_task()
    assert task is not None
    return task


def _no_proxy() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if name not in PROXY_VARIABLES}


def _actor(index: int) -> tuple[Actor, Place]:
    user = str(FIRST_USER + index)
    return Actor(PLATFORM, user, language="en"), Place(PLATFORM, user)


def _ask(seed: int) -> Ask:
    return Ask("txt2img", "a lighthouse at dusk", Options(seed=seed, count=1))


def _ms(samples: Sequence[float]) -> dict[str, float]:
    values = sorted(sample * 1000 for sample in samples)
    return {
        "median": round(statistics.median(values), 2),
        "p90": round(values[int(0.9 * (len(values) - 1))], 2),
        "max": round(values[-1], 2),
    }


def _peak_per_second(times: Sequence[float]) -> int:
    """The most calls in any one-second window."""
    ordered = sorted(times)
    peak, start = 0, 0
    for end, at in enumerate(ordered):
        while at - ordered[start] > 1.0:
            start += 1
        peak = max(peak, end - start + 1)
    return peak


async def _queue1000(seconds: float, limit: float = WAIT_LIMIT_SECONDS, postgres: str | None = None) -> dict[str, Any]:
    """Past `limit` seconds of waiting for the drain, the figures so far, with `ended` short of the jobs."""
    stand_in = StandIn(seconds)
    jobs = QUEUE_USERS * QUEUE_PROMPTS

    async def use(runtime: Runtime, watch: Watch) -> dict[str, Any]:
        core: Core = runtime.core

        async def user(index: int) -> None:
            actor, place = _actor(index)
            for prompt in range(QUEUE_PROMPTS):
                await core.submit(actor, place, _ask(prompt * QUEUE_USERS + index))

        began = time.perf_counter()
        await asyncio.gather(*(user(index) for index in range(QUEUE_USERS)))
        submitted = time.perf_counter() - began
        assert runtime.task is not None
        try:
            await watch.wait_for(jobs, runtime.task, limit)
        except OutOfTime as error:
            print(error, file=sys.stderr)
        drained = time.perf_counter() - began
        calls = stand_in.calls
        first, last = calls[0][0], calls[-1][1]
        gaps = [after[0] - before[1] for before, after in itertools.pairwise(calls)]
        return {
            "duty_cycle": round(sum(end - start for start, end in calls) / (last - first), 4),
            "status_edits_per_job": round(watch.count("editMessageText") / len(watch.reported), 2),
            "gap_ms": _ms(gaps),
            "ended": len(watch.reported),
            "batches": len(calls),
            "submit_s": round(submitted, 1),
            "drain_s": round(drained, 1),
            "pipeline_s": round(sum(end - start for start, end in calls), 1),
            "calls": dict(sorted(Counter(name for name, _ in watch.calls).items())),
            "peak_calls_per_s": _peak_per_second([at for _, at in watch.calls]),
            "events": dict(sorted(watch.kinds.items())),
        }

    return await _with_telegram(stand_in, jobs, use, postgres)


async def _burst50(seconds: float, postgres: str | None = None) -> dict[str, Any]:
    stand_in = StandIn(seconds)

    async def use(runtime: Runtime, watch: Watch) -> dict[str, Any]:
        async def one(index: int) -> tuple[str, float]:
            actor, place = _actor(index)
            called = time.perf_counter()
            receipt = await runtime.core.submit(actor, place, _ask(index))
            return receipt.job_id, called

        submitted = await asyncio.gather(*(one(index) for index in range(BURST_USERS)))
        assert runtime.task is not None
        await watch.wait_for(BURST_USERS, runtime.task)
        return {"queued_reply_ms": _ms([watch.posted[job_id] - called for job_id, called in submitted])}

    return await _with_telegram(stand_in, BURST_USERS, use, postgres)


async def _queue200(
    seconds: float, postgres: str | None = None, size: int = SIZE, photo_latency: float = 0.0
) -> dict[str, Any]:
    stand_in = StandIn(seconds, size)
    stand_in.gate.clear()

    async def use(runtime: Runtime, watch: Watch) -> dict[str, Any]:
        ids = []
        for seed in range(OVERHEAD_QUEUED):
            actor, place = _actor(seed % QUEUE_USERS)
            ids.append((await runtime.core.submit(actor, place, _ask(seed))).job_id)
        stand_in.gate.set()
        assert runtime.task is not None
        await watch.wait_for(OVERHEAD_QUEUED, runtime.task)
        measured = range(OVERHEAD_QUEUED - OVERHEAD_WAITING - 4)  # a batch holds at most 4 of these 1-image jobs
        return {
            "jobs": len(measured),
            "start_to_running_ms": _ms([watch.events[("started", ids[s])] - stand_in.started[s] for s in measured]),
            "done_to_event_ms": _ms([watch.events[("done", ids[s])] - stand_in.returned[s] for s in measured]),
            "done_to_delivered_ms": _ms([watch.reported[ids[s]] - stand_in.returned[s] for s in measured]),
            "done_to_event_own_ms": _ms(
                [watch.events[("done", ids[s])] - stand_in.returned[s] - watch.listened[ids[s]] for s in measured]
            ),
            "done_to_delivered_own_ms": _ms(
                [watch.reported[ids[s]] - stand_in.returned[s] - watch.waited[ids[s]] for s in measured]
            ),
            "done_to_delivered_by_place_ms": _by_place(
                {s: watch.reported[ids[s]] - stand_in.returned[s] for s in measured}, stand_in.returned
            ),
        }

    latency = {"sendPhoto": photo_latency} if photo_latency else None
    return await _with_telegram(stand_in, OVERHEAD_QUEUED, use, postgres, latency)


def _by_place(delays: dict[int, float], returned: dict[int, float]) -> dict[str, dict[str, float]]:
    """The delays (by seed) by the job's place among its batch's results, as delivered: "1" the first."""
    batches: dict[float, list[float]] = {}
    for seed, delay in delays.items():
        batches.setdefault(returned[seed], []).append(delay)
    places: dict[int, list[float]] = {}
    for batch in batches.values():
        for place, delay in enumerate(sorted(batch), 1):
            places.setdefault(place, []).append(delay)
    return {str(place): _ms(values) for place, values in sorted(places.items())}


def saturation(seconds: float = SECONDS, postgres: str | None = None) -> dict[str, Any]:
    """Every case, each in an event loop and a service of its own; the keys `benchmarks/scheduler.py` reports."""
    queue = asyncio.run(_queue1000(seconds, postgres=postgres))
    burst = asyncio.run(_burst50(seconds, postgres))
    overhead = asyncio.run(_queue200(seconds, postgres))
    return {
        "saturation_gpu_seconds": seconds,
        "saturation_database": "postgresql" if postgres else "sqlite",
        "queue1000_duty_cycle": queue.pop("duty_cycle"),
        "queue1000_status_edits_per_job": queue.pop("status_edits_per_job"),
        "queue1000_max_gap_ms": queue["gap_ms"]["max"],
        "queue1000": queue,
        "burst50_queued_reply_ms": burst["queued_reply_ms"]["median"],
        "burst50": burst,
        "queue200_overhead_ms": overhead,
    }


def print_saturation(figures: dict[str, Any]) -> None:
    queue, overhead = figures["queue1000"], figures["queue200_overhead_ms"]
    print(f"\nsaturation through the Telegram delivery, a {figures['saturation_gpu_seconds'] * 1000:.0f} ms stand-in")
    print(f"  queue1000: {QUEUE_USERS} users x {QUEUE_PROMPTS} one-image prompts, {queue['batches']} pipeline calls")
    print(f"    duty cycle {figures['queue1000_duty_cycle']:.2%} (target >= {QUEUE_DUTY_TARGET:.0%}), ", end="")
    print(f"status edits per job {figures['queue1000_status_edits_per_job']} (target <= {QUEUE_EDITS_TARGET:g})")
    print(f"    gap between calls: median {queue['gap_ms']['median']} ms, longest {queue['gap_ms']['max']} ms")
    print(
        f"    submitted in {queue['submit_s']} s, drained in {queue['drain_s']} s ({queue['pipeline_s']} s of pipeline)"
    )
    print(f"    Bot API calls {queue['calls']}, at most {queue['peak_calls_per_s']} in one second")
    print(
        f"  burst50: {BURST_USERS} prompts at once, the queued reply: median {figures['burst50_queued_reply_ms']} ms ",
        end="",
    )
    print(f"(target <= {BURST_TARGET_MS:g}), p90 {figures['burst50']['queued_reply_ms']['p90']} ms")
    print(
        f"  queue200: {overhead['jobs']} jobs started with >= {OVERHEAD_WAITING} waiting, milliseconds (target <= ",
        end="",
    )
    print(f"{OVERHEAD_TARGET_MS:g} for start_to_running and done_to_delivered medians)")
    kinds = ("start_to_running_ms", "done_to_event_ms", "done_to_delivered_ms")
    for kind in (*kinds, "done_to_event_own_ms", "done_to_delivered_own_ms"):
        print(f"    {kind:<26} median {overhead[kind]['median']:8.2f}   p90 {overhead[kind]['p90']:8.2f}   ", end="")
        print(f"max {overhead[kind]['max']:8.2f}")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=SECONDS, help=f"stand-in seconds per call ({SECONDS})")
    parser.add_argument("--case", choices=("queue1000", "burst50", "queue200"), help="run one case alone")
    parser.add_argument("--limit", type=float, default=WAIT_LIMIT_SECONDS, help="queue1000: seconds to wait")
    parser.add_argument("--size", type=int, default=SIZE, help=f"queue200: the side of each image in pixels ({SIZE})")
    parser.add_argument(
        "--photo-latency",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="queue200: the fake Bot API answers each sendPhoto this late, as an upload over a real network (0)",
    )
    parser.add_argument(
        "--postgres",
        metavar="SERVER_URL",
        help="run on a scratch database of this PostgreSQL server (made and dropped per case) instead of SQLite",
    )
    args = parser.parse_args()
    if args.case == "queue1000":
        print(json.dumps(asyncio.run(_queue1000(args.seconds, args.limit, args.postgres))))
    elif args.case == "queue200":
        print(json.dumps(asyncio.run(_queue200(args.seconds, args.postgres, args.size, args.photo_latency))))
    elif args.case:
        print(json.dumps(asyncio.run(_burst50(args.seconds, args.postgres))))
    else:
        result = saturation(args.seconds, args.postgres)
        print_saturation(result)
        print(json.dumps(result))
