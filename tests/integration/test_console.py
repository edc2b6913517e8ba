"""The console adapter as an operator types into it, over a core that records what it is asked."""

from __future__ import annotations

import io
from pathlib import Path
from typing import cast

from core_stack import Launch
from PIL import Image

from bots.console.adapter import ConsoleAdapter
from bots.core.facade import Core
from bots.core.types import Actor, Place, Receipt
from bots.texts import languages_list, render
from generation.asks import Ask


class Recording:
    """The part of the core the console's requests reach."""

    def __init__(self) -> None:
        self.asks: list[Ask] = []

    async def submit(self, actor: Actor, place: Place, ask: Ask) -> Receipt:
        self.asks.append(ask)
        return Receipt(f"job{len(self.asks)}", 1, None)

    def has_pending(self, platform: str) -> bool:
        return False

    def speaking(self, actor: Actor) -> Actor:
        return actor


def _console(core: Recording, out: io.StringIO, text: str = "") -> ConsoleAdapter:
    return ConsoleAdapter(cast(Core, core), "en", io.StringIO(text), out)


async def test_the_welcome_says_how_to_leave() -> None:
    out = io.StringIO()
    await _console(Recording(), out).run()
    assert "Ctrl-D" in out.getvalue() and "a second Ctrl-C leaves at once" in out.getvalue()


async def test_mix_says_a_missing_file_is_missing_instead_of_mixing_its_name(tmp_path: Path) -> None:
    picture = tmp_path / "autumn.png"
    Image.new("RGB", (8, 8), "orange").save(picture)
    core, out = Recording(), io.StringIO()
    console = _console(core, out)
    for missing in ("./gone.png", str(tmp_path / "gone.jpg"), "gone.webp"):
        await console.handle(f"/mix {picture} {missing} a quiet lake")
        assert f"I could not read {missing}." in out.getvalue()
    assert core.asks == []
    await console.handle(f"/mix {picture} a quiet lake")
    (ask,) = core.asks
    assert ask.operation == "mix" and ask.mix == (picture.read_bytes(), "a quiet lake")


async def test_outpaint_and_remix_read_their_image_then_the_prompt(tmp_path: Path) -> None:
    picture = tmp_path / "harbour.png"
    Image.new("RGB", (8, 8), "navy").save(picture)
    core, out = Recording(), io.StringIO()
    console = _console(core, out)
    await console.handle(f"/outpaint {picture} a wider harbour --pan left")
    await console.handle(f"/remix {picture} in ink --strength 0.7")
    await console.handle(f"/depth {picture} a statue")
    outpaint, remix, depth = core.asks
    assert (depth.operation, depth.prompt, depth.options.strength) == ("depth", "a statue", None)
    assert (outpaint.operation, outpaint.prompt, outpaint.options.pan) == ("outpaint", "a wider harbour", "left")
    assert (remix.operation, remix.prompt, remix.options.strength) == ("remix", "in ink", 0.7)
    assert outpaint.image == remix.image == picture.read_bytes()


async def test_styles_lists_the_configured_styles(stack: Launch) -> None:
    running = await stack()
    out = io.StringIO()
    await ConsoleAdapter(running.core, "en", io.StringIO(), out).handle("/styles")
    assert render("styles.title") in out.getvalue() and "noir: {prompt}, film noir" in out.getvalue()


async def test_language_switches_the_consoles_answers_and_auto_returns_to_the_configured_one(stack: Launch) -> None:
    running = await stack(recover=True)
    out = io.StringIO()
    console = ConsoleAdapter(running.core, "fr", io.StringIO(), out)
    await console.handle("/language")
    assert render("language.current_platform", "fr", name="français", languages=languages_list()) in out.getvalue()
    await console.handle("/language 日本語")
    assert render("language.chosen", "ja", name="日本語") in out.getvalue()
    await console.handle("/frobnicate")
    assert render("console.unknown_command", "ja", command="/frobnicate") in out.getvalue()
    await console.handle("/language auto")
    assert render("language.following", "fr", name="français") in out.getvalue()
    await console.handle("/help")
    assert render("console.help", "fr") in out.getvalue()
