"""`easel generate` as operators and scripts use it, on the tiny preset."""

from __future__ import annotations

import importlib
import json
import os
import sqlite3
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import postgres_tier
import pytest
from PIL import Image
from sqlalchemy import make_url

from bots.cli import main

TINY = ["generate", "--model", "tiny"]
POSTGRES = postgres_tier.url()  # read before `_no_config_file` clears every EASEL_ variable


@pytest.fixture(autouse=True)
def _no_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run where no config.toml lies, with no EASEL_ overrides, so only the arguments count."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("EASEL_"):
            monkeypatch.delenv(name)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main([*TINY, *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def picture(tmp_path: Path, photo: Image.Image) -> Path:
    path = tmp_path / "in.png"
    photo.save(path)
    return path


def test_the_documented_txt2img_command(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = run(
        capsys, "--op", "txt2img", "--prompt", "a red cat", "--width", "64", "--height", "64",
        "--steps", "4", "--prior-steps", "2", "--seed", "1", "-o", "out.png",
    )  # fmt: skip
    assert code == 0, err
    summary = json.loads(out)
    assert summary["files"] == ["out.png"] and summary["seeds"] == [1]
    assert Image.open(tmp_path / "out.png").size == (64, 64)


def test_the_same_seed_writes_the_same_pixels(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    for name in ("a.png", "b.png"):
        assert run(capsys, "--prompt", "a red cat", "--seed", "9", "-o", name)[0] == 0
    first, second = (np.asarray(Image.open(tmp_path / name)) for name in ("a.png", "b.png"))
    assert np.array_equal(first, second)


def test_a_random_seed_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--prompt", "a red cat", "--count", "2")
    seeds = json.loads(out)["seeds"]
    assert code == 0 and len(seeds) == 2 and seeds[1] == (seeds[0] + 1) % 2**32


def test_count_writes_numbered_files(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, "--prompt", "boats", "--count", "3", "--seed", "5", "-o", "boat.png")
    assert code == 0
    assert json.loads(out)["files"] == ["boat-1.png", "boat-2.png", "boat-3.png"]
    assert all((tmp_path / f"boat-{index}.png").is_file() for index in (1, 2, 3))


@pytest.mark.parametrize(
    ("arguments", "size"),
    [
        (["--op", "outpaint", "--prompt", "a bay", "--zoom", "2"], (128, 128)),
        (["--op", "outpaint", "--prompt", "a bay", "--pan", "up"], (64, 128)),
        (["--op", "remix", "--prompt", "in ink", "--strength", "0.5"], (64, 64)),
        (["--op", "img2img", "--prompt", "in ink", "--ar", "4:1"], (256, 64)),
        (["--op", "depth", "--prompt", "a statue"], (64, 64)),
    ],
)
def test_outpaint_remix_and_aspect_ratio(
    capsys: pytest.CaptureFixture[str], picture: Path, tmp_path: Path, arguments: list[str], size: tuple[int, int]
) -> None:
    code, _, err = run(capsys, *arguments, "--image", str(picture), "-o", "out.png")
    assert code == 0, err
    assert Image.open(tmp_path / "out.png").size == size


def test_a_ratio_that_is_not_one_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        run(capsys, "--prompt", "a", "--ar", "wide")
    assert "'wide' is not a ratio such as 16:9" in capsys.readouterr().err


def test_zoom_and_pan_are_one_or_the_other(capsys: pytest.CaptureFixture[str], picture: Path) -> None:
    with pytest.raises(SystemExit):
        run(capsys, "--op", "outpaint", "--image", str(picture), "--prompt", "a", "--zoom", "2", "--pan", "up")
    assert "not allowed with argument" in capsys.readouterr().err


def test_img2img(capsys: pytest.CaptureFixture[str], picture: Path, tmp_path: Path) -> None:
    code, _, err = run(capsys, "--op", "img2img", "--image", str(picture), "--prompt", "a dog", "--strength", "0.5")
    assert code == 0, err
    assert Image.open(tmp_path / "out.png").size == (64, 64)


@pytest.mark.parametrize("how", ["region", "mask", "alpha"])
def test_inpaint_with_each_kind_of_mask(
    capsys: pytest.CaptureFixture[str], picture: Path, tmp_path: Path, how: str
) -> None:
    options: list[str] = ["--image", str(picture)]
    if how == "region":
        options += ["--region", "25,25,50,50"]
    elif how == "mask":
        mask = Image.new("L", (64, 64), 0)
        mask.paste(255, (16, 16, 48, 48))
        mask.save(tmp_path / "mask.png")
        options += ["--mask", str(tmp_path / "mask.png")]
    else:
        transparent = Image.open(picture).convert("RGBA")
        transparent.paste((0, 0, 0, 0), (16, 16, 48, 48))
        transparent.save(tmp_path / "holed.png")
        options = ["--image", str(tmp_path / "holed.png")]
    code, _, err = run(capsys, "--op", "inpaint", "--prompt", "a window", "--seed", "2", *options)
    assert code == 0, err
    output = np.asarray(Image.open(tmp_path / "out.png")).astype(int)
    source = np.asarray(Image.open(picture).convert("RGB")).astype(int)
    assert np.array_equal(output[:8], source[:8])  # the top rows lie outside every mask here
    assert not np.array_equal(output[20:40, 20:40], source[20:40, 20:40])


def test_mix_of_images_and_text_with_weights(capsys: pytest.CaptureFixture[str], picture: Path) -> None:
    code, out, err = run(
        capsys, "--op", "mix", "--image", str(picture), "--image", str(picture), "--text", "a cat",
        "--weights", "0.5,0.3,0.2", "--seed", "3",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["seeds"] == [3]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--prompt", "cat", "--width", "100"], "width 100 is not allowed: a multiple of 64"),
        (["--prompt", "cat", "--steps", "0"], "steps 0 is not allowed: a whole number from 1 to 100"),
        (["--prompt", "cat", "--count", "5"], "count 5 is not allowed: a whole number from 1 to 4"),
        (["--prompt", ""], "txt2img needs a prompt"),
        (["--op", "img2img", "--prompt", "cat"], "img2img needs an input image"),
        (["--op", "img2img", "--prompt", "cat", "--image", "missing.png"], "cannot read missing.png"),
        (["--op", "img2img", "--prompt", "cat", "--image", "{text}"], "not an image"),
        (
            ["--op", "img2img", "--prompt", "cat", "--image", "{picture}", "--strength", "2"],
            "strength 2.0 is not allowed",
        ),
        (["--op", "inpaint", "--prompt", "cat", "--image", "{picture}"], "inpaint needs a mask"),
        (["--op", "inpaint", "--prompt", "cat", "--image", "{picture}", "--region", "90,0,50,50"], "past the edge"),
        (["--op", "inpaint", "--prompt", "cat", "--image", "{picture}", "--region", "1,2"], "four numbers"),
        (
            ["--op", "inpaint", "--prompt", "c", "--image", "{picture}", "--region", "0,0,5,5", "--mask", "{picture}"],
            "not both",
        ),
        (["--op", "mix", "--image", "{picture}"], "mix 1 is not allowed: from 2 to 4 images or texts"),
        (["--op", "mix", "--image", "{picture}", "--text", "a", "--weights", "1,x"], "comma-separated numbers"),
        (["--op", "mix", "--image", "{picture}", "--text", "a", "--weights", "1"], "one weight for each of the 2"),
        (["--op", "img2img", "--prompt", "c", "--image", "{picture}", "--image", "{picture}"], "takes one --image"),
        (["--prompt", "cat", "--steps", "2,3"], "--steps takes one value; comma lists are for --op grid"),
        (["--op", "grid", "--prompt", "cat", "--steps", "2"], "--op grid needs at least one of --steps"),
        (["--op", "grid", "--prompt", "cat", "--steps", "2,3", "--count", "2"], "no --count"),
        (["--op", "grid", "--prompt", "cat", "--steps", "2,300"], "steps 300 is not allowed"),
    ],
)
def test_bad_input_exits_non_zero_with_one_clear_line(
    capsys: pytest.CaptureFixture[str], picture: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    (tmp_path / "notes.png").write_text("not a picture")
    args = [arg.format(picture=picture, text=tmp_path / "notes.png") for arg in args]
    code, out, err = run(capsys, *args)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith("easel: error: ")
    assert message in err


def test_a_grid_writes_its_sheet_and_each_cell(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = run(
        capsys, "--op", "grid", "--prompt", "a red cat", "--width", "64", "--height", "64",
        "--steps", "2,3", "--guidance", "2,4,6", "--seed", "9", "-o", "sheet.png",
    )  # fmt: skip
    assert code == 0, err
    summary = json.loads(out)
    assert summary["files"] == ["sheet.png"] and summary["seeds"] == [9]
    assert summary["cells"] == [f"sheet-{n}.png" for n in range(1, 7)]
    assert all(Image.open(tmp_path / cell).size == (64, 64) for cell in summary["cells"])
    sheet = Image.open(tmp_path / "sheet.png")
    assert sheet.width > 2 * 64 and sheet.height > 3 * 64, "two columns, three rows, and their labels"
    code, _, _ = run(
        capsys,
        "--prompt",
        "a red cat",
        "--width",
        "64",
        "--height",
        "64",
        "--steps",
        "3",
        "--guidance",
        "2",
        "--seed",
        "9",
    )
    alone, cell = Image.open(tmp_path / "out.png"), Image.open(tmp_path / "sheet-2.png")
    assert code == 0 and np.array_equal(np.asarray(alone), np.asarray(cell)), "a cell is the request it stands for"


def test_an_unloadable_model_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "local.toml"
    config.write_text(f'[model]\nprior = "{tmp_path / "nothing"}"\nlocal_files_only = true\n')
    code = main(["--config", str(config), "generate", "--prompt", "cat"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "cannot load KandinskyV22PriorPipeline" in err


def test_a_bad_config_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("[limits]\nmax_images = 99\n")
    code = main([*TINY, "--prompt", "cat"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "limits.max_images" in err


def test_the_installed_command_prints_no_traceback(tmp_path: Path) -> None:
    """The real entry point in a fresh process: a usage error and a bad image, each one line on stderr."""
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    command = [str(Path(sys.executable).with_name("easel"))]
    usage = subprocess.run([*command, "generate", "--op", "paint"], capture_output=True, text=True, cwd=tmp_path)
    assert usage.returncode == 2 and usage.stderr.count("\n") == 1 and "invalid choice" in usage.stderr
    bad = subprocess.run(
        [*command, *TINY, "--op", "img2img", "--prompt", "x", "--image", "bad.png"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert bad.returncode == 1, bad.stderr
    assert bad.stderr.strip().splitlines() == ["easel: error: the image is damaged or incomplete: Truncated File Read"]


def test_db_upgrade_creates_the_schema(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('[storage]\ndatabase_url = "sqlite+aiosqlite:///state/easel.db"\n')
    assert main(["db", "upgrade"]) == 0
    assert "is up to date" in capsys.readouterr().out
    with sqlite3.connect(tmp_path / "state" / "easel.db") as connection:
        tables = {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"users", "jobs", "outputs", "quota_ledger", "moderation_log", "message_links"} <= tables
    assert main(["db", "upgrade"]) == 0


@pytest.mark.parametrize(
    ("command", "module", "function"), [("run", "bots.run", "serve"), ("worker", "bots.worker_process", "serve_worker")]
)
def test_a_second_interrupt_while_stopping_ends_in_one_line_without_a_traceback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, command: str, module: str, function: str
) -> None:
    async def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # as Python raises it when SIGINT comes after the stop's own handler is gone

    monkeypatch.setattr(importlib.import_module(module), function, interrupted)
    assert main([command, "--console"] if command == "run" else [command]) == 130
    err = capsys.readouterr().err
    assert err == "easel: stopped at once; whatever was running resumes at the next start\n"


def test_version_is_the_projects(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]
    assert capsys.readouterr().out == f"easel {project['version']}\n"


def test_db_backup_copies_the_database_and_refuses_an_existing_file_or_a_server_database(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "config.toml").write_text('[storage]\ndatabase_url = "sqlite+aiosqlite:///state/easel.db"\n')
    assert main(["db", "backup", "kept/easel.db"]) == 1
    assert "nothing to back up" in capsys.readouterr().err
    assert main(["db", "upgrade"]) == 0
    capsys.readouterr()
    assert main(["db", "backup", "kept/easel.db"]) == 0
    assert "database copied to kept/easel.db" in capsys.readouterr().out
    with sqlite3.connect(tmp_path / "kept" / "easel.db") as connection:
        assert connection.execute("SELECT count(*) FROM sqlite_master WHERE name = 'jobs'").fetchone() == (1,)
    assert main(["db", "backup", "kept/easel.db"]) == 1
    assert "kept/easel.db exists" in capsys.readouterr().err
    (tmp_path / "server.toml").write_text(
        '[storage]\ndatabase_url = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"\n'
    )
    assert main(["db", "backup", "--config", "server.toml", "server.db"]) == 1
    assert "back up a PostgreSQL database with pg_dump" in capsys.readouterr().err
    assert not (tmp_path / "server.db").exists()


def test_config_may_follow_the_command_or_come_before_it(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "elsewhere.toml").write_text('[storage]\ndatabase_url = "sqlite+aiosqlite:///other/easel.db"\n')
    for argv in (
        ["db", "upgrade", "--config", "elsewhere.toml"],
        ["db", "--config", "elsewhere.toml", "upgrade"],
        ["--config", "elsewhere.toml", "db", "upgrade"],
    ):
        assert main(argv) == 0
        assert f"sqlite+aiosqlite:///{tmp_path / 'other' / 'easel.db'} is up to date" in capsys.readouterr().out


def test_run_without_a_platform_or_console_says_what_to_do(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run"]) == 1
    assert "easel run --console" in capsys.readouterr().err


def _database_run(capsys: pytest.CaptureFixture[str], tmp_path: Path, url: str, *command: str) -> tuple[int, str]:
    (tmp_path / "config.toml").write_text(f'[storage]\ndatabase_url = "{url}"\n')
    code = main(list(command or ("run", "--console")))
    captured = capsys.readouterr()
    return code, captured.err


def test_a_database_that_does_not_answer_is_one_line_naming_the_setting_without_its_password(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    nobody = "postgresql+asyncpg://easel:secret@127.0.0.1:9/easel"  # the discard port: nothing listens there
    for command in (("run", "--console"), ("db", "upgrade"), ("worker",), ("run", "--console", "--no-worker")):
        code, err = _database_run(capsys, tmp_path, nobody, *command)
        assert code == 1
        [line] = err.strip().splitlines()
        assert line.startswith(
            "easel: error: storage.database_url (postgresql+asyncpg://easel:***@127.0.0.1:9/easel): "
            "the database cannot be reached ("
        )
        assert "secret" not in err


def test_a_worker_or_a_front_end_alone_on_sqlite_is_one_line_naming_the_setting(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    url = "sqlite+aiosqlite:///state/easel.db"
    code, err = _database_run(capsys, tmp_path, url, "worker")
    assert code == 1 and err.strip().splitlines() == [
        f"easel: error: storage.database_url (sqlite+aiosqlite:///{tmp_path / 'state' / 'easel.db'}): easel worker "
        "needs a PostgreSQL database that front ends share; on SQLite, easel run runs the jobs itself"
    ]
    code, err = _database_run(capsys, tmp_path, url, "run", "--console", "--no-worker")
    assert code == 1 and err.strip().splitlines() == [
        "easel: error: worker.local = false (or --no-worker) needs a PostgreSQL storage.database_url: on SQLite no "
        "other process can run the jobs"
    ]


def test_a_url_of_a_driver_easel_does_not_speak_is_refused_with_the_config(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for url, why in (("postgresql://easel:secret@db/easel", "postgresql is not a driver"), ("nonsense", "not a")):
        code, err = _database_run(capsys, tmp_path, url)
        assert code == 1
        [line] = err.strip().splitlines()
        assert f"storage.database_url: Value error, {why}" in line
        assert "postgresql+asyncpg://USER@HOST/DATABASE" in line and "secret" not in line


def test_a_schema_migrated_by_a_newer_easel_is_refused_by_name(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    url = "sqlite+aiosqlite:///state/easel.db"
    assert _database_run(capsys, tmp_path, url, "db", "upgrade")[0] == 0
    with sqlite3.connect(tmp_path / "state" / "easel.db") as connection:
        connection.execute("UPDATE alembic_version SET version_num = '0099'")
    for command in (("run", "--console"), ("db", "upgrade")):
        code, err = _database_run(capsys, tmp_path, url, *command)
        assert code == 1
        assert err.strip().splitlines() == [
            f"easel: error: storage.database_url (sqlite+aiosqlite:///{tmp_path / 'state' / 'easel.db'}): its schema "
            "is at revision 0099, which this easel does not know (its newest is 0012): a newer easel has migrated it"
        ]


@pytest.mark.postgres
def test_a_database_missing_on_the_server_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = make_url(POSTGRES).set(drivername="postgresql+asyncpg", database="easel_nowhere")
    code, err = _database_run(capsys, tmp_path, missing.render_as_string(hide_password=False))
    assert code == 1
    [line] = err.strip().splitlines()
    assert line.endswith('the database refused the connection (database "easel_nowhere" does not exist)')


def test_users_tier_shows_and_sets_a_tier_and_logs_it(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("[tiers.default]\n[tiers.patron]\nimages_per_day = 500\n")
    assert main(["users", "tier", "telegram:42"]) == 0
    assert capsys.readouterr().out == "telegram:42 is in tier default\n"
    assert main(["users", "tier", "telegram:42", "patron"]) == 0
    assert capsys.readouterr().out == "telegram:42 is in tier patron now (before: default)\n"
    with sqlite3.connect(tmp_path / "data" / "easel.db") as connection:
        assert connection.execute("SELECT tier FROM users WHERE platform_user_id = '42'").fetchall() == [("patron",)]
        logged = connection.execute("SELECT action, actor_id, details FROM moderation_log").fetchall()
    assert logged == [("tier", None, '{"from": "default", "to": "patron"}')]
    assert main(["users", "tier", "telegram:42", "gold"]) == 1
    assert "there is no tier 'gold'; tiers ([tiers.NAME] in the config): default, patron" in capsys.readouterr().err
    assert main(["users", "tier", "42", "patron"]) == 1
    assert "'42' is not PLATFORM:ID" in capsys.readouterr().err
