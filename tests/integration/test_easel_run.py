"""`easel run --console` as a process: piped input, a stop at once in the middle of a job, SIGTERM, and a second
process."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

EASEL = str(Path(sys.executable).with_name("easel"))
ROOT = Path(__file__).resolve().parents[2]
DONE = re.compile(r"^\[(\w+)\] done: (.+) \(seed ([\d, ]+)\)$", re.MULTILINE)
# Slow enough on the tiny model (a few seconds) to be caught mid-job.
SLOW = "a slow lighthouse --size 320x320 --steps 100 --prior-steps 50 --seed 7"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "config.toml").write_text('[model]\npreset = "tiny"\n')
    return tmp_path


def environment() -> dict[str, str]:
    """The console answers in the system's language: English here, whatever the machine's locale. The code run
    is this checkout's, wherever `easel` was installed from."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(("EASEL_", "LC_", "LANG"))}
    return env | {"PYTHONUNBUFFERED": "1", "LANG": "en_US.UTF-8", "PYTHONPATH": str(ROOT)}


def run_piped(workdir: Path, text: str, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EASEL, "run", "--console", *options],
        input=text,
        capture_output=True,
        text=True,
        cwd=workdir,
        env=environment(),
        timeout=120,
    )


def start_console(workdir: Path) -> subprocess.Popen[str]:
    """A console that keeps running: its stdin stays open until the test closes or kills it."""
    return subprocess.Popen(
        [EASEL, "run", "--console"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=workdir,
        env=environment(),
    )


def job_rows(workdir: Path) -> list[tuple[str, str, int, str]]:
    with sqlite3.connect(workdir / "data" / "easel.db") as connection:
        return connection.execute("SELECT id, state, attempts, delivery_state FROM jobs ORDER BY created_at").fetchall()


def wait_until_running(workdir: Path, process: subprocess.Popen[str], jobs: int = 1) -> None:
    """Until one job is running and `jobs` jobs exist."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        if (workdir / "data" / "easel.db").exists():
            try:
                rows = job_rows(workdir)
                if len(rows) >= jobs and any(state == "running" for _, state, _, _ in rows):
                    return
            except sqlite3.OperationalError:
                pass  # the schema is still being created
        time.sleep(0.05)
    raise AssertionError("the job never started")


def test_piped_input_runs_every_command_and_exits_when_done(workdir: Path) -> None:
    (workdir / "config.toml").write_text('[model]\npreset = "tiny"\n[previews]\ninterval_seconds = 0.000001\n')
    picture = workdir / "photo.png"
    Image.linear_gradient("L").resize((64, 64)).convert("RGB").save(picture)
    lines = [
        "a red cat --seed 1",
        "кот в шляпе --seed 2",
        f"/img2img {picture} a blue cat --strength 0.5",
        f"/inpaint {picture} - a window --region 10,10,50,50",
        f"/mix {picture} {picture} autumn --weights 2,1,1",
        "a cat --size 100x64",
        "a cat --steps many",
        "/cancel nothing",
        "/history",
        "/quota",
        "/help",
        "/settings --steps 3",
        "/queue",
    ]
    result = run_piped(workdir, "\n".join(lines) + "\n")
    assert result.returncode == 0, result.stderr
    done = DONE.findall(result.stdout)
    assert len(done) == 5
    assert "translated from Russian: " in result.stdout  # the console's language, not the prompt's
    for _, files, _ in done:
        for file in files.split(", "):
            assert Image.open(file).size == (64, 64)
    assert "width 100 is not allowed: a multiple of 64" in result.stdout
    assert "The option --steps needs a whole number; got 'many'." in result.stdout
    assert "There is no job nothing." in result.stdout
    assert "Today you have made 5 of 100 images" in result.stdout
    assert "/img2img PATH prompt" in result.stdout
    assert "Saved. Your defaults: --steps 3." in result.stdout
    assert "Queued: number 1 in line" in result.stdout
    assert any(line in result.stdout for line in ("You have nothing waiting", "in line, about", "drawing now"))
    assert "Traceback" not in result.stdout + result.stderr
    assert "INFO bots.kit.lifetime: console adapter started" in result.stderr
    assert result.stderr.count("TELEGRAM_BOT_TOKEN is not set") == 1  # said once, though never needed here
    assert re.search(r"  txt2img  seed \d+  ", result.stdout), "/history names operations as the README does"
    assert [row[1:] for row in job_rows(workdir)] == [("done", 1, "delivered")] * 5
    previews = re.findall(r"preview \(updated as it draws\): (\S+)", result.stdout)
    assert len(previews) == 5 and not any(Path(path).exists() for path in previews)  # named once, gone at the end
    assert all(Path(path).parent == workdir / "data" / "files" / "previews" for path in previews)


def test_a_second_ctrl_c_stops_at_once_in_one_line_and_the_job_completes_after_a_restart_once(workdir: Path) -> None:
    """The second Ctrl-C is a kill (the batch on the GPU is not waited for): what a kill leaves, a restart mends."""
    process = start_console(workdir)
    assert process.stdin is not None
    process.stdin.write(SLOW + "\n")
    process.stdin.flush()
    wait_until_running(workdir, process)
    process.send_signal(signal.SIGINT)
    time.sleep(0.3)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert stderr.splitlines()[-1] == "easel: stopped at once; whatever was running resumes at the next start"
    assert "signal received" in stderr and "Traceback" not in stderr
    [(job_id, state, attempts, _)] = job_rows(workdir)
    assert (state, attempts) == ("running", 1)

    restarted = run_piped(workdir, "")
    assert restarted.returncode == 0, restarted.stderr
    assert [match[0] for match in DONE.findall(restarted.stdout)] == [job_id]
    assert "re-enqueued 1 jobs" in restarted.stderr
    assert job_rows(workdir) == [(job_id, "done", 2, "delivered")]  # so no later start announces it again


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_sigterm_finishes_the_running_job_and_loses_nothing(workdir: Path) -> None:
    port = free_port()
    (workdir / "config.toml").write_text(f'[model]\npreset = "tiny"\n[http]\nenabled = true\nport = {port}\n')
    process = start_console(workdir)
    assert process.stdin is not None
    process.stdin.write(SLOW + "\n" + "queued behind it --seed 3\n")
    process.stdin.flush()
    wait_until_running(workdir, process, jobs=2)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as answer:  # [http] served too
        assert answer.status == 200 and json.loads(answer.read())["worker"] == "running"
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        assert 'easel_queue_jobs{state="running"} 1.0' in answer.read().decode()
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert "signal received" in stderr
    rows = job_rows(workdir)
    assert [row[1:] for row in rows] == [("done", 1, "delivered"), ("queued", 0, "pending")]
    assert len(DONE.findall(stdout)) == 1

    restarted = run_piped(workdir, "", "--log-format", "json")
    assert [match[0] for match in DONE.findall(restarted.stdout)] == [rows[1][0]]  # the delivered one not again
    lines = [json.loads(line) for line in restarted.stderr.splitlines()]  # every line one JSON object
    done = next(line for line in lines if line.get("job_id") == rows[1][0] and line.get("event") == "done")
    assert done["level"] == "INFO" and done["logger"] == "easel.jobs" and done["operation"] == "txt2img"
    assert done["gpu_seconds"] > 0 and done["wait_seconds"] > 0 and "time" in done


async def test_a_second_process_on_the_database_refuses_naming_the_first_and_a_killed_one_blocks_nothing(
    workdir: Path,
) -> None:
    first = await asyncio.create_subprocess_exec(
        EASEL,
        "run",
        "--console",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=workdir,
        env=environment(),
    )
    assert first.stdin is not None and first.stdout is not None
    try:
        await line_matching(first.stdout, re.compile("^easel console"))
        second = await asyncio.create_subprocess_exec(
            EASEL,
            "run",
            "--console",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=workdir,
            env=environment(),
        )
        _, stderr = await asyncio.wait_for(second.communicate(), 60)
        log = stderr.decode()
        assert second.returncode == 1, log
        assert log.splitlines()[-1] == (
            f"easel: error: another easel process (pid {first.pid}) serves the database "
            f"{(workdir / 'data' / 'easel.db').resolve()}: stop it first, or give this one another storage.database_url"
        )
        assert "Traceback" not in log

        first.stdin.write(b"a red cat --seed 1\n")
        await first.stdin.drain()
        await line_matching(first.stdout, DONE)  # the first one still serves
    finally:
        first.kill()
        await first.wait()

    restarted = run_piped(workdir, "a blue cat --seed 2\n")
    assert restarted.returncode == 0, restarted.stderr
    assert "2" in [seeds for _, _, seeds in DONE.findall(restarted.stdout)]


async def line_matching(stream: asyncio.StreamReader, pattern: re.Pattern[str]) -> str:
    while line := (await asyncio.wait_for(stream.readline(), 60)).decode():
        if pattern.search(line):
            return line
    raise AssertionError(f"the output ended before a line matching {pattern.pattern}")
