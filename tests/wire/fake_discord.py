"""A fake Discord for wire tests: the REST API, the CDN and the gateway, served by aiohttp on 127.0.0.1.

It implements what the real discord.py client needs to log in, connect, receive interactions and messages, and
answer them: interaction callbacks, the interaction webhook (original response and follow-ups), channel
messages, command registration and attachment downloads. It keeps every message, so tests can look at what a
user would see. Facts it relies on: the client asks for a compressed gateway but decompresses only binary
frames, so frames here are plain text JSON; discord.py parses a body only when its Content-Type is exactly
`application/json`; a 429 is retried only when it carries a `Via` header (otherwise it looks like a ban). Like
Discord it refuses a message content over 2000 characters, an interaction's first answer after 3 seconds (10062)
and any second one (40060), and notes every edit that came before the `retry_after` of a 429 had passed
(`early`). It can be unreachable: not started yet, or stopped and started again on the same port; or only its
gateway can be (`gateway_down`: the upgrade is refused). Like Discord it honours a channel post's `nonce` with
`enforce_nonce` (`nonce_window`), and it can tell a test the moment it has carried out a channel message request,
just before its answer goes (`answered`), so that a test can kill the client before it can act on the answer.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import WSMsgType, web

DISCORD_EPOCH_MS = 1_420_070_400_000
APPLICATION_ID = 900_000_000_000_000_001
BOT_ID = APPLICATION_ID
GUILD_ID = 900_000_000_000_000_100
CHANNEL_ID = 900_000_000_000_000_200
EPHEMERAL = 64
LOADING = 128
MESSAGE_CONTENT_INTENT = 1 << 15
ALL_PERMISSIONS = (1 << 50) - 1
MANAGE_GUILD = 1 << 5
MEMBER_PERMISSIONS = ALL_PERMISSIONS & ~(MANAGE_GUILD | 1 << 3)
"""A member who may do everything in the channel but manage the server (neither Manage Server nor Administrator)."""
TOKEN_LIFETIME = timedelta(minutes=15)
ANSWER_WINDOW = 3.0
"""Seconds Discord waits for an interaction's first answer; later, a callback is told the interaction is unknown."""
MESSAGE_LIMIT = 2000

BOT_USER = {"id": str(BOT_ID), "username": "easel", "discriminator": "0", "avatar": None, "bot": True}


def user(user_id: int, name: str) -> dict[str, Any]:
    return {"id": str(user_id), "username": name, "global_name": name, "discriminator": "0", "avatar": None}


@dataclass
class FakeChannel:
    """A text channel of a guild; `nsfw` is its age restriction."""

    id: int
    name: str
    guild_id: int = GUILD_ID
    nsfw: bool = False

    def payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "type": 0,
            "guild_id": str(self.guild_id),
            "name": self.name,
            "position": 0,
            "permission_overwrites": [],
            "nsfw": self.nsfw,
            "parent_id": None,
        }


@dataclass
class FakeMessage:
    id: int
    channel_id: int
    author: dict[str, Any]
    content: str = ""
    flags: int = 0
    components: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[dict[str, Any]] = field(default_factory=list)
    reference: int | None = None
    interaction_id: int | None = None
    deleted: bool = False
    edits: int = 0
    allowed_mentions: dict[str, Any] | None = None

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & EPHEMERAL)

    @property
    def loading(self) -> bool:
        return bool(self.flags & LOADING)

    def custom_ids(self) -> list[str]:
        found: list[str] = []

        def walk(components: list[dict[str, Any]]) -> None:
            for component in components:
                if "custom_id" in component:
                    found.append(component["custom_id"])
                walk(component.get("components", []))

        walk(self.components)
        return found

    def pings(self) -> set[str]:
        """Whom Discord would notify: the mentions in the content that `allowed_mentions` lets through (every one
        of them when it is absent)."""
        users = set(re.findall(r"<@!?(\d+)>", self.content))
        everyone = {"everyone"} if "@everyone" in self.content or "@here" in self.content else set()
        allowed = self.allowed_mentions
        if allowed is None:
            return users | everyone
        parse = allowed.get("parse", [])
        if "users" not in parse:
            users &= {str(user_id) for user_id in allowed.get("users", [])}
        return users | (everyone if "everyone" in parse else set())


