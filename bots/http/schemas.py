"""The REST API's bodies, as pydantic models: FastAPI validates requests and writes the OpenAPI document from
the same classes, so the document cannot drift from what the server does.

A request names its options as the chat commands do (`steps`, `guidance`, `negative`...), and each option is
read by the chat's own option parser (`bots.parsing.parse_option`), so every value is checked by the same rules
and refused in the same words as `/imagine --steps 500`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Operation = Literal["txt2img", "img2img", "inpaint", "mix", "outpaint", "remix", "depth", "grid"]
State = Literal["queued", "running", "done", "failed", "cancelled"]


class GridAxes(BaseModel):
    """A grid's varied options, each with 2 or more values (up to three options)."""

    model_config = ConfigDict(extra="forbid")

    steps: list[int] | None = None
    guidance: list[float] | None = None
    prior_steps: list[int] | None = None
    seed: list[int] | None = None


class JobRequest(BaseModel):
    """A job as `/imagine` and its sister commands ask for one. Images (img2img, inpaint, outpaint, remix,
    depth, mix) come as multipart parts beside this body."""

    model_config = ConfigDict(extra="forbid")

    operation: Operation = "txt2img"
    prompt: str = Field("", max_length=4000)
    negative: str | None = Field(None, max_length=4000, description="What to keep out of the image (`--neg`).")
    size: str | None = Field(None, description="WIDTHxHEIGHT, such as 768x512 (`--size`).", max_length=32)
    aspect: str | None = Field(None, description="An aspect ratio, such as 16:9 (`--ar`).", max_length=32)
    width: int | None = None
    height: int | None = None
    steps: int | None = None
    prior_steps: int | None = None
    guidance: float | None = None
    strength: float | None = Field(None, description="How far from the input image (img2img, remix, depth).")
    seed: int | None = None
    count: int | None = None
    style: str | None = Field(None, max_length=64)
    zoom: float | None = Field(None, description="outpaint: how far to zoom out.")
    pan: Literal["left", "right", "up", "down"] | None = Field(None, description="outpaint: which way to extend.")
    region: str | None = Field(None, description="inpaint: the area to repaint (`--region`).", max_length=64)
    weights: list[float] | None = Field(None, description="mix: one weight per item, in order.")
    language: str | None = Field(None, description="The prompt's language, when it should not be detected.")
    mix: list[str] = Field(default_factory=list, description="mix: texts to blend (images come as parts).")
    grid: GridAxes | None = Field(None, description="grid: the options to vary, each a list of values.")


class Receipt(BaseModel):
    id: str
    state: State = "queued"
    position: int | None = Field(None, description="1 is next; None once running.")
    eta_seconds: float | None = None
    url: str = Field(description="This job, under /api/v1.")


class JobImage(BaseModel):
    number: int = Field(description="1 for the first image.")
    url: str
    width: int
    height: int
    seed: int


class JobError(BaseModel):
    key: str
    message: str


class Job(BaseModel):
    id: str
    operation: str
    state: State
    prompt: str
    negative: str
    translation: str | None = Field(None, description="The English prompt the model was given, if translated.")
    seed: int
    seeds: list[int]
    position: int | None = None
    eta_seconds: float | None = None
    progress: float | None = Field(None, description="0 to 1 while running, when this server saw it.")
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    parent_id: str | None = None
    images: list[JobImage]
    error: JobError | None = None


class JobList(BaseModel):
    jobs: list[Job]


class Cancellation(BaseModel):
    id: str
    outcome: Literal["queued", "running"] = Field(
        description="queued: removed from the queue; running: stops at its next step."
    )


class Variations(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image: int = Field(1, description="Which of the job's images to vary, 1 for the first.")


class QueueEntry(BaseModel):
    id: str
    state: State
    prompt: str
    position: int | None
    eta_seconds: float | None


class Queue(BaseModel):
    jobs: list[QueueEntry] = Field(description="The caller's jobs still queued or running.")
    queued: int = Field(description="Jobs queued, everyone's.")
    running: int = Field(description="Jobs running, everyone's.")


class Quota(BaseModel):
    images: int
    images_limit: int
    gpu_seconds: float
    gpu_seconds_limit: float


class ErrorDetail(BaseModel):
    key: str = Field(description="The message key, as in the chat texts' catalogs.")
    message: str = Field(description="The message in the caller's language (Accept-Language).")
    values: dict[str, str] = Field(default_factory=dict)


class ErrorBody(BaseModel):
    error: ErrorDetail
