from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from bots.errors import UserError
from bots.parsing import parse_duration, parse_prompt
from bots.texts import render
from generation.asks import Options
from generation.images import RegionMask


@pytest.mark.parametrize(
    ("text", "prompt", "options"),
    [
        ("a red cat", "a red cat", {}),
        ("  a   red cat  ", "a red cat", {}),
        ("a cat --size 768x512", "a cat", {"width": 768, "height": 512}),
        ("a cat --size 768×512 --steps 30", "a cat", {"width": 768, "height": 512, "steps": 30}),
        ("a cat —seed 42", "a cat", {"seed": 42}),
        ("a cat –count 2", "a cat", {"count": 2}),
        ("a cat --neg blurry, dark --seed 1", "a cat", {"negative_prompt": "blurry, dark", "seed": 1}),
        ("a cat --guidance 4,5", "a cat", {"guidance_scale": 4.5}),
        ("a cat --strength 0.7 --prior-steps 10", "a cat", {"strength": 0.7, "prior_steps": 10}),
        ("a window --region 10,20,30,40", "a window", {"mask": RegionMask(10, 20, 30, 40)}),
        ("--weights 0.5,0.3,0.2", "", {"weights": (0.5, 0.3, 0.2)}),
        ("кот в сапогах --seed 3", "кот в сапогах", {"seed": 3}),
        ("a - b -- c", "a - b -- c", {}),
        ("a cat --SEED 5", "a cat", {"seed": 5}),
        ("neno no porto --lang gl", "neno no porto", {"language": "gl"}),
        ("mačka --lang BS", "mačka", {"language": "bs"}),
    ],
)
def test_prompts_and_options(text: str, prompt: str, options: dict[str, Any]) -> None:
    parsed = parse_prompt(text)
    assert parsed.prompt == prompt
    assert parsed.options == Options(**options)


@pytest.mark.parametrize(
    ("text", "key", "named"),
    [
        ("a cat --steps many", "request.bad_option", "--steps"),
        ("a cat --size big", "request.bad_option", "--size"),
        ("a cat --seed", "request.bad_option", "--seed"),
        ("a cat --neg", "request.bad_option", "--neg"),
        ("a cat --region 1,2", "request.bad_option", "--region"),
        ("a cat --colour red", "request.unknown_option", "--colour"),
        ("a cat --lang klingon", "request.bad_option", "--lang"),
    ],
)
def test_bad_options_are_named(text: str, key: str, named: str) -> None:
    with pytest.raises(UserError) as caught:
        parse_prompt(text)
    assert caught.value.key == key and caught.value.values["option"] == named
    assert named in render(key, **caught.value.values)


def test_every_text_renders_and_a_missing_key_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    assert render("job.not_found", job_id="abc") == "There is no job abc."
    assert "no.such.key" in render("no.such.key")
    assert "no text for message key" in caplog.text


@pytest.mark.parametrize(
    ("text", "length"),
    [
        ("30m", timedelta(minutes=30)),
        ("2h", timedelta(hours=2)),
        ("1d12h", timedelta(days=1, hours=12)),
        (" 1W ", timedelta(weeks=1)),
        ("spam", None),
        ("2 days", None),
        ("12", None),
    ],
)
def test_durations_as_moderators_type_them(text: str, length: timedelta | None) -> None:
    assert parse_duration(text) == length


@pytest.mark.parametrize("text", ["0m", "999999999999w"])
def test_a_zero_or_endless_duration_is_refused(text: str) -> None:
    with pytest.raises(UserError) as caught:
        parse_duration(text)
    assert caught.value.key == "moderation.bad_duration"