@dataclass
class FakeInteraction:
    id: int
    token: str
    type: int
    user: dict[str, Any]
    channel_id: int
    created: datetime
    payload: dict[str, Any]
    response_type: int | None = None
    original_id: int | None = None
    modal: dict[str, Any] | None = None
    dispatched: float = field(default_factory=time.monotonic)

    @property
    def expired(self) -> bool:
        return datetime.now(UTC) - self.created > TOKEN_LIFETIME


class FakeDiscord:
    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._ids = itertools.count(1)
        self.messages: dict[int, FakeMessage] = {}
        self.interactions: dict[int, FakeInteraction] = {}
        self.by_token: dict[str, FakeInteraction] = {}
        self.cdn: dict[str, tuple[bytes, str]] = {}
        self.cdn_fetches: list[str] = []
        self.commands: dict[int | None, list[dict[str, Any]]] = {}
        self.requests: list[tuple[str, str]] = []
        self.forbidden_channels: set[int] = set()
        self.rate_limited_edits = 0
        self.retry_after = 0.05
        """What a rate-limited edit is told to wait, in seconds."""
        self.early: list[tuple[str, str]] = []
        """Requests to a rate-limited route that came before its `retry_after` had passed."""
        self._quiet_until: dict[str, float] = {}
        self.gateway_down = False
        self.refuse_message_content = False
        self.identifies: list[int] = []
        self.channels: dict[int, FakeChannel] = {CHANNEL_ID: FakeChannel(CHANNEL_ID, "art")}
        self.nonce_window = 180.0
        """Seconds a nonce sent with `enforce_nonce` names its message ("the past few minutes"; 0: never)."""
        self._nonces: dict[tuple[int, str], tuple[float, int]] = {}
        self.answered: Callable[[str, FakeMessage], Any] | None = None
        """Called with the method and the message once a channel message's POST or DELETE is carried out, just before
        its answer is sent: a client killed there never sees the answer, however busy the machine."""
        self._sockets: list[web.WebSocketResponse] = []
        self._sequence = itertools.count(1)
        self.callbacks_held = False
        """While true, an interaction callback is taken (a deferral is shown) but not answered: a kill in between."""

    # --- lifetime --------------------------------------------------------------------------------

    async def start(self, port: int | None = None) -> None:
        """Listen on `port`, else on the port of an earlier start, else on a free one."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/api/v10/{tail:.*}", self._api)
        app.router.add_get("/cdn/{key}/{filename}", self._cdn)
        app.router.add_get("/gateway", self._gateway)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port or self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def close(self) -> None:
        for socket in list(self._sockets):
            await socket.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base_url(self) -> str:
        return f"{self.base_url}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    @property
    def connected(self) -> bool:
        """Whether a client is on the gateway (identified, and not gone)."""
        return bool(self._sockets)

    # --- what tests do as users ----------------------------------------------------------------

    def snowflake(self, when: datetime | None = None) -> int:
        moment = when or datetime.now(UTC)
        return ((int(moment.timestamp() * 1000) - DISCORD_EPOCH_MS) << 22) | (next(self._ids) & 0x3FFFFF)

    def attachment(self, filename: str, data: bytes, content_type: str, size: int | None = None) -> dict[str, Any]:
        """An upload as Discord describes it; its bytes are served at its `url`."""
        attachment_id = self.snowflake()
        key = str(attachment_id)
        self.cdn[key] = (data, content_type)
        url = f"{self.base_url}/cdn/{key}/{filename}"
        return {
            "id": key,
            "filename": filename,
            "size": len(data) if size is None else size,
            "url": url,
            "proxy_url": url,
            "content_type": content_type,
        }

    def add_channel(self, name: str, *, guild_id: int = GUILD_ID, nsfw: bool = False) -> FakeChannel:
        channel = FakeChannel(self.snowflake(), name, guild_id, nsfw)
        self.channels[channel.id] = channel
        return channel

    async def create_guild(
        self, guild_id: int = GUILD_ID, *, roles: dict[str, int] | None = None, preferred_locale: str = "en-US"
    ) -> None:
        """GUILD_CREATE, as Discord sends it for each guild of the bot: its roles (`roles` maps names to ids),
        channels and language, so that the client can name the roles a member holds."""
        everyone = {"name": "@everyone", "id": guild_id}
        role_payloads = [
            {
                "id": str(role["id"]),
                "name": role["name"],
                "permissions": "0",
                "position": position,
                "color": 0,
                "hoist": False,
                "managed": False,
                "mentionable": False,
                "flags": 0,
            }
            for position, role in enumerate([everyone, *({"name": n, "id": i} for n, i in (roles or {}).items())])
        ]
        channels = [channel.payload() for channel in self.channels.values() if channel.guild_id == guild_id]
        guild = {
            "id": str(guild_id),
            "name": f"guild {guild_id}",
            "preferred_locale": preferred_locale,
            "owner_id": "1",
            "roles": role_payloads,
            "channels": channels,
            "members": [],
            "member_count": 2,
            "emojis": [],
            "stickers": [],
            "features": [],
            "threads": [],
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "large": False,
            "unavailable": False,
        }
        await self.dispatch("GUILD_CREATE", guild)

    async def command(
        self,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        member: dict[str, Any],
        attachments: dict[str, dict[str, Any]] | None = None,
        app_permissions: int = ALL_PERMISSIONS,
        age: timedelta = timedelta(0),
        attachment_size_limit: int = 10 * 1024 * 1024,
        channel: FakeChannel | None = None,
        locale: str = "en-US",
        dispatched: bool = True,
    ) -> FakeInteraction:
        """A slash command in `channel` (the default one when None), from a client set to `locale` (not sent to
        the client unless `dispatched`: one the gateway handed to an earlier process); a name with
        spaces (`mod banword add`) is a subcommand. Options are typed by their value: a member payload is a user
        option, a `FakeChannel` a channel option; `attachments` maps option names to `attachment()` payloads."""
        wire_options: list[dict[str, Any]] = []
        resolved: dict[str, Any] = {}
        for key, value in (options or {}).items():
            wire_options.append({"name": key, **_option(value, resolved)})
        for key, attachment in (attachments or {}).items():
            wire_options.append({"name": key, "type": 11, "value": attachment["id"]})
            resolved.setdefault("attachments", {})[attachment["id"]] = attachment
        command, *path = name.split()
        for kind, part in reversed(list(zip((2, 1)[2 - len(path) :], path, strict=True))):
            wire_options = [{"name": part, "type": kind, "options": wire_options}]
        data = {"id": str(self.snowflake()), "name": command, "type": 1, "options": wire_options, "resolved": resolved}
        place = channel or self.channels[CHANNEL_ID]
        return await self._interact(
            2, data, member, app_permissions, age, attachment_size_limit, channel=place, locale=locale, sent=dispatched
        )

    async def press(self, message: FakeMessage, custom_id: str, *, member: dict[str, Any]) -> FakeInteraction:
        assert custom_id in message.custom_ids(), f"{custom_id} is not on message {message.id}"
        data = {"custom_id": custom_id, "component_type": 2}
        channel = self.channels.get(message.channel_id)
        return await self._interact(
            3, data, member, ALL_PERMISSIONS, timedelta(0), 10 * 1024 * 1024, message, channel=channel
        )

    async def message_command(self, name: str, target: FakeMessage, *, member: dict[str, Any]) -> FakeInteraction:
        data = {
            "id": str(self.snowflake()),
            "name": name,
            "type": 3,
            "target_id": str(target.id),
            "resolved": {"messages": {str(target.id): self.payload(target)}},
        }
        return await self._interact(2, data, member, ALL_PERMISSIONS, timedelta(0), 10 * 1024 * 1024)

    async def submit_modal(
        self, opened: FakeInteraction, values: list[str], *, member: dict[str, Any], dispatched: bool = True
    ) -> FakeInteraction:
        """Fill the modal that `opened` answered with, text inputs in order (`dispatched` as for `command`)."""
        assert opened.modal is not None, "that interaction opened no modal"
        remaining = list(values)

        def fill(component: dict[str, Any]) -> dict[str, Any]:
            if component["type"] == 4:
                return {"type": 4, "custom_id": component["custom_id"], "value": remaining.pop(0)}
            if "component" in component:
                return {"type": component["type"], "component": fill(component["component"])}
            return {"type": component["type"], "components": [fill(c) for c in component.get("components", [])]}

        data = {"custom_id": opened.modal["custom_id"], "components": [fill(c) for c in opened.modal["components"]]}
        return await self._interact(5, data, member, ALL_PERMISSIONS, timedelta(0), 10 * 1024 * 1024, sent=dispatched)

    async def say(self, content: str, *, member: dict[str, Any], reply_to: FakeMessage | None = None) -> FakeMessage:
        """A user's message in the channel (MESSAGE_CREATE)."""
        message = FakeMessage(self.snowflake(), CHANNEL_ID, member["user"], content)
        message.reference = reply_to.id if reply_to is not None else None
        self.messages[message.id] = message
        payload = self.payload(message)
        payload["member"] = {key: value for key, value in member.items() if key != "user"}
        await self.dispatch("MESSAGE_CREATE", payload)
        return message

    # --- what tests look at ------------------------------------------------------------------------

    def visible(self) -> list[FakeMessage]:
        """Messages still there, oldest first."""
        return [message for message in self.messages.values() if not message.deleted]

    def results(self) -> list[FakeMessage]:
        return [message for message in self.visible() if message.attachments and message.author.get("bot")]

    def original(self, interaction: FakeInteraction) -> FakeMessage | None:
        return self.messages.get(interaction.original_id) if interaction.original_id else None

    def replies_to(self, interaction: FakeInteraction) -> list[FakeMessage]:
        return [message for message in self.messages.values() if message.interaction_id == interaction.id]

    def data_of(self, attachment: dict[str, Any]) -> bytes:
        return self.cdn[attachment["id"]][0]

    async def wait_for(self, check: Callable[[], Any], timeout: float = 15.0, what: str = "") -> Any:
        """The first true value of `check`, polled; an AssertionError naming `what` after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not (value := check()):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what or check}")
            await asyncio.sleep(0.02)
        return value

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        assert self._sockets, "no client is connected to the gateway"
        await self._sockets[-1].send_str(json.dumps({"op": 0, "t": event, "s": next(self._sequence), "d": data}))

    # --- payloads --------------------------------------------------------------------------------

    def payload(self, message: FakeMessage) -> dict[str, Any]:
        guild_id = self.channels[message.channel_id].guild_id if message.channel_id in self.channels else GUILD_ID
        data: dict[str, Any] = {
            "id": str(message.id),
            "channel_id": str(message.channel_id),
            "guild_id": str(guild_id),
            "author": message.author,
            "content": message.content,
            "timestamp": datetime.now(UTC).isoformat(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": message.attachments,
            "embeds": [],
            "pinned": False,
            "type": 19 if message.reference else 0,
            "flags": message.flags,
            "components": message.components,
        }
        if message.reference is not None:
            data["message_reference"] = {
                "message_id": str(message.reference),
                "channel_id": str(message.channel_id),
                "guild_id": str(guild_id),
            }
        return data

    async def _interact(
        self,
        kind: int,
        data: dict[str, Any],
        member: dict[str, Any],
        app_permissions: int,
        age: timedelta,
        attachment_size_limit: int,
        message: FakeMessage | None = None,
        *,
        channel: FakeChannel | None = None,
        locale: str = "en-US",
        sent: bool = True,
    ) -> FakeInteraction:
        place = channel or self.channels[CHANNEL_ID]
        created = datetime.now(UTC) - age
        interaction_id = self.snowflake(created)
        token = f"token-{interaction_id}"
        payload: dict[str, Any] = {
            "id": str(interaction_id),
            "application_id": str(APPLICATION_ID),
            "type": kind,
            "data": data,
            "guild_id": str(place.guild_id),
            "channel_id": str(place.id),
            "channel": place.payload(),
            "member": member,
            "token": token,
            "version": 1,
            "app_permissions": str(app_permissions),
            "locale": locale,
            "guild_locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(place.guild_id)},
            "context": 0,
            "attachment_size_limit": attachment_size_limit,
        }
        if message is not None:
            payload["message"] = self.payload(message)
        interaction = FakeInteraction(interaction_id, token, kind, member["user"], place.id, created, payload)
        self.interactions[interaction_id] = interaction
        self.by_token[token] = interaction
        if sent:
            await self.dispatch("INTERACTION_CREATE", payload)
        return interaction

    # --- the gateway ---------------------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        if self.gateway_down:
            return web.Response(status=503)
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        await socket.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": 41250}}))
        async for frame in socket:
            if frame.type != WSMsgType.TEXT:
                continue
            message = json.loads(frame.data)
            if message["op"] == 1:
                await socket.send_str(json.dumps({"op": 11}))
            elif message["op"] == 2:
                intents = message["d"]["intents"]
                self.identifies.append(intents)
                if self.refuse_message_content and intents & MESSAGE_CONTENT_INTENT:
                    await socket.close(code=4014, message=b"Disallowed intent(s).")
                    break
                self._sockets.append(socket)
                ready = {
                    "v": 10,
                    "user": BOT_USER,
                    "guilds": [],
                    "session_id": "fake-session",
                    "resume_gateway_url": self.gateway_url,
                    "application": {"id": str(APPLICATION_ID), "flags": 0},
                }
                await socket.send_str(json.dumps({"op": 0, "t": "READY", "s": next(self._sequence), "d": ready}))
            elif message["op"] == 6:  # resume: not kept, so start a new session
                await socket.send_str(json.dumps({"op": 9, "d": False}))
        if socket in self._sockets:
            self._sockets.remove(socket)
        return socket

    # --- the CDN ---------------------------------------------------------------------------------------

    async def _cdn(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        self.cdn_fetches.append(key)
        if key not in self.cdn:
            return web.Response(status=404)
        data, content_type = self.cdn[key]
        return web.Response(body=data, content_type=content_type)

    # --- REST -------------------------------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        self.requests.append((request.method, path))
        parts = path.strip("/").split("/")
        method = request.method
        if path == "/users/@me":
            return _json(BOT_USER)
        if path == "/oauth2/applications/@me":
            return _json(_application())
        if parts[0] == "applications" and method == "PUT":
            return _json(self._put_commands(parts, await request.json()))
        if parts[0] == "interactions" and parts[-1] == "callback":
            body = await request.json()
            if len((body.get("data") or {}).get("content") or "") > MESSAGE_LIMIT:
                return _too_long()
            return await self._callback(int(parts[1]), parts[2], body)
        if parts[0] == "webhooks":
            return await self._webhook(request, parts[2], parts[3:])
        if parts[0] == "channels" and parts[2] == "messages":
            return await self._channel_messages(request, int(parts[1]), parts[3:])
        return _error(404, 0, f"the fake has no {method} {path}")

    def _put_commands(self, parts: list[str], commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        guild = int(parts[3]) if len(parts) > 3 and parts[2] == "guilds" else None
        stored = [
            {
                "description": "",
                **command,
                "id": str(self.snowflake()),
                "application_id": str(APPLICATION_ID),
                "version": "1",
                "guild_id": None if guild is None else str(guild),
            }
            for command in commands
        ]
        self.commands[guild] = stored
        return stored

    async def _callback(self, interaction_id: int, token: str, body: dict[str, Any]) -> web.Response:
        interaction = self.interactions.get(interaction_id)
        if interaction is None or interaction.token != token:
            return _error(404, 10062, "Unknown interaction")
        if interaction.response_type is not None:
            return _error(400, 40060, "Interaction has already been acknowledged.")
        if time.monotonic() - interaction.dispatched > ANSWER_WINDOW:
            return _error(404, 10062, "Unknown interaction")
        kind = body["type"]
        data = body.get("data") or {}
        interaction.response_type = kind
        result: dict[str, Any] = {
            "interaction": {"id": str(interaction_id), "type": interaction.type},
        }
        if kind in (4, 5):
            flags = data.get("flags", 0) | (LOADING if kind == 5 else 0)
            message = FakeMessage(self.snowflake(), interaction.channel_id, BOT_USER, data.get("content", ""), flags)
            message.components = data.get("components", [])
            message.interaction_id = interaction_id
            self.messages[message.id] = message
            interaction.original_id = message.id
            result["interaction"].update(
                response_message_id=str(message.id),
                response_message_loading=kind == 5,
                response_message_ephemeral=bool(flags & EPHEMERAL),
            )
            result["resource"] = {"type": kind, "message": self.payload(message)}
        elif kind == 9:
            interaction.modal = data
        await self._held_callback()
        return _json(result)

    async def _held_callback(self) -> None:
        while self.callbacks_held:
            await asyncio.sleep(0.02)

    async def _webhook(self, request: web.Request, token: str, rest: list[str]) -> web.StreamResponse:
        interaction = self.by_token.get(token)
        if interaction is None or interaction.expired:
            return _error(401, 50027, "Invalid Webhook Token")
        if request.method == "POST" and not rest:
            body, files = await _body(request)
            if len(body.get("content") or "") > MESSAGE_LIMIT:
                return _too_long()
            original = self.original(interaction)
            if original is not None and original.loading and not original.deleted:  # the first follow-up
                return _json(self.payload(self._edit(original, body, files, keep_flags=True)))
            flags = body.get("flags", 0)
            message = FakeMessage(self.snowflake(), interaction.channel_id, BOT_USER, body.get("content", ""), flags)
            message.interaction_id = interaction.id
            self.messages[message.id] = message
            return _json(self.payload(self._edit(message, body, files, keep_flags=True)))
        target = self.original(interaction) if rest[-1] == "@original" else self.messages.get(int(rest[-1]))
        if target is None or target.deleted:
            return _error(404, 10008, "Unknown Message")
        if request.method == "DELETE":
            target.deleted = True
            return web.Response(status=204)
        if request.method == "PATCH":
            route = request.path
            if time.monotonic() < self._quiet_until.get(route, 0.0):
                self.early.append((request.method, route))
            if self.rate_limited_edits > 0:
                self.rate_limited_edits -= 1
                self._quiet_until[route] = time.monotonic() + self.retry_after
                return _rate_limited(self.retry_after)
            body, files = await _body(request)
            if len(body.get("content") or "") > MESSAGE_LIMIT:
                return _too_long()
            return _json(self.payload(self._edit(target, body, files)))
        return _json(self.payload(target))

    async def _channel_messages(self, request: web.Request, channel_id: int, rest: list[str]) -> web.StreamResponse:
        if channel_id in self.forbidden_channels:
            return _error(403, 50013, "Missing Permissions")
        if request.method == "POST" and not rest:
            body, files = await _body(request)
            if len(body.get("content") or "") > MESSAGE_LIMIT:
                return _too_long()
            message = self._created_before(body)
            if message is None:
                message = FakeMessage(self.snowflake(), channel_id, BOT_USER)
                reference = body.get("message_reference")
                message.reference = int(reference["message_id"]) if reference else None
                self.messages[message.id] = message
                self._edit(message, body, files)
                self._keep_nonce(body, message)
            return await self._answer(request, message, _json(self.payload(message)))
        target = self.messages.get(int(rest[0])) if rest else None
        if target is None or target.deleted:
            return _error(404, 10008, "Unknown Message")
        if request.method == "DELETE":
            target.deleted = True
            return await self._answer(request, target, web.Response(status=204))
        if request.method == "PATCH":
            body, files = await _body(request)
            return _json(self.payload(self._edit(target, body, files)))
        return _json(self.payload(target))

    def _created_before(self, body: dict[str, Any]) -> FakeMessage | None:
        """Discord's idempotent create: with `enforce_nonce`, "if another message was created by the same author
        with the same nonce in the past few minutes, that message is returned and no new message is created"."""
        if body.get("nonce") is None or not body.get("enforce_nonce"):
            return None
        kept = self._nonces.get((BOT_ID, str(body["nonce"])))
        if kept is None or time.monotonic() - kept[0] > self.nonce_window:
            return None
        return self.messages[kept[1]]

    def _keep_nonce(self, body: dict[str, Any], message: FakeMessage) -> None:
        if body.get("nonce") is not None and body.get("enforce_nonce"):
            self._nonces[(BOT_ID, str(body["nonce"]))] = (time.monotonic(), message.id)

    async def _answer(self, request: web.Request, message: FakeMessage, response: web.Response) -> web.Response:
        """The answer to a channel message request; with `answered` set, sent after it is called (to a client that may
        be dead by then: the answer is then lost, as it would be over a real network)."""
        if self.answered is not None:
            self.answered(request.method, message)
        return response

    def _edit(
        self,
        message: FakeMessage,
        body: dict[str, Any],
        files: list[tuple[str, bytes, str]],
        *,
        keep_flags: bool = False,
    ) -> FakeMessage:
        if "content" in body:
            message.content = body["content"] or ""
        if "components" in body:
            message.components = body["components"] or []
        if "allowed_mentions" in body:
            message.allowed_mentions = body["allowed_mentions"]
        if "attachments" in body or files:
            kept_ids = {str(item.get("id")) for item in body.get("attachments", [])}
            kept = [item for item in message.attachments if item["id"] in kept_ids]
            uploaded = [self.attachment(name, data, content_type) for name, data, content_type in files]
            message.attachments = kept + uploaded
        if not keep_flags and "flags" in body:
            message.flags = body["flags"]
        message.flags &= ~LOADING
        message.edits += 1
        return message


