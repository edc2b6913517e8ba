"""The `easel` command line."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib.metadata
import json
import logging
import secrets
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from bots.cli_grid import ListError, cell_args, grid_axes, numbers, one, run_grid
from bots.config import ConfigError, Settings, load_settings
from bots.environment import read_environment
from bots.logs import configure as configure_logging
from bots.logs import quiet_progress_bars
from bots.maintenance import (
    api_token,
    backup,
    database_failed,
    discord_sync,
    download_models,
    fail,
    prune,
    set_tier,
    upgrade,
)
from generation.errors import EaselError

log = logging.getLogger("easel")

OPERATIONS = ["txt2img", "img2img", "inpaint", "mix", "outpaint", "remix", "depth", "grid"]
PANS = ["left", "right", "up", "down"]
"""`generation.requests.Operation` and `generation.outpainting.Pan`, spelt out so that `easel --help` loads no
imaging library (tests/unit/test_cli_choices.py holds them equal)."""
INTERRUPTED = 130
"""The exit status of a process that SIGINT ended (128 + 2), as shells report it."""


class UsageError(EaselError):
    """Options that do not fit together."""


class _Parser(argparse.ArgumentParser):
    """Usage mistakes end in one line on stderr, as every other bad input does."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


class _InOrder(argparse.Action):
    """Collects --image and --text into one ordered list, so mix weights follow the command line."""

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option: str | None = None
    ) -> None:
        items = list(getattr(namespace, self.dest) or [])
        items.append((self.const, values))
        setattr(namespace, self.dest, items)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="easel", description="Self-hosted image generation for Discord and Telegram communities.")
    _shared_options(parser, None)
    parser.add_argument("--version", action="version", version=f"easel {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = _command(commands, "run", "run the bot: the worker and every adapter that can start")
    run.add_argument("--console", action="store_true", help="chat on this terminal (or piped stdin)")
    run.add_argument(
        "--no-worker",
        action="store_true",
        help="a front end only: `easel worker` processes on the same PostgreSQL database run the jobs",
    )
    _command(commands, "worker", "serve the jobs of a PostgreSQL database's queue on this host's GPU")

    database = _group(commands, "db", "database maintenance")
    _command(database, "upgrade", "migrate the database to the current schema")
    backup = _command(database, "backup", "copy the SQLite database to PATH, consistently, while easel may be running")
    backup.add_argument("path", type=Path, metavar="PATH", help="the copy's file (refused if it exists)")

    storage = _group(commands, "storage", "the files of jobs")
    pruning = _command(
        storage, "prune", "delete the images and uploads of jobs older than storage.keep_days (as easel run does daily)"
    )
    pruning.add_argument("--dry-run", action="store_true", help="only say what would be deleted")

    models = _group(commands, "models", "the model weights")
    fetching = _command(
        models, "download", "fetch the files the configured models need (safetensors only; resumes an interrupted one)"
    )
    fetching.add_argument("--to", type=Path, metavar="DIR", help="a directory of their own (default: the hub cache)")

    users = _group(commands, "users", "the bot's users")
    tier = _command(users, "tier", "show a user's tier, or put them in one (default: out of theirs)")
    tier.add_argument("user", metavar="PLATFORM:ID", help="e.g. telegram:123456789 or discord:987654321")
    tier.add_argument("name", metavar="NAME", nargs="?", help="a tier of the config ([tiers.NAME]); none: show it")

    tokens = _group(commands, "token", "personal API tokens (users ask the bot for theirs with /token)")
    for action, what in (
        ("create", "make a user's API token (printed once; their earlier one stops working)"),
        ("revoke", "revoke a user's API token"),
    ):
        command = _command(tokens, action, what)
        command.add_argument("--platform", required=True, choices=["telegram", "discord", "console"])
        command.add_argument("--user", required=True, metavar="ID", help="their user id on that platform")

    discord_commands = _group(commands, "discord", "Discord maintenance")
    _command(
        discord_commands,
        "sync",
        "register the slash commands with Discord (in discord.guild_ids, or globally), then exit",
    )

    generate = _command(commands, "generate", "run one request without the service and write PNG files")
    generate.add_argument("--model", choices=["kandinsky-2.2", "tiny"], help="model preset (default: from the config)")
    generate.add_argument("--op", default="txt2img", choices=OPERATIONS)
    generate.add_argument("--prompt", default="", help="what to draw (mix: an optional extra text item)")
    generate.add_argument("--negative", default="", help="what to keep out of the image")
    generate.add_argument("--width", type=int)
    generate.add_argument("--height", type=int)
    generate.add_argument(
        "--ar", type=_ratio, metavar="W:H", help="aspect ratio such as 16:9, instead of --width and --height"
    )
    generate.add_argument("--steps", type=numbers(int), help="decoder steps (grid: a comma list such as 20,40)")
    generate.add_argument("--prior-steps", type=numbers(int), help="(grid: a comma list)")
    generate.add_argument("--guidance", type=numbers(float), help="decoder guidance scale (grid: a list such as 2,4,6)")
    generate.add_argument("--prior-guidance", type=float, help="prior guidance scale")
    generate.add_argument(
        "--strength", type=float, help="img2img, remix: how much to change, 0-1; depth: start from the image too"
    )
    zoom_or_pan = generate.add_mutually_exclusive_group()
    zoom_or_pan.add_argument("--zoom", type=float, help="outpaint: zoom out by 1.1 to 2 (1.5, 2)")
    zoom_or_pan.add_argument("--pan", choices=PANS, help="outpaint: extend the image this way")
    generate.add_argument("--count", type=int, default=1, help="images to make, 1-4 (files out-1.png ... out-N.png)")
    generate.add_argument("--seed", type=numbers(int), help="random when absent; printed either way (grid: a list)")
    generate.add_argument(
        "--image", dest="items", action=_InOrder, const="image", metavar="PATH", help="input image (mix: repeat)"
    )
    generate.add_argument(
        "--text", dest="items", action=_InOrder, const="text", metavar="TEXT", help="mix: a text item"
    )
    generate.add_argument("--mask", type=Path, help="inpaint: mask image, white is repainted")
    generate.add_argument("--region", help="inpaint: X,Y,W,H in percent of the image")
    generate.add_argument("--weights", help="mix: comma-separated weights in item order")
    generate.add_argument("-o", "--output", type=Path, default=Path("out.png"), help="PNG file to write")
    return parser


def _ratio(text: str) -> tuple[int, int]:
    width, colon, height = text.partition(":")
    if not (colon and width.isdigit() and height.isdigit() and int(width) and int(height)):
        raise argparse.ArgumentTypeError(f"{text!r} is not a ratio such as 16:9")
    return int(width), int(height)


def _command(commands: Any, name: str, help: str) -> argparse.ArgumentParser:
    """A command (or subcommand) that takes the shared options after its name too."""
    parser: argparse.ArgumentParser = commands.add_parser(name, help=help)
    _shared_options(parser)
    return parser


def _group(commands: Any, name: str, help: str) -> Any:
    """A command of subcommands (`easel db upgrade`); which one lands in `<name>_command`."""
    return _command(commands, name, help).add_subparsers(dest=f"{name}_command", required=True, parser_class=_Parser)


def _shared_options(parser: argparse.ArgumentParser, default: Any = argparse.SUPPRESS) -> None:
    """Taken before or after the command (`easel --config F run`, `easel run --config F`)."""
    parser.add_argument("--config", type=Path, default=default, help="config file (default: ./config.toml if any)")
    parser.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        default=default,
        help="default: [logging] level (info) for run and worker, warning for the others",
    )
    parser.add_argument(
        "--log-format",
        choices=["text", "json"],
        default=default,
        help="json: one object per line, for journald and log shippers ([logging] format)",
    )


