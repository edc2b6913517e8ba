"""python-telegram-bot's connection to the Bot API on aiohttp instead of its default httpx.

Measured against the fake Bot API (`benchmarks/bot_api_calls.py`; docs/benchmarks.md, "Telegram's calls on
aiohttp"): a `sendMessage` cost the event loop 2.2-2.3 ms of CPU through PTB's `HTTPXRequest` (much of it
httpcore looking at every pooled connection for each request) and 0.5-0.65 ms here; 50 at once took 110-114 ms
instead of 45-57. PTB's `BaseRequest` is its documented interface for another HTTP library: PTB still builds
every request and reads every answer (errors, `retry_after`), this only carries the bytes. aiohttp is already
easel's (discord.py's client is built on it).
"""

from __future__ import annotations

import re

import aiohttp
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput, UploadFileDict
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

_TOKEN_IN_URL = re.compile(r"/bot[^/\s'\"]+")


class AiohttpRequest(BaseRequest):
    """Timeouts as PTB's `HTTPXRequest` takes them: per call, or the defaults given here (a longer write for
    uploads). aiohttp has no write timeout of its own, so the pool, connect, write and read times together bound
    the whole call; like httpx, the proxy variables of the environment are honoured."""

    def __init__(
        self,
        *,
        connection_pool_size: int = 256,
        read_timeout: float | None = 5.0,
        write_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
        media_write_timeout: float | None = 20.0,
    ) -> None:
        self._pool_size = connection_pool_size
        self._read = read_timeout
        self._write = write_timeout
        self._connect = connect_timeout
        self._pool = pool_timeout
        self._media_write = media_write_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        return self._read

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._pool_size)
            self._session = aiohttp.ClientSession(connector=connector, trust_env=True)

    async def shutdown(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if self._session is None or self._session.closed:
            raise RuntimeError("this AiohttpRequest is not initialized")
        files = request_data.multipart_data if request_data else None
        read = _chosen(read_timeout, self._read)
        write = _chosen(write_timeout, self._media_write if files else self._write)
        connect = _chosen(connect_timeout, self._connect)
        pool = _chosen(pool_timeout, self._pool)
        timeout = aiohttp.ClientTimeout(
            total=_sum(pool, connect, write, read), connect=_sum(pool, connect), sock_connect=connect, sock_read=read
        )
        try:
            async with self._session.request(
                method,
                url,
                data=_body(request_data, files),
                headers={"User-Agent": self.USER_AGENT},
                timeout=timeout,
            ) as response:
                return response.status, await response.read()
        except TimeoutError as error:
            raise TimedOut from error
        except aiohttp.ClientError as error:
            raise NetworkError(f"aiohttp.{error.__class__.__name__}: {_without_token(str(error))}") from error


def _without_token(text: str) -> str:
    """aiohttp names the URL in its errors, and a Bot API URL holds the bot's token: errors are logged."""
    return _TOKEN_IN_URL.sub("/bot<token>", text)


def _chosen(given: ODVInput[float], default: float | None) -> float | None:
    return default if isinstance(given, DefaultValue) else given


def _sum(*parts: float | None) -> float | None:
    return None if any(part is None for part in parts) else sum(part for part in parts if part is not None)


def _body(request_data: RequestData | None, files: UploadFileDict | None) -> object:
    """A form as PTB's parameters are sent: URL-encoded, or multipart where a file goes with them."""
    if request_data is None:
        return None
    if not files:
        return request_data.json_parameters
    form = aiohttp.FormData()
    for name, value in request_data.json_parameters.items():
        form.add_field(name, value)
    for name, (file_name, content, mime_type) in files.items():
        form.add_field(name, content, filename=file_name, content_type=mime_type)
    return form
