"""One upload policy for every adapter: what a user may send as an input image, checked from what the platform
declares before a byte is downloaded, and again once the bytes are in (a declared size can be wrong).

Refusals use one set of message keys (`upload.*`) whatever the platform.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from bots.errors import UserError

MEGABYTE = 1024 * 1024

Fetch = Callable[[], Awaitable[bytes]]


@dataclass(frozen=True)
class Attachment:
    """What a platform says of a file before it is fetched."""

    name: str
    content_type: str | None
    size: int | None


class UploadPolicy:
    def __init__(self, max_mb: float) -> None:
        self.max_mb = max_mb
        self.limit = int(max_mb * MEGABYTE)

    def check(self, attachment: Attachment) -> None:
        """Refuse a file that says it is no image, or too large."""
        content_type = (attachment.content_type or "").split(";")[0].strip().lower()
        if not content_type.startswith("image/"):
            raise UserError("upload.not_an_image", name=attachment.name, content_type=content_type or "?")
        if attachment.size is not None:
            self.check_size(attachment.name, attachment.size)

    def check_size(self, name: str, size: int) -> None:
        if size > self.limit:
            raise UserError("upload.too_large", name=name, size_mb=size / MEGABYTE, limit_mb=self.max_mb)

    async def fetch_all(self, uploads: Sequence[tuple[Attachment, Fetch]]) -> list[bytes]:
        """Every attachment's bytes, once all of them passed `check`: nothing is downloaded while any of them would
        be refused. A fetch raises `failed(attachment)` when the platform cannot deliver the file."""
        for attachment, _ in uploads:
            self.check(attachment)
        fetched = []
        for attachment, fetch in uploads:
            data = await fetch()
            self.check_size(attachment.name, len(data))
            fetched.append(data)
        return fetched

    @staticmethod
    def failed(attachment: Attachment) -> UserError:
        return UserError("upload.failed", name=attachment.name)
