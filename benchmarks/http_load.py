"""HTTP API benchmark: requests per second and latency of the REST API under /api/v1 with many clients at once.

Why it exists: the API is served by uvicorn in the `easel run` process, on the same event loop as the worker and
the chat adapters, and every request reads the database (the caller's token, then the job or the quota). This puts
numbers on how many requests that process answers and how long the slowest wait, so a change that adds a query
per request, blocks the loop or slows the token check shows up as a changed figure.

It measures the server as deployed: `easel run` in a process of its own, started in a scratch directory (so no
config.toml: the defaults) with the tiny preset, only [http] enabled, a SQLite file there (or, with
--database-url, a new database on that PostgreSQL server, dropped afterwards) and a quota of one image a day.
Once /healthz answers, `easel token create` makes a token, and one 64x64 job of 2 steps is submitted and awaited,
so that there is a job to read and the quota is spent. Then two phases, each CLIENTS clients (one aiohttp
session, a connection each) sending their next request as soon as the last is answered, for SECONDS after
WARM_UP_SECONDS whose requests are not counted:

- read: GET /api/v1/jobs/{id}, each answered 200;
- submit refused: POST /api/v1/jobs, each answered 429 with the error key quota.images, so nothing runs.

Any other answer is a failure, counted by status and key. The server's CPU seconds in each phase (user and
system, from psutil) next to the phase's length say whether its event loop was saturated; this process's own
CPU seconds are the clients', which share the machine's cores with the server.

Run it from the repository root (`benchmarks/http.py` starts this file):

    python benchmarks/http.py [--clients 50] [--seconds 10] [--database-url postgresql+asyncpg://HOST/DB]

Human-readable lines come first; the last line of stdout is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil
from bench_settings import scratch_postgres

ROOT = Path(__file__).resolve().parents[1]
CLIENTS = 50
SECONDS = 10.0
WARM_UP_SECONDS = 2.0
START_LIMIT_SECONDS = 180.0
JOB_LIMIT_SECONDS = 300.0
STOP_LIMIT_SECONDS = 30.0
EASEL = [sys.executable, "-c", "import sys; from bots.cli import main; sys.exit(main())"]
"""The `easel` command of this interpreter, as its console script runs it."""
JOB = {"prompt": "a red cat", "size": "64x64", "steps": 2, "prior_steps": 2}


@dataclass(frozen=True)
class Phase:
    name: str
    method: str
    path: str
    body: dict[str, Any] | None
    status: int
    key: str | None = None
    """The error key every answer must carry, for a refusal."""


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)


def server_environment(root: Path, database_url: str, port: int) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "EASEL_MODEL__PRESET": "tiny",
        "EASEL_TELEGRAM__ENABLED": "false",
        "EASEL_DISCORD__ENABLED": "false",
        "EASEL_HTTP__ENABLED": "true",
        "EASEL_HTTP__PORT": str(port),
        "EASEL_STORAGE__DATABASE_URL": database_url,
        "EASEL_STORAGE__OUTPUTS_DIR": str(root / "files"),
        "EASEL_TIERS__DEFAULT__IMAGES_PER_DAY": "1",
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def stop(server: subprocess.Popen[bytes]) -> int:
    """SIGTERM, as systemd or Docker stop it, and SIGKILL if it has not exited after STOP_LIMIT_SECONDS."""
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(STOP_LIMIT_SECONDS)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    return server.returncode


def api_token(root: Path, environ: dict[str, str]) -> str:
    """A token of a Telegram user, from `easel token create` on the server's database."""
    command = [*EASEL, "token", "create", "--platform", "telegram", "--user", "bench"]
    created = subprocess.run(command, cwd=root, env=environ, capture_output=True, text=True)
    if created.returncode != 0:
        raise RuntimeError(f"easel token create exited with status {created.returncode}: {created.stderr}")
    return created.stdout.strip()


