"""Links from platform messages to the jobs they show, so a reply or a button press finds its job."""

from __future__ import annotations

from sqlalchemy import select

from storage.errors import MessageAlreadyLinked
from storage.models import MessageLinkRow
from storage.records import MessageLink
from storage.repository import Repository


class MessageLinks(Repository):
    async def link_message(
        self, platform: str, chat_id: str, message_id: str, job_id: str, output_index: int | None = None
    ) -> MessageLink:
        """Record that a message shows a job (or its image `output_index`). Linking it again the same way is
        a no-op; linking it to something else raises `MessageAlreadyLinked`."""
        async with self._sessions.begin() as session:
            row = await session.get(MessageLinkRow, (platform, chat_id, message_id))
            if row is None:
                row = MessageLinkRow(
                    platform=platform, chat_id=chat_id, message_id=message_id, job_id=job_id, output_index=output_index
                )
                session.add(row)
            elif (row.job_id, row.output_index) != (job_id, output_index):
                raise MessageAlreadyLinked(platform, chat_id, message_id)
            return row.record()

    async def messages_of(self, job_id: str) -> list[MessageLink]:
        """Every message that shows the job, so deleting the job can delete them too."""
        async with self._sessions() as session:
            rows = await session.scalars(
                select(MessageLinkRow)
                .where(MessageLinkRow.job_id == job_id)
                .order_by(MessageLinkRow.chat_id, MessageLinkRow.message_id)
            )
            return [row.record() for row in rows]

    async def find_message(self, platform: str, chat_id: str, message_id: str) -> MessageLink | None:
        async with self._sessions() as session:
            row = await session.get(MessageLinkRow, (platform, chat_id, message_id))
            return None if row is None else row.record()