def _option(value: Any, resolved: dict[str, Any]) -> dict[str, Any]:
    """An option's wire type and value; users and channels are also added to the interaction's resolved data."""
    if isinstance(value, FakeChannel):
        channel = {**value.payload(), "permissions": str(ALL_PERMISSIONS)}
        resolved.setdefault("channels", {})[str(value.id)] = channel
        return {"type": 7, "value": str(value.id)}
    if isinstance(value, dict):  # a member
        user_id = value["user"]["id"]
        resolved.setdefault("users", {})[user_id] = value["user"]
        resolved.setdefault("members", {})[user_id] = {key: item for key, item in value.items() if key != "user"}
        return {"type": 6, "value": user_id}
    kind = 5 if isinstance(value, bool) else 3 if isinstance(value, str) else 10 if isinstance(value, float) else 4
    return {"type": kind, "value": value}


def _application() -> dict[str, Any]:
    return {
        "id": str(APPLICATION_ID),
        "name": "easel",
        "description": "",
        "icon": None,
        "bot_public": True,
        "bot_require_code_grant": False,
        "owner": BOT_USER,
        "verify_key": "0" * 64,
        "flags": 0,
    }


async def _body(request: web.Request) -> tuple[dict[str, Any], list[tuple[str, bytes, str]]]:
    """The JSON payload and the files of a request, whether it is plain JSON or multipart."""
    if request.content_type != "multipart/form-data":
        return (await request.json() if request.can_read_body else {}), []
    form = await request.post()
    body = json.loads(str(form["payload_json"]))
    files = []
    for key, value in form.items():
        if key.startswith("files[") and isinstance(value, web.FileField):
            files.append((value.filename, value.file.read(), value.content_type))
    return body, files


def _json(data: Any, status: int = 200) -> web.Response:
    """discord.py parses a body only when its Content-Type is exactly application/json (no charset)."""
    return web.Response(body=json.dumps(data).encode(), status=status, headers={"Content-Type": "application/json"})


def _error(status: int, code: int, message: str) -> web.Response:
    return _json({"code": code, "message": message}, status)


def _rate_limited(retry_after: float) -> web.Response:
    response = _json({"message": "You are being rate limited.", "retry_after": retry_after, "global": False}, 429)
    response.headers.update(
        {"Via": "1.1 google", "Retry-After": str(math.ceil(retry_after)), "X-RateLimit-Scope": "user"}
    )
    return response


def _too_long() -> web.Response:
    return _error(400, 50035, f"Invalid Form Body: content must be {MESSAGE_LIMIT} or fewer in length.")
