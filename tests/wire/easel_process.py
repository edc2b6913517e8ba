"""`easel run` as a real process, from this checkout (PYTHONPATH), with its log read as it is written."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EASEL = str(Path(sys.executable).with_name("easel"))


def free_port() -> int:
    """A port nothing listens on yet, for a fake that starts after easel does."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class EaselProcess:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, directory: Path, config: str, tokens: dict[str, str]) -> EaselProcess:
        """`easel run` in `directory` with `config` as its config.toml and only `tokens` of the platform tokens."""
        (directory / "config.toml").write_text(config)
        environment = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("EASEL_", "DISCORD_", "TELEGRAM_", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"))
        }
        environment |= {"PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", "NO_PROXY": "127.0.0.1", **tokens}
        environment["EASEL_STORAGE__RUN_DIR"] = str(directory / "run")  # its token claims stay in this test
        process = await asyncio.create_subprocess_exec(
            EASEL,
            "run",
            cwd=directory,
            env=environment,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(process)

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    async def wait_for_log(self, fragment: str, timeout: float = 120.0) -> None:
        """Until a line of the log contains `fragment`; fails at once if the process ends first."""
        deadline = time.monotonic() + timeout
        while not any(fragment in line for line in self.lines):
            if self.process.returncode is not None or time.monotonic() > deadline:
                await asyncio.wait_for(self._reader, 5)
                raise AssertionError(f"no {fragment!r} in the log (exit code {self.process.returncode}):\n{self.log}")
            await asyncio.sleep(0.05)

    async def stop(self) -> int:
        """SIGTERM, then the exit code once it has stopped."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(self.process.wait(), 60)
        await asyncio.wait_for(self._reader, 5)
        return code

    async def _read(self) -> None:
        assert self.process.stderr is not None
        async for line in self.process.stderr:
            self.lines.append(line.decode(errors="replace").rstrip("\n"))
