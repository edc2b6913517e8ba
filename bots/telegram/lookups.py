"""The Telegram commands that only read or change what a user has: history, queue, styles, quota, cancel,
settings and language (the commands that make images are `Handlers`' own)."""

from __future__ import annotations

from telegram import LinkPreviewOptions, Message
from telegram.error import TelegramError

from bots.core.facade import Core
from bots.errors import UserError
from bots.formatting import (
    cancel_text,
    history_lines,
    language_text,
    preferences_text,
    queue_lines,
    quota_text,
    styles_text,
)
from bots.kit.context import Context
from bots.kit.tokens import token_reply, web_reply
from bots.parsing import parse_prompt
from bots.telegram.admins import Admins
from bots.telegram.chat import reply, reply_list

NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


class Lookups:
    core: Core
    admins: Admins

    async def _history(self, context: Context, message: Message, rest: str) -> None:
        jobs = await self.core.history(context.actor)
        lines = history_lines(jobs, context.language)
        await reply_list(message, "\n".join(lines) or context.text("history.empty"), "history")

    async def _queue(self, context: Context, message: Message, rest: str) -> None:
        lines = queue_lines(await self.core.queue(context.actor), context.language)
        await reply_list(message, "\n".join(lines) or context.text("queue.empty"), "queue")

    async def _styles(self, context: Context, message: Message, rest: str) -> None:
        await reply_list(message, styles_text(await self.core.styles(context.place), context.language), "styles")

    async def _quota(self, context: Context, message: Message, rest: str) -> None:
        await reply(message, quota_text(await self.core.quota(context.actor), context.language))

    async def _cancel(self, context: Context, message: Message, rest: str) -> None:
        """`/cancel` the newest own job, `/cancel id` one of one's own or (a group admin, by its full id) any in
        the group."""
        reference = rest.strip() or None
        moderator = await self.admins.moderator(context) if reference else None
        cancellation = await self.core.cancel(context.actor, reference, moderator)
        await reply(message, cancel_text(cancellation, context.language))

    async def _settings(self, context: Context, message: Message, rest: str) -> None:
        """`/settings` shows the user's defaults, `/settings --size 512x512 --steps 30` sets, `reset` clears."""
        if rest.strip().lower() == "reset":
            await self.core.reset_preferences(context.actor)
            await reply(message, context.text("settings.reset"))
            return
        if not rest.strip():
            preferences = await self.core.preferences(context.actor)
            key = "settings.show" if preferences else "settings.none"
            await reply(message, context.text(key, values=preferences_text(preferences)))
            return
        parsed = parse_prompt(rest)
        prompt, options = parsed.prompt, parsed.options
        if prompt:
            raise UserError("settings.unknown", option=prompt)
        preferences = await self.core.set_preferences(context.actor, options.given())
        await reply(message, context.text("settings.saved", values=preferences_text(preferences)))

    async def _language(self, context: Context, message: Message, rest: str) -> None:
        """`/language` shows the language easel answers in, `/language de` (or `Deutsch`) chooses one, `/language
        auto` follows Telegram's again."""
        await reply(message, language_text(await self.core.choose_language(context.actor, rest)))

    async def _token(self, context: Context, message: Message, rest: str) -> None:
        """`/token`: a personal API token, shown in a private chat only (a group would show it to everyone)."""
        if message.chat.type != "private":
            raise UserError("token.private_only")
        await reply(message, await token_reply(self.core.access, context, rest))

    async def _web(self, context: Context, message: Message, rest: str) -> None:
        """`/web`: a one-use sign-in link, always in the private chat (in a group everyone would see it), with
        no link preview, which would fetch the link. Asked for in a group by one of its admins, it opens the
        group's moderation pages too."""
        moderator = await self.admins.moderator(context) if context.place.community_id else None
        text = await web_reply(self.core.access, context, moderator)
        if message.chat.type == "private":
            await message.reply_text(text, link_preview_options=NO_PREVIEW)
            return
        try:
            await message.get_bot().send_message(int(context.actor.user_id), text, link_preview_options=NO_PREVIEW)
        except TelegramError:  # they never opened a private chat with the bot, which may not write first
            await reply(message, context.text("web.open_private_chat"))
            return
        await reply(message, context.text("web.sent_privately"))
