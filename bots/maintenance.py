"""The maintenance commands (`easel db`, `easel storage`, `easel discord`): each runs once and exits, saying in one
line what it did, or in one line on stderr why it could not."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from bots.config import ConfigError, Settings
from bots.environment import read_environment

if TYPE_CHECKING:
    from storage.database import Database
    from storage.errors import DatabaseUnavailable


def upgrade(settings: Settings) -> int:
    from sqlalchemy import make_url

    from storage.database import Database
    from storage.errors import DatabaseUnavailable

    async def upgrade() -> Path | None:
        database = Database(settings.storage.database_url)
        await database.connect()
        try:
            return await database.upgrade()
        finally:
            await database.close()

    try:
        copy = asyncio.run(upgrade())
    except DatabaseUnavailable as error:
        return database_failed(error)
    shown = make_url(settings.storage.database_url).render_as_string(hide_password=True)
    print(f"database {shown} is up to date" + (f" (as it was before, it is copied to {copy})" if copy else ""))
    return 0


def backup(path: Path, settings: Settings) -> int:
    """SQLite's online backup: consistent while `easel run` writes. A server database has its own tools."""
    import sqlite3

    from storage.backup import NotSQLite, back_up

    try:
        size = back_up(settings.storage.database_url, path)
    except NotSQLite:
        return fail("storage.database_url is not a SQLite file: back up a PostgreSQL database with pg_dump")
    except FileExistsError:
        return fail(f"{path} exists: name a new file, so that no earlier backup is overwritten")
    except FileNotFoundError as error:
        return fail(f"nothing to back up: {error}")
    except (OSError, sqlite3.Error) as error:
        return fail(f"the backup to {path} failed: {error}")
    print(f"database copied to {path} ({size / 1_000_000:.1f} MB)")
    return 0


def discord_sync(settings: Settings) -> int:
    """Commands are uploaded on request, not on every start: Discord rate-limits command registration."""
    import aiohttp
    import discord

    from bots.discord.adapter import sync_once

    token_env = settings.discord.token_env
    try:
        token = read_environment(settings).discord_token
    except ConfigError as error:
        return fail(str(error))
    if not token:
        return fail(
            f"{token_env} is not set: the Discord bot token is read from the environment ({token_env}, or the file "
            f"that {token_env}_FILE names, or $CREDENTIALS_DIRECTORY/{token_env})"
        )
    try:
        names = asyncio.run(sync_once(settings, token))
    except discord.LoginFailure:
        return fail(f"Discord refused the token in {token_env}")
    except (discord.HTTPException, aiohttp.ClientError) as error:
        return fail(f"syncing the Discord commands failed: {error}")
    guild_ids = settings.discord.guild_ids
    where = "in guilds " + ", ".join(str(guild) for guild in guild_ids) if guild_ids else "globally"
    print(f"synced {len(names)} Discord commands {where}: {', '.join(names)}")
    return 0


def database_failed(error: DatabaseUnavailable) -> int:
    return fail(f"storage.database_url ({error.where}): {error.reason}")


def fail(message: str) -> int:
    print(f"easel: error: {message}", file=sys.stderr)
    return 1


def prune(settings: Settings, *, dry_run: bool) -> int:
    """What `easel run` deletes once a day, now; with `dry_run`, only what it would delete."""
    from bots.core.accounts import now
    from bots.core.files import Files
    from bots.core.retention import keeps_everything
    from bots.core.retention import prune as prune_files
    from bots.root import shared
    from storage import FileStore
    from storage.errors import DatabaseUnavailable

    storage = settings.storage
    if keeps_everything(storage):
        print("nothing to prune: storage.keep_days is 0 and no community has keep_days of its own")
        return 0

    async def run() -> str:
        async with _opened(storage.database_url) as database:
            carried = shared(settings) and not storage.shared_outputs_dir
            files = Files(FileStore(storage.outputs_dir), database if carried else None)
            return str(await prune_files(storage, database, files, now(), dry_run=dry_run))

    try:
        pruned = asyncio.run(run())
    except DatabaseUnavailable as error:
        return database_failed(error)
    print(f"would delete {pruned}" if dry_run else f"deleted {pruned}")
    return 0


