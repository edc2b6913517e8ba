"""The REST API of a real `easel run` process (tiny model, only `[http]` enabled), as another program meets it: a
token from `easel token create`, curl-like calls, and schemathesis's property-based run over the OpenAPI document
the server serves, which must find no server error (5xx) and no departure from the document."""

from __future__ import annotations

import asyncio
import json
import sys
import urllib.request
from pathlib import Path

from easel_process import EaselProcess, free_port

EASEL = str(Path(sys.executable).with_name("easel"))
SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))
MAX_EXAMPLES = 10
"""Examples per operation in each property-based phase (fuzzing, and the stateful chains of calls that follow
one answer's links into the next call): about 10 s here. The coverage phase, a deterministic walk of every
parameter's boundary values, is left out: it sends some 600 requests whatever this bound, 33 s here."""


async def run(*command: str, cwd: Path) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *command, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await asyncio.wait_for(process.communicate(), 300)
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")


def call(method: str, url: str, token: str, body: dict[str, object] | None = None) -> tuple[int, dict[str, object]]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data, method=method, headers={"Authorization": f"Bearer {token}"})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


async def test_a_token_from_the_command_line_then_schemathesis_finds_no_server_error(tmp_path: Path) -> None:
    port = free_port()
    config = (
        f'[model]\npreset = "tiny"\n[http]\nenabled = true\nport = {port}\n'
        # schemathesis presents wrong tokens on purpose: it is no brute force to refuse here
        "sign_in_attempts_per_minute = 10000\n"
        f'[storage]\ndatabase_url = "sqlite+aiosqlite:///{tmp_path / "easel.db"}"\n'
        "[defaults]\nwidth = 64\nheight = 64\nsteps = 2\nprior_steps = 2\n"
    )
    easel = await EaselProcess.start(tmp_path, config, {})
    try:
        await easel.wait_for_log("http adapter started")
        code, output = await run(EASEL, "token", "create", "--platform", "telegram", "--user", "7", cwd=tmp_path)
        assert code == 0, output
        token = output.strip().splitlines()[-1]
        assert token.startswith("easel_")
        base = f"http://127.0.0.1:{port}/api/v1"
        status, receipt = await asyncio.to_thread(call, "POST", f"{base}/jobs", token, {"prompt": "a red cat"})
        assert status == 202, receipt
        for _ in range(600):
            status, job = await asyncio.to_thread(call, "GET", str(receipt["url"]), token)
            if job["state"] == "done":
                break
            await asyncio.sleep(0.1)
        assert job["state"] == "done" and len(job["images"]) == 1  # type: ignore[arg-type]
        code, output = await run(
            SCHEMATHESIS,
            "run",
            f"{base}/openapi.json",
            "--header",
            f"Authorization: Bearer {token}",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--seed",
            "1",
            "--phases",
            "fuzzing,stateful",
            "--checks",
            "all",
            # the server checks more than a schema can say (sizes and steps within the community's own limits)
            "--exclude-checks",
            "positive_data_acceptance",
            cwd=tmp_path,
        )
        assert code == 0, output
        assert " passed" in output and "server error" not in output.lower(), output
        assert "Traceback" not in easel.log and " ERROR " not in easel.log, easel.log
    finally:
        assert await easel.stop() == 0, easel.log
