"""Scale-out with real processes on the real PostgreSQL: a Telegram and a Discord front end (`easel run --no-worker`,
one process each) and two GPU hosts (`easel worker`, tiny model) that share one database and no disk, against the
fake Bot API and the fake Discord: the uploads and the images travel through the database.

Every job runs once and is delivered once, by the front end of its platform; a worker killed mid-job loses the job
to the other once its lease runs out; a cancel reaches a job running in another process; and with the front end
killed, the workers go on and the results reach users when it is back. Needs a server: EASEL_TEST_POSTGRES_URL.
"""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest
from databases import PostgresDatabases
from easel_process import EaselProcess
from fake_discord import FakeDiscord
from fake_telegram import TOKEN, FakeTelegram
from PIL import Image
from sqlalchemy import make_url
from test_discord import ALICE
from test_discord import TOKEN as DISCORD_TOKEN

pytestmark = pytest.mark.postgres

SLOW = "--size 320x320 --steps 100 --prior-steps 100 --seed 7"
"""Slow enough on the tiny model (seconds) to be caught mid-job."""
BATCH = re.compile(r"batch of \d+ job\(s\) ([0-9a-f, ]+): ")


@pytest.fixture
async def discord() -> AsyncIterator[FakeDiscord]:
    server = FakeDiscord()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
def database(postgres_databases: PostgresDatabases) -> AsyncIterator[str]:
    with postgres_databases.fresh() as url:
        yield url


class Hosts:
    """The processes of one test, started from one config, each in a directory of its own (the relative
    `outputs_dir` is in it): only a front end has a token, its platform's."""

    def __init__(self, root: Path, telegram_api: FakeTelegram, discord: FakeDiscord, database: str) -> None:
        self.root = root
        self.database = database
        self.config = (
            '[model]\npreset = "tiny"\n'
            f'[storage]\ndatabase_url = "{database}"\noutputs_dir = "files"\n'
            "[worker]\nlease_seconds = 3\npoll_seconds = 1\n[previews]\ninterval_seconds = 0.2\n"
            f'[telegram]\napi_base_url = "{telegram_api.base_url}"\nfile_base_url = "{telegram_api.file_base_url}"\n'
            f'[discord]\napi_base_url = "{discord.api_base_url}"\ngateway_url = "{discord.gateway_url}"\n'
            "progress_interval_seconds = 0.0\n"
        )

    async def front_end(self) -> EaselProcess:
        front = await EaselProcess.start(
            self.root / "front", self.config, {"TELEGRAM_BOT_TOKEN": TOKEN}, command=("run", "--no-worker")
        )
        await front.wait_for_log("telegram adapter started")
        return front

    async def discord_front_end(self) -> EaselProcess:
        front = await EaselProcess.start(
            self.root / "discord", self.config, {"DISCORD_BOT_TOKEN": DISCORD_TOKEN}, command=("run", "--no-worker")
        )
        await front.wait_for_log("discord adapter started")
        return front

    async def worker(self, name: str) -> EaselProcess:
        worker = await EaselProcess.start(self.root / name, self.config, {}, command=("worker",))
        await worker.wait_for_log("serves the queue of")
        return worker

    async def connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(
            make_url(self.database).set(drivername="postgresql").render_as_string(hide_password=False)
        )

    async def running_job(self, timeout: float = 60) -> tuple[str, int]:
        """The job a worker runs now, and the pid of that worker."""
        connection = await self.connect()
        try:
            for _ in range(int(timeout / 0.05)):
                row = await connection.fetchrow("SELECT id, leased_by FROM jobs WHERE state = 'running'")
                if row is not None:
                    return row["id"], int(row["leased_by"].split(":")[1])
                await asyncio.sleep(0.05)
        finally:
            await connection.close()
        raise AssertionError("no job started")


def jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 40, 40)).save(buffer, "JPEG")
    return buffer.getvalue()


def results(telegram_api: FakeTelegram, user: dict[str, Any]) -> list[dict[str, Any]]:
    """The images `user` was sent, without a status message that shows a preview (it is deleted at the end)."""
    shown = {int(call.params["message_id"]) for call in previews(telegram_api, user)}
    return [message for message in telegram_api.images(user["id"]) if int(message["message_id"]) not in shown]


def previews(telegram_api: FakeTelegram, user: dict[str, Any]) -> list[Any]:
    """The status messages of `user` turned into a preview picture."""
    return [call for call in telegram_api.sent("editMessageMedia") if str(call.params["chat_id"]) == str(user["id"])]


def batches(*workers: EaselProcess) -> list[str]:
    """The jobs the workers ran to the end, one entry per run."""
    return [job_id for worker in workers for match in BATCH.finditer(worker.log) for job_id in match[1].split(", ")]


