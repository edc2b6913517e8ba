"""The Bot API connection on aiohttp (bots.telegram.aiohttp_request) against a server on 127.0.0.1 that misbehaves
the ways a network does: what PTB gets back, and that no error it logs holds the bot's token."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from easel_process import free_port
from telegram import Bot
from telegram.error import NetworkError, TimedOut

from bots.telegram.aiohttp_request import AiohttpRequest

TOKEN = "123456:SECRET-token"


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, dict[str, object]]]:
    """`sendMessage` and `sendPhoto` note what they were sent and answer with a message; `slow` answers after
    2 s; `drop` closes the connection without an answer; `loop` redirects to itself, as a broken proxy might."""
    seen: dict[str, object] = {}

    async def echo(request: web.Request) -> web.Response:
        seen.clear()
        for name, value in (await request.post()).items():
            seen[name] = value.file.read() if isinstance(value, web.FileField) else value
        seen["User-Agent"] = request.headers["User-Agent"]
        message = {"message_id": 7, "date": 0, "chat": {"id": int(str(seen["chat_id"])), "type": "private"}}
        return web.json_response({"ok": True, "result": message})

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.json_response({"ok": True, "result": True})

    async def drop(request: web.Request) -> web.Response:
        assert request.transport is not None
        request.transport.close()
        return web.Response()

    async def loop(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect(request.path)

    app = web.Application()
    app.router.add_post(f"/bot{TOKEN}/sendMessage", echo)
    app.router.add_post(f"/bot{TOKEN}/sendPhoto", echo)
    app.router.add_post(f"/bot{TOKEN}/slow", slow)
    app.router.add_post(f"/bot{TOKEN}/drop", drop)
    app.router.add_post(f"/bot{TOKEN}/loop", loop)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/bot{TOKEN}", seen
    finally:
        await runner.cleanup()


@pytest.fixture
async def request_() -> AsyncIterator[AiohttpRequest]:
    request = AiohttpRequest(read_timeout=0.3)
    await request.initialize()
    try:
        yield request
    finally:
        await request.shutdown()


async def test_parameters_and_files_reach_the_server_as_ptb_sends_them(
    server: tuple[str, dict[str, object]], request_: AiohttpRequest
) -> None:
    base, seen = server
    bot = Bot(TOKEN, base_url=base.removesuffix(TOKEN), request=request_)
    message = await bot.send_photo(42, b"\x89PNG bytes", caption="a lighthouse", filename="a.png")
    assert message.message_id == 7 and message.chat.id == 42
    assert seen["chat_id"] == "42" and seen["caption"] == "a lighthouse" and seen["photo"] == b"\x89PNG bytes"
    assert str(seen["User-Agent"]).startswith("python-telegram-bot")
    await bot.send_message(42, "только текст")
    assert seen["text"] == "только текст" and "photo" not in seen


async def test_a_late_answer_is_a_timeout_and_a_dropped_or_refused_connection_a_network_error_without_the_token(
    server: tuple[str, dict[str, object]], request_: AiohttpRequest
) -> None:
    base, _ = server
    with pytest.raises(TimedOut):
        await request_.post(f"{base}/slow")
    assert await request_.post(f"{base}/slow", read_timeout=3) is True, "a call's own timeout wins"
    with pytest.raises(NetworkError) as dropped:
        await request_.post(f"{base}/drop")
    closed = f"http://127.0.0.1:{free_port()}/bot{TOKEN}/sendMessage"
    with pytest.raises(NetworkError) as refused:
        await request_.post(closed)
    with pytest.raises(NetworkError) as looped:
        await request_.post(f"{base}/loop")
    assert "/bot<token>/loop" in str(looped.value), "aiohttp names the URL there"
    for error in (dropped.value, refused.value, looped.value):
        assert not isinstance(error, TimedOut)
        assert TOKEN not in str(error) and "SECRET" not in str(error), str(error)
        assert str(error).startswith("aiohttp.")


async def test_a_request_not_initialized_or_shut_down_refuses_clearly(
    server: tuple[str, dict[str, object]],
) -> None:
    base, _ = server
    request = AiohttpRequest()
    with pytest.raises(RuntimeError, match="not initialized"):
        await request.do_request(f"{base}/sendMessage", "POST")
    await request.initialize()
    await request.shutdown()
    with pytest.raises(RuntimeError, match="not initialized"):
        await request.do_request(f"{base}/sendMessage", "POST")
