"""The console adapter: a line-oriented chat on stdin and stdout, for operators and scripts.

A plain line is a txt2img prompt; slash commands cover the other operations. With piped input it
reads to the end, then waits until every console job has finished and been printed, and returns.
"""

from __future__ import annotations

import asyncio
import getpass
import logging
import shlex
import sys
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TextIO

from bots.errors import UserError
from bots.formatting import ending_text, history_lines, quota_text, translation_note
from bots.parsing import parse_prompt
from bots.service import Actor, Ask, JobEvent, Place, Service
from bots.texts import render

log = logging.getLogger(__name__)

PLATFORM = "console"

HELP = """\
Type a description and press Enter to make an image. Options may follow the prompt:
  --size 768x512  --steps 30  --prior-steps 10  --seed 42  --count 2  --guidance 5  --neg blurry, dark
Commands:
  /img2img PATH prompt [--strength 0.6]     redraw an image after a prompt
  /inpaint PATH MASK prompt                  repaint the white part of MASK (MASK may be - with --region X,Y,W,H,
                                             or - for a PNG whose transparent pixels are the mask)
  /mix PATH PATH [PATH...] [text] [--weights 0.5,0.5]   blend 2-4 images (and a text)
  /cancel [ID]  /history    /quota    /help"""


class ConsoleAdapter:
    name = PLATFORM

    def __init__(self, service: Service, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> None:
        self.service = service
        self.stdin = stdin
        self.stdout = stdout
        self.actor = Actor(PLATFORM, getpass.getuser())
        self.place = Place(PLATFORM, "console")
        self._commands: dict[str, Callable[[str], Awaitable[None]]] = {
            "/img2img": self._img2img,
            "/inpaint": self._inpaint,
            "/mix": self._mix,
            "/cancel": self._cancel,
            "/history": self._history,
            "/quota": self._quota,
            "/help": self._help,
        }
        self._finished = asyncio.Event()

    def register(self) -> None:
        self.service.listen(PLATFORM, self._on_event)

    async def run(self) -> None:
        """Serve lines until end of input, then until every console job is finished and printed."""
        self._say("easel console: type a prompt, or /help.")
        lines = _read_lines(self.stdin)
        while (line := await lines.get()) is not None:
            await self.handle(line.strip())
        while self.service.has_pending(PLATFORM):
            self._finished.clear()
            await self._finished.wait()

    async def handle(self, line: str) -> None:
        """One line of input; every refusal is printed, never raised."""
        if not line:
            return
        command, _, rest = line.partition(" ") if line.startswith("/") else ("", "", line)
        try:
            if command:
                handler = self._commands.get(command.lower())
                if handler is None:
                    self._say(f"There is no command {command}. " + HELP.splitlines()[-1].strip())
                    return
                await handler(rest.strip())
            else:
                await self._submit(Ask("txt2img", *self._prompt(rest)))
        except UserError as error:
            self._say(render(error.key, **error.values))
        except Exception:
            log.exception("console command %r failed", line)
            self._say(render("error.internal", reference="see the log"))

    async def _on_event(self, event: JobEvent) -> None:
        prefix = f"[{event.job_id}]"
        if event.kind == "started":
            self._say(f"{prefix} started")
        elif event.kind == "progress" and event.progress < 1.0:
            self._say(f"{prefix} {event.progress:.0%}")
        elif event.kind == "done":
            files = ", ".join(str(path) for path in event.files)
            self._say(f"{prefix} done: {files} (seed {', '.join(str(seed) for seed in event.seeds)})")
            if event.translation:
                self._say(f"{prefix} " + translation_note(event.source_language, event.translation, event.language))
        elif event.kind in ("failed", "cancelled"):
            self._say(f"{prefix} " + ending_text(event))
        if event.kind in ("done", "failed", "cancelled"):
            self._finished.set()

    async def _submit(self, ask: Ask) -> None:
        receipt = await self.service.submit(self.actor, self.place, ask)
        eta = "now" if receipt.eta_seconds is None else f"{receipt.eta_seconds:.0f} s"
        self._say(f"[{receipt.job_id}] queued: position {receipt.position or 1}, ready in about {eta}")

    @staticmethod
    def _prompt(text: str) -> tuple[str, dict[str, object]]:
        parsed = parse_prompt(text)
        return parsed.prompt, parsed.options

    async def _img2img(self, rest: str) -> None:
        path, text = _split_paths(rest, 1)
        prompt, options = self._prompt(text)
        await self._submit(Ask("img2img", prompt, options, image=await _read(path[0])))

    async def _inpaint(self, rest: str) -> None:
        (image, mask), text = _split_paths(rest, 2)
        prompt, options = self._prompt(text)
        mask_data = None if mask == "-" else await _read(mask)
        await self._submit(Ask("inpaint", prompt, options, image=await _read(image), mask_image=mask_data))

    async def _mix(self, rest: str) -> None:
        words = shlex.split(rest)
        paths = [word for word in words if Path(word).is_file()]
        text, options = self._prompt(" ".join(word for word in words if word not in paths))
        items: list[bytes | str] = [await _read(path) for path in paths]
        if text:
            items.append(text)
        await self._submit(Ask("mix", "", options, mix=tuple(items)))

    async def _cancel(self, rest: str) -> None:
        cancellation = await self.service.cancel(self.actor, rest.strip() or None)
        self._say(render(f"cancel.{cancellation.outcome}", job_id=cancellation.job_id))

    async def _history(self, _: str) -> None:
        jobs = await self.service.history(self.actor)
        if not jobs:
            self._say(render("history.empty"))
        for job, line in zip(jobs, history_lines(jobs), strict=True):
            self._say(line)
            for path in job.files:
                self._say(f"    {path}")

    async def _quota(self, _: str) -> None:
        self._say(quota_text(await self.service.quota(self.actor)))

    async def _help(self, _: str) -> None:
        self._say(HELP)

    def _say(self, text: str) -> None:
        print(text, file=self.stdout, flush=True)


def _read_lines(stream: TextIO) -> asyncio.Queue[str | None]:
    """Lines from a daemon thread: a blocked read must never keep the process from exiting on a signal."""
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str | None] = asyncio.Queue()

    def pump() -> None:
        try:
            for line in stream:
                loop.call_soon_threadsafe(lines.put_nowait, line)
            loop.call_soon_threadsafe(lines.put_nowait, None)
        except RuntimeError:
            return  # the loop closed (a signal ended the run) while this thread waited for input

    threading.Thread(target=pump, name="easel-console-input", daemon=True).start()
    return lines


def _split_paths(rest: str, count: int) -> tuple[list[str], str]:
    """The first `count` words are paths (quoted when they hold spaces); the rest is the prompt."""
    try:
        words = shlex.split(rest)
    except ValueError:
        words = rest.split()
    if len(words) < count:
        raise UserError("request.bad_option", option="PATH", expected=f"{count} file path(s) first", value=rest)
    return words[:count], " ".join(words[count:])


async def _read(path: str) -> bytes:
    try:
        return await asyncio.to_thread(Path(path).expanduser().read_bytes)
    except OSError:
        raise UserError("image.unreadable_file", path=path) from None
