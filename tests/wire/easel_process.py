"""`easel run` (or `easel worker`) as a real process, from this checkout (PYTHONPATH), its log read as it is
written."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EASEL = str(Path(sys.executable).with_name("easel"))


def free_port() -> int:
    """A port nothing listens on yet, for a fake that starts after easel does."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class EaselProcess:
    """One `easel run`; `lines` is everything it writes, stdout and stderr alike (so a test that the token is never
    logged reads both)."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(
        cls,
        directory: Path,
        config: str,
        tokens: dict[str, str],
        *,
        run_dir: Path | None = None,
        command: Sequence[str] = ("run",),
    ) -> EaselProcess:
        """`easel run` (or `command`) in `directory` with `config` as its config.toml and only `tokens` of the
        platform tokens. Its token claims are kept in `run_dir` (by default one of its own in `directory`):
        processes that are to meet on a token share one."""
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "config.toml").write_text(config)
        environment = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("EASEL_", "DISCORD_", "TELEGRAM_", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"))
        }
        environment |= {"PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", "NO_PROXY": "127.0.0.1", **tokens}
        environment["EASEL_STORAGE__RUN_DIR"] = str(run_dir or directory / "run")
        process = await asyncio.create_subprocess_exec(
            EASEL,
            *command,
            cwd=directory,
            env=environment,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        return cls(process)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    async def wait_for_log(self, fragment: str, timeout: float = 120.0, count: int = 1) -> None:
        """Until `count` lines of the log contain `fragment`; fails at once if the process ends first."""
        deadline = time.monotonic() + timeout
        while sum(fragment in line for line in self.lines) < count:
            if self.process.returncode is not None or time.monotonic() > deadline:
                await asyncio.wait_for(self._reader, 5)
                raise AssertionError(f"no {fragment!r} in the log (exit code {self.process.returncode}):\n{self.log}")
            await asyncio.sleep(0.05)

    async def stop(self, timeout: float = 60) -> int:
        """SIGTERM, then the exit code once it has stopped, within `timeout` seconds."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        return await self.wait(timeout)

    async def kill(self) -> int:
        """SIGKILL, then the exit code."""
        if self.process.returncode is None:
            self.process.kill()
        return await self.wait()

    async def wait(self, timeout: float = 60) -> int:
        """The exit code, once the process has ended by itself within `timeout` seconds and its log is read whole;
        past that it is killed and the test fails."""
        try:
            code = await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
            await asyncio.wait_for(self._reader, 5)
            raise AssertionError(f"easel took over {timeout} s to exit:\n{self.log}") from None
        await asyncio.wait_for(self._reader, 5)
        return code

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for line in self.process.stdout:
            self.lines.append(line.decode(errors="replace").rstrip("\n"))
