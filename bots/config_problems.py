"""A configuration that cannot be used, described as its operator needs it: each problem with the setting it is
about, and where the bad value came from (an environment variable, or the file)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError

ENV_PREFIX = "EASEL_"


def describe(error: ValidationError, path: Path | None, environ: Mapping[str, str]) -> str:
    """Each problem with the setting it is about, and where its value came from: a variable or the file."""
    lines = []
    for problem in error.errors():
        if problem["loc"]:
            setting = ".".join(str(part) for part in problem["loc"])
            shown = "" if setting.endswith("database_url") else f" (got {problem.get('input')!r})"  # a password
            lines.append(f"{setting}: {problem['msg']}{shown}{_source(problem['loc'], path, environ)}")
        else:
            lines.append(str(problem["ctx"]["error"]) if "error" in problem.get("ctx", {}) else problem["msg"])
    return "invalid configuration: " + "; ".join(lines)


def _source(loc: tuple[int | str, ...], path: Path | None, environ: Mapping[str, str]) -> str:
    """The variable that set the value at `loc` (or a table or list around it), else the file."""
    names = {name.upper(): name for name in environ}
    for end in range(len(loc), 0, -1):
        wanted = ENV_PREFIX + "__".join(str(part).upper() for part in loc[:end])
        if wanted in names:
            return f", from the environment variable {names[wanted]}"
    return f", in {path}" if path is not None else ""
