"""Fetching what users send, with the size Telegram reports checked before anything is downloaded."""

from __future__ import annotations

from telegram import Bot, Document, Message, PhotoSize
from telegram.error import TelegramError

from bots.config import TelegramSettings
from bots.errors import UserError

MB = 1024 * 1024
CLOUD_DOWNLOAD_LIMIT = 20 * MB
"""The cloud Bot API serves files up to 20 MB; a self-hosted server in local mode has no such cap."""


class Downloads:
    def __init__(self, bot: Bot, settings: TelegramSettings) -> None:
        self.bot = bot
        limit = int(settings.max_download_mb * MB)
        self.limit = limit if settings.local_mode else min(limit, CLOUD_DOWNLOAD_LIMIT)

    @staticmethod
    def has_image(message: Message | None) -> bool:
        """Whether the message carries a photo or a file that says it is an image."""
        if message is None:
            return False
        return bool(message.photo) or message.document is not None

    async def image(self, message: Message) -> bytes:
        """The photo or image file of `message`; refuses other files and oversized ones without downloading."""
        attachment: PhotoSize | Document
        if message.photo:
            attachment = message.photo[-1]  # the largest size
        elif message.document is not None:
            attachment = message.document
            if not (attachment.mime_type or "").startswith("image/"):
                raise UserError("upload.not_an_image", name=attachment.file_name or "")
        else:
            raise UserError("upload.not_an_image", name="")
        self._check_size(attachment.file_size)
        try:
            file = await self.bot.get_file(attachment.file_id)
            self._check_size(file.file_size)
            return bytes(await file.download_as_bytearray())
        except TelegramError as error:
            raise UserError("upload.failed", detail=str(error)) from None

    def _check_size(self, size: int | None) -> None:
        if size is not None and size > self.limit:
            raise UserError("upload.too_large", size_mb=round(size / MB, 1), limit_mb=round(self.limit / MB, 1))
