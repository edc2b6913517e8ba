"""ORM models: the schema the migrations create, and each row's conversion to its domain type.

Constraint names follow one convention, so later migrations can name what they alter (SQLite's batch
mode needs the names). Timestamps are set by `Database`'s methods, never by database defaults.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from storage.columns import UTCDateTime, state_enum
from storage.records import (
    AccessToken,
    Community,
    CommunityBan,
    DeliveryState,
    Job,
    JobState,
    MessageLink,
    ModerationEntry,
    Output,
    QuotaCharge,
    QuotaState,
    User,
)

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

PLATFORM = String(16)
PLATFORM_ID = String(64)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[str]: JSON()}


class UserRow(Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("platform", "platform_user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(PLATFORM)
    platform_user_id: Mapped[str] = mapped_column(PLATFORM_ID)
    display_name: Mapped[str | None] = mapped_column(String(200))
    language: Mapped[str | None] = mapped_column(String(16))
    chosen_language: Mapped[str | None] = mapped_column(String(16))
    tier: Mapped[str] = mapped_column(String(32))
    banned_until: Mapped[datetime | None]
    ban_reason: Mapped[str | None] = mapped_column(Text)
    preferences: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]

    def record(self) -> User:
        return User(
            id=self.id,
            platform=self.platform,
            platform_user_id=self.platform_user_id,
            display_name=self.display_name,
            language=self.language,
            chosen_language=self.chosen_language,
            tier=self.tier,
            banned_until=self.banned_until,
            ban_reason=self.ban_reason,
            preferences=dict(self.preferences),
            created_at=self.created_at,
        )


class CommunityRow(Base):
    __tablename__ = "communities"
    __table_args__ = (UniqueConstraint("platform", "platform_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(PLATFORM)
    platform_id: Mapped[str] = mapped_column(PLATFORM_ID)
    name: Mapped[str | None] = mapped_column(String(200))
    settings: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]

    def record(self) -> Community:
        return Community(
            id=self.id,
            platform=self.platform,
            platform_id=self.platform_id,
            name=self.name,
            settings=dict(self.settings),
            created_at=self.created_at,
        )


class JobRow(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        Index(None, "state"),
        Index(None, "owner_id", "created_at"),
        Index(None, "owner_id", "state", "created_at"),
        Index(None, "delivery_state"),
        Index(None, "grid_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    community_id: Mapped[int | None] = mapped_column(ForeignKey("communities.id"))
    platform: Mapped[str] = mapped_column(PLATFORM)
    channel_id: Mapped[str] = mapped_column(PLATFORM_ID)
    operation: Mapped[str] = mapped_column(String(32))
    parameters: Mapped[dict[str, Any]]
    prompt: Mapped[str] = mapped_column(Text)
    processed_prompt: Mapped[str | None] = mapped_column(Text)
    negative_prompt: Mapped[str] = mapped_column(Text)
    seed: Mapped[int] = mapped_column(BigInteger)
    cost: Mapped[float]
    state: Mapped[JobState] = mapped_column(state_enum(JobState, "job_state"))
    attempts: Mapped[int]
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    delivery_state: Mapped[DeliveryState] = mapped_column(state_enum(DeliveryState, "delivery_state"))
    delivery_attempts: Mapped[int]
    delivery_attempted_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    delivery_error: Mapped[str | None] = mapped_column(Text)
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id"))
    grid_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id"))
    input_files: Mapped[list[str]]
    deleted_at: Mapped[datetime | None]
    leased_by: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[float | None]

    def record(self) -> Job:
        return Job(
            id=self.id,
            owner_id=self.owner_id,
            community_id=self.community_id,
            platform=self.platform,
            channel_id=self.channel_id,
            operation=self.operation,
            parameters=dict(self.parameters),
            prompt=self.prompt,
            processed_prompt=self.processed_prompt,
            negative_prompt=self.negative_prompt,
            seed=self.seed,
            cost=self.cost,
            state=self.state,
            attempts=self.attempts,
            error_code=self.error_code,
            error_message=self.error_message,
            created_at=self.created_at,
            started_at=self.started_at,
            finished_at=self.finished_at,
            delivery_state=self.delivery_state,
            delivery_attempts=self.delivery_attempts,
            delivery_attempted_at=self.delivery_attempted_at,
            delivered_at=self.delivered_at,
            delivery_error=self.delivery_error,
            parent_id=self.parent_id,
            grid_id=self.grid_id,
            input_files=tuple(self.input_files),
            deleted_at=self.deleted_at,
        )


class OutputRow(Base):
    __tablename__ = "outputs"
    __table_args__ = (Index(None, "path"),)

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), primary_key=True)
    index: Mapped[int] = mapped_column(primary_key=True)
    path: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int]
    width: Mapped[int]
    height: Mapped[int]
    seed: Mapped[int] = mapped_column(BigInteger)
    nsfw_score: Mapped[float | None]

    def record(self) -> Output:
        return Output(
            job_id=self.job_id,
            index=self.index,
            path=self.path,
            sha256=self.sha256,
            size=self.size,
            width=self.width,
            height=self.height,
            seed=self.seed,
            nsfw_score=self.nsfw_score,
        )


class MessageLinkRow(Base):
    __tablename__ = "message_links"
    __table_args__ = (Index(None, "job_id"),)

    platform: Mapped[str] = mapped_column(PLATFORM, primary_key=True)
    chat_id: Mapped[str] = mapped_column(PLATFORM_ID, primary_key=True)
    message_id: Mapped[str] = mapped_column(PLATFORM_ID, primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"))
    output_index: Mapped[int | None]

    def record(self) -> MessageLink:
        return MessageLink(
            platform=self.platform,
            chat_id=self.chat_id,
            message_id=self.message_id,
            job_id=self.job_id,
            output_index=self.output_index,
        )


class QuotaChargeRow(Base):
    """The quota ledger: one row per job, its state changed in place (see `storage.quotas`)."""

    __tablename__ = "quota_ledger"
    __table_args__ = (Index(None, "user_id", "day"),)

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    day: Mapped[date] = mapped_column(Date)
    images: Mapped[int]
    gpu_seconds: Mapped[float]
    state: Mapped[QuotaState] = mapped_column(state_enum(QuotaState, "quota_state"))
    created_at: Mapped[datetime]

    def record(self) -> QuotaCharge:
        return QuotaCharge(
            job_id=self.job_id,
            user_id=self.user_id,
            day=self.day,
            images=self.images,
            gpu_seconds=self.gpu_seconds,
            state=self.state,
        )


class AccessTokenRow(Base):
    __tablename__ = "access_tokens"
    __table_args__ = (Index(None, "user_id", "kind"),)

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    community_id: Mapped[str | None] = mapped_column(PLATFORM_ID)
    role: Mapped[int | None]

    def record(self) -> AccessToken:
        return AccessToken(
            self.token_hash, self.kind, self.user_id, self.created_at, self.expires_at, self.community_id, self.role
        )


class CommunityBanRow(Base):
    __tablename__ = "community_bans"

    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    until: Mapped[datetime]
    reason: Mapped[str] = mapped_column(Text)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime]

    def record(self) -> CommunityBan:
        return CommunityBan(
            community_id=self.community_id,
            user_id=self.user_id,
            until=self.until,
            reason=self.reason,
            actor_id=self.actor_id,
            created_at=self.created_at,
        )


class ModerationRow(Base):
    __tablename__ = "moderation_log"
    __table_args__ = (Index(None, "community_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int | None] = mapped_column(ForeignKey("communities.id"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]

    def record(self) -> ModerationEntry:
        return ModerationEntry(
            id=self.id,
            community_id=self.community_id,
            actor_id=self.actor_id,
            action=self.action,
            target=self.target,
            reason=self.reason,
            details=dict(self.details),
            created_at=self.created_at,
        )


class InboxRow(Base):
    """An update taken from a platform, kept until it is handled (see `storage.inbox`)."""

    __tablename__ = "inbox"
    __table_args__ = (Index(None, "source", "handled_at"),)

    source: Mapped[str] = mapped_column(PLATFORM_ID, primary_key=True)
    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    payload: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime]
    handled_at: Mapped[datetime | None]


class QueueEventRow(Base):
    """One change of a queue that processes share (`storage.queue_log`): appended in order, never changed."""

    __tablename__ = "queue_events"

    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    at: Mapped[float]
    kind: Mapped[str] = mapped_column(String(16))
    data: Mapped[dict[str, Any]]


class FileBlobRow(Base):
    """A stored file's bytes, for hosts that share the database but no disk (`storage.blobs`)."""

    __tablename__ = "file_blobs"

    path: Mapped[str] = mapped_column(String(255), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]
