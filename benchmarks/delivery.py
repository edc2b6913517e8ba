"""Delivery benchmark: how long a delivered image goes unrecorded on Telegram and Discord, the window in which a kill
shows it twice.

Why it exists: Telegram has no idempotent send, so an image whose answer came back but whose link was not yet
committed is sent again after a restart. Discord has one (a post's nonce), but only for a few minutes: a restart
later than that posts the result again when the kill came between Discord's answer and the link. easel writes
each link the moment the answer arrives; this measures that moment, at idle and with every CPU busy, so a change
that puts work (a file read, the next caption, a second transaction) between the answer and the commit shows up
as a wider window.

It runs the real core over a SQLite file (as `easel run` opens it, the composition root), a stand-in pipeline
that returns small noise images at once, and the real Telegram `Delivery` on python-telegram-bot's `ExtBot`
with its `AIORateLimiter`, against the fake Bot API of the wire tests (tests/wire/fake_telegram.py) on
127.0.0.1, in the same process and event loop. JOBS jobs of USERS users, COUNT images each, are submitted at
once. Per image, the window runs from the fake's `sendPhoto` handler returning its answer (aiohttp then writes
it) to `link_message` returning, its transaction committed. "busy" runs one spinning process per CPU beside it.
Then the same for Discord: the real Discord `Delivery` on a discord.py client signed in to the wire tests' fake
Discord (tests/wire/fake_discord.py), JOBS * COUNT jobs of one image each (a Discord result is one message,
however many images it has) with no interaction to answer, so each is posted in the channel; per post, the
window runs from the fake having written its answer to `link_message` returning.

Run it from the repository root:

    python benchmarks/delivery.py [--jobs N]

Human-readable lines come first; the last line of stdout is one JSON object with every figure (Telegram's at the
top level, as before, and Discord's under "discord").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "wire"))  # the wire tests' fake
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's code, not an installed copy

import discord
from bench_settings import PROXY_VARIABLES, bench_settings
from fake_discord import CHANNEL_ID, FakeDiscord, FakeMessage
from fake_telegram import TOKEN, FakeTelegram
from PIL import Image
from telegram.ext import AIORateLimiter, ExtBot

from bots.core.facade import Core
from bots.core.types import Actor, Place
from bots.discord.delivery import Delivery as DiscordDelivery
from bots.discord.endpoints import point_at
from bots.discord.status import StatusBoard
from bots.root import running_core
from bots.telegram.aiohttp_request import AiohttpRequest
from bots.telegram.delivery import Delivery
from generation.asks import Ask, Options
from generation.engine import CancelCheck, GenerationResult, ProgressCallback
from generation.requests import GenerationRequest

JOBS = 40
USERS = 5
COUNT = 3
SIZE = 64
STAND_IN_SECONDS = 0.02
WAIT_LIMIT_SECONDS = 300.0


def stand_in(
    requests: Sequence[GenerationRequest], on_progress: ProgressCallback, should_cancel: CancelCheck
) -> list[GenerationResult]:
    """A pipeline that returns noise at once: every PNG differs, so each is encoded and stored anew."""
    time.sleep(STAND_IN_SECONDS)
    on_progress(1.0)
    size = (SIZE, SIZE)
    return [
        GenerationResult(
            request,
            tuple(
                Image.frombytes("RGB", size, random.Random(seed).randbytes(SIZE * SIZE * 3)) for seed in request.seeds
            ),
            request.seeds,
        )
        for request in requests
    ]


async def windows(jobs: int) -> list[float]:
    """Milliseconds from each `sendPhoto` answer to its link committed, for `jobs` jobs of COUNT images."""
    fake = FakeTelegram()
    answered: dict[int, float] = {}
    linked: dict[int, float] = {}
    send_photo = fake._sendPhoto

    async def timed_photo(call: Any) -> dict[str, Any]:
        result = await send_photo(call)
        answered[result["message_id"]] = time.perf_counter()
        return result

    fake._sendPhoto = timed_photo  # type: ignore[method-assign]
    await fake.start()
    try:
        with tempfile.TemporaryDirectory(prefix="easel-bench-") as root:
            settings = bench_settings(Path(root), JOBS)
            telegram = settings.telegram
            limiter = AIORateLimiter(
                overall_max_rate=telegram.messages_per_second, group_max_rate=telegram.group_messages_per_minute
            )
            bot = ExtBot(
                TOKEN,
                base_url=fake.base_url,
                base_file_url=fake.file_base_url,
                rate_limiter=limiter,
                request=AiohttpRequest(connection_pool_size=256),
            )
            await bot.initialize()
            async with running_core(settings, stand_in) as runtime:
                core = runtime.core
                time_links(core, linked, images_only=True)
                delivery = Delivery(core, bot, telegram)
                core.listen("telegram", delivery.on_event)
                for index in range(jobs):
                    user = str(1001 + index % USERS)
                    ask = Ask("txt2img", "a lighthouse", Options(seed=index * COUNT, count=COUNT))
                    await core.submit(Actor("telegram", user), Place("telegram", user), ask)
                await _until(lambda: len(linked) >= jobs * COUNT, f"{jobs * COUNT} images to be linked")
                await delivery.close()
            await bot.shutdown()
    finally:
        await fake.stop()
    return [(linked[message_id] - answered[message_id]) * 1000 for message_id in linked]


def time_links(core: Core, linked: dict[int, float], *, images_only: bool) -> None:
    """Record when each message's link is committed (only an image's, with `images_only`), by wrapping the core's."""
    link_message = core.link_message

    async def timed_link(
        platform: str, chat_id: str, message_id: str, job_id: str, output_index: int | None = None
    ) -> None:
        await link_message(platform, chat_id, message_id, job_id, output_index)
        if output_index is not None or not images_only:
            linked[int(message_id)] = time.perf_counter()

    core.link_message = timed_link  # type: ignore[method-assign]


