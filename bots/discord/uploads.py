"""Images in and out of Discord: checking uploads before downloading them, fitting results to the upload limit.

Uploads come from strangers, so their declared type and size are checked before a byte is read. Results
larger than what the channel accepts are re-encoded (WebP, then smaller) rather than dropped; the original
PNG stays on disk.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import discord
from PIL import Image

from bots.kit.uploads import Attachment, Fetch, UploadPolicy

_QUALITIES = (95, 90, 85, 80, 70, 60, 50)
_SHRINK = 0.8
_MIN_SIDE = 16


@dataclass(frozen=True)
class Upload:
    data: bytes
    filename: str
    spoiler: bool = False
    """Shown blurred until clicked: where the community allows NSFW images behind spoilers."""

    def file(self) -> discord.File:
        """A fresh `discord.File` each time: a sent file's stream is spent, and a retry needs a new one."""
        return discord.File(io.BytesIO(self.data), filename=self.filename, spoiler=self.spoiler)


async def read_images(attachments: Sequence[discord.Attachment], max_mb: float) -> list[bytes]:
    """The attachments' bytes, under the kit's upload policy: nothing is downloaded while any would be refused."""

    def fetch(attachment: discord.Attachment) -> Fetch:
        async def read() -> bytes:
            try:
                return await attachment.read()
            except discord.HTTPException:
                raise UploadPolicy.failed(declared(attachment)) from None

        return read

    def declared(attachment: discord.Attachment) -> Attachment:
        return Attachment(attachment.filename, attachment.content_type, attachment.size)

    return await UploadPolicy(max_mb).fetch_all([(declared(item), fetch(item)) for item in attachments])


def fit_upload(path: Path, limit: int, *, spoiler: bool = False) -> Upload:
    """The file as it is when it fits in `limit` bytes; otherwise re-encoded as high-quality WebP, lowering the
    quality and then the size until it fits."""
    data = path.read_bytes()
    if len(data) <= limit:
        return Upload(data, path.name, spoiler)
    with Image.open(io.BytesIO(data)) as opened:
        image = opened.convert("RGB")
    while True:
        for quality in _QUALITIES:
            buffer = io.BytesIO()
            image.save(buffer, "WEBP", quality=quality, method=4)
            if buffer.tell() <= limit:
                return Upload(buffer.getvalue(), f"{path.stem}.webp", spoiler)
        if min(image.size) <= _MIN_SIDE:
            raise ValueError(f"{path.name} cannot be made to fit in {limit} bytes")
        image = image.resize(
            (max(1, int(image.width * _SHRINK)), max(1, int(image.height * _SHRINK))), Image.Resampling.LANCZOS
        )
