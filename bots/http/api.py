"""The REST API under /api/v1: the chat commands' use cases for other programs, as the user whose personal token
(`/token` in a private chat with the bot) they present. Their requests share that user's quota and fair share.

Annotations are evaluated here (no `from __future__ import annotations`): FastAPI reads the endpoints' parameter
types at run time, and those of functions nested in `api_router` cannot be resolved from strings."""

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from bots.core.access import Caller
from bots.core.facade import Core
from bots.core.types import JobDetail, Place, short_id
from bots.core.types import Receipt as CoreReceipt
from bots.errors import UserError
from bots.formatting import failure_key
from bots.http import schemas
from bots.http.errors import language_of
from bots.http.feed import JobFeed
from bots.http.guards import Attempts
from bots.http.requests import ask_of, read_request
from bots.http.streams import job_events
from bots.kit.uploads import UploadPolicy
from bots.texts import render

PLATFORM = "http"
API_PLACE = Place(PLATFORM, "api")
REFUSALS = {
    status: {"model": schemas.ErrorBody, "description": description}
    for status, description in {
        400: "A bad request: its message says what and why.",
        401: "No valid token.",
        403: "Banned, or the request is refused by moderation.",
        404: "No such job of yours, or no such image.",
        409: "The job is not in a state that allows this.",
        413: "The body or an image is too large.",
        429: "Over the quota, the queue's cap, or too many bad tokens.",
        503: "The database or the queue cannot take the request now.",
    }.items()
}
bearer = HTTPBearer(auto_error=False, description="A personal token: send /token to the bot in a private chat.")


class Refused(UserError):
    """A refusal with the headers its status calls for (WWW-Authenticate, Retry-After)."""

    def __init__(self, key: str, headers: dict[str, str], **values: object) -> None:
        super().__init__(key, **values)
        self.headers = headers


def api_router(core: Core, feed: JobFeed, attempts: Attempts, policy: UploadPolicy) -> APIRouter:
    router = APIRouter(prefix="/api/v1", responses=REFUSALS)  # type: ignore[arg-type]

    async def caller(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
    ) -> Caller:
        """The token's user; a wrong token counts against its sender's address, which is refused once it has
        presented too many (a request without one is no guess, and only told to bring one)."""
        unauthorized = Refused("api.unauthorized", {"WWW-Authenticate": 'Bearer realm="easel"'})
        if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials.strip():
            raise unauthorized
        address = request.client.host if request.client else "-"
        if attempts.exhausted(address):
            raise Refused("api.too_many_attempts", {"Retry-After": "60"})
        found = await core.access.caller(credentials.credentials.strip(), language_of(request))
        if found is None:
            await attempts.failed(address)
            raise unauthorized
        return Caller(core.speaking(found.actor), found.user)

    Who = Annotated[Caller, Depends(caller)]

    def receipt(request: Request, response: Response, given: CoreReceipt) -> schemas.Receipt:
        url = _url(request, f"/api/v1/jobs/{given.job_id}")
        response.headers["Location"] = url
        return schemas.Receipt(id=given.job_id, position=given.position, eta_seconds=given.eta_seconds, url=url)

    @router.post(
        "/jobs",
        status_code=202,
        response_model=schemas.Receipt,
        summary="Ask for a job",
        openapi_extra={"requestBody": _job_request_body()},
    )
    async def submit(request: Request, response: Response, who: Who) -> schemas.Receipt:
        """Every operation and option of the chat commands; images as multipart parts (`image`, `mask`, and
        `images` for a mix) beside the JSON body in a part named `request`. Answered once the job is queued."""
        body, images = await read_request(request, policy)
        ask, axes = ask_of(body, images)
        if axes:
            given = await core.grid(who.actor, API_PLACE, ask, axes)
        else:
            given = await core.submit(who.actor, API_PLACE, ask)
        return receipt(request, response, given)

    @router.get("/jobs", response_model=schemas.JobList, summary="Your newest jobs")
    async def history(request: Request, who: Who, limit: Annotated[int, Query(ge=1, le=100)] = 20) -> schemas.JobList:
        details = await core.job_reads.jobs(who, limit)
        return schemas.JobList(jobs=[_job(request, detail, feed, who) for detail in details])

    @router.get("/jobs/{job_id}", response_model=schemas.Job, summary="One of your jobs")
    async def job(request: Request, job_id: str, who: Who) -> schemas.Job:
        return _job(request, await core.job_reads.job(who, job_id), feed, who)

    @router.get(
        "/jobs/{job_id}/images/{number}",
        summary="One image of your job (1 for the first)",
        response_class=Response,
        responses={200: {"content": {"image/png": {}, "image/jpeg": {}, "image/webp": {}}}},
    )
    async def image(job_id: str, number: int, who: Who) -> Response:
        name, data = await core.job_reads.image(who, job_id, number)
        headers = {"Content-Disposition": f'inline; filename="{name}"', "Cache-Control": "private, max-age=3600"}
        return Response(data, media_type=media_type(name), headers=headers)

    @router.get(
        "/jobs/{job_id}/events",
        summary="The job's progress as server-sent events",
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}}}},
    )
    async def events(request: Request, job_id: str, who: Who) -> StreamingResponse:
        """`state` at once, then `position`, `progress` and `preview` as they come, and the final `done`,
        `failed` or `cancelled` (the whole job) before the stream ends."""
        detail = await core.job_reads.job(who, job_id)

        def shown(given: JobDetail) -> schemas.Job:
            return _job(request, given, feed, who)

        stream = job_events(core, feed, who, detail, shown)
        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return StreamingResponse(stream, media_type="text/event-stream", headers=headers)

    @router.post("/jobs/{job_id}/cancel", response_model=schemas.Cancellation, summary="Cancel your job")
    async def cancel(job_id: str, who: Who) -> schemas.Cancellation:
        detail = await core.job_reads.job(who, job_id)
        cancelled = await core.cancel(who.actor, detail.job_id)
        return schemas.Cancellation(id=cancelled.job_id, outcome=cancelled.outcome)  # type: ignore[arg-type]

    @router.delete("/jobs/{job_id}", status_code=204, response_class=Response, summary="Delete your job and its images")
    async def delete(job_id: str, who: Who) -> Response:
        detail = await core.job_reads.job(who, job_id)
        await core.delete(who.actor, detail.job_id)
        return Response(status_code=204)

    @router.post("/jobs/{job_id}/reroll", status_code=202, response_model=schemas.Receipt, summary="The same, anew")
    async def reroll(request: Request, response: Response, job_id: str, who: Who) -> schemas.Receipt:
        detail = await core.job_reads.job(who, job_id)
        return receipt(request, response, await core.reroll(who.actor, API_PLACE, detail.job_id))

    @router.post("/jobs/{job_id}/variations", status_code=202, response_model=schemas.Receipt, summary="Vary one image")
    async def variations(
        request: Request,
        response: Response,
        job_id: str,
        who: Who,
        chosen: Annotated[schemas.Variations | None, Body()] = None,
    ) -> schemas.Receipt:
        detail = await core.job_reads.job(who, job_id)
        number = chosen.image if chosen is not None else 1
        given = await core.variations(who.actor, API_PLACE, detail.job_id, number - 1)
        return receipt(request, response, given)

    @router.get("/queue", response_model=schemas.Queue, summary="Your jobs in the queue, and its length")
    async def queue(who: Who) -> schemas.Queue:
        entries = await core.queue(who.actor)
        counts = await core.queue_counts()
        return schemas.Queue(
            jobs=[
                schemas.QueueEntry(
                    id=entry.job_id,
                    state=entry.state,  # type: ignore[arg-type]
                    prompt=entry.prompt,
                    position=entry.position,
                    eta_seconds=entry.eta_seconds,
                )
                for entry in entries
            ],
            queued=counts.get("queued", 0),
            running=counts.get("running", 0),
        )

    @router.get("/quota", response_model=schemas.Quota, summary="What you have used of today's quota")
    async def quota(who: Who) -> schemas.Quota:
        status = await core.quota(who.actor)
        return schemas.Quota(
            images=status.images,
            images_limit=status.images_limit,
            gpu_seconds=status.gpu_seconds,
            gpu_seconds_limit=status.gpu_seconds_limit,
        )

    return router


