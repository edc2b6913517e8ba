"""Pages from Jinja2 templates in the reader's language, from the chat texts' catalogs (`t("web.gallery")`), with
headers that keep them to themselves: a content security policy that runs no script but the pages' own, no
framing by other sites, and no caching of what is private."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from bots.core.types import JobDetail, short_id
from bots.formatting import eta_text, failure_key
from bots.http import schemas
from bots.http.api import job_body
from bots.texts import render, resolve_language

TEMPLATES = Path(__file__).with_name("templates")
RIGHT_TO_LEFT = frozenset({"ar", "fa", "he", "ur"})
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
ACTIVE = frozenset({"queued", "running"})


@dataclass(frozen=True)
class JobView:
    """A job as a page shows it."""

    detail: JobDetail
    progress: float | None = None

    @property
    def id(self) -> str:
        return self.detail.job_id

    @property
    def short(self) -> str:
        return short_id(self.detail.job_id)

    @property
    def active(self) -> bool:
        return self.detail.state in ACTIVE

    @property
    def percent(self) -> int:
        return int((self.progress or 0) * 100)

    @property
    def seeds(self) -> str:
        return ", ".join(str(image.seed) for image in self.detail.images) or str(self.detail.seed)


class Pages:
    def __init__(self) -> None:
        self.environment = Environment(
            loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]), auto_reload=False
        )

    def render(
        self, request: Request, name: str, language: str | None, status: int = 200, **values: Any
    ) -> HTMLResponse:
        language = resolve_language(language)

        def text(key: str, **more: Any) -> str:
            return render(key, language, **more)

        def failure(view: JobView) -> str:
            return text(failure_key(view.detail.error_key), job_id=view.short)

        page = self.environment.get_template(name).render(
            t=text,
            lang=language,
            direction="rtl" if language in RIGHT_TO_LEFT else "ltr",
            eta=lambda seconds: eta_text(seconds, language),
            failure=failure,
            path=request.url.path,
            **values,
        )
        return HTMLResponse(page, status_code=status, headers=HEADERS)

    @staticmethod
    def shown(detail: JobDetail, language: str | None) -> schemas.Job:
        return job_body(detail, f"/web/jobs/{detail.job_id}", None, language)
