"""A fake Telegram Bot API server on 127.0.0.1, for the real python-telegram-bot client.

It speaks the wire protocol PTB uses: `POST /bot<token>/<method>` with a form, multipart or JSON body
(`reply_markup`, `media`, `entities` are JSON strings inside forms), answers `{"ok": ..., "result": ...}`,
long-polls `getUpdates`, and serves uploaded files under `/file/bot<token>/<path>`. Tests push updates
(what users do), name the administrators of groups (`admin`), and read `calls` and `messages` (what the bot
did). Like Telegram it refuses texts over 4096 characters and captions over 1024, and under flood control
(`flood`) answers 429 with `retry_after`, noting every call that came before that time (`early`). It can be
unreachable: not started yet, stopped (`stop`, then `start` again on the same port), or `down`, when every
connection is dropped without an answer.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from PIL import Image

TOKEN = "123456:TEST-token"
MESSAGE_LIMIT = 4096
CAPTION_LIMIT = 1024
ANSWER_LIMIT = 200
BOT_USER = {"id": 123456, "is_bot": True, "first_name": "easel", "username": "easel_bot"}


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)
    file_names: dict[str, str] = field(default_factory=dict)


@dataclass
class Failure:
    """An error the next matching call gets instead of its result."""

    method: str
    code: int
    description: str
    retry_after: int | None = None
    after: int = 0
    """How many matching calls succeed before this one fails."""


class FakeTelegram:
    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.calls: list[Call] = []
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}
        """Every message in every chat, by (chat id, message id): the bot's as they are now, and the users'."""
        self.deleted: set[tuple[int, int]] = set()
        self.files: dict[str, bytes] = {}
        self.reported_sizes: dict[str, int] = {}
        self.failures: list[Failure] = []
        self.admins: dict[int, list[dict[str, Any]]] = {}
        """`getChatAdministrators` answers, by chat id: ChatMemberOwner and ChatMemberAdministrator objects."""
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(100)
        self._file_ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.early: list[Call] = []
        """Calls to a chat that came before the `retry_after` it was given had passed."""
        self._floods: dict[int, tuple[int, int]] = {}
        self._quiet_until: dict[int, float] = {}
        self.down = False
        self.dropped: list[str] = []
        """The methods of the calls whose connection was dropped while `down`."""
        self.down_after: str | None = None
        """A method: the fake goes `down` as soon as it has answered the next call of it."""
        self.on_offset: Callable[[int], object] | None = None
        """Called with each `getUpdates` offset as it arrives, the moment the bot confirms the updates before it."""
        self.held: dict[str, int] = {}
        """Methods whose calls get no answer, each after that many answered calls: a call that reached Telegram, its
        answer not back yet (a process killed then cannot know it went). A held call is carried out and answered
        when the test `release`s it while its client still waits; it is not carried out when the fake stops, or
        when its client has gone (killed)."""
        self._released = asyncio.Event()
        self._stopping = False
        self.latency: dict[str, float] = {}
        """Seconds that calls of a method take to be answered, as an upload over a real network does (benchmarks)."""

    # --- lifetime --------------------------------------------------------------------------

    async def start(self, port: int | None = None) -> None:
        """Listen on `port`, else on the port of an earlier start, else on a free one."""
        self._stopping, self._released = False, asyncio.Event()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/bot{token}/{method}", self._method)
        app.router.add_get("/file/bot{token}/{path:.+}", self._file)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port or self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        self._stopping = True
        self._released.set()
        async with self._changed:  # a long poll in progress returns now, not at its timeout
            self._changed.notify_all()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def file_base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    # --- what users do ---------------------------------------------------------------------

    def user(self, user_id: int, name: str, language: str | None = "en") -> dict[str, Any]:
        person: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": name, "username": name.lower()}
        if language:
            person["language_code"] = language
        return person

    @staticmethod
    def private(user: dict[str, Any]) -> dict[str, Any]:
        return {"id": user["id"], "type": "private", "first_name": user["first_name"]}

    @staticmethod
    def group(chat_id: int = -1001, title: str = "Artists") -> dict[str, Any]:
        return {"id": chat_id, "type": "supergroup", "title": title}

    def text(
        self, user: dict[str, Any], chat: dict[str, Any], text: str, reply_to: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        message = self._message(user, chat, reply_to, text=text)
        entities = _entities(text)
        if entities:
            message["entities"] = entities
        return self._push(message)

    def photo(
        self,
        user: dict[str, Any],
        chat: dict[str, Any],
        data: bytes,
        caption: str | None = None,
        *,
        reply_to: dict[str, Any] | None = None,
        media_group_id: str | None = None,
        reported_size: int | None = None,
    ) -> dict[str, Any]:
        width, height = Image.open(io.BytesIO(data)).size
        file_id = self.upload(data, "photos/photo.jpg", reported_size)
        sizes = [{"file_id": file_id, "file_unique_id": file_id, "width": width, "height": height}]
        sizes[0]["file_size"] = self.reported_sizes.get(file_id, len(data))
        message = self._message(user, chat, reply_to, photo=sizes)
        return self._push(self._captioned(message, caption, media_group_id))

    def document(
        self,
        user: dict[str, Any],
        chat: dict[str, Any],
        data: bytes,
        file_name: str,
        mime_type: str,
        caption: str | None = None,
        *,
        reply_to: dict[str, Any] | None = None,
        reported_size: int | None = None,
    ) -> dict[str, Any]:
        file_id = self.upload(data, f"documents/{file_name}", reported_size)
        document = {
            "file_id": file_id,
            "file_unique_id": file_id,
            "file_name": file_name,
            "mime_type": mime_type,
            "file_size": self.reported_sizes.get(file_id, len(data)),
        }
        message = self._message(user, chat, reply_to, document=document)
        return self._push(self._captioned(message, caption, None))

    def press(self, user: dict[str, Any], message: dict[str, Any], data: str) -> None:
        """A tap on an inline button of `message` (a bot message)."""
        query = {"id": str(next(self._update_ids)), "from": user, "chat_instance": "1", "data": data}
        query["message"] = message
        self._add_update({"callback_query": query})

    def admin(self, chat: dict[str, Any], user: dict[str, Any], *, creator: bool = False) -> None:
        """Make `user` an administrator (or the creator) of the group `chat`."""
        member: dict[str, Any] = {"user": user, "is_anonymous": False}
        if creator:
            member["status"] = "creator"
        else:
            member["status"] = "administrator"
            member.update(dict.fromkeys(_ADMIN_RIGHTS, True))
            member["can_be_edited"] = False
        self.admins.setdefault(chat["id"], []).append(member)

    def upload(self, data: bytes, path: str, reported_size: int | None = None) -> str:
        file_id = f"file-{next(self._file_ids)}"
        self.files[file_id] = data
        self.files[f"path:{file_id}/{path}"] = data
        if reported_size is not None:
            self.reported_sizes[file_id] = reported_size
        return file_id

    def fail(self, method: str, code: int, description: str, retry_after: int | None = None, after: int = 0) -> None:
        self.failures.append(Failure(method, code, description, retry_after, after))

    def release(self) -> None:
        """The held calls whose clients still wait are carried out and answered; no call is held from now on."""
        self.held = {}
        self._released.set()
        self._released = asyncio.Event()

    def flood(self, chat_id: int, calls: int, retry_after: int) -> None:
        """Flood control in a chat: its next `calls` calls are refused with 429 and `retry_after`; a call before
        that time has passed is refused too, and noted in `early`."""
        self._floods[chat_id] = (calls, retry_after)

    # --- what the bot did --------------------------------------------------------------------

    def sent(self, *methods: str) -> list[Call]:
        return [call for call in self.calls if call.method in methods]

    def bot_messages(self, chat_id: int) -> list[dict[str, Any]]:
        """The bot's messages still in the chat, oldest first."""
        return [
            message
            for (chat, message_id), message in sorted(self.messages.items())
            if chat == chat_id and message["from"]["id"] == BOT_USER["id"] and (chat, message_id) not in self.deleted
        ]

    def images(self, chat_id: int) -> list[dict[str, Any]]:
        return [message for message in self.bot_messages(chat_id) if "photo" in message or "document" in message]

    def texts(self, chat_id: int) -> list[str]:
        return [message.get("text", message.get("caption", "")) for message in self.bot_messages(chat_id)]

    async def wait_for(
        self, condition: Callable[[], Any], timeout: float = 30.0, what: str = "the bot to answer"
    ) -> Any:
        """Wait until `condition()` is truthy (it is checked after every call the bot makes)."""
        deadline = time.monotonic() + timeout
        async with self._changed:
            while not (result := condition()):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    recent = [(call.method, call.params) for call in self.calls[-8:]]
                    raise AssertionError(f"timed out waiting for {what}; last calls: {recent}")
                try:
                    await asyncio.wait_for(self._changed.wait(), remaining)
                except TimeoutError:
                    continue
            return result

    # --- the protocol ------------------------------------------------------------------------

    def _message(
        self, user: dict[str, Any], chat: dict[str, Any], reply_to: dict[str, Any] | None, **content: Any
    ) -> dict[str, Any]:
        message = {"message_id": next(self._message_ids), "date": int(time.time()), "chat": chat, "from": user}
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        message.update(content)
        self.messages[(chat["id"], message["message_id"])] = message
        return message

    @staticmethod
    def _captioned(message: dict[str, Any], caption: str | None, media_group_id: str | None) -> dict[str, Any]:
        if caption is not None:
            message["caption"] = caption
            entities = _entities(caption)
            if entities:
                message["caption_entities"] = entities
        if media_group_id is not None:
            message["media_group_id"] = media_group_id
        return message

    def _push(self, message: dict[str, Any]) -> dict[str, Any]:
        self._add_update({"message": message})
        return message

    def _add_update(self, update: dict[str, Any]) -> None:
        self._updates.append({"update_id": next(self._update_ids), **update})
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _method(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        method = request.match_info["method"]
        if self.down:
            return self._drop(request, method)
        params, files, file_names = await _read_body(request)
        if method in self.latency:
            await asyncio.sleep(self.latency[method])
        call = Call(method, params, files, file_names)
        if method != "getUpdates":
            self.calls.append(call)
        if self._held(method):
            await self._released.wait()
            if self._stopping or request.transport is None or request.transport.is_closing():
                return _error(503, "Service Unavailable: held")
        flooded = self._flooded(call)
        if flooded is not None:
            await self._notify()
            return flooded
        failure = next((failure for failure in self.failures if failure.method == method), None)
        if failure is not None and failure.after > 0:
            failure.after -= 1
        elif failure is not None:
            self.failures.remove(failure)
            await self._notify()
            return _error(failure.code, failure.description, failure.retry_after)
        handler = getattr(self, f"_{method}", None)
        if handler is None:
            return _error(404, f"Not Found: method {method} is not faked")
        try:
            result = await handler(call)
        except LookupError as error:
            return _error(400, f"Bad Request: {error}")
        finally:
            await self._notify()
        if method == self.down_after:
            self.down, self.down_after = True, None
        return web.json_response({"ok": True, "result": result})

    def _held(self, method: str) -> bool:
        if method not in self.held:
            return False
        if self.held[method] > 0:
            self.held[method] -= 1
            return False
        return True

    def _flooded(self, call: Call) -> web.Response | None:
        """A 429 for a call to a chat under flood control; None when the call may go through."""
        if "chat_id" not in call.params:
            return None
        chat_id, now = int(call.params["chat_id"]), time.monotonic()
        quiet_until = self._quiet_until.get(chat_id, 0.0)
        if now < quiet_until:
            self.early.append(call)
            return _error(429, "Too Many Requests: retry later", max(1, round(quiet_until - now)))
        calls, retry_after = self._floods.get(chat_id, (0, 0))
        if calls <= 0:
            return None
        self._floods[chat_id] = (calls - 1, retry_after)
        self._quiet_until[chat_id] = now + retry_after
        return _error(429, f"Too Many Requests: retry after {retry_after}", retry_after)

    def _drop(self, request: web.Request, method: str) -> web.Response:
        """An unreachable Telegram: the connection closes without an answer."""
        self.dropped.append(method)
        assert request.transport is not None
        request.transport.close()
        return web.Response()

    async def _file(self, request: web.Request) -> web.Response:
        data = self.files.get(f"path:{request.match_info['path']}")
        if request.match_info["token"] != self.token or data is None:
            return web.Response(status=404)
        return web.Response(body=data, content_type="application/octet-stream")

    async def _getMe(self, call: Call) -> dict[str, Any]:
        return {**BOT_USER, "can_join_groups": True, "can_read_all_group_messages": False}

    async def _deleteWebhook(self, call: Call) -> bool:
        return True

    async def _setWebhook(self, call: Call) -> bool:
        return True

    async def _setMyCommands(self, call: Call) -> bool:
        return True

    async def _getUpdates(self, call: Call) -> list[dict[str, Any]]:
        offset = int(call.params.get("offset", 0))
        if self.on_offset is not None:
            self.on_offset(offset)
        timeout = min(float(call.params.get("timeout", 0)), 1.0)
        self._updates = [update for update in self._updates if update["update_id"] >= offset]
        if not self._updates and timeout:
            async with self._changed:
                try:
                    await asyncio.wait_for(
                        self._changed.wait_for(lambda: bool(self._updates) or self._stopping), timeout
                    )
                except TimeoutError:
                    pass
        return list(self._updates)

    async def _sendMessage(self, call: Call) -> dict[str, Any]:
        return self._bot_message(call, text=_text(call))

    async def _sendPhoto(self, call: Call) -> dict[str, Any]:
        data = call.files["photo"]
        width, height = Image.open(io.BytesIO(data)).size
        file_id = self.upload(data, "photos/out.png")
        size = {"file_id": file_id, "file_unique_id": file_id, "width": width, "height": height, "file_size": len(data)}
        spoiler = {"has_media_spoiler": True} if call.params.get("has_spoiler") else {}
        return self._bot_message(call, photo=[size], **_caption(call), **spoiler)

    async def _sendDocument(self, call: Call) -> dict[str, Any]:
        data = call.files["document"]
        file_id = self.upload(data, "documents/out")
        document = {"file_id": file_id, "file_unique_id": file_id, "file_size": len(data)}
        if "document" in call.file_names:
            document["file_name"] = call.file_names["document"]
        return self._bot_message(call, document=document, **_caption(call))

    async def _editMessageText(self, call: Call) -> dict[str, Any]:
        message = self._existing(call)
        if "text" not in message:
            raise LookupError("there is no text in the message to edit")
        if message.get("text") == call.params["text"] and message.get("reply_markup") == call.params.get(
            "reply_markup"
        ):
            raise LookupError("message is not modified")
        message["text"] = _text(call)
        _set_markup(message, call)
        return message

    async def _editMessageCaption(self, call: Call) -> dict[str, Any]:
        message = self._existing(call)
        if "photo" not in message and "document" not in message:
            raise LookupError("there is no caption in the message to edit")
        if message.get("caption") == call.params.get("caption") and message.get("reply_markup") == call.params.get(
            "reply_markup"
        ):
            raise LookupError("message is not modified")
        message.pop("caption", None)
        message.update(_caption(call))
        _set_markup(message, call)
        return message

    async def _editMessageMedia(self, call: Call) -> dict[str, Any]:
        """Media into a message, a text message included (Bot API 9: "or to add media to text messages")."""
        message = self._existing(call)
        media = call.params["media"]
        if media.get("type") != "photo":
            raise LookupError("only photos are faked")
        data = call.files[media["media"].removeprefix("attach://")]
        width, height = Image.open(io.BytesIO(data)).size
        file_id = self.upload(data, "photos/preview.jpg")
        message.pop("text", None)
        message.pop("caption", None)
        message["photo"] = [{"file_id": file_id, "file_unique_id": file_id, "width": width, "height": height}]
        if "caption" in media:
            message["caption"] = media["caption"]
        message["has_media_spoiler"] = bool(media.get("has_spoiler"))
        _set_markup(message, call)
        return message

    async def _editMessageReplyMarkup(self, call: Call) -> dict[str, Any]:
        message = self._existing(call)
        _set_markup(message, call)
        return message

    async def _deleteMessage(self, call: Call) -> bool:
        self._existing(call)
        self.deleted.add((int(call.params["chat_id"]), int(call.params["message_id"])))
        return True

    async def _answerCallbackQuery(self, call: Call) -> bool:
        if len(call.params.get("text", "")) > ANSWER_LIMIT:
            raise LookupError("MESSAGE_TOO_LONG")
        return True

    async def _sendChatAction(self, call: Call) -> bool:
        return True

    async def _getChatAdministrators(self, call: Call) -> list[dict[str, Any]]:
        chat_id = int(call.params["chat_id"])
        if chat_id > 0:
            raise LookupError("there are no administrators in the private chat")
        return self.admins.get(chat_id, [])

    async def _getFile(self, call: Call) -> dict[str, Any]:
        file_id = call.params["file_id"]
        path = next((key[5:] for key in self.files if key.startswith(f"path:{file_id}/")), None)
        if path is None:
            raise LookupError("wrong file_id")
        size = self.reported_sizes.get(file_id, len(self.files[file_id]))
        return {"file_id": file_id, "file_unique_id": file_id, "file_size": size, "file_path": path}

    def _existing(self, call: Call) -> dict[str, Any]:
        key = (int(call.params["chat_id"]), int(call.params["message_id"]))
        if key not in self.messages or key in self.deleted:
            raise LookupError("message to edit not found")
        return self.messages[key]

    def _bot_message(self, call: Call, **content: Any) -> dict[str, Any]:
        chat_id = int(call.params["chat_id"])
        chat = next(
            (message["chat"] for (chat, _), message in self.messages.items() if chat == chat_id),
            {"id": chat_id, "type": "private"},
        )
        reply_to = None
        if "reply_parameters" in call.params:
            reply_to = self.messages.get((chat_id, int(call.params["reply_parameters"]["message_id"])))
            if reply_to is None:
                raise LookupError("message to be replied not found")
        message = self._message(BOT_USER, chat, reply_to, **content)
        _set_markup(message, call)
        return message


_ADMIN_RIGHTS = (
    "can_manage_chat",
    "can_delete_messages",
    "can_manage_video_chats",
    "can_restrict_members",
    "can_promote_members",
    "can_change_info",
    "can_invite_users",
    "can_post_stories",
    "can_edit_stories",
    "can_delete_stories",
)


def _entities(text: str) -> list[dict[str, Any]]:
    """Telegram marks a leading /command and @mentions as entities; PTB's filters and handlers read them."""
    entities = []
    if text.startswith("/"):
        length = len(text.split()[0]) if text.split() else 1
        entities.append({"type": "bot_command", "offset": 0, "length": length})
    position = 0
    for word in text.split(" "):
        if word.startswith("@") and len(word) > 1:
            entities.append({"type": "mention", "offset": position, "length": len(word)})
        position += len(word) + 1
    return entities


def _text(call: Call) -> str:
    text: str = call.params["text"]
    if len(text) > MESSAGE_LIMIT:
        raise LookupError("message is too long")
    return text


def _caption(call: Call) -> dict[str, Any]:
    if "caption" not in call.params:
        return {}
    if len(call.params["caption"]) > CAPTION_LIMIT:
        raise LookupError("message caption is too long")
    return {"caption": call.params["caption"]}


def _set_markup(message: dict[str, Any], call: Call) -> None:
    """A message keeps only an inline keyboard; a force-reply or keyboard markup acts on the client only."""
    markup = call.params.get("reply_markup")
    if isinstance(markup, dict) and "inline_keyboard" in markup:
        message["reply_markup"] = markup
    else:
        message.pop("reply_markup", None)


async def _read_body(request: web.Request) -> tuple[dict[str, Any], dict[str, bytes], dict[str, str]]:
    """The parameters, the uploaded files and their file names, by field."""
    if request.content_type == "application/json":
        body = await request.json()
        return {key: _decoded(value) for key, value in body.items()}, {}, {}
    params: dict[str, Any] = {}
    files: dict[str, bytes] = {}
    file_names: dict[str, str] = {}
    form = await request.post()
    for key, value in form.items():
        if isinstance(value, web.FileField):
            files[key] = value.file.read()
            file_names[key] = value.filename
        else:
            params[key] = _decoded(value)
    for key, value in list(params.items()):
        if isinstance(value, str) and value.startswith("attach://"):
            files[key] = files[value[len("attach://") :]]
            file_names[key] = file_names[value[len("attach://") :]]
    return params, files, file_names


def _decoded(value: Any) -> Any:
    """PTB sends objects, arrays and booleans as JSON text inside forms."""
    if value in ("true", "false"):
        return value == "true"
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _error(code: int, description: str, retry_after: int | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return web.json_response(body, status=code)
