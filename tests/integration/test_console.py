"""The console adapter as an operator types into it, over a core that records what it is asked."""

from __future__ import annotations

import io
from pathlib import Path
from typing import cast

from PIL import Image

from bots.console.adapter import ConsoleAdapter
from bots.core.facade import Core
from bots.core.types import Actor, Place, Receipt
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
