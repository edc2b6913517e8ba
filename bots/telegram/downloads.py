"""Fetching what users send, under the kit's upload policy: the size Telegram reports is checked before
anything is downloaded, and the bytes once they are in."""

from __future__ import annotations

from telegram import Bot, Message
from telegram.error import TelegramError

from bots.config import TelegramSettings
from bots.errors import UserError
from bots.kit.uploads import Attachment, UploadPolicy

MB = 1024 * 1024
CLOUD_DOWNLOAD_LIMIT_MB = 20.0
"""The cloud Bot API serves files up to 20 MB; a self-hosted server in local mode has no such cap."""


class Downloads:
    def __init__(self, bot: Bot, settings: TelegramSettings) -> None:
        self.bot = bot
        limit = settings.max_download_mb
        self.policy = UploadPolicy(limit if settings.local_mode else min(limit, CLOUD_DOWNLOAD_LIMIT_MB))

    @staticmethod
    def has_image(message: Message | None) -> bool:
        """Whether the message carries a photo or a file that says it is an image."""
        if message is None:
            return False
        return bool(message.photo) or message.document is not None

    async def image(self, message: Message) -> bytes:
        """The photo or image file of `message`; refuses other files and oversized ones without downloading."""
        if message.photo:
            largest = message.photo[-1]
            file_id, declared = largest.file_id, Attachment("photo.jpg", "image/jpeg", largest.file_size)
        elif message.document is not None:
            document = message.document
            name = document.file_name or "file"
            file_id, declared = document.file_id, Attachment(name, document.mime_type, document.file_size)
        else:
            raise UserError("upload.not_an_image", name="file", content_type="?")

        async def fetch() -> bytes:
            try:
                file = await self.bot.get_file(file_id)
                if file.file_size is not None:
                    self.policy.check_size(declared.name, file.file_size)
                return bytes(await file.download_as_bytearray())
            except TelegramError:
                raise UploadPolicy.failed(declared) from None

        (data,) = await self.policy.fetch_all([(declared, fetch)])
        return data
