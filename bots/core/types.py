"""The values that cross the core's boundary: who asks and where, what they get back, and what happens to a job."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Protocol

SHORT_ID_LENGTH = 8


@dataclass(frozen=True)
class Actor:
    """Who asks: a user of one platform."""

    platform: str
    user_id: str
    display_name: str | None = None
    language: str | None = None
    roles: tuple[str, ...] = ()
    """Their roles in the community where they ask, as names and ids (Discord's), for `[tiers.NAME] discord_roles`."""
    platform_language: str | None = None
    """The platform's language, kept here when `language` is the one the user chose (`Core.speaking`)."""
    chose_language: bool = False
    """`language` is the user's own choice, not the platform's."""


@dataclass(frozen=True)
class Place:
    """Where they ask: a channel or chat, inside a community (guild, group) when there is one."""

    platform: str
    channel_id: str
    community_id: str | None = None
    community_name: str | None = None
    message_id: str | None = None
    """The message that asked, so that replies can answer it; not kept across a restart."""
    nsfw: bool = False
    """An age-restricted channel (Discord's NSFW channels), where a community may allow NSFW images."""


@dataclass(frozen=True)
class Receipt:
    job_id: str
    position: int | None
    eta_seconds: float | None


class EventKind(StrEnum):
    QUEUED = "queued"
    STARTED = "started"
    PROGRESS = "progress"
    POSITION = "position"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        """A final event is delivered exactly once, recorded, and retried until it is."""
        return self in (EventKind.DONE, EventKind.FAILED, EventKind.CANCELLED)


@dataclass(frozen=True)
class JobEvent:
    kind: EventKind
    job_id: str
    platform: str
    channel_id: str
    user_id: str
    language: str | None
    prompt: str = ""
    progress: float = 0.0
    position: int | None = None
    eta_seconds: float | None = None
    files: tuple[Path, ...] = ()
    seeds: tuple[int, ...] = ()
    error_key: str | None = None
    translation: str | None = None
    """The English prompt the model was given, when the user's prompt was translated."""
    spoiler: bool = False
    """Show the images behind a spoiler (the community allows NSFW images that way)."""
    source_language: str | None = None
    """The language detected in the user's prompt (ISO 639-1)."""
    untranslated: str | None = None
    """The prompt's language, when easel cannot translate it here: the image model was given the prompt as written,
    and the user is told so (on the queued status and under the result)."""
    reply_to: str | None = None
    """The message that asked for the job, when it is known (`Place.message_id`)."""
    preview: bytes | None = None
    """A progress event's picture of the image forming (JPEG), when one was made and may be shown; `spoiler`
    says whether it hides behind a spoiler."""
    first_delivery: bool = False
    """A done event told the moment its job was written done, in this process: none of its images can have been
    sent yet, so the adapter need not look for those an earlier attempt sent."""
    grid_cells: int = 0
    """A grid's result: how many cells its sheet shows, each of which a button sends alone."""


@dataclass(frozen=True)
class JobSummary:
    job_id: str
    state: str
    operation: str
    prompt: str
    seed: int
    created_at: datetime
    files: tuple[Path, ...] = ()


@dataclass(frozen=True)
class ImageInfo:
    number: int
    """1 for a job's first image, as users count them."""
    width: int
    height: int
    seed: int


@dataclass(frozen=True)
class JobDetail:
    """One of a user's jobs as they may read it outside a chat (the REST API, the web pages)."""

    job_id: str
    operation: str
    state: str
    prompt: str
    negative_prompt: str
    translation: str | None
    """The English prompt the model was given, where it differs from the prompt the user typed."""
    seed: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    parent_id: str | None
    error_key: str | None
    images: tuple[ImageInfo, ...]
    position: int | None
    eta_seconds: float | None


@dataclass(frozen=True)
class QueueSpot:
    """A place in the queue as everyone may see it: another user's job shows no prompt and no id."""

    state: str
    operation: str
    position: int | None
    mine: bool
    job_id: str | None
    prompt: str | None


@dataclass(frozen=True)
class QueueEntry:
    job_id: str
    state: str
    prompt: str
    position: int | None
    eta_seconds: float | None


@dataclass(frozen=True)
class Cancellation:
    job_id: str
    outcome: str  # "queued": removed from the queue; "running": stops at its next step


@dataclass(frozen=True)
class QuotaStatus:
    images: int
    images_limit: int
    gpu_seconds: float
    gpu_seconds_limit: float


class ShownMessage(Protocol):
    """A platform message that shows a job, or one of its images, as the core records it (message links)."""

    @property
    def platform(self) -> str: ...

    @property
    def chat_id(self) -> str: ...

    @property
    def message_id(self) -> str: ...

    @property
    def job_id(self) -> str: ...

    @property
    def output_index(self) -> int | None: ...


def short_id(job_id: str) -> str:
    """The id shown to users: enough to tell their jobs apart, and accepted back by `cancel`."""
    return job_id[:SHORT_ID_LENGTH]