async def until_healthy(session: aiohttp.ClientSession, base: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_LIMIT_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"easel run exited with status {server.returncode} before /healthz answered")
        try:
            async with session.get(f"{base}/healthz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientConnectionError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError(f"/healthz did not answer 200 within {START_LIMIT_SECONDS:.0f} s")


async def finished_job(session: aiohttp.ClientSession, base: str) -> str:
    """The id of one small job, submitted and awaited until done."""
    async with session.post(f"{base}/api/v1/jobs", json=JOB) as response:
        if response.status != 202:
            raise RuntimeError(f"submitting the job: {response.status} {await response.text()}")
        job_id = str((await response.json())["id"])
    deadline = time.monotonic() + JOB_LIMIT_SECONDS
    while time.monotonic() < deadline:
        async with session.get(f"{base}/api/v1/jobs/{job_id}") as response:
            state = (await response.json())["state"]
        if state == "done":
            return job_id
        if state in ("failed", "cancelled"):
            raise RuntimeError(f"the job to read ended {state}")
        await asyncio.sleep(0.1)
    raise RuntimeError(f"the job to read was not done within {JOB_LIMIT_SECONDS:.0f} s")


def unexpected(status: int, data: bytes, phase: Phase) -> str | None:
    """What was wrong with an answer ("500 None", "202 None" for a refusal that was not), or None."""
    key = None
    if status >= 400:
        try:
            key = json.loads(data).get("error", {}).get("key")
        except (ValueError, AttributeError):
            pass
    return None if status == phase.status and key == phase.key else f"{status} {key}"


async def client(session: aiohttp.ClientSession, base: str, phase: Phase, deadline: float, tally: Tally) -> None:
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        try:
            async with session.request(phase.method, base + phase.path, json=phase.body) as response:
                data = await response.read()
        except aiohttp.ClientError as error:
            tally.failures[type(error).__name__] += 1
            continue
        tally.latencies.append(time.perf_counter() - started)
        wrong = unexpected(response.status, data, phase)
        if wrong is not None:
            tally.failures[wrong] += 1


async def measure(
    session: aiohttp.ClientSession, base: str, phase: Phase, clients: int, seconds: float, server: psutil.Process
) -> dict[str, Any]:
    async def run(length: float, tally: Tally) -> float:
        started = time.perf_counter()
        await asyncio.gather(*(client(session, base, phase, started + length, tally) for _ in range(clients)))
        return time.perf_counter() - started

    await run(WARM_UP_SECONDS, Tally())
    tally = Tally()
    server_before, own_before = sum(server.cpu_times()[:2]), time.process_time()
    wall = await run(seconds, tally)
    server_cpu, own_cpu = sum(server.cpu_times()[:2]) - server_before, time.process_time() - own_before
    milliseconds = sorted(latency * 1000 for latency in tally.latencies)
    return {
        "requests": len(milliseconds),
        "per_second": round(len(milliseconds) / wall, 1),
        "p50_ms": round(statistics.median(milliseconds), 2),
        "p99_ms": round(statistics.quantiles(milliseconds, n=100)[98], 2),
        "max_ms": round(milliseconds[-1], 2),
        "failures": sum(tally.failures.values()),
        "failures_by_answer": dict(tally.failures),
        "wall_s": round(wall, 2),
        "server_cpu_s": round(server_cpu, 2),
        "client_cpu_s": round(own_cpu, 2),
    }


async def benchmark(clients: int, seconds: float, server_url: str | None) -> dict[str, Any]:
    async with scratch_postgres(server_url) as scratch:
        with tempfile.TemporaryDirectory(prefix="easel-bench-") as name:
            root = Path(name)
            port = free_port()
            environ = server_environment(root, scratch or f"sqlite+aiosqlite:///{root / 'easel.db'}", port)
            base = f"http://127.0.0.1:{port}"
            started = time.perf_counter()
            with open(root / "server.log", "wb") as log:
                server = subprocess.Popen([*EASEL, "run"], cwd=root, env=environ, stdout=log, stderr=log)
            try:
                async with aiohttp.ClientSession() as session:
                    await until_healthy(session, base, server)
                    start_up = time.perf_counter() - started
                headers = {"Authorization": f"Bearer {api_token(root, environ)}"}
                connector = aiohttp.TCPConnector(limit=clients)
                async with aiohttp.ClientSession(headers=headers, connector=connector) as session:
                    job_id = await finished_job(session, base)
                    phases = (
                        Phase("read", "GET", f"/api/v1/jobs/{job_id}", None, 200),
                        Phase("submit refused", "POST", "/api/v1/jobs", JOB, 429, "quota.images"),
                    )
                    process = psutil.Process(server.pid)
                    figures = {
                        phase.name: await measure(session, base, phase, clients, seconds, process) for phase in phases
                    }
                return {"start_up_s": round(start_up, 1), **figures, "server_exit_status": stop(server)}
            except BaseException:
                stop(server)
                print((root / "server.log").read_text(errors="replace")[-4000:], file=sys.stderr)
                raise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=CLIENTS, help=f"concurrent clients (default {CLIENTS})")
    parser.add_argument("--seconds", type=float, default=SECONDS, help=f"length of each phase (default {SECONDS:g})")
    parser.add_argument(
        "--database-url", help="a PostgreSQL server (postgresql+asyncpg://...): a new database there, dropped after"
    )
    args = parser.parse_args()
    load_average = os.getloadavg()[0]
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, load average {load_average:.2f}")
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    database = "postgresql" if args.database_url else "sqlite"
    print(f"server: easel run, tiny preset, [http] only, {database}; {args.clients} clients, {args.seconds:g} s each")
    figures = asyncio.run(benchmark(args.clients, args.seconds, args.database_url))
    print(f"start-up: /healthz answered 200 {figures['start_up_s']} s after launch")
    for name in ("read", "submit refused"):
        result = figures[name]
        kinds = f" {result['failures_by_answer']}" if result["failures"] else ""
        print(
            f"{name}: {result['requests']} answers, {result['per_second']} a second, p50 {result['p50_ms']} ms, "
            f"p99 {result['p99_ms']} ms, max {result['max_ms']} ms, {result['failures']} failures{kinds}; "
            f"CPU in {result['wall_s']} s: server {result['server_cpu_s']} s, clients {result['client_cpu_s']} s"
        )
    figures = {
        "benchmark": "http",
        "clients": args.clients,
        "seconds": args.seconds,
        "database": database,
        **{key.replace(" ", "_"): value for key, value in figures.items()},
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_1m": round(load_average, 2),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
