"""The console adapter: a line-oriented chat on stdin and stdout, for operators and scripts.

A plain line is a txt2img prompt; slash commands cover the catalogue's other commands. It answers in the
console's language (`[console] language`, else the system locale). With piped input it reads to the end,
then waits until every console job has finished and been printed, and returns.

A terminal cannot show a picture, so a job's live preview is written to a file (`<previews_dir>/<job id>.jpg`,
replaced whole at each preview so a viewer never reads half of one), named once, and removed when the job ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import shlex
import sys
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TextIO

from bots.core.facade import Core
from bots.core.types import Actor, EventKind, JobEvent, Place
from bots.errors import UserError
from bots.formatting import (
    cancel_text,
    history_lines,
    language_text,
    preferences_text,
    queue_lines,
    quota_text,
    styles_text,
    translation_note,
    untranslated_note,
)
from bots.kit.boundary import guarded
from bots.kit.catalogue import Capability, bind, commands_for
from bots.kit.context import Context
from bots.kit.lifetime import started
from bots.kit.tokens import token_reply, web_reply
from bots.kit.views import view_of
from bots.parsing import parse_grid, parse_prompt
from bots.texts import Text, render
from generation.asks import Ask

PLATFORM = "console"
CAPABILITIES = frozenset[Capability]()
"""A terminal has no communities: it serves the catalogue's commands for everyone."""

Handler = Callable[[Context, str], Awaitable[None]]
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"})
ENDED_MEMORY = 1000
"""Jobs remembered as ended, so that a preview written after its job's ending is removed again."""