async def test_a_front_end_and_two_workers_run_every_job_once_through_kills_and_cancels(
    tmp_path: Path, telegram_api: FakeTelegram, discord: FakeDiscord, database: str
) -> None:
    hosts = Hosts(tmp_path, telegram_api, discord, database)
    front, other, first, second = await asyncio.gather(
        hosts.front_end(), hosts.discord_front_end(), hosts.worker("gpu1"), hosts.worker("gpu2")
    )
    processes = [front, other, first, second]
    try:
        await discord.wait_for(lambda: discord.identifies, timeout=30, what="the gateway connection")
        for prompt in ("a blue sea", "a grey cliff"):
            await discord.command("imagine", {"prompt": f"{prompt} --seed 5"}, member=ALICE)
        users = [telegram_api.user(2001 + index, name, "en") for index, name in enumerate(("Ann", "Bob", "Cy"))]
        for user in users[:2]:
            for prompt in ("a red boat", "a green hill"):
                telegram_api.text(user, telegram_api.private(user), f"{prompt} --seed 5")
        cy = users[2]
        telegram_api.text(cy, telegram_api.private(cy), "a red boat --seed 5")
        telegram_api.photo(cy, telegram_api.private(cy), jpeg(), "make it blue --seed 5 --strength 0.5")
        for user in users:
            await telegram_api.wait_for(
                lambda user=user: len(results(telegram_api, user)) == 2, timeout=120, what="two images"
            )
        await discord.wait_for(lambda: len(discord.results()) == 2, timeout=60, what="the Discord images")
        await asyncio.sleep(1.0)
        assert [len(results(telegram_api, user)) for user in users] == [2, 2, 2], "each delivered once"
        shown = sorted(message.content for message in discord.results())
        assert shown[0].startswith("a blue sea") and shown[1].startswith("a grey cliff"), shown
        ran = batches(first, second)
        assert len(ran) == 8 and len(set(ran)) == 8, "each run once"
        captions = sorted(message["caption"] for message in results(telegram_api, cy))  # two workers: either first
        assert captions[0].startswith("a red boat") and captions[1].startswith("make it blue"), captions
        made = {path.name for worker in ("gpu1", "gpu2") for path in (tmp_path / worker / "files").rglob("*.png")}
        delivered = {
            path.name for front in ("front", "discord") for path in (tmp_path / front / "files").rglob("*.png")
        }
        assert made and made == delivered, "the images reached the front end through the database"
        assert {path.name for path in (tmp_path / "front" / "files" / "inputs").rglob("*")} <= {
            path.name for worker in ("gpu1", "gpu2") for path in (tmp_path / worker / "files" / "inputs").rglob("*")
        }

        ann = users[0]
        telegram_api.text(ann, telegram_api.private(ann), f"a slow lighthouse {SLOW}")
        job_id, pid = await hosts.running_job()
        victim, survivor = (first, second) if first.pid == pid else (second, first)
        await victim.kill()
        await telegram_api.wait_for(
            lambda: len(results(telegram_api, ann)) == 3, timeout=90, what="the orphaned job's image"
        )
        assert "leases ran out" in front.log + other.log + survivor.log  # whichever looked first
        assert results(telegram_api, ann)[2]["caption"].startswith("a slow lighthouse")
        assert job_id in batches(survivor)  # the victim may have drawn it too, killed before writing it

        telegram_api.text(ann, telegram_api.private(ann), f"a slow tower {SLOW}")
        job_id, _ = await hosts.running_job()
        await telegram_api.wait_for(
            lambda: previews(telegram_api, ann), timeout=60, what="a preview made on another host"
        )
        telegram_api.text(ann, telegram_api.private(ann), f"/cancel {job_id[:8]}")
        await telegram_api.wait_for(
            lambda: any("was cancelled" in text for text in telegram_api.texts(ann["id"])), timeout=60
        )
        assert len(results(telegram_api, ann)) == 3

        bob = users[1]
        telegram_api.text(bob, telegram_api.private(bob), f"a slow harbour {SLOW}")
        await hosts.running_job()
        await front.kill()
        await survivor.wait_for_log("batch of", count=len(BATCH.findall(survivor.log)) + 1, timeout=90)
        assert len(results(telegram_api, bob)) == 2
        front = await hosts.front_end()
        processes[0] = front
        await telegram_api.wait_for(
            lambda: len(results(telegram_api, bob)) == 3, timeout=60, what="the image after the restart"
        )
        await asyncio.sleep(1.0)
        assert len(results(telegram_api, bob)) == 3
        assert results(telegram_api, bob)[2]["caption"].startswith("a slow harbour")
        connection = await hosts.connect()
        try:
            kept = await connection.fetchval("SELECT count(*) FROM file_blobs WHERE path LIKE 'previews/%'")
        finally:
            await connection.close()
        assert kept == 0, "a job's preview is dropped when it ends"
    finally:
        codes = [await process.stop() for process in processes if process.process.returncode is None]
    assert all(code == 0 for code in codes), "\n\n".join(process.log for process in processes)
    assert "Traceback" not in front.log + other.log + survivor.log
    assert "delivering job" not in other.log, "nothing delivered by the other platform's front end"
    assert front.log.count("delivering job") == 1, "only the result finished while the front end was down"
