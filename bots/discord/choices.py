"""The slash commands' texts in every language, and the choices their options offer."""

from __future__ import annotations

import discord
from discord import app_commands

from bots.config import Settings
from bots.kit.views import OUTPAINTS
from bots.texts import SOURCE_LANGUAGE, available_languages, language_name, render, resolve_language, text_of

SIZES = ("512x512", "768x768", "1024x1024", "768x512", "512x768", "1024x576", "576x1024")
"""Common shapes; the configured default size is offered too."""
ASPECTS = ("1:1", "4:3", "3:4", "3:2", "2:3", "16:9", "9:16", "21:9")


def localized(key: str) -> app_commands.locale_str:
    """An English text that Discord shows translated, through `CatalogTranslator`, in each user's language."""
    return app_commands.locale_str(render(key), key=key)


class CatalogTranslator(app_commands.Translator):
    """Descriptions and the menu's name in every language easel has a catalog for; command names stay."""

    async def translate(
        self, string: app_commands.locale_str, locale: discord.Locale, context: app_commands.TranslationContextTypes
    ) -> str | None:
        key = string.extras.get("key")
        language = resolve_language(locale.value)
        if key is None or language == SOURCE_LANGUAGE:
            return None
        text = text_of(key, language)
        if text is None:
            return None
        translated = text.replace("{{", "{").replace("}}", "}")  # as `render` shows English's: `{prompt}`
        return None if translated == string.message else translated


def size_choices(settings: Settings) -> list[app_commands.Choice[str]]:
    defaults, limits = settings.generation_defaults, settings.limits
    sizes = [f"{defaults.width}x{defaults.height}", *SIZES]
    fitting = []
    for size in dict.fromkeys(sizes):
        width, height = (int(side) for side in size.split("x"))
        if width <= limits.max_width and height <= limits.max_height and width * height <= limits.max_pixels:
            fitting.append(app_commands.Choice(name=size, value=size))
    return fitting


def language_choices() -> list[app_commands.Choice[str]]:
    """Every catalog by its own name, and `auto` (Discord's language); 19 of Discord's 25 choices."""
    auto = app_commands.Choice(name=localized("discord.language.auto"), value="auto")
    return [auto, *(app_commands.Choice(name=language_name(code, code), value=code) for code in available_languages())]


def aspect_choices() -> list[app_commands.Choice[str]]:
    """Common aspect ratios; `--ar` in the prompt takes any from 1:4 to 4:1."""
    return [app_commands.Choice(name=ratio, value=ratio) for ratio in ASPECTS]


def zoom_choices() -> list[app_commands.Choice[float]]:
    """The zooms the result buttons offer, `1.5x` and `2x`."""
    return [app_commands.Choice(name=f"{o.zoom:g}x", value=o.zoom) for o in OUTPAINTS.values() if o.zoom]


def pan_choices() -> list[app_commands.Choice[str]]:
    """The four directions by their names in each language; the value is what `--pan` takes."""
    return [app_commands.Choice(name=localized(f"direction.{o.pan}"), value=o.pan) for o in OUTPAINTS.values() if o.pan]