def download_models(settings: Settings, to: Path | None) -> int:
    """The configured models' files (safetensors only), then the config lines that make easel use them offline."""
    from huggingface_hub.errors import HfHubHTTPError

    from generation.hub import config_lines, download, sources, unreachable

    if not sources(settings.model, settings.translation, settings.safety):
        print("nothing to download: the configured models are local directories or the tiny preset")
        return 0
    try:
        fetched = download(settings.model, settings.translation, settings.safety, to)
    except Exception as error:
        if unreachable(error):
            return fail(f"the hub cannot be reached ({error}); run the same command again to go on where it stopped")
        if isinstance(error, HfHubHTTPError | OSError):
            return fail(f"the download stopped: {error}; run the same command again to go on where it stopped")
        raise
    print("downloaded. To load these files without the network, put in config.toml:")
    for line in config_lines(fetched, into_directory=to is not None):
        print(f"  {line}")
    return 0


def set_tier(settings: Settings, who: str, name: str | None) -> int:
    """`easel users tier PLATFORM:ID [NAME]`: an operator's `/tier`, logged as easel's own action."""
    from bots.moderation.tiers import tier_of
    from storage.errors import DatabaseUnavailable

    platform, _, user_id = who.partition(":")
    if not platform or not user_id:
        return fail(f"{who!r} is not PLATFORM:ID, e.g. telegram:123456789 or discord:987654321")
    if name is not None and name not in settings.tiers:
        return fail(f"there is no tier {name!r}; tiers ([tiers.NAME] in the config): {', '.join(settings.tiers)}")

    async def run() -> str:
        async with _opened(settings.storage.database_url) as database:
            user = await database.get_or_create_user(platform, user_id)
            before = tier_of(settings, user)
            if name is None:
                return f"{who} is in tier {before}"
            await database.set_user_tier(user.id, name)
            details = {"from": user.tier, "to": name}
            await database.log_moderation("tier", f"user:{user.id}", reason="easel users tier", details=details)
            return f"{who} is in tier {name} now (before: {before})"

    try:
        print(asyncio.run(run()))
    except DatabaseUnavailable as error:
        return database_failed(error)
    return 0


def api_token(settings: Settings, platform: str, user_id: str, *, revoke: bool = False) -> int:
    """`easel token create|revoke --platform P --user ID`: a user's personal API token, as the bot's /token makes
    it; the new token is printed alone on stdout (for a script to keep), once."""
    from bots.core.access import Access
    from bots.core.accounts import Accounts
    from bots.core.types import Actor
    from bots.errors import UserError
    from storage.errors import DatabaseUnavailable

    async def run() -> str:
        async with _opened(settings.storage.database_url) as database:
            access = Access(database, Accounts(database), settings.http.base_url)
            actor = Actor(platform, user_id)
            if revoke:
                revoked = await access.revoke_api_token(actor)
                return f"the token of {platform}:{user_id} is revoked" if revoked else "there was no token to revoke"
            return await access.api_token(actor)

    try:
        print(asyncio.run(run()))
    except DatabaseUnavailable as error:
        return database_failed(error)
    except UserError as error:
        return fail(f"{platform}:{user_id} is banned ({error.values.get('reason', '-')}): no token")
    return 0


@asynccontextmanager
async def _opened(url: str) -> AsyncIterator[Database]:
    """The database connected and at the current schema, as `easel run` would leave it (a new one gets its
    tables), and closed afterwards."""
    from storage.database import Database

    database = Database(url)
    await database.connect()
    try:
        await database.upgrade()
        yield database
    finally:
        await database.close()
