"""Persistence: users, communities and their bans, jobs and their outputs, message links, quotas, the
moderation log.

`Database`'s methods take and return the domain types of `storage.records`; no session or ORM row
leaves the package. Output and input images live on disk in a `FileStore`; the database keeps their
paths and hashes. This package knows nothing of chat platforms, diffusers or the `generation` and
`bots` packages.
"""

from storage.database import Database
from storage.errors import (
    DatabaseUnavailable,
    InvalidTransition,
    MessageAlreadyLinked,
    NotFound,
    QuotaExceeded,
    StorageError,
)
from storage.files import FileStore, StoredFile
from storage.migrate import upgrade_database
from storage.records import (
    PERMANENT,
    Community,
    CommunityBan,
    DeliveryState,
    Job,
    JobDraft,
    JobState,
    MessageLink,
    ModerationEntry,
    Output,
    OutputDraft,
    QuotaCharge,
    QuotaReservation,
    QuotaState,
    QuotaUsage,
    User,
)

__all__ = [
    "Community",
    "CommunityBan",
    "Database",
    "DatabaseUnavailable",
    "DeliveryState",
    "FileStore",
    "InvalidTransition",
    "Job",
    "JobDraft",
    "JobState",
    "MessageAlreadyLinked",
    "MessageLink",
    "ModerationEntry",
    "NotFound",
    "Output",
    "OutputDraft",
    "PERMANENT",
    "QuotaCharge",
    "QuotaExceeded",
    "QuotaReservation",
    "QuotaState",
    "QuotaUsage",
    "StorageError",
    "StoredFile",
    "User",
    "upgrade_database",
]