class ConsoleAdapter:
    name = PLATFORM

    def __init__(
        self,
        core: Core,
        language: str | None = None,
        stdin: TextIO = sys.stdin,
        stdout: TextIO = sys.stdout,
        previews_dir: Path | None = None,
    ) -> None:
        self.core = core
        self.stdin = stdin
        self.stdout = stdout
        self.previews_dir = previews_dir
        self._previewed: set[str] = set()
        self._ended: OrderedDict[str, None] = OrderedDict()
        self._actor = Actor(PLATFORM, getpass.getuser(), language=language)
        self.commands: dict[str, Handler] = bind(self, commands_for(CAPABILITIES))
        self._aliases = {"img2img": "edit"}
        self._finished = asyncio.Event()

    @property
    def context(self) -> Context:
        """The operator, answered in the language they chose with /language, else the configured one."""
        return Context(self.core.speaking(self._actor), Place(PLATFORM, "console"))

    def register(self) -> None:
        self.core.listen(PLATFORM, self._on_event)

    async def run(self) -> None:
        """Serve lines until end of input, then until every console job is finished and printed."""
        self._say(self.context.text("console.welcome"))
        started(PLATFORM)
        lines = _read_lines(self.stdin)
        while (line := await lines.get()) is not None:
            await self.handle(line.strip())
        while self.core.has_pending(PLATFORM):
            self._finished.clear()
            await self._finished.wait()

    async def stop_receiving(self) -> None:
        """Nothing to stop: input is read only while `run` runs (its thread is a daemon)."""

    async def close(self) -> None:
        """Nothing to close: the terminal is not the console's to close."""

    async def handle(self, line: str) -> None:
        """One line of input; every refusal is printed, never raised."""
        if not line:
            return
        command, _, rest = line[1:].partition(" ") if line.startswith("/") else ("imagine", "", line)
        context = self.context
        async with guarded(self._print, context.language, what=f"console command {line!r}"):
            name = command.lower()
            handler = self.commands.get(self._aliases.get(name, name))
            if handler is None:
                raise UserError("console.unknown_command", command=f"/{command}")
            await handler(context, rest.strip())

    async def _on_event(self, event: JobEvent) -> None:
        """Every view but position changes and the last progress step, which a terminal cannot redraw."""
        view = view_of(event)
        prefix = f"[{event.job_id}] "
        if event.kind is EventKind.DONE:
            files = ", ".join(str(picture.path) for picture in view.pictures)
            seeds = ", ".join(str(seed) for seed in event.seeds)
            self._say(prefix + render("console.done", event.language, files=files, seeds=seeds))
            if event.translation:
                self._say(prefix + translation_note(event.source_language, event.translation, event.language))
            elif event.untranslated:
                self._say(prefix + untranslated_note(event.untranslated, event.language))
        elif event.kind is not EventKind.POSITION and not (event.kind is EventKind.PROGRESS and event.progress >= 1):
            self._say(prefix + view.text)
        if view.preview is not None and event.job_id not in self._ended:
            await self._write_preview(event.job_id, view.preview, prefix, event.language)
        if event.kind.final:
            self._ended[event.job_id] = None
            while len(self._ended) > ENDED_MEMORY:
                self._ended.popitem(last=False)
            self._previewed.discard(event.job_id)
            await self._remove_preview(event.job_id)
            self._finished.set()

    async def _write_preview(self, job_id: str, data: bytes, prefix: str, language: str | None) -> None:
        """The file named once; a job that ended while it was written (its events run in tasks of their own) has
        it removed again."""
        if self.previews_dir is None:
            return
        path = self.previews_dir / f"{job_id}.jpg"
        first = job_id not in self._previewed
        self._previewed.add(job_id)
        await asyncio.to_thread(_replace, path, data)
        if job_id in self._ended:
            await self._remove_preview(job_id)
        elif first:
            self._say(prefix + render("console.preview", language, path=str(path)))

    async def _remove_preview(self, job_id: str) -> None:
        if self.previews_dir is not None:
            with contextlib.suppress(FileNotFoundError):
                await asyncio.to_thread((self.previews_dir / f"{job_id}.jpg").unlink)

    # --- the catalogue's commands -------------------------------------------------------------

    async def _imagine(self, context: Context, text: str) -> None:
        parsed = parse_prompt(text)
        await self._submit(context, Ask("txt2img", parsed.prompt, parsed.options))

    async def _grid(self, context: Context, text: str) -> None:
        """`/grid prompt --steps 20,40 --guidance 2,4,6`: one image per combination, on one sheet."""
        parsed, axes = parse_grid(text)
        await self.core.grid(context.actor, context.place, Ask("txt2img", parsed.prompt, parsed.options), axes)

    async def _edit(self, context: Context, rest: str) -> None:
        await self._transform(context, "img2img", rest)

    async def _outpaint(self, context: Context, rest: str) -> None:
        await self._transform(context, "outpaint", rest)

    async def _remix(self, context: Context, rest: str) -> None:
        await self._transform(context, "remix", rest)

    async def _depth(self, context: Context, rest: str) -> None:
        await self._transform(context, "depth", rest)

    async def _transform(self, context: Context, operation: str, rest: str) -> None:
        """`/edit`, `/outpaint`, `/remix`, `/depth`: PATH, then the prompt and its options."""
        (path,), text = _split_paths(rest, 1)
        parsed = parse_prompt(text)
        await self._submit(context, Ask(operation, parsed.prompt, parsed.options, image=await _read(path)))

    async def _inpaint(self, context: Context, rest: str) -> None:
        (image, mask), text = _split_paths(rest, 2)
        parsed = parse_prompt(text)
        mask_data = None if mask == "-" else await _read(mask)
        ask = Ask("inpaint", parsed.prompt, parsed.options, image=await _read(image), mask_image=mask_data)
        await self._submit(context, ask)

    async def _mix(self, context: Context, rest: str) -> None:
        """Files and texts in any order; a word that names an image or a path is read as a file, so one that is
        missing is said to be, not mixed in as text."""
        words = shlex.split(rest)
        paths = [word for word in words if Path(word).expanduser().is_file() or _names_a_file(word)]
        parsed = parse_prompt(" ".join(word for word in words if word not in paths))
        items: list[bytes | str] = [await _read(path) for path in paths]
        if parsed.prompt:
            items.append(parsed.prompt)
        await self._submit(context, Ask("mix", "", parsed.options, mix=tuple(items)))

    async def _history(self, context: Context, _: str) -> None:
        jobs = await self.core.history(context.actor)
        if not jobs:
            self._say(context.text("history.empty"))
        for job, line in zip(jobs, history_lines(jobs, context.language), strict=True):
            self._say(line)
            for path in job.files:
                self._say(f"    {path}")

    async def _queue(self, context: Context, _: str) -> None:
        lines = queue_lines(await self.core.queue(context.actor), context.language)
        self._say("\n".join(lines) or context.text("queue.empty"))

    async def _styles(self, context: Context, _: str) -> None:
        self._say(styles_text(await self.core.styles(context.place), context.language))

    async def _quota(self, context: Context, _: str) -> None:
        self._say(quota_text(await self.core.quota(context.actor), context.language))

    async def _cancel(self, context: Context, rest: str) -> None:
        cancellation = await self.core.cancel(context.actor, rest.strip() or None)
        self._say(cancel_text(cancellation, context.language))

    async def _settings(self, context: Context, rest: str) -> None:
        """`/settings` shows the user's defaults, `/settings --size 512x512 --steps 30` sets, `reset` clears."""
        if rest.lower() == "reset":
            await self.core.reset_preferences(context.actor)
            self._say(context.text("settings.reset"))
        elif not rest:
            preferences = await self.core.preferences(context.actor)
            key = "settings.show" if preferences else "settings.none"
            self._say(context.text(key, values=preferences_text(preferences)))
        else:
            parsed = parse_prompt(rest)
            if parsed.prompt:
                raise UserError("settings.unknown", option=parsed.prompt)
            preferences = await self.core.set_preferences(context.actor, parsed.options.given())
            self._say(context.text("settings.saved", values=preferences_text(preferences)))

    async def _token(self, context: Context, rest: str) -> None:
        """`/token` (or `/token revoke`): the operator's own API token; `easel token create` makes anyone's."""
        self._say(await token_reply(self.core.access, context, rest))

    async def _web(self, context: Context, _: str) -> None:
        """`/web`: a one-use sign-in link to the web pages, for the operator."""
        self._say(await web_reply(self.core.access, context))

    async def _language(self, context: Context, rest: str) -> None:
        """`/language` shows, `/language de` chooses, `/language auto` returns to the configured language."""
        self._say(language_text(await self.core.choose_language(context.actor, rest)))

    async def _help(self, context: Context, _: str) -> None:
        self._say(context.text("console.help"))

    async def _submit(self, context: Context, ask: Ask) -> None:
        """The acknowledgement is the view of the queued event, printed as every event is."""
        await self.core.submit(context.actor, context.place, ask)

    async def _print(self, text: str) -> None:
        self._say(text)

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


def _replace(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part")
    partial.write_bytes(data)
    os.replace(partial, path)


def _names_a_file(word: str) -> bool:
    """A path (`./`, `../`, `~`, `/` first) or an image's file name, whether or not it exists."""
    return word.startswith(("/", "./", "../", "~")) or Path(word).suffix.lower() in IMAGE_SUFFIXES


def _split_paths(rest: str, count: int) -> tuple[list[str], str]:
    """The first `count` words are paths (quoted when they hold spaces); the rest is the prompt."""
    try:
        words = shlex.split(rest)
    except ValueError:
        words = rest.split()
    if len(words) < count:
        raise UserError(
            "request.bad_option", option="PATH", expected=Text("request.expect.paths", count=count), value=rest
        )
    return words[:count], " ".join(words[count:])


async def _read(path: str) -> bytes:
    try:
        return await asyncio.to_thread(Path(path).expanduser().read_bytes)
    except OSError:
        raise UserError("image.unreadable_file", path=path) from None