def _job(request: Request, detail: JobDetail, feed: JobFeed, who: Caller) -> schemas.Job:
    base = _url(request, f"/api/v1/jobs/{detail.job_id}")
    return job_body(detail, base, feed.progress(detail.job_id), who.actor.language)


def job_body(detail: JobDetail, base: str, progress: float | None, language: str | None) -> schemas.Job:
    """A job as the API and the pages' event streams show it; its images under `base`/images/N."""
    error = None
    if detail.state == "failed":
        key = failure_key(detail.error_key)
        error = schemas.JobError(key=key, message=render(key, language, job_id=short_id(detail.job_id)))
    return schemas.Job(
        id=detail.job_id,
        operation=detail.operation,
        state=detail.state,  # type: ignore[arg-type]
        prompt=detail.prompt,
        negative=detail.negative_prompt,
        translation=detail.translation,
        seed=detail.seed,
        seeds=[image.seed for image in detail.images] or [detail.seed],
        position=detail.position,
        eta_seconds=detail.eta_seconds,
        progress=1.0 if detail.state == "done" else progress,
        created_at=detail.created_at,
        started_at=detail.started_at,
        finished_at=detail.finished_at,
        parent_id=detail.parent_id,
        images=[
            schemas.JobImage(
                number=image.number,
                url=f"{base}/images/{image.number}",
                width=image.width,
                height=image.height,
                seed=image.seed,
            )
            for image in detail.images
        ],
        error=error,
    )


def _url(request: Request, path: str) -> str:
    return str(request.base_url).rstrip("/") + path


def media_type(name: str) -> str:
    suffix = name.rsplit(".", 1)[-1].lower()
    return {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp"}.get(
        suffix, "application/octet-stream"
    )


def _job_request_body() -> dict[str, object]:
    reference = {"$ref": "#/components/schemas/JobRequest"}
    binary = {"type": "string", "format": "binary"}
    return {
        "required": True,
        "content": {
            "application/json": {"schema": reference},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["request"],
                    "properties": {
                        "request": {**reference, "description": "The job, as the JSON body would give it."},
                        "image": {**binary, "description": "The input image (img2img, inpaint, outpaint...)."},
                        "mask": {**binary, "description": "inpaint: white repaints."},
                        "images": {"type": "array", "items": binary, "description": "mix: 1 to 4 images."},
                    },
                },
                "encoding": {"request": {"contentType": "application/json"}},
            },
        },
    }
