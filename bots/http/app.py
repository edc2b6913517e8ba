"""The HTTP application: FastAPI (on Starlette), chosen over hand-written aiohttp routes because it validates
each request against the same pydantic models it writes the OpenAPI document from, so the document at
/api/v1/openapi.json is the server's own contract, which schemathesis then checks against the running server.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Response
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp

from bots.config import HttpSettings
from bots.core.facade import Core
from bots.core.health import HealthCheck
from bots.core.metrics import CONTENT_TYPE
from bots.http import schemas
from bots.http.api import api_router
from bots.http.feed import JobFeed
from bots.http.guards import Attempts, BodyLimit
from bots.http.web.errors import web_errors
from bots.http.web.moderation import moderation_router
from bots.http.web.pages import web_router
from bots.http.web.rendering import Pages
from bots.kit.uploads import MEGABYTE, UploadPolicy

OPENAPI_PATH = "/api/v1/openapi.json"


def http_app(core: Core, settings: HttpSettings, health: HealthCheck, feed: JobFeed) -> ASGIApp:
    app = FastAPI(
        title="easel",
        version="1",
        summary="Images from Kandinsky 2.2 on the same fair queue, quotas and moderation as the chat bots.",
        openapi_url=OPENAPI_PATH,
        docs_url=None,
        redoc_url=None,
    )
    attempts = Attempts(settings.sign_in_attempts_per_minute)
    pages = Pages()
    app.include_router(api_router(core, feed, attempts, UploadPolicy(settings.max_upload_mb)))
    app.include_router(web_router(core, settings, feed, attempts, pages))
    app.include_router(moderation_router(core, pages))
    web_errors(app, core, pages)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> Response:
        """200 when the database answers and the worker runs, 503 otherwise; each check as JSON."""
        found = await health.check()
        return JSONResponse({"ok": found.ok, **found.checks}, status_code=200 if found.ok else 503)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(await core.exposition(), headers={"Content-Type": CONTENT_TYPE})

    def openapi() -> dict[str, Any]:
        """FastAPI's document, with the job request's schema, which the submit endpoint reads by hand (JSON or
        multipart) and so names only by reference."""
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
            components = document.setdefault("components", {}).setdefault("schemas", {})
            for model in (schemas.JobRequest, schemas.GridAxes):
                schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(schema.pop("$defs", {}))
                components[model.__name__] = schema
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return BodyLimit(app, int(settings.max_request_mb * MEGABYTE))
