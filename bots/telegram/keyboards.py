"""The kit's buttons as inline keyboards, and their callback data read back.

Callback data names an action and the job (and, for one image of several, its index), nothing else: the
job itself is in the database, so buttons keep working after a restart. Telegram allows 64 bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bots.kit.views import OUTPAINTS, Action, Button

ACTIONS = frozenset({Action.REROLL, Action.VARY, Action.EDIT, Action.CANCEL, Action.CELL, *OUTPAINTS})
"""The buttons Telegram shows (deleting is the /delete command)."""


@dataclass(frozen=True)
class Press:
    action: Action
    job_id: str
    index: int = 0


def parse(data: str | None) -> Press | None:
    """The press behind callback data, or None for data this bot never made."""
    parts = (data or "").split(":")
    if len(parts) not in (2, 3) or parts[0] not in ACTIONS or not parts[1].isalnum():
        return None
    if len(parts) == 3 and not parts[2].isdigit():
        return None
    return Press(Action(parts[0]), parts[1], int(parts[2]) if len(parts) == 3 else 0)


def keyboard(buttons: Sequence[Button]) -> InlineKeyboardMarkup | None:
    """The buttons in their rows; None for no buttons (an edit without a keyboard takes the old one away)."""
    if not buttons:
        return None
    rows = sorted({button.row for button in buttons})
    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(button.label, callback_data=_data(button)) for button in buttons if button.row == row]
            for row in rows
        ]
    )


def _data(button: Button) -> str:
    """`action:job_id`, or `action:job_id:index` for a button on one image."""
    data = f"{button.action}:{button.job_id}"
    return data if button.index is None else f"{data}:{button.index}"
