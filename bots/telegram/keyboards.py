"""Inline keyboards and their callback data.

Callback data names an action and the job (and, for one image of several, its index), nothing else: the
job itself is in the database, so buttons keep working after a restart. Telegram allows 64 bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bots.texts import render

ACTIONS = frozenset({"reroll", "vary", "edit", "cancel"})


@dataclass(frozen=True)
class Press:
    action: str
    job_id: str
    index: int = 0


def parse(data: str | None) -> Press | None:
    """The press behind callback data, or None for data this bot never made."""
    parts = (data or "").split(":")
    if len(parts) not in (2, 3) or parts[0] not in ACTIONS or not parts[1].isalnum():
        return None
    if len(parts) == 3 and not parts[2].isdigit():
        return None
    return Press(parts[0], parts[1], int(parts[2]) if len(parts) == 3 else 0)


def result_keyboard(job_id: str, index: int, language: str | None) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(render("button.reroll", language), callback_data=f"reroll:{job_id}"),
                InlineKeyboardButton(render("button.variations", language), callback_data=f"vary:{job_id}:{index}"),
                InlineKeyboardButton(render("button.edit", language), callback_data=f"edit:{job_id}:{index}"),
            ]
        ]
    )


def status_keyboard(job_id: str, language: str | None) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(render("button.cancel", language), callback_data=f"cancel:{job_id}")]]
    )