async def discord_windows(jobs: int) -> list[float]:
    """Milliseconds from each channel post's answer to its link committed, for `jobs` * COUNT jobs of one image."""
    posts = jobs * COUNT
    fake = FakeDiscord()
    answered: dict[int, float] = {}
    linked: dict[int, float] = {}

    def timed_answer(method: str, message: FakeMessage) -> None:
        if method == "POST":
            answered[message.id] = time.perf_counter()

    fake.answered = timed_answer
    await fake.start()
    client = discord.Client(intents=discord.Intents.none())
    try:
        with tempfile.TemporaryDirectory(prefix="easel-bench-") as root:
            settings = bench_settings(Path(root), posts)
            point_at(settings.discord.model_copy(update={"api_base_url": fake.api_base_url}))
            await client.login("bench-token")
            async with running_core(settings, stand_in) as runtime:
                core = runtime.core
                time_links(core, linked, images_only=False)
                delivery = DiscordDelivery(core, StatusBoard(0.0))
                delivery.attach(client)
                delivery.ready.set()
                core.listen("discord", delivery.on_event)
                for index in range(posts):
                    ask = Ask("txt2img", "a lighthouse", Options(seed=index))
                    actor = Actor("discord", str(1001 + index % USERS))
                    await core.submit(actor, Place("discord", str(CHANNEL_ID)), ask)
                await _until(lambda: len(linked) >= posts, f"{posts} posts to be linked")
    finally:
        await client.close()
        await fake.close()
    return [(linked[message_id] - answered[message_id]) * 1000 for message_id in linked]


async def _until(done: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_LIMIT_SECONDS
    while not done():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def _spin() -> None:
    while True:
        pass


def _busy_cpu_seconds() -> float:
    """CPU time all processes on the machine used so far (from /proc/stat)."""
    with open("/proc/stat") as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds() -> float:
    """CPU time of this process and of its reaped children (the spinners)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def measure(jobs: int, busy: bool, run: Callable[[int], Coroutine[Any, Any, list[float]]] = windows) -> dict[str, Any]:
    """The window's median, p99 and max in one mode (Telegram's `windows`, or `discord_windows`), and the CPU that
    processes other than this one and its spinners used meanwhile."""
    spinners = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(os.cpu_count() or 1)] if busy else []
    for spinner in spinners:
        spinner.start()
    machine_before, own_before = _busy_cpu_seconds(), _own_cpu_seconds()
    started = time.perf_counter()
    try:
        samples = asyncio.run(run(jobs))
    finally:
        wall = time.perf_counter() - started
        for spinner in spinners:
            spinner.kill()
            spinner.join()
        machine, own = _busy_cpu_seconds() - machine_before, _own_cpu_seconds() - own_before
    return {
        "images": len(samples),
        "median_ms": round(statistics.median(samples), 2),
        "p99_ms": round(statistics.quantiles(samples, n=100)[98], 2),
        "max_ms": round(max(samples), 2),
        "wall_s": round(wall, 1),
        "other_cpu_s": round(max(0.0, machine - own), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=JOBS, help=f"jobs of {COUNT} images per mode (default {JOBS})")
    args = parser.parse_args()
    if args.jobs * COUNT < 100:
        parser.error(f"--jobs must be at least {-(-100 // COUNT)} for a p99")
    for name in PROXY_VARIABLES:
        os.environ.pop(name, None)
    load_average = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} CPUs, load average {load_average:.2f} (other work on the machine skews latency)")
    figures: dict[str, Any] = {"benchmark": "delivery", "jobs": args.jobs, "images_per_job": COUNT}
    for mode in ("idle", "busy"):
        result = measure(args.jobs, busy=mode == "busy")
        figures[mode] = result
        _report(mode, "images", result)
    figures["discord"] = {"posts": args.jobs * COUNT, "images_per_post": 1}
    for mode in ("idle", "busy"):
        result = measure(args.jobs, busy=mode == "busy", run=discord_windows)
        figures["discord"][mode] = result
        _report(f"discord {mode}", "posts", result)
    figures |= {"cpus": os.cpu_count(), "load_average_1m": round(load_average, 2)}
    print(json.dumps(figures))


def _report(mode: str, what: str, result: dict[str, Any]) -> None:
    print(
        f"{mode}: {result['images']} {what}, answer to link committed: median {result['median_ms']} ms, "
        f"p99 {result['p99_ms']} ms, max {result['max_ms']} ms ({result['wall_s']} s)"
    )


if __name__ == "__main__":
    main()
