"""Domain types: what `Database` takes and returns.

Plain frozen dataclasses, so callers never hold a session or an ORM row and an in-memory fake can
implement the same contract. Every datetime is timezone-aware UTC. Mapping fields (`parameters`,
`settings`, `details`) are fresh copies of what was stored: changing one changes nothing in the database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in FINISHED_STATES


FINISHED_STATES = frozenset({JobState.DONE, JobState.FAILED, JobState.CANCELLED})


class DeliveryState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class QuotaState(StrEnum):
    """A job's charge: reserved at submission, committed with the actual GPU time, or refunded."""

    RESERVED = "reserved"
    COMMITTED = "committed"
    REFUNDED = "refunded"


PERMANENT = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
"""`banned_until` of a permanent ban."""


@dataclass(frozen=True)
class User:
    id: int
    platform: str
    platform_user_id: str
    display_name: str | None
    language: str | None
    """The platform's language when easel first met the user: for events that carry none (a Discord message)."""
    tier: str
    banned_until: datetime | None
    """None: never banned or unbanned; `PERMANENT` for a ban without end."""
    ban_reason: str | None
    preferences: Mapping[str, Any]
    """The user's own request defaults (size, steps...), as `make_request` keywords."""
    created_at: datetime
    chosen_language: str | None = None
    """The language the user chose to be answered in (`/language`); None follows their platform."""

    def is_banned(self, now: datetime) -> bool:
        return self.banned_until is not None and now < self.banned_until

    @property
    def banned_permanently(self) -> bool:
        return self.banned_until == PERMANENT


@dataclass(frozen=True)
class AccessToken:
    """A secret that stands for a user outside the chats, known here only by its hash: an API token (`api`,
    without end), a login link (`login`, one use) or a web session (`session`)."""

    token_hash: str
    kind: str
    user_id: int
    created_at: datetime
    expires_at: datetime | None
    community_id: str | None = None
    """The platform id of the community whose moderation it grants (a link a moderator asked for there)."""
    role: int | None = None
    """Their role in that community when they asked."""


@dataclass(frozen=True)
class Community:
    """A Discord guild or a Telegram group chat."""

    id: int
    platform: str
    platform_id: str
    name: str | None
    settings: Mapping[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class JobDraft:
    """A job as the core submits it; storage adds the id, the state and the timestamps."""

    owner_id: int
    platform: str
    channel_id: str
    operation: str
    parameters: Mapping[str, Any]
    prompt: str
    seed: int
    cost: float
    negative_prompt: str = ""
    processed_prompt: str | None = None
    community_id: int | None = None
    parent_id: str | None = None
    """The job this one rerolls or varies."""
    grid_id: str | None = None
    """The grid this job is a cell of: its images go into the grid's sheet, never to the chat one by one."""
    input_files: tuple[str, ...] = ()
    """sha256 of each stored input image, in the order the operation takes them."""
    answers: tuple[str, tuple[int, ...]] | None = None
    """The inbox's updates (source, ids) this job answers: marked handled in the job's own transaction."""


@dataclass(frozen=True)
class Job:
    id: str
    owner_id: int
    community_id: int | None
    platform: str
    channel_id: str
    operation: str
    parameters: Mapping[str, Any]
    prompt: str
    processed_prompt: str | None
    negative_prompt: str
    seed: int
    cost: float
    state: JobState
    attempts: int
    error_code: str | None
    error_message: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    delivery_state: DeliveryState
    delivery_attempts: int
    delivery_attempted_at: datetime | None
    delivered_at: datetime | None
    delivery_error: str | None
    parent_id: str | None
    input_files: tuple[str, ...]
    deleted_at: datetime | None
    """When its images were deleted (by the owner or a moderator); the row stays for the audit trail."""
    grid_id: str | None = None


@dataclass(frozen=True)
class OutputDraft:
    """One generated image already written to the file store; `path` is relative to its root."""

    index: int
    path: str
    sha256: str
    size: int
    width: int
    height: int
    seed: int
    nsfw_score: float | None = None
    """The image safety classifier's score, when one ran: kept so a later delivery applies the same policy."""


@dataclass(frozen=True)
class Output:
    job_id: str
    index: int
    path: str
    sha256: str
    size: int
    width: int
    height: int
    seed: int
    nsfw_score: float | None = None


@dataclass(frozen=True)
class MessageLink:
    """A platform message that shows a job (or one of its images), so replies and buttons find it."""

    platform: str
    chat_id: str
    message_id: str
    job_id: str
    output_index: int | None


@dataclass(frozen=True)
class QuotaCharge:
    job_id: str
    user_id: int
    day: date
    images: int
    gpu_seconds: float
    state: QuotaState


@dataclass(frozen=True)
class QuotaReservation:
    """A job's estimated charge for `day`, refused past the limits that are given."""

    day: date
    images: int
    gpu_seconds: float
    max_images: int | None = None
    max_gpu_seconds: float | None = None


@dataclass(frozen=True)
class QuotaUsage:
    images: int = 0
    gpu_seconds: float = 0.0


@dataclass(frozen=True)
class CommunityBan:
    """A user banned from one community; a global ban is on the `User` itself."""

    community_id: int
    user_id: int
    until: datetime
    """`PERMANENT` for a ban without end."""
    reason: str
    actor_id: int | None
    created_at: datetime

    def is_active(self, now: datetime) -> bool:
        return now < self.until

    @property
    def permanent(self) -> bool:
        return self.until == PERMANENT


@dataclass(frozen=True)
class ModerationEntry:
    id: int
    community_id: int | None
    actor_id: int | None
    action: str
    target: str
    reason: str | None
    details: Mapping[str, Any]
    created_at: datetime
