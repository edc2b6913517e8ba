"""What the server refuses before it does any work: a body over the size limit (from its Content-Length, or as
its chunks arrive, before the rest is read) and a client that keeps presenting bad secrets."""

from __future__ import annotations

import json
from collections import OrderedDict

from aiolimiter import AsyncLimiter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bots.errors import UserError
from bots.kit.uploads import MEGABYTE
from bots.texts import render

ADDRESSES_KEPT = 10_000
"""Clients whose failed attempts are remembered; the oldest is forgotten first."""


class BodyLimit:
    """An ASGI middleware: 413 for a request whose body is over `limit` bytes, before the body is read."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        received = 0

        async def counted() -> Message:
            """A body without a declared length is counted as it arrives: past the limit, the application's
            reading raises a refusal, which its error boundary answers (413) like any other."""
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise UserError("api.too_large", limit_mb=f"{self.limit / MEGABYTE:g}")
            return message

        await self.app(scope, counted, send)

    async def _refuse(self, send: Send) -> None:
        values = {"limit_mb": f"{self.limit / MEGABYTE:g}"}
        body = {"error": {"key": "api.too_large", "message": render("api.too_large", None, **values), "values": values}}
        payload = json.dumps(body).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers + [(b"connection", b"close")]})
        await send({"type": "http.response.body", "body": payload})


class Attempts:
    """Failed sign-ins by client address: `per_minute` of them, refilled steadily (aiolimiter's leaky bucket),
    then refused until the bucket has room again."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._buckets: OrderedDict[str, AsyncLimiter] = OrderedDict()

    def exhausted(self, address: str) -> bool:
        bucket = self._buckets.get(address)
        return bucket is not None and not bucket.has_capacity()

    async def failed(self, address: str) -> None:
        bucket = self._buckets.get(address)
        if bucket is None:
            bucket = self._buckets[address] = AsyncLimiter(self.per_minute, 60)
            while len(self._buckets) > ADDRESSES_KEPT:
                self._buckets.popitem(last=False)
        self._buckets.move_to_end(address)
        if bucket.has_capacity():
            await bucket.acquire()
