"""The core as the adapters see it: every use case in one place, each served by the module that owns it.

The parts are built here in dependency order, so nothing is tied together after construction: the worker
exists first (the composition root starts it with `lifecycle` as its sink, and `positions` beside it), then the
parts that use it.
"""

from __future__ import annotations

from bots.config import Settings
from bots.core.access import Access
from bots.core.accounts import Accounts
from bots.core.admission import Admission
from bots.core.announcer import Announcer
from bots.core.deliveries import Deliveries
from bots.core.files import Files
from bots.core.grid_sheets import GRID, GridSheets
from bots.core.grids import Grids
from bots.core.job_reads import JobReads
from bots.core.jobs import Jobs
from bots.core.languages import Languages
from bots.core.lifecycle import Lifecycle
from bots.core.metrics import Metrics
from bots.core.positions import Positions
from bots.core.reads import Reads
from bots.core.recovery import Recovery
from bots.core.types import Actor, Place, Receipt
from bots.moderation.commands import Moderation
from generation.worker import Worker
from storage.database import Database


class Core:
    def __init__(self, settings: Settings, db: Database, files: Files, worker: Worker) -> None:
        self.settings = settings
        self.db = db
        self.files = files
        self.worker = worker
        self.moderation = Moderation(settings, db)
        self.accounts = Accounts(db)
        self.languages = Languages(db, self.accounts)
        self.metrics = Metrics(worker)
        self.announcer = Announcer(db, self.metrics)
        self.positions = Positions(worker, self.announcer, settings.queue)
        self.grid_sheets = GridSheets(db, files, self.accounts, self.moderation, self.announcer, self.metrics)
        self.lifecycle = Lifecycle(
            settings,
            db,
            files,
            worker,
            self.accounts,
            self.moderation,
            self.announcer,
            self.positions,
            self.grid_sheets,
            self.metrics,
        )
        self.recovery = Recovery(
            settings, db, files, worker, self.announcer, self.positions, self.lifecycle, self.grid_sheets
        )
        self.deliveries = Deliveries(db, files, self.accounts, self.moderation, self.announcer, self.positions)
        self.jobs = Jobs(db, files, worker, self.accounts, self.moderation, self.lifecycle)
        self.admission = Admission(
            settings,
            db,
            files,
            worker,
            self.accounts,
            self.moderation,
            self.announcer,
            self.lifecycle,
            self.jobs,
            self.positions,
        )
        self.reads = Reads(settings, db, files, worker, self.accounts)
        self.job_reads = JobReads(db, files, worker)
        self.access = Access(db, self.accounts, settings.http.base_url)
        self.grids = Grids(
            db,
            files,
            worker,
            self.moderation,
            self.announcer,
            self.lifecycle,
            self.admission,
            self.jobs,
            self.positions,
        )

        self.submit = self.admission.submit
        self.variations = self.admission.variations
        self.edit = self.admission.edit
        self.outpaint = self.admission.outpaint
        self.grid = self.grids.submit
        self.cell = self.grids.cell
        self.upload_operation = self.admission.upload_operation
        self.cancel = self.jobs.cancel
        self.delete = self.jobs.delete
        self.purge = self.jobs.purge
        self.link_message = self.jobs.link_message
        self.job_of_message = self.jobs.job_of_message
        self.messages_of = self.jobs.messages_of
        self.queue = self.reads.queue
        self.styles = self.reads.styles
        self.history = self.reads.history
        self.quota = self.reads.quota
        self.preferences = self.reads.preferences
        self.set_preferences = self.reads.set_preferences
        self.reset_preferences = self.reads.reset_preferences
        self.speaking = self.languages.speaking
        self.language_of = self.languages.language_of
        self.choose_language = self.languages.choose
        self.listen = self.announcer.listen
        self.has_pending = self.announcer.has_pending
        self.redeliver = self.deliveries.redeliver
        self.stop_redelivering = self.deliveries.stop_redelivering
        self.receive_update = db.receive_update
        self.updates_handled = db.updates_handled
        self.unhandled_updates = db.unhandled_updates
        self.prune_updates = db.prune_updates

    async def recover(self) -> int:
        """Ready to serve after a start: the users' chosen languages read, and what a previous run left in the
        queue taken up again (`Recovery.recover`)."""
        await self.languages.load()
        return await self.recovery.recover()

    async def queue_counts(self) -> dict[str, int]:
        """How many jobs are queued and running, everyone's (a grid counted as its cells)."""
        return await self.db.active_counts(excluding_operation=GRID)

    async def exposition(self) -> bytes:
        """/metrics: every figure in Prometheus's text format, the queue's length read from the database now."""
        return self.metrics.exposition(await self.queue_counts())

    async def reroll(self, actor: Actor, place: Place, job_id: str) -> Receipt:
        """The same request with a new seed, for whoever asks (a grid: the same grid)."""
        job = await self.jobs.visible_job(job_id)
        if job.operation == GRID:
            return await self.grids.reroll(actor, place, job)
        return await self.admission.reroll(actor, place, job_id)
