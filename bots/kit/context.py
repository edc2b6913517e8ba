"""One context per incoming event: who acts, where, and in which language they are answered."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bots.core.types import Actor, Place
from bots.texts import render


@dataclass(frozen=True)
class Context:
    actor: Actor
    place: Place

    @property
    def language(self) -> str | None:
        return self.actor.language

    def text(self, key: str, **values: Any) -> str:
        """A text in the actor's language."""
        return render(key, self.language, **values)
