"""The REST API through a real HTTP client against the server `easel run` starts with `[http] enabled`, on a
running core (tiny model) over SQLite and PostgreSQL: every endpoint, and every refusal's status and body."""

from __future__ import annotations

import asyncio
import io
import json
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from http_server import ANN, Served, Start, png
from PIL import Image

from bots.config import TierSettings
from bots.core.types import Actor
from bots.texts import render

BOB = Actor("discord", "bob", "Bob", "en")
SMALL = {"size": "64x64", "steps": 2, "prior_steps": 2}


async def submit(server: Served, token: str, **body: Any) -> dict[str, Any]:
    status, receipt, headers = await server.call("POST", "/api/v1/jobs", token, json={**SMALL, **body})
    assert status == 202, receipt
    assert headers["Location"] == receipt["url"] == f"{server.url}/api/v1/jobs/{receipt['id']}"
    return receipt


def multipart(request: dict[str, Any], **parts: bytes | list[bytes]) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("request", json.dumps(request), content_type="application/json")
    for name, given in parts.items():
        for index, data in enumerate(given if isinstance(given, list) else [given]):
            form.add_field(name, data, filename=f"{name}{index}.png", content_type="image/png")
    return form


async def test_a_json_job_is_queued_runs_and_its_image_downloads(served: Served) -> None:
    token = await served.token()
    receipt = await submit(served, token, prompt="a red cat", seed=5)
    assert receipt["state"] == "queued" and receipt["position"] in (1, None)
    job = await served.finished(token, receipt["id"])
    assert (job["state"], job["operation"], job["prompt"], job["seeds"]) == ("done", "txt2img", "a red cat", [5])
    assert job["progress"] == 1.0 and job["error"] is None and job["finished_at"] is not None
    [image] = job["images"]
    assert (image["number"], image["width"], image["height"], image["seed"]) == (1, 64, 64, 5)
    status, data, headers = await served.call("GET", image["url"].removeprefix(served.url), token)
    assert status == 200 and headers["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(data)).size == (64, 64)
    owner = await served.stack.db.get_or_create_user("telegram", "ann")
    assert (await served.stack.db.get_job(receipt["id"])).owner_id == owner.id  # type: ignore[union-attr]
    status, quota, _ = await served.call("GET", "/api/v1/quota", token)
    assert status == 200 and quota["images"] == 1 and quota["images_limit"] > 1


async def test_images_come_as_multipart_parts_for_every_image_operation(served: Served) -> None:
    token = await served.token()
    jobs = []
    for request, parts in (
        ({"operation": "img2img", "prompt": "blue", "strength": 0.5, "steps": 2}, {"image": png()}),
        ({"operation": "inpaint", "prompt": "a hat", "steps": 2}, {"image": png(), "mask": png(colour=(255,) * 3)}),
        ({"operation": "mix", "mix": ["a tiger"], "steps": 2, "prior_steps": 2}, {"images": [png(), png()]}),
        ({"operation": "outpaint", "prompt": "a beach", "pan": "left", "steps": 2}, {"image": png()}),
        ({"operation": "remix", "prompt": "as ink", "strength": 0.5, "prior_steps": 4, "steps": 2}, {"image": png()}),
        ({"operation": "depth", "prompt": "a stone", "steps": 2}, {"image": png()}),
    ):
        status, receipt, _ = await served.call("POST", "/api/v1/jobs", token, data=multipart(request, **parts))
        assert status == 202, receipt
        jobs.append(receipt["id"])
    for job_id, operation in zip(jobs, ("img2img", "inpaint", "mix", "outpaint", "remix", "depth"), strict=True):
        job = await served.finished(token, job_id)
        assert (job["state"], job["operation"], len(job["images"])) == ("done", operation, 1), job


async def test_refusals_carry_the_chat_texts_key_values_and_message_in_the_callers_language(served: Served) -> None:
    token = await served.token()
    status, body, _ = await served.call("POST", "/api/v1/jobs", token, json={"prompt": "a cat", "steps": 500})
    assert status == 400 and body["error"]["key"] == "request.invalid"
    assert "--steps" in body["error"]["message"] and "500" in body["error"]["message"]
    german = {"Accept-Language": "fr;q=0.2, de-CH, en;q=0.5"}
    status, body, _ = await served.call("POST", "/api/v1/jobs", token, german, json={"prompt": "a cat", "size": "huge"})
    assert status == 400 and body["error"]["key"] == "request.bad_option"
    assert body["error"]["values"]["option"] == "--size" and body["error"]["values"]["value"] == "huge"
    assert body["error"]["message"] != render("request.bad_option", "en", **body["error"]["values"])
    assert body["error"]["message"].startswith(render("request.bad_option", "de", **body["error"]["values"])[:12])
    for bad in ({"prompt": 5}, {"colour": "red"}, {"operation": "paint"}, {"grid": {"steps": [2, 3]}}):
        status, body, _ = await served.call("POST", "/api/v1/jobs", token, json=bad)
        assert status == 400, (bad, body)
        assert body["error"]["key"] in ("api.bad_request", "api.field_not_for"), body
    status, body, _ = await served.call("POST", "/api/v1/jobs", token, data=b"{not json", headers={})
    assert status == 400 and body["error"]["key"] == "api.bad_request"
    status, body, _ = await served.call("POST", "/api/v1/jobs", token, json={"operation": "img2img", "prompt": "x"})
    assert status == 400 and body["error"]["key"] == "api.image_required"
    form = multipart({"prompt": "x"}, image=png())
    status, body, _ = await served.call("POST", "/api/v1/jobs", token, data=form)
    assert status == 400 and body["error"] == {
        "key": "api.field_not_for",
        "message": render("api.field_not_for", "en", field="image", operation="txt2img"),
        "values": {"field": "image", "operation": "txt2img"},
    }
    status, body, _ = await served.call("GET", "/api/v1/jobs?limit=0", token)
    assert status == 400 and body["error"]["key"] == "api.bad_request" and body["error"]["values"]["field"]


async def test_401_without_a_valid_token_and_the_old_token_stops_working(served: Served) -> None:
    old = await served.token()
    new = await served.token()
    assert old != new and new.startswith("easel_")
    for headers in ({}, {"Authorization": f"Bearer {old}"}, {"Authorization": f"Basic {new}"}):
        status, body, sent = await served.call("GET", "/api/v1/quota", headers=headers)
        assert status == 401 and body["error"]["key"] == "api.unauthorized"
        assert sent["WWW-Authenticate"].startswith("Bearer")
    assert (await served.call("GET", "/api/v1/quota", new))[0] == 200
    assert await served.stack.core.access.revoke_api_token(ANN)
    assert (await served.call("GET", "/api/v1/quota", new))[0] == 401
    stored = await served.stack.db.token_user(new, "api", datetime.now(UTC))
    assert stored is None  # not by the secret itself: only its hash is kept


async def test_429_after_too_many_bad_tokens_from_one_address(start: Start) -> None:
    async with start(http={"sign_in_attempts_per_minute": 3}) as server:
        token = await server.token()
        for _ in range(3):
            assert (await server.call("GET", "/api/v1/quota", "easel_wrong"))[0] == 401
        status, body, headers = await server.call("GET", "/api/v1/quota", token)
        assert status == 429 and body["error"]["key"] == "api.too_many_attempts" and headers["Retry-After"] == "60"


async def test_403_for_a_banned_user_and_404_for_anothers_job(served: Served) -> None:
    ann, bob = await served.token(), await served.token(BOB)
    receipt = await submit(served, ann, prompt="a red cat")
    for path in (f"/api/v1/jobs/{receipt['id']}", f"/api/v1/jobs/{receipt['id']}/images/1"):
        status, body, _ = await served.call("GET", path, bob)
        assert status == 404 and body["error"]["key"] == "job.not_found"
    for method, action in (("POST", "cancel"), ("POST", "reroll"), ("POST", "variations")):
        status, body, _ = await served.call(method, f"/api/v1/jobs/{receipt['id']}/{action}", bob)
        assert status == 404 and body["error"]["key"] == "job.not_found", action
    assert (await served.call("DELETE", f"/api/v1/jobs/{receipt['id']}", bob))[0] == 404
    await served.finished(ann, receipt["id"])
    status, body, _ = await served.call("GET", f"/api/v1/jobs/{receipt['id']}/images/2", ann)
    assert status == 404 and body["error"]["key"] == "job.no_such_image"
    status, body, _ = await served.call("GET", "/api/v1/nothing", ann)
    assert status == 404 and body["error"]["key"] == "api.not_found"
    status, body, _ = await served.call("PUT", "/api/v1/quota", ann)
    assert status == 405 and body["error"]["key"] == "api.method_not_allowed"
    user = await served.stack.db.get_or_create_user("discord", "bob")
    await served.stack.db.ban_user(user.id, datetime.now(UTC) + timedelta(days=1), "spam")
    status, body, _ = await served.call("GET", "/api/v1/quota", bob)
    assert status == 403 and body["error"]["key"] == "user.banned_until" and body["error"]["values"]["reason"] == "spam"


async def test_a_banned_word_is_refused_with_403(start: Start) -> None:
    async with start(moderation={"banned_words": ["gore"]}) as server:
        token = await server.token()
        status, body, _ = await server.call("POST", "/api/v1/jobs", token, json={"prompt": "some gore"})
        assert status == 403 and body["error"]["key"] == "moderation.blocked"


async def test_409_for_cancelling_an_ended_job_and_deleting_a_running_one(served: Served) -> None:
    token = await served.token()
    receipt = await submit(served, token, prompt="a red cat")
    await served.finished(token, receipt["id"])
    status, body, _ = await served.call("POST", f"/api/v1/jobs/{receipt['id']}/cancel", token)
    assert status == 409 and body["error"]["key"] == "job.not_cancellable"
    slow = await submit(served, token, prompt="a slow cat", steps=50, size="256x256")
    status, body, _ = await served.call("DELETE", f"/api/v1/jobs/{slow['id']}", token)
    assert status == 409 and body["error"]["key"] == "job.not_finished"
    status, body, _ = await served.call("POST", f"/api/v1/jobs/{slow['id']}/cancel", token)
    assert status == 200 and body["id"] == slow["id"] and body["outcome"] in ("queued", "running")
    assert (await served.finished(token, slow["id"]))["state"] == "cancelled"


async def test_413_for_a_body_or_an_image_over_the_limits(start: Start) -> None:
    async with start(http={"max_request_mb": 0.05, "max_upload_mb": 0.01}) as server:
        token = await server.token()
        big = {"prompt": "x" * 100, "mix": ["a"] * 30_000, "operation": "mix"}
        status, body, _ = await server.call("POST", "/api/v1/jobs", token, json=big)
        assert status == 413 and body["error"]["key"] == "api.too_large"

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
            yield b'{"prompt": "'
            for _ in range(100):
                yield b"x" * 1024

        headers = {"Content-Type": "application/json"}
        status, body, _ = await server.call("POST", "/api/v1/jobs", token, headers, data=chunks())
        assert status == 413 and body["error"]["key"] == "api.too_large", body
        noise = Image.frombytes("RGB", (100, 100), random.Random(1).randbytes(30_000))
        buffer = io.BytesIO()
        noise.save(buffer, "PNG")
        form = multipart({"operation": "img2img", "prompt": "x"}, image=buffer.getvalue())
        status, body, _ = await server.call("POST", "/api/v1/jobs", token, data=form)
        assert status == 413 and body["error"]["key"] == "upload.too_large"


async def test_429_over_the_quota_and_nothing_is_charged_for_it(start: Start) -> None:
    async with start(tiers={"default": TierSettings(images_per_day=1)}) as server:
        token = await server.token()
        await submit(server, token, prompt="one")
        status, body, _ = await server.call("POST", "/api/v1/jobs", token, json={**SMALL, "prompt": "two"})
        assert status == 429 and body["error"]["key"] == "quota.images" and body["error"]["values"]["limit"] == "1"
        assert (await server.call("GET", "/api/v1/quota", token))[1]["images"] == 1


async def test_reroll_variations_delete_history_and_queue(served: Served) -> None:
    token = await served.token()
    first = await submit(served, token, prompt="a red cat", seed=3)
    await served.finished(token, first["id"])
    status, rerolled, _ = await served.call("POST", f"/api/v1/jobs/{first['id']}/reroll", token)
    assert status == 202
    status, varied, _ = await served.call("POST", f"/api/v1/jobs/{first['id']}/variations", token, json={"image": 1})
    assert status == 202
    status, body, _ = await served.call("POST", f"/api/v1/jobs/{first['id']}/variations", token, json={"image": 4})
    assert status == 404 and body["error"]["key"] == "job.no_such_image"
    status, queue, _ = await served.call("GET", "/api/v1/queue", token)
    assert status == 200 and queue["queued"] + queue["running"] >= 0
    assert {entry["id"] for entry in queue["jobs"]} <= {rerolled["id"], varied["id"]}
    again = await served.finished(token, rerolled["id"])
    vary = await served.finished(token, varied["id"])
    assert (again["parent_id"], again["prompt"], again["operation"]) == (first["id"], "a red cat", "txt2img")
    assert again["seed"] != 3 and (vary["operation"], vary["parent_id"]) == ("img2img", first["id"])
    status, history, _ = await served.call("GET", "/api/v1/jobs?limit=2", token)
    assert status == 200 and len(history["jobs"]) == 2
    assert {job["id"] for job in history["jobs"]} == {rerolled["id"], varied["id"]}
    status, _, _ = await served.call("DELETE", f"/api/v1/jobs/{first['id']}", token)
    assert status == 204
    for path in (f"/api/v1/jobs/{first['id']}", f"/api/v1/jobs/{first['id']}/images/1"):
        status, body, _ = await served.call("GET", path, token)
        assert status == 404 and body["error"]["key"] == "job.not_found"
    assert (await served.call("DELETE", f"/api/v1/jobs/{first['id']}", token))[0] == 404
    _, history, _ = await served.call("GET", "/api/v1/jobs", token)
    assert first["id"] not in {job["id"] for job in history["jobs"]}


async def test_a_grid_is_one_job_with_one_sheet(served: Served) -> None:
    token = await served.token()
    receipt = await submit(served, token, operation="grid", prompt="a fox", steps=None, grid={"steps": [2, 3]})
    job = await served.finished(token, receipt["id"])
    assert (job["state"], job["operation"], len(job["images"])) == ("done", "grid", 1)
    status, body, _ = await served.call(
        "POST", "/api/v1/jobs", token, json={"operation": "grid", "prompt": "x", "grid": {"steps": [2]}}
    )
    assert status == 400 and body["error"]["key"] == "request.bad_option"


async def test_the_event_stream_tells_progress_and_ends_with_the_job(served: Served) -> None:
    token = await served.token()
    receipt = await submit(served, token, prompt="a red cat", steps=6)
    events: list[tuple[str, dict[str, Any]]] = []
    headers = {"Authorization": f"Bearer {token}"}
    url = f"{served.url}/api/v1/jobs/{receipt['id']}/events"
    async with served.session.get(url, headers=headers) as response:
        assert response.status == 200 and response.content_type == "text/event-stream"
        name = ""
        async for raw in response.content:
            line = raw.decode().strip()
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((name, json.loads(line.removeprefix("data: "))))
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "state" and kinds[-1] == "done"
    assert "progress" in kinds or kinds.count("state") >= 2
    progress = [data["progress"] for kind, data in events if kind == "progress"]
    assert progress == sorted(progress)
    assert events[-1][1]["images"][0]["url"].endswith("/images/1")
    status, _, _ = await served.call("GET", url.removeprefix(served.url), token)  # an ended job: at once
    assert status == 200


async def test_the_openapi_document_is_served_and_valid(served: Served) -> None:
    from openapi_spec_validator import validate

    status, document, _ = await served.call("GET", "/api/v1/openapi.json")
    assert status == 200
    validate(document)
    paths = document["paths"]
    assert set(paths) == {
        "/api/v1/jobs",
        "/api/v1/jobs/{job_id}",
        "/api/v1/jobs/{job_id}/images/{number}",
        "/api/v1/jobs/{job_id}/events",
        "/api/v1/jobs/{job_id}/cancel",
        "/api/v1/jobs/{job_id}/reroll",
        "/api/v1/jobs/{job_id}/variations",
        "/api/v1/queue",
        "/api/v1/quota",
    }
    body = paths["/api/v1/jobs"]["post"]["requestBody"]["content"]
    assert set(body) == {"application/json", "multipart/form-data"}
    assert "JobRequest" in document["components"]["schemas"]
    await asyncio.sleep(0)
