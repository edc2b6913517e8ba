"""Named styles and a community's own negative prompt: what `--style NAME` and every request in a community add.

The configuration ships styles for everyone (`[styles.NAME]`); a community's admins add their own, which win over a
shipped one of the same name there, and may set a negative prompt that every request made in the community gets.
A style is applied after moderation has screened what the user wrote and after the prompt's language is known, so
neither reads the template as the user's words; the job shows the user's own prompt and runs the styled one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from bots.config import STYLE_NAME, Settings
from bots.errors import UserError
from generation.asks import Ask
from storage.records import Community

PROMPT = "{prompt}"
"""Where a template puts the user's prompt; a template without it has the prompt put in front of it."""
MAX_COMMUNITY_STYLES = 25
"""As many as one Discord choice list shows, and a list that fits one message."""


@dataclass(frozen=True)
class Style:
    name: str
    prompt: str
    negative: str = ""
    community: bool = False
    """Added by the community's admins, not shipped in the configuration."""

    def apply(self, prompt: str) -> str:
        if PROMPT in self.prompt:
            return self.prompt.replace(PROMPT, prompt)
        return f"{prompt}, {self.prompt}" if prompt else self.prompt


@dataclass(frozen=True)
class StyleList:
    styles: tuple[Style, ...]
    negative: str
    """The community's own negative prompt, added to every request made in it ("" for none)."""


def styles_for(settings: Settings, community: Community | None) -> dict[str, Style]:
    """Every style a request may name here, by name: the configuration's, then the community's over them."""
    styles = {name: Style(name, style.prompt, style.negative) for name, style in settings.styles.items()}
    for name, stored in community_styles(community).items():
        styles[name] = Style(name, stored["prompt"], stored.get("negative", ""), community=True)
    return dict(sorted(styles.items()))


def community_styles(community: Community | None) -> Mapping[str, Mapping[str, str]]:
    stored: Mapping[str, Mapping[str, str]] = {} if community is None else community.settings.get("styles") or {}
    return stored


def community_negative(community: Community | None) -> str:
    return "" if community is None else str(community.settings.get("negative_prompt") or "")


def style_name(text: str) -> str:
    """A style's name as typed (`--style Noir` is `noir`); `moderation.bad_style_name` when it cannot be one."""
    name = text.strip().lower()
    if not STYLE_NAME.fullmatch(name):
        raise UserError("moderation.bad_style_name", name=text.strip()[:40])
    return name


def styled(ask: Ask, settings: Settings, community: Community | None) -> Ask:
    """The ask with its style applied (and its style option dropped) and the community's negative prompt added;
    `style.unknown`, naming those there are, for a style nobody here defined."""
    options = ask.options
    negatives = [options.negative_prompt or ""]
    prompt = ask.prompt
    if options.style is not None:
        styles = styles_for(settings, community)
        style = styles.get(options.style)
        if style is None:
            raise UserError("style.unknown", name=options.style, known=", ".join(styles) or "-")
        if prompt:  # a mix has its texts as items; only the style's negative applies to it
            prompt = style.apply(prompt)
        negatives.append(style.negative)
    negatives.append(community_negative(community))
    negative = _joined(negatives)
    changes: dict[str, Any] = {"style": None, "negative_prompt": negative or options.negative_prompt}
    return replace(ask, prompt=prompt, options=replace(options, **changes))


def _joined(parts: list[str]) -> str:
    """The negative prompts' comma-separated terms in order, each once: a reroll of a styled job already holds the
    style's and the community's, and gets them again."""
    kept: list[str] = []
    seen: set[str] = set()
    for term in (term.strip() for part in parts for term in part.split(",")):
        if term and term.lower() not in seen:
            kept.append(term)
            seen.add(term.lower())
    return ", ".join(kept)
