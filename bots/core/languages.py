"""The language each user is answered in: their own choice (`/language`), else their platform's.

Every event needs it before its first reply, and few users ever choose, so the choices are held in memory:
read from the database when the core starts (`load`) and kept current by `choose`, which writes through. The
adapters hand each actor through `speaking` as they build its context, so the core and every text that follows
use the chosen language.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from babel import Locale

from bots.core.accounts import Accounts
from bots.core.types import Actor
from bots.errors import UserError
from bots.texts import LANGUAGES, SOURCE_LANGUAGE, available_languages, language_name, resolve_language
from generation.config import TranslationSettings
from generation.language_detection import ENGLISH, TRANSLATABLE
from storage.database import Database

FOLLOW_PLATFORM = frozenset({"auto", "reset", "default"})
"""What `/language` takes to drop a choice and follow the platform's language again."""


@dataclass(frozen=True)
class LanguageChoice:
    language: str
    """The catalog the user is answered in now."""
    chosen: bool
    """Their own choice, rather than their platform's language."""
    changed: bool
    """This call changed it (a choice made or dropped), rather than only asking."""


def _match(wanted: str) -> str | None:
    """A catalog from a code or tag (`de`, `pt-BR`) or a name in its own language or English (`Deutsch`, `German`)."""
    folded = wanted.strip().casefold()
    tag = folded.replace("_", "-")
    if tag.split("-")[0] in available_languages():
        return resolve_language(tag)
    for code in available_languages():
        locale = Locale.parse(code)
        names = {language_name(code, code), locale.english_name or "", language_name(code, SOURCE_LANGUAGE)}
        if folded in {name.casefold() for name in names if name}:
            return code
    return None


def untranslated(settings: TranslationSettings, language: str | None) -> str | None:
    """`language` when a prompt in it goes to the image model as written though it is not English: translation is
    off, or M2M100 has no such language (Telugu, which its script names)."""
    if language is None or language == ENGLISH:
        return None
    return language if not settings.enabled or language not in TRANSLATABLE else None


class Languages:
    def __init__(self, db: Database, accounts: Accounts) -> None:
        self.db = db
        self.accounts = accounts
        self._chosen: dict[tuple[str, str], str] = {}

    async def load(self) -> None:
        self._chosen = await self.db.chosen_languages()

    def speaking(self, actor: Actor) -> Actor:
        """`actor` as the core should answer them: in the language they chose, where they chose one."""
        chosen = self._chosen.get((actor.platform, actor.user_id))
        if chosen is None or actor.chose_language:
            return actor
        return replace(actor, language=chosen, platform_language=actor.language, chose_language=True)

    async def language_of(self, actor: Actor) -> str | None:
        """For an event whose platform says no language (a Discord message): the user's choice, else the
        language easel last stored for them."""
        chosen = self._chosen.get((actor.platform, actor.user_id))
        if chosen is not None:
            return chosen
        user = await self.db.get_or_create_user(actor.platform, actor.user_id, actor.display_name, actor.language)
        return actor.language or user.language

    async def choose(self, actor: Actor, wanted: str) -> LanguageChoice:
        """`/language`: nothing shows the current language, a code or a name chooses one, `auto` follows the
        platform again. An unknown language is refused with the list of those easel speaks."""
        key = (actor.platform, actor.user_id)
        wanted = wanted.strip()
        if not wanted:
            return LanguageChoice(resolve_language(self.speaking(actor).language), key in self._chosen, False)
        user = await self.accounts.user(actor)
        if wanted.casefold() in FOLLOW_PLATFORM:
            await self.db.set_user_language(user.id, None)
            self._chosen.pop(key, None)
            platform = actor.platform_language if actor.chose_language else actor.language
            return LanguageChoice(resolve_language(platform or user.language), False, True)
        code = _match(wanted)
        if code is None:
            raise UserError("language.unknown", value=wanted, languages=LANGUAGES)
        await self.db.set_user_language(user.id, code)
        self._chosen[key] = code
        return LanguageChoice(code, True, True)
