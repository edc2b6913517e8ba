"""What one Bot API call costs easel's event loop, on python-telegram-bot's default httpx connection and on the
aiohttp one the adapter uses (bots/telegram/aiohttp_request.py).

Why it exists: a burst of prompts is answered by one `sendMessage` each, all made by the one event loop that also
takes the next prompts, so the loop's CPU per call bounds how soon the last of them is told "queued". Each
connection sends ROUNDS rounds of CALLS `sendMessage` calls at once (the first round, which opens the
connections, is reported apart) through PTB's `ExtBot` against the wire tests' fake Bot API in a process of its
own, and reports the event loop's CPU time (`time.thread_time`) per call and each round's wall time. The fake's
CPU is not counted: it runs on the other core.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

from saturation import TOKEN, fake_bot_api
from telegram.ext import ExtBot
from telegram.request import BaseRequest, HTTPXRequest

from bots.telegram.aiohttp_request import AiohttpRequest

CALLS = 50
ROUNDS = 11
POOL = 256


async def rounds(port: int, request: BaseRequest, calls: int, count: int) -> list[tuple[float, float]]:
    """(event-loop CPU ms per call, wall ms) of each round."""
    bot = ExtBot(TOKEN, base_url=f"http://127.0.0.1:{port}/bot", request=request)
    await bot.initialize()
    measured = []
    try:
        for _ in range(count):
            cpu, wall = time.thread_time(), time.perf_counter()
            await asyncio.gather(*(bot.send_message(1001 + index, "Queued: 3rd") for index in range(calls)))
            measured.append(((time.thread_time() - cpu) * 1000 / calls, (time.perf_counter() - wall) * 1000))
    finally:
        await bot.shutdown()
    return measured


def _summary(measured: list[tuple[float, float]]) -> dict[str, Any]:
    first, rest = measured[0], measured[1:]
    return {
        "first_round_cpu_ms_per_call": round(first[0], 3),
        "first_round_wall_ms": round(first[1], 1),
        "cpu_ms_per_call_median": round(statistics.median(cpu for cpu, _ in rest), 3),
        "round_wall_ms_median": round(statistics.median(wall for _, wall in rest), 1),
        "cpu_ms_per_call": [round(cpu, 3) for cpu, _ in rest],
    }


async def compare(calls: int, count: int) -> dict[str, Any]:
    with fake_bot_api() as port:
        httpx = await rounds(port, HTTPXRequest(connection_pool_size=POOL), calls, count)
        aiohttp = await rounds(port, AiohttpRequest(connection_pool_size=POOL), calls, count)
    return {
        "benchmark": "bot_api_calls",
        "calls_per_round": calls,
        "httpx": _summary(httpx),
        "aiohttp": _summary(aiohttp),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=CALLS, help=f"calls at once in a round ({CALLS})")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help=f"rounds per connection, the first apart ({ROUNDS})")
    args = parser.parse_args()
    figures = asyncio.run(compare(args.calls, args.rounds))
    for name in ("httpx", "aiohttp"):
        part = figures[name]
        print(
            f"{name:8} event-loop CPU per sendMessage: median {part['cpu_ms_per_call_median']} ms "
            f"(first round {part['first_round_cpu_ms_per_call']}); {args.calls} at once: median "
            f"{part['round_wall_ms_median']} ms (first round {part['first_round_wall_ms']})"
        )
    print(json.dumps(figures))
