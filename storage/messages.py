"""Links from platform messages to the jobs they show, so a reply or a button press finds its job.

Every job's status message and every image sent is linked the moment the platform answers, so a burst of
submissions links as many messages at once: the links that wait for the database while one group is written go
together in the next transaction (`storage.groups`).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from storage.errors import MessageAlreadyLinked
from storage.groups import Grouped
from storage.models import MessageLinkRow
from storage.records import MessageLink
from storage.repository import Repository


class MessageLinks(Repository):
    _link_groups: Grouped[MessageLink, MessageLink]

    async def link_message(
        self, platform: str, chat_id: str, message_id: str, job_id: str, output_index: int | None = None
    ) -> MessageLink:
        """Record that a message shows a job (or its image `output_index`). Linking it again the same way is
        a no-op; linking it to something else raises `MessageAlreadyLinked`."""
        return await self._link_groups(MessageLink(platform, chat_id, message_id, job_id, output_index))

    async def messages_of(self, job_id: str) -> list[MessageLink]:
        """Every message that shows the job, so deleting the job can delete them too."""
        return await self._sessions.run(_links_of, job_id)

    async def find_message(self, platform: str, chat_id: str, message_id: str) -> MessageLink | None:
        def work(session: Session) -> MessageLink | None:
            row = session.get(MessageLinkRow, (platform, chat_id, message_id))
            return None if row is None else row.record()

        return await self._sessions.run(work)


def _links_of(session: Session, job_id: str) -> list[MessageLink]:
    rows = session.scalars(
        select(MessageLinkRow)
        .where(MessageLinkRow.job_id == job_id)
        .order_by(MessageLinkRow.chat_id, MessageLinkRow.message_id)
    )
    return [row.record() for row in rows]


def write_links(session: Session, links: Sequence[MessageLink]) -> list[MessageLink | Exception]:
    """A group's links in one read of those that exist and one insert of the new ones."""
    keys = {(link.platform, link.chat_id, link.message_id) for link in links}
    found = session.scalars(
        select(MessageLinkRow).where(
            tuple_(MessageLinkRow.platform, MessageLinkRow.chat_id, MessageLinkRow.message_id).in_(keys)
        )
    )
    rows = {(row.platform, row.chat_id, row.message_id): row for row in found}
    outcomes: list[MessageLink | Exception] = []
    for link in links:
        key = (link.platform, link.chat_id, link.message_id)
        row = rows.get(key)
        if row is None:
            rows[key] = row = MessageLinkRow(
                platform=link.platform,
                chat_id=link.chat_id,
                message_id=link.message_id,
                job_id=link.job_id,
                output_index=link.output_index,
            )
            session.add(row)
        elif (row.job_id, row.output_index) != (link.job_id, link.output_index):
            outcomes.append(MessageAlreadyLinked(link.platform, link.chat_id, link.message_id))
            continue
        outcomes.append(row.record())
    session.flush()
    return outcomes
