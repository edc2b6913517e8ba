"""Durable intake: nothing easel takes from Discord is acknowledged before it is recorded.

Discord gives an interaction 3 seconds to be acknowledged and never delivers it again, so a kill after the
acknowledgement and before the job is written would leave the user looking at "thinking..." forever. discord.py
parses gateway events synchronously; `Intake.attach` keeps the raw payload of each interaction and message by its
id (no I/O there), and the handling that acknowledges it first writes that payload to the core's inbox
(`interactions.acknowledged`, and a reply to one of the bot's images before its "got it"). A job written while it
is handled marks it handled in the job's own transaction (`bots.core.intake`); any other ending marks it when it
ends. On the first READY of a process, what an earlier process recorded and never finished is parsed again, the
way the gateway handed it over (an edit form, which lived in the dead process's memory, is rebuilt from its custom
id first); an interaction whose token has expired is only marked handled, with one warning.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from functools import partial
from typing import Any

import discord
from discord.state import ConnectionState

from bots.core.facade import Core
from bots.core.intake import answering
from bots.discord.interactions import PLATFORM

log = logging.getLogger(__name__)

EVENTS = ("INTERACTION_CREATE", "MESSAGE_CREATE")
KEPT_PAYLOADS = 1000
"""Payloads kept in memory for the handling that records them, which begins a moment after the parse; they also
tell the replay which rows this process is handling itself."""
KEPT = timedelta(days=1)
"""How long a handled row is remembered: the gateway may hand an event over again only within a session."""
TOKEN_LIFETIME = timedelta(minutes=15)
MODAL_SUBMIT = discord.InteractionType.modal_submit.value

Forms = Callable[[str, str | None], discord.ui.Modal | None]
"""The form a modal's custom id describes, in a language, if any."""


class Intake:
    """One per adapter, across its clients; `replay` runs once per process."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self._client: discord.Client | None = None
        self._payloads: OrderedDict[int, tuple[str, Any]] = OrderedDict()
        self._replaying: set[int] = set()
        self._replayed = False
        self._handlers: set[asyncio.Task[Any]] = set()

    def attach(self, client: discord.Client) -> None:
        """Keep each interaction's and message's payload as the gateway hands it to `client`."""
        self._client = client
        parsers: dict[str, Callable[[Any], None]] = client._connection.parsers
        for event in EVENTS:
            parsers[event] = partial(self._keep, event, parsers[event])

    @property
    def source(self) -> str:
        """Interaction and message ids are snowflakes, unique across Discord; the application names the bot."""
        assert self._client is not None and self._client.application_id is not None, "signed in"
        return f"{PLATFORM}:{self._client.application_id}"

    async def take(self, update_id: int) -> bool:
        """Record what the gateway handed over, before it is acknowledged; False when it was received before and
        is not being replayed (the gateway handing it over again): then it is dropped."""
        self._track()
        kept = self._payloads.get(update_id)
        if kept is None:
            log.warning("discord: no payload kept for %d; it is handled without a record", update_id)
            return True
        event, data = kept
        if await self.core.receive_update(self.source, update_id, stored(event, data)):
            return True
        if update_id in self._replaying:
            self._replaying.discard(update_id)
            return True
        log.info("discord: %d was received before; dropped", update_id)
        return False

    @asynccontextmanager
    async def handling(self, update_id: int) -> AsyncIterator[None]:
        """A job written meanwhile marks it handled with the job; a refusal, an answer or a failure when it ends.
        A cancelled handling (a stop) leaves it for the next start."""
        try:
            with answering(self.source, (update_id,)):
                yield
        except Exception:
            await self.handled(update_id)
            raise
        await self.handled(update_id)

    async def handled(self, update_id: int) -> None:
        await self.core.updates_handled(self.source, [update_id])

    async def settle(self) -> None:
        """Until every handling of what was taken has ended: a clean stop lets them mark what they answered, so
        that nothing answered is handled again after the restart."""
        if self._handlers:
            await asyncio.wait(set(self._handlers))

    def _track(self) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)

    async def replay(self, forms: Forms) -> None:
        """Once per process: hand what an earlier process recorded and never finished to discord.py again, and
        forget rows handled long ago. An edit form's submission finds its form rebuilt by `forms`."""
        if self._replayed or self._client is None:
            return
        self._replayed = True
        state = self._client._connection
        await self.core.prune_updates(self.source, KEPT)
        for update_id, payload in await self.core.unhandled_updates(self.source):
            if update_id in self._payloads:
                continue  # this process's own, being handled now
            row = json.loads(payload)
            event, data = row["t"], row["d"]
            lost = _lost(data, forms, state) if event == "INTERACTION_CREATE" else None
            if lost is not None:
                log.warning(
                    "discord: interaction %d (%s) was received before a stop; %s", update_id, _named(data), lost
                )
                await self.handled(update_id)
                continue
            log.info("discord: %d was received before a stop and is handled again", update_id)
            self._replaying.add(update_id)
            state.parsers[event](data)

    def _keep(self, event: str, parse: Callable[[Any], None], data: Any) -> None:
        self._payloads[int(data["id"])] = (event, data)
        while len(self._payloads) > KEPT_PAYLOADS:
            self._payloads.popitem(last=False)
        parse(data)


def stored(event: str, data: Any) -> str:
    """An inbox row's payload: the gateway's event name and data, as discord.py parsed them."""
    return json.dumps({"t": event, "d": data})


def _lost(data: dict[str, Any], forms: Forms, state: ConnectionState[Any]) -> str | None:
    """Why a recorded interaction cannot be handled again, if it cannot; a form it submits is made ready."""
    if discord.utils.utcnow() - discord.utils.snowflake_time(int(data["id"])) >= TOKEN_LIFETIME:
        return "its token has expired, so its user cannot be answered any more"
    if data["type"] == MODAL_SUBMIT:
        form = forms(data["data"]["custom_id"], data.get("locale"))
        if form is None:
            return "it submits a form easel cannot rebuild"
        state.store_view(form)
    return None


def _named(data: dict[str, Any]) -> str:
    inner = data.get("data") or {}
    return f"/{inner['name']}" if "name" in inner else str(inner.get("custom_id", "?"))
