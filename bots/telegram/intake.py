"""Durable intake: every update PTB takes from Telegram is in the database before Telegram is told so.

PTB's updater awaits `update_queue.put` for each update of a batch before the next `getUpdates` confirms the
batch, and its webhook answers Telegram only after `put`; so `Intake`, the application's update queue, writes
each update to the core's inbox in `put`. An update is marked handled when its handling ends (a prompt's job is
written by then; a refusal or a failure ends it as well), and an album's photos when the album has been
handled. At start-up, before polling, the updates whose handling never ended (a kill) are handled again; one
that Telegram delivers again is recognised by its id and dropped.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from telegram import Update
from telegram.ext import Application

from bots.core.facade import Core
from bots.core.intake import answering
from bots.telegram.chat import PLATFORM

log = logging.getLogger(__name__)

KEPT = timedelta(days=2)
"""How long a handled update is remembered; Telegram keeps an unconfirmed update for 24 hours."""


class Intake(asyncio.Queue[object]):
    """The application's update queue; `source` names the bot, since update ids are counted per bot."""

    def __init__(self, core: Core, token: str) -> None:
        super().__init__()
        self.core = core
        self.source = f"{PLATFORM}:{token.split(':', 1)[0]}"
        self._held: set[int] = set()

    async def put(self, item: object) -> None:
        """Keep an update before it is handed on; one received before is dropped (handled, or replayed)."""
        if isinstance(item, Update):
            payload = item.to_json()
            if not await self.core.receive_update(self.source, item.update_id, payload):
                log.info("telegram: update %d was received before; dropped", item.update_id)
                return
        await super().put(item)

    def hold(self, update_id: int) -> None:
        """Its handling goes on after its handler returns (a photo of an album still gathered)."""
        self._held.add(update_id)

    async def handled(self, update_ids: Iterable[int]) -> None:
        """Held ones stay unhandled until they are released."""
        ids = [update_id for update_id in update_ids if update_id not in self._held]
        if ids:
            await self.core.updates_handled(self.source, ids)

    async def release(self, update_ids: Iterable[int]) -> None:
        ids = list(update_ids)
        self._held.difference_update(ids)
        await self.handled(ids)

    async def replay(self, application: Application[Any, Any, Any, Any, Any, Any]) -> None:
        """Handle again what a previous run received and never finished, oldest first; forget old ones."""
        await self.core.prune_updates(self.source, KEPT)
        for update_id, payload in await self.core.unhandled_updates(self.source):
            log.info("telegram: update %d was received before a stop and is handled again", update_id)
            await application.process_update(Update.de_json(json.loads(payload), application.bot))


class IntakeApplication(Application):  # type: ignore[type-arg]
    """A job written while an update is handled marks it handled with the job (`bots.core.intake`); any other
    handling marks it when it ends, refused or failed alike (PTB's `process_update` hands a handler's error to the
    error handlers). A cancelled one stays unhandled."""

    async def process_update(self, update: object) -> None:
        intake = self.update_queue
        if not (isinstance(update, Update) and isinstance(intake, Intake)):
            await super().process_update(update)
            return
        with answering(intake.source, (update.update_id,)):
            await super().process_update(update)
        await intake.handled([update.update_id])