def _version() -> str:
    """The installed package's version; a checkout run without installing says so."""
    try:
        return importlib.metadata.version("easel")
    except importlib.metadata.PackageNotFoundError:
        return "(not installed)"


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
    except ConfigError as error:
        return fail(str(error))
    service = args.command in ("run", "worker")
    level = args.log_level or (settings.logging.level if service else "warning")
    configure_logging(level, args.log_format or settings.logging.format)
    if args.command == "generate":
        return _generate(args, settings)
    if service:
        try:
            return _run(args, settings) if args.command == "run" else _worker(settings)
        except KeyboardInterrupt:  # its imports and the model's loading included
            return _interrupted()
    if args.command == "db":
        return upgrade(settings) if args.db_command == "upgrade" else backup(args.path, settings)
    if args.command == "storage":
        return prune(settings, dry_run=args.dry_run)
    if args.command == "users":
        return set_tier(settings, args.user, args.name)
    if args.command == "models":
        return download_models(settings, args.to)
    if args.command == "discord":
        return discord_sync(settings)
    if args.command == "token":
        return api_token(settings, args.platform, args.user, revoke=args.token_command == "revoke")
    raise AssertionError(f"unhandled command {args.command}")


def _service_logging() -> None:
    quiet_progress_bars()
    _quiet_libraries()


def _run(args: argparse.Namespace, settings: Settings) -> int:
    _service_logging()
    if args.no_worker:
        settings = settings.model_copy(update={"worker": settings.worker.model_copy(update={"local": False})})
    from bots.instance import AlreadyServed
    from bots.run import NothingToRun, serve, served_platforms
    from generation.errors import ModelLoadError
    from storage.errors import DatabaseUnavailable

    try:
        environment = read_environment(settings)
        console = args.console or (sys.stdin.isatty() and not served_platforms(environment))
        asyncio.run(serve(settings, environment, console=console))
    except (NothingToRun, ModelLoadError, AlreadyServed, ConfigError) as error:
        return fail(str(error))
    except DatabaseUnavailable as error:
        return database_failed(error)
    return 0


def _interrupted() -> int:
    """Ctrl-C before the service takes work (while it imports or loads the model): one line, as a second Ctrl-C
    during the stop gives (`bots.run.signals`), no traceback, and the exit status of a process SIGINT ended."""
    from bots.kit.lifetime import STOPPED_AT_ONCE

    print(STOPPED_AT_ONCE, file=sys.stderr)
    return INTERRUPTED


