"""From an API request (a JSON body, or a multipart form of that body and its images) to the core's `Ask`,
through the chat's own option parser, so every value is checked by the chat's rules and refused in its words."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from bots.errors import UserError
from bots.http.schemas import JobRequest
from bots.kit.uploads import Attachment, UploadPolicy
from bots.parsing import grid_axes, parse_option
from generation.asks import Ask, Options

CHAT_OPTIONS = {
    "negative": "neg",
    "size": "size",
    "aspect": "ar",
    "width": "width",
    "height": "height",
    "steps": "steps",
    "prior_steps": "prior-steps",
    "guidance": "guidance",
    "strength": "strength",
    "seed": "seed",
    "count": "count",
    "style": "style",
    "zoom": "zoom",
    "pan": "pan",
    "region": "region",
    "weights": "weights",
    "language": "lang",
}
"""Each body field and the chat option that sets it (`/imagine --prior-steps 25`)."""
IMAGE_OPERATIONS = frozenset({"img2img", "inpaint", "outpaint", "remix", "depth"})
MAX_MIX_ITEMS = 4
FORM_FIELDS = 8


async def read_request(request: Request, policy: UploadPolicy) -> tuple[JobRequest, dict[str, list[bytes]]]:
    """The body, and the images of a multipart request by part name (`image`, `mask`, `images`)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "multipart/form-data":
        return job_request(await request.body() or b"{}"), {}
    form = await request.form(max_files=MAX_MIX_ITEMS + 2, max_fields=FORM_FIELDS)
    try:
        body = form.get("request")
        text = await body.read() if isinstance(body, UploadFile) else (body or "{}").encode()
        images: dict[str, list[bytes]] = {}
        for name, value in form.multi_items():
            if name == "request":
                continue
            if name not in ("image", "mask", "images") or not isinstance(value, UploadFile):
                raise UserError("api.unknown_part", part=name)
            policy.check(Attachment(value.filename or name, value.content_type, value.size))
            data = await value.read()
            policy.check_size(value.filename or name, len(data))
            images.setdefault(name, []).append(data)
        return job_request(text), images
    finally:
        await form.close()


def job_request(given: bytes | dict[str, str]) -> JobRequest:
    """A JSON body, or a form's fields, as a job request; a value of the wrong shape is the bad request it names."""
    try:
        if isinstance(given, bytes):
            return JobRequest.model_validate_json(given)
        return JobRequest.model_validate(given)
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(str(part) for part in problem["loc"]) or "body"
        raise UserError("api.bad_request", field=where, detail=problem["msg"]) from None


def options_of(body: JobRequest) -> Options:
    options = Options()
    for field, option in CHAT_OPTIONS.items():
        value = getattr(body, field)
        if value is None:
            continue
        text = ",".join(f"{weight:g}" for weight in value) if field == "weights" else str(value)
        options = parse_option(option, text).over(options)
    return options


def ask_of(body: JobRequest, images: dict[str, list[bytes]]) -> tuple[Ask, tuple[Any, ...]]:
    """The ask, and a grid's axes (none for any other operation)."""
    operation = body.operation
    options = options_of(body)
    _refuse_extras(body, images)
    if operation == "grid":
        if body.grid is None:
            raise UserError("grid.no_axis")
        if body.count is not None:
            raise UserError("grid.bad_option", option="--count")
        given = body.grid.model_dump(exclude_none=True)
        axes = grid_axes({name.replace("_", "-"): values for name, values in given.items()})
        return Ask("txt2img", body.prompt, options), axes
    if operation == "mix":
        items: list[bytes | str] = [*images.get("images", []), *body.mix]
        if body.prompt:
            items.append(body.prompt)
        return Ask("mix", "", options, mix=tuple(items)), ()
    if operation in IMAGE_OPERATIONS:
        image = images.get("image")
        if not image:
            raise UserError("api.image_required", operation=operation)
        mask = images.get("mask", [None])[0] if operation == "inpaint" else None
        return Ask(operation, body.prompt, options, image=image[0], mask_image=mask), ()
    return Ask("txt2img", body.prompt, options), ()


def _refuse_extras(body: JobRequest, images: dict[str, list[bytes]]) -> None:
    """A part or field the operation would ignore is refused, not silently dropped."""
    allowed = {"image", "mask"} if body.operation == "inpaint" else set()
    if body.operation in IMAGE_OPERATIONS:
        allowed.add("image")
    if body.operation == "mix":
        allowed.add("images")
    for name, parts in images.items():
        if name not in allowed or (name != "images" and len(parts) > 1):
            raise UserError("api.field_not_for", field=name, operation=body.operation)
    if body.grid is not None and body.operation != "grid":
        raise UserError("api.field_not_for", field="grid", operation=body.operation)
    if body.mix and body.operation != "mix":
        raise UserError("api.field_not_for", field="mix", operation=body.operation)