def _worker(settings: Settings) -> int:
    _service_logging()
    from bots.worker_process import serve_worker
    from generation.errors import ModelLoadError
    from storage.errors import DatabaseUnavailable

    try:
        asyncio.run(serve_worker(settings))
    except (ModelLoadError, ConfigError) as error:
        return fail(str(error))
    except DatabaseUnavailable as error:
        return database_failed(error)
    return 0


def _generate(args: argparse.Namespace, settings: Settings) -> int:
    _quiet_libraries()
    from generation.engine import Engine
    from generation.errors import InvalidImage, InvalidRequest, ModelLoadError
    from generation.models import load_models
    from generation.requests import SEED_LIMIT
    from generation.translation import load_translator

    if args.model:
        settings = settings.model_copy(update={"model": settings.model.model_copy(update={"preset": args.model})})
    try:
        axes = grid_axes(args) if args.op == "grid" else ()
        cells = cell_args(args, axes, secrets.randbelow(SEED_LIMIT)) if axes else [args]
        requests = [_request_from_args(cell, settings) for cell in cells]
    except (InvalidRequest, InvalidImage, UsageError, ListError) as error:
        return fail(str(error))
    except OSError as error:
        return fail(f"cannot read {error.filename}: {error.strerror}")
    try:
        # English needs no translator: a one-off run should not load (or download) one for nothing.
        request = requests[0]
        foreign = request.language not in (None, "en")
        translator = load_translator(settings.translation, settings.model) if foreign else None
        engine = Engine(load_models(settings.model), translator)
        if axes:
            print(json.dumps(run_grid(lambda one: engine.generate([one])[0], requests, axes, args.output)))
            return 0
        started = time.perf_counter()
        result = engine.generate([request])[0]
    except ModelLoadError as error:
        return fail(str(error))
    except OSError as error:
        return fail(f"cannot write {error.filename}: {error.strerror}")
    seconds = time.perf_counter() - started
    paths = _output_paths(args.output, request.count)
    try:
        for image, path in zip(result.images, paths, strict=True):
            image.save(path)
    except OSError as error:
        return fail(f"cannot write {error.filename}: {error.strerror}")
    summary: dict[str, Any] = {
        "files": [str(p) for p in paths],
        "seeds": list(result.seeds),
        "seconds": round(seconds, 3),
    }
    if result.translation is not None:
        summary["translation"] = dataclasses.asdict(result.translation)
    print(json.dumps(summary, ensure_ascii=False))
    return 0


def _request_from_args(args: argparse.Namespace, settings: Settings) -> Any:
    """The command line as an `Ask`, built into a request exactly as the service builds a chat request."""
    from generation.asks import Ask, Options, build_request, parse_weights
    from generation.images import parse_region
    from generation.translation import detect_language

    items = args.items or []
    images = [Path(value).read_bytes() for kind, value in items if kind == "image"]
    mix: list[bytes | str] = []
    if args.op == "mix":
        mix = [Path(value).read_bytes() if kind == "image" else value for kind, value in items]
        if args.prompt:
            mix.append(args.prompt)
    elif len(images) > 1 or any(kind == "text" for kind, _ in items):
        raise UsageError(f"--op {args.op} takes one --image and no --text")
    if args.mask and args.region:
        raise UsageError("give either --mask or --region, not both")
    texts = [args.prompt, *(value for kind, value in items if kind == "text")]
    options = Options(
        negative_prompt=args.negative,
        width=args.width,
        height=args.height,
        steps=one(args.steps, "steps"),
        prior_steps=one(args.prior_steps, "prior-steps"),
        guidance_scale=one(args.guidance, "guidance"),
        prior_guidance_scale=args.prior_guidance,
        strength=args.strength,
        count=args.count,
        seed=one(args.seed, "seed"),
        mask=parse_region(args.region) if args.region and args.op == "inpaint" else None,
        weights=parse_weights(args.weights) if args.weights and args.op == "mix" else None,
        language=detect_language(" ".join(texts)),
        zoom=args.zoom,
        pan=args.pan,
        aspect=args.ar,
    )
    ask = Ask(
        args.op,
        args.prompt if args.op != "mix" else "",
        options,
        image=images[0] if images and args.op != "mix" else None,
        mask_image=args.mask.read_bytes() if args.mask and args.op == "inpaint" else None,
        mix=tuple(mix),
    )
    return build_request(ask, defaults=settings.generation_defaults, limits=settings.limits)


def _output_paths(output: Path, count: int) -> list[Path]:
    if count == 1:
        return [output]
    return [output.with_name(f"{output.stem}-{index}{output.suffix}") for index in range(1, count + 1)]


def _quiet_libraries() -> None:
    """diffusers and transformers warn about things an operator cannot act on; keep stderr for errors."""
    import diffusers
    import transformers

    diffusers.utils.logging.set_verbosity_error()
    transformers.utils.logging.set_verbosity_error()
    if not sys.stderr.isatty():  # as `quiet_progress_bars` does for downloads
        diffusers.utils.logging.disable_progress_bar()
        transformers.utils.logging.disable_progress_bar()
