"""A fake Telegram Bot API on loopback that the real bot polls over HTTP.

It speaks the Bot API as the bot uses it: ``/bot<token>/<method>`` with JSON,
form-encoded or multipart parameters; ``getUpdates`` with real ``offset``/``timeout``
long polling; messages with ids, edits that return the edited message ("message is not
modified" included), inline keyboards, callback queries with ``chat_instance``;
``sendInvoice`` checked against the Telegram Stars rules; pre-checkout queries with the
10-second deadline enforced; ``successful_payment``; ``refundStarPayment`` against
recorded charges; ``getStarTransactions``; 403 for users who blocked the bot; 401 for an
unknown token; "chat not found" for ``setMyCommands`` scoped to a user who never met the
bot (see :meth:`FakeTelegram.user`); an optional
flood limit (429 with ``retry_after``); 404 for unknown methods. HTML text is checked
like Telegram does ("can't parse entities").

Webhooks as Telegram delivers them (``setWebhook``: an HTTPS ``url``, ``secret_token``,
``max_connections``, ``allowed_updates``): while one is set, ``getUpdates`` is refused
(409) and every update is POSTed as JSON with the ``X-Telegram-Bot-Api-Secret-Token``
header; a chat's next update only after its previous one got a 2xx, chats in parallel up
to ``max_connections``; a non-2xx answer or a connection error is retried with a short
backoff. The public URL never leaves 127.0.0.1: ``webhook_targets`` are the addresses a
load balancer in front of the bot's workers would forward to (round-robin per attempt,
or :attr:`FakeTelegram.webhook_pin`); without targets updates stay pending.
``push(update, fan_out=True)`` delivers one update to every target at once (a retry
racing the first attempt, a duplicated ``successful_payment``).

The customer side (:class:`FakeUser`) sends text and commands, presses buttons by their
text, pays invoices and reads what the bot sent. Every step is recorded in
:attr:`FakeTelegram.transcript`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import re
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import aiohttp
from aiohttp import web

from sandboxes.serving import LocalServer

logger = logging.getLogger(__name__)

PRECHECKOUT_DEADLINE = 10.0
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
#: seconds between delivery attempts of one update (the last one repeats)
WEBHOOK_RETRY_DELAYS = (0.05, 0.1, 0.2, 0.5, 1.0)
_JSON_FIELDS = {
    "reply_markup", "prices", "commands", "scope", "results", "allowed_updates", "entities",
    "caption_entities", "link_preview_options", "reply_parameters", "button", "media",
}  # fmt: skip
_INT_FIELDS = {
    "chat_id", "message_id", "offset", "limit", "timeout", "user_id", "from_chat_id",
    "cache_time", "max_connections", "photo_size", "photo_width", "photo_height",
}  # fmt: skip
_BOOL_FIELDS = {
    "ok", "show_alert", "drop_pending_updates", "is_personal", "disable_notification",
    "protect_content", "is_flexible",
}  # fmt: skip
_ALLOWED_TAGS = {
    "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a",
    "code", "pre", "blockquote", "tg-emoji",
}  # fmt: skip


class ApiError(Exception):
    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after


class _HtmlChecker(HTMLParser):
    """Rejects what Telegram rejects: unknown tags and unbalanced tags."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.plain: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _ALLOWED_TAGS:
            raise ApiError(
                400, f'Bad Request: can\'t parse entities: Unsupported start tag "{tag}"'
            )
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            raise ApiError(400, f'Bad Request: can\'t parse entities: Unmatched end tag "{tag}"')
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.plain.append(data)


def plain_text(text: str, parse_mode: str | None) -> str:
    """The text a user sees: HTML checked and stripped; raises :class:`ApiError`."""
    if (parse_mode or "").upper() != "HTML":
        return text
    checker = _HtmlChecker()
    checker.feed(text)
    checker.close()
    if checker.stack:
        raise ApiError(
            400, f'Bad Request: can\'t parse entities: Unclosed start tag "{checker.stack[-1]}"'
        )
    return "".join(checker.plain)


def _public(message: dict[str, Any]) -> dict[str, Any]:
    """A stored message as the Bot API returns it (without the fake's own fields)."""
    return {k: v for k, v in message.items() if not k.startswith("_")}


@dataclass
class Charge:
    charge_id: str
    user_id: int
    amount: int
    payload: str
    date: int
    refunded: bool = False


@dataclass
class FloodStats:
    sent: int = 0
    too_many_requests: int = 0


@dataclass
class WebhookAttempt:
    """One POST of an update to a webhook target: ``status`` the HTTP status, ``None``
    when the connection failed or timed out (``error`` says how); ``at`` is
    ``time.perf_counter()`` when the answer (or the error) came."""

    update_id: int
    target: int  # index into FakeTelegram.webhook_targets
    status: int | None
    error: str
    at: float

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass
class ApiCall:
    """One Bot API call the bot made: when (``time.perf_counter()``), which method, the
    ``chat_id`` it named (if any) and the bot's TCP source port (which process sent it)."""

    at: float
    method: str
    chat_id: int | str | None
    peer_port: int | None


def _order_key(update: dict[str, Any]) -> int | str:
    """What Telegram keeps in order: a chat's updates (messages), a user's (queries,
    payments); anything else is on its own."""
    for body in update.values():
        if not isinstance(body, dict):
            continue
        if isinstance(body.get("chat"), dict):
            return int(body["chat"]["id"])
        if isinstance(body.get("from"), dict):
            return int(body["from"]["id"])
    return f"update-{update.get('update_id')}"


def _update_kind(update: dict[str, Any]) -> str:
    return next((k for k in update if k != "update_id" and not k.startswith("_")), "")


@dataclass
class TranscriptLine:
    """One step of a conversation, for the demo transcript and for test messages."""

    chat_id: int
    who: str  # "user" or "bot"
    kind: str  # text, press, pay, edit, invoice, callback_answer, document, precheckout...
    text: str
    buttons: list[list[str]] = field(default_factory=list)


class FakeTelegram(LocalServer):
    """The fake Bot API server. ``start()`` serves it on 127.0.0.1 and returns its base URL."""

    label = "fake Bot API"
    handler_cancellation = True

    def __init__(
        self,
        token: str,
        *,
        bot_username: str = "game_shop_bot",
        bot_id: int | None = None,
        precheckout_deadline: float = PRECHECKOUT_DEADLINE,
        flood_limit: bool = False,
        global_rate: float = 30.0,
        chat_rate: float = 1.0,
        webhook_targets: list[str] | None = None,
        webhook_timeout: float = 10.0,
    ) -> None:
        self.token = token
        self.bot_user = {
            "id": bot_id or int(token.split(":")[0]),
            "is_bot": True,
            "first_name": "Game Shop",
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": True,
        }
        self.precheckout_deadline = precheckout_deadline
        self.flood_limit = flood_limit
        self.global_rate = global_rate
        self.chat_rate = chat_rate
        self.flood = FloodStats()
        self.transcript: list[TranscriptLine] = []
        self.commands: dict[tuple[str, str | None], list[dict[str, Any]]] = {}
        self.charges: dict[str, Charge] = {}
        #: the bot's Star transactions in chronological order: (charge, is_refund)
        self.ledger: list[tuple[Charge, bool]] = []
        #: chat id -> [sends still refused with 429, retry_after] (fault injection)
        self.forced_floods: dict[int, list[int]] = {}
        self.blocked: set[int] = set()
        self.documents: dict[str, bytes] = {}
        #: photos the bot uploaded (``sendPhoto`` with a file), by file id
        self.photos: dict[str, bytes] = {}
        self.inline_answers: dict[str, list[dict[str, Any]]] = {}
        self.callback_answers: dict[str, dict[str, Any]] = {}
        self.webhook_url = ""
        #: where a webhook's updates really go: the URLs of the bot's workers behind the
        #: public ``webhook_url`` (a load balancer's upstreams); settable after start
        self.webhook_targets: list[str] = list(webhook_targets or [])
        #: every update goes to target ``webhook_pin`` while set (a sticky balancer)
        self.webhook_pin: int | None = None
        self.webhook_timeout = webhook_timeout
        self.webhook_secret: str | None = None
        self.webhook_max_connections = 40
        self.webhook_allowed: list[str] | None = None
        #: every delivery attempt, in the order the answers came
        self.webhook_attempts: list[WebhookAttempt] = []
        self.last_webhook_error: tuple[int, str] | None = None
        #: every Bot API call (see :class:`ApiCall`)
        self.api_calls: list[ApiCall] = []
        self._fan_out: set[int] = set()
        self._update_chats: dict[int, int | str] = {}
        self._round_robin = itertools.count()
        self._delivery_wake = asyncio.Event()
        self._delivery_task: asyncio.Task[None] | None = None
        self._webhook_session: aiohttp.ClientSession | None = None
        self.method_calls: defaultdict[str, int] = defaultdict(int)
        #: (offset, limit) of every getStarTransactions call
        self.star_transaction_reads: list[tuple[int, int]] = []
        #: update_id -> time.perf_counter() when it was queued (for latency measurements)
        self.push_times: dict[int, float] = {}
        self.last_update_id = 0
        self._updates: deque[dict[str, Any]] = deque()
        self._update_ids = itertools.count(1)
        self._message_ids: defaultdict[int, itertools.count[int]] = defaultdict(
            lambda: itertools.count(1)
        )
        self._query_ids = itertools.count(1)
        self._messages: dict[tuple[int, int], dict[str, Any]] = {}
        self._chat_messages: defaultdict[int, list[int]] = defaultdict(list)
        self._users: dict[int, dict[str, Any]] = {}
        self._allowed: list[str] | None = None
        self._changed = asyncio.Condition()
        self._precheckouts: dict[str, asyncio.Future[tuple[bool, str | None]]] = {}
        self._global_sends: deque[float] = deque()
        self._chat_last_send: dict[int, float] = {}
        self._runner: web.AppRunner | None = None
        self.base_url = ""
        self.app = web.Application()
        self.app.router.add_route("*", "/bot{token}/{method}", self._dispatch)
        self.app.router.add_get("/file/bot{token}/{path}", self._download)

    # -- transport -------------------------------------------------------------------

    async def _params(self, request: web.Request) -> dict[str, Any]:
        raw: dict[str, Any] = {}
        if request.content_type == "application/json":
            body = await request.json()
            raw = dict(body) if isinstance(body, dict) else {}
        elif request.method == "POST":
            form = await request.post()
            for key, value in form.items():
                if hasattr(value, "file"):
                    raw[key] = value  # a FileField (multipart upload)
                else:
                    raw[key] = value
        raw.update({k: v for k, v in request.query.items() if k not in raw})
        params: dict[str, Any] = {}
        for key, value in raw.items():
            if isinstance(value, str):
                if key in _JSON_FIELDS:
                    value = json.loads(value)
                elif key in _INT_FIELDS:
                    value = int(value) if value.lstrip("-").isdigit() else value
                elif key in _BOOL_FIELDS:
                    value = value.lower() == "true"
            params[key] = value
        return params

    async def _dispatch(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        method = request.match_info["method"]
        handler = getattr(self, f"_m_{method.lower()}", None)
        if handler is None:
            return web.json_response(
                {"ok": False, "error_code": 404, "description": "Not Found"}, status=404
            )
        self.method_calls[method] += 1
        peer = request.transport.get_extra_info("peername") if request.transport else None
        try:
            params = await self._params(request)
            self.api_calls.append(
                ApiCall(time.perf_counter(), method, params.get("chat_id"), peer and peer[1])
            )
            result = await handler(params)
        except ApiError as exc:
            body: dict[str, Any] = {
                "ok": False,
                "error_code": exc.code,
                "description": exc.description,
            }
            if exc.retry_after is not None:
                body["parameters"] = {"retry_after": exc.retry_after}
            return web.json_response(body, status=exc.code)
        except (KeyError, ValueError, TypeError) as exc:
            return web.json_response(
                {"ok": False, "error_code": 400, "description": f"Bad Request: {exc}"}, status=400
            )
        async with self._changed:
            self._changed.notify_all()
        return web.json_response({"ok": True, "result": result})

    # -- helpers ---------------------------------------------------------------------

    def _chat(self, chat_id: int) -> dict[str, Any]:
        user = self._users.get(chat_id)
        if user is None:
            return {
                "id": chat_id,
                "type": "group" if chat_id < 0 else "private",
                "title": f"chat {chat_id}",
            }
        chat = {"id": chat_id, "type": "private", "first_name": user["first_name"]}
        if user.get("username"):
            chat["username"] = user["username"]
        return chat

    def flood_chat(self, chat_id: int, sends: int, retry_after: int = 1) -> None:
        """Refuse the next ``sends`` messages to ``chat_id`` with 429 ``retry_after``
        (a flood limit hit during a broadcast, as Telegram answers it)."""
        self.forced_floods[chat_id] = [sends, retry_after]

    def _check_send(self, chat_id: int) -> None:
        if chat_id in self.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        forced = self.forced_floods.get(chat_id)
        if forced and forced[0] > 0:
            forced[0] -= 1
            self.flood.too_many_requests += 1
            raise ApiError(
                429, f"Too Many Requests: retry after {forced[1]}", retry_after=forced[1]
            )
        if not self.flood_limit:
            self.flood.sent += 1
            return
        now = time.monotonic()
        while self._global_sends and now - self._global_sends[0] >= 1.0:
            self._global_sends.popleft()
        last = self._chat_last_send.get(chat_id)
        if len(self._global_sends) >= self.global_rate or (
            last is not None and now - last < 1.0 / self.chat_rate
        ):
            self.flood.too_many_requests += 1
            raise ApiError(429, "Too Many Requests: retry after 1", retry_after=1)
        self._global_sends.append(now)
        self._chat_last_send[chat_id] = now
        self.flood.sent += 1

    def _new_message(self, chat_id: int, **content: Any) -> dict[str, Any]:
        message_id = next(self._message_ids[chat_id])
        message = {
            "message_id": message_id,
            "from": self.bot_user,
            "chat": self._chat(chat_id),
            "date": int(time.time()),
            "_sent_at": time.perf_counter(),
            **content,
        }
        self._messages[(chat_id, message_id)] = message
        self._chat_messages[chat_id].append(message_id)
        return message

    @staticmethod
    def _button_texts(markup: dict[str, Any] | None) -> list[list[str]]:
        if not markup:
            return []
        rows = markup.get("inline_keyboard") or markup.get("keyboard") or []
        return [[b["text"] if isinstance(b, dict) else str(b) for b in row] for row in rows]

    def _log(
        self, chat_id: int, who: str, kind: str, text: str, markup: dict[str, Any] | None = None
    ) -> None:
        self.transcript.append(TranscriptLine(chat_id, who, kind, text, self._button_texts(markup)))

    def _push_update(self, update: dict[str, Any], fan_out: bool = False) -> int:
        update_id = next(self._update_ids)
        self.push_times[update_id] = time.perf_counter()
        self.last_update_id = update_id
        self._updates.append({"update_id": update_id, **update})
        self._update_chats[update_id] = _order_key(update)
        if fan_out:
            self._fan_out.add(update_id)
        self._delivery_wake.set()
        return update_id

    # -- webhook delivery ------------------------------------------------------------

    def update_chat(self, update_id: int) -> int | str | None:
        """The chat (or user) update ``update_id`` belongs to, as delivery orders it."""
        return self._update_chats.get(update_id)

    def delivered_to(self, update_id: int) -> list[int]:
        """The targets that answered update ``update_id`` with a 2xx, in order."""
        return [a.target for a in self.webhook_attempts if a.update_id == update_id and a.ok]

    def _start_delivery(self) -> None:
        if self._delivery_task is None or self._delivery_task.done():
            self._delivery_task = asyncio.create_task(self._deliver_forever(), name="webhook")
            self._delivery_task.add_done_callback(self._delivery_done)

    @staticmethod
    def _delivery_done(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.error("webhook delivery failed: %s", task.get_name(), exc_info=task.exception())

    async def _deliver_forever(self) -> None:
        """While a webhook is set: start the delivery of every pending update whose chat
        has none under way, oldest first, at most ``max_connections`` at once."""
        busy: set[int | str] = set()
        running: set[asyncio.Task[None]] = set()
        try:
            while self.webhook_url:
                self._delivery_wake.clear()
                if self.webhook_targets:
                    for update in list(self._updates):
                        if len(running) >= self.webhook_max_connections:
                            break
                        key = _order_key(update)
                        if key in busy:
                            continue
                        if (
                            self.webhook_allowed
                            and _update_kind(update) not in self.webhook_allowed
                        ):
                            self._updates.remove(update)  # Telegram never sends those
                            continue
                        busy.add(key)
                        task = asyncio.create_task(
                            self._deliver(update), name=f"webhook update {update['update_id']}"
                        )
                        running.add(task)
                        task.add_done_callback(running.discard)
                        task.add_done_callback(self._delivery_done)
                        task.add_done_callback(lambda _, key=key: self._settled(busy, key))
                await self._delivery_wake.wait()
        finally:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    def _settled(self, busy: set[int | str], key: int | str) -> None:
        busy.discard(key)
        self._delivery_wake.set()

    async def _deliver(self, update: dict[str, Any]) -> None:
        """POST ``update`` until a 2xx (to every target when fanned out), then drop it
        from the pending updates."""
        update_id = int(update["update_id"])
        if update_id in self._fan_out:
            accepted = await asyncio.gather(
                *(
                    self._post_until_ok(update, lambda i=i: i)
                    for i in range(len(self.webhook_targets))
                )
            )
        else:
            accepted = [await self._post_until_ok(update, self._next_target)]
        if not all(accepted):
            return  # deleteWebhook meanwhile: it stays pending for getUpdates
        with contextlib.suppress(ValueError):  # dropped (drop_pending_updates) meanwhile
            self._updates.remove(update)
        self._fan_out.discard(update_id)
        async with self._changed:
            self._changed.notify_all()

    def _next_target(self) -> int:
        if self.webhook_pin is not None:
            return self.webhook_pin
        return next(self._round_robin) % len(self.webhook_targets)

    async def _post_until_ok(self, update: dict[str, Any], target: Callable[[], int]) -> bool:
        """POST to ``target()`` (asked again before every attempt) until a 2xx: ``True``;
        ``False`` when the webhook is deleted first. Never gives up otherwise (Telegram
        does after "a reasonable amount of attempts"; a test wants every update)."""
        body = json.dumps(update).encode()
        for attempt in itertools.count():
            if not self.webhook_url:
                return False
            index = target()
            status, error = await self._post(self.webhook_targets[index], body)
            self.webhook_attempts.append(
                WebhookAttempt(int(update["update_id"]), index, status, error, time.perf_counter())
            )
            async with self._changed:
                self._changed.notify_all()  # wait_until() may be watching the attempts
            if status is not None and 200 <= status < 300:
                return True
            self.last_webhook_error = (
                int(time.time()),
                error or f"Wrong response from the webhook: {status}",
            )
            await asyncio.sleep(WEBHOOK_RETRY_DELAYS[min(attempt, len(WEBHOOK_RETRY_DELAYS) - 1)])
        raise AssertionError("unreachable")

    async def _post(self, url: str, body: bytes) -> tuple[int | None, str]:
        if self._webhook_session is None:
            self._webhook_session = aiohttp.ClientSession()
        headers = {"Content-Type": "application/json"}
        if self.webhook_secret:
            headers[SECRET_HEADER] = self.webhook_secret
        try:
            async with self._webhook_session.post(
                url, data=body, headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.webhook_timeout),
            ) as response:  # fmt: skip
                await response.read()
                return response.status, ""
        except (aiohttp.ClientError, TimeoutError) as exc:
            return None, f"Connection failed: {type(exc).__name__}: {exc}"

    async def stop(self) -> None:
        """Stop delivering webhooks, then stop serving (safe to call twice)."""
        if self._delivery_task is not None:
            self._delivery_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._delivery_task
            self._delivery_task = None
        if self._webhook_session is not None:
            await self._webhook_session.close()
            self._webhook_session = None
        await super().stop()

    # -- Bot API methods -------------------------------------------------------------

    async def _m_getme(self, p: dict[str, Any]) -> dict[str, Any]:
        return self.bot_user

    async def _m_logout(self, p: dict[str, Any]) -> bool:
        return True

    async def _m_close(self, p: dict[str, Any]) -> bool:
        return True

    async def _m_deletewebhook(self, p: dict[str, Any]) -> bool:
        self.webhook_url = ""
        self._delivery_wake.set()
        if p.get("drop_pending_updates"):
            self._updates.clear()
        return True

    async def _m_setwebhook(self, p: dict[str, Any]) -> bool:
        """As the Bot API documents it: an empty ``url`` removes the webhook; else it must
        be HTTPS; ``secret_token`` 1-256 of ``A-Za-z0-9_-``; ``max_connections`` 1-100
        (40); ``allowed_updates`` unset keeps the previous choice."""
        url = str(p.get("url") or "")
        if not url:
            return await self._m_deletewebhook(p)
        if not url.startswith("https://"):
            raise ApiError(
                400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"
            )
        secret = p.get("secret_token")
        if secret is not None and not _SECRET_TOKEN.fullmatch(str(secret)):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        connections = int(p.get("max_connections") or 40)
        if not 1 <= connections <= 100:
            raise ApiError(400, "Bad Request: max_connections must be between 1 and 100")
        if p.get("drop_pending_updates"):
            self._updates.clear()
        if "allowed_updates" in p:
            self.webhook_allowed = p["allowed_updates"] or None
        self.webhook_url = url
        self.webhook_secret = str(secret) if secret is not None else None
        self.webhook_max_connections = connections
        self._delivery_wake.set()
        self._start_delivery()
        return True

    async def _m_getwebhookinfo(self, p: dict[str, Any]) -> dict[str, Any]:
        info: dict[str, Any] = {
            "url": self.webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if self.webhook_url:
            info["max_connections"] = self.webhook_max_connections
            if self.webhook_allowed:
                info["allowed_updates"] = self.webhook_allowed
        if self.last_webhook_error is not None:
            info["last_error_date"], info["last_error_message"] = self.last_webhook_error
        return info

    async def _m_getupdates(self, p: dict[str, Any]) -> list[dict[str, Any]]:
        if self.webhook_url:
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active")
        offset = int(p.get("offset") or 0)
        limit = max(1, min(100, int(p.get("limit") or 100)))
        timeout = max(0, int(p.get("timeout") or 0))
        if "allowed_updates" in p:
            self._allowed = p["allowed_updates"] or None
        while self._updates and self._updates[0]["update_id"] < offset:
            self._updates.popleft()

        def ready() -> list[dict[str, Any]]:
            return [
                u
                for u in self._updates
                if self._allowed is None or any(k in u for k in self._allowed)
            ][:limit]

        async with self._changed:
            if not ready() and timeout:
                try:
                    await asyncio.wait_for(self._changed.wait_for(lambda: bool(ready())), timeout)
                except TimeoutError:
                    pass
        return ready()

    async def _m_setmycommands(self, p: dict[str, Any]) -> bool:
        scope = (p.get("scope") or {"type": "default"}).get("type", "default")
        chat_id = (p.get("scope") or {}).get("chat_id")
        if (
            scope == "chat"
            and isinstance(chat_id, int)
            and chat_id > 0
            and chat_id not in self._users
        ):
            # as Telegram: a user who never opened a chat with the bot is no chat of its own
            raise ApiError(400, "Bad Request: chat not found")
        self.commands[(scope, p.get("language_code") or None)] = p["commands"]
        return True

    async def _m_getmycommands(self, p: dict[str, Any]) -> list[dict[str, Any]]:
        scope = (p.get("scope") or {"type": "default"}).get("type", "default")
        return self.commands.get((scope, p.get("language_code") or None), [])

    async def _m_deletemycommands(self, p: dict[str, Any]) -> bool:
        scope = (p.get("scope") or {"type": "default"}).get("type", "default")
        self.commands.pop((scope, p.get("language_code") or None), None)
        return True

    async def _m_sendmessage(self, p: dict[str, Any]) -> dict[str, Any]:
        chat_id, text = p["chat_id"], str(p.get("text") or "")
        if not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        visible = plain_text(text, p.get("parse_mode"))
        if len(visible) > 4096:
            raise ApiError(400, "Bad Request: message is too long")
        self._check_send(chat_id)
        content: dict[str, Any] = {"text": visible}
        if p.get("reply_markup") and "inline_keyboard" in p["reply_markup"]:
            content["reply_markup"] = p["reply_markup"]
        message = self._new_message(chat_id, **content)
        message["_raw_text"] = text
        message["_markup"] = p.get("reply_markup")
        message["_link_preview"] = p.get("link_preview_options")
        self._log(chat_id, "bot", "text", visible, p.get("reply_markup"))
        return _public(message)

    async def _m_editmessagetext(self, p: dict[str, Any]) -> dict[str, Any]:
        key = (p["chat_id"], p["message_id"])
        message = self._messages.get(key)
        if message is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        visible = plain_text(str(p["text"]), p.get("parse_mode"))
        markup = p.get("reply_markup")
        if visible == message.get("text") and markup == message.get("reply_markup"):
            raise ApiError(
                400,
                "Bad Request: message is not modified: specified new message content and reply "
                "markup are exactly the same as a current content and reply markup of the message",
            )
        message["text"] = visible
        message["_raw_text"] = p["text"]
        message["_link_preview"] = p.get("link_preview_options")
        if markup is not None:
            message["reply_markup"] = markup
        else:
            message.pop("reply_markup", None)
        message["edit_date"] = int(time.time())
        message["_sent_at"] = time.perf_counter()
        self._log(p["chat_id"], "bot", "edit", visible, markup)
        return _public(message)

    async def _m_editmessagereplymarkup(self, p: dict[str, Any]) -> dict[str, Any]:
        message = self._messages.get((p["chat_id"], p["message_id"]))
        if message is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        if p.get("reply_markup"):
            message["reply_markup"] = p["reply_markup"]
        else:
            message.pop("reply_markup", None)
        return _public(message)

    async def _m_deletemessage(self, p: dict[str, Any]) -> bool:
        if self._messages.pop((p["chat_id"], p["message_id"]), None) is None:
            raise ApiError(400, "Bad Request: message to delete not found")
        return True

    async def _m_answercallbackquery(self, p: dict[str, Any]) -> bool:
        query_id = str(p["callback_query_id"])
        if query_id in self.callback_answers:
            raise ApiError(
                400,
                "Bad Request: query is too old and response timeout expired or query ID is invalid",
            )
        self.callback_answers[query_id] = p
        if p.get("text"):
            user = int(query_id.split("-")[0])
            self._log(user, "bot", "alert" if p.get("show_alert") else "toast", str(p["text"]))
        return True

    async def _m_sendinvoice(self, p: dict[str, Any]) -> dict[str, Any]:
        chat_id = p["chat_id"]
        if p.get("currency") != "XTR":
            raise ApiError(400, "Bad Request: Stars invoices need currency XTR")
        if p.get("provider_token"):
            raise ApiError(
                400, "Bad Request: provider_token must be empty for payments in Telegram Stars"
            )
        prices = p.get("prices") or []
        if len(prices) != 1:
            raise ApiError(400, "Bad Request: Stars invoices must have exactly one price")
        amount = prices[0].get("amount")
        if not isinstance(amount, int) or amount < 1:
            raise ApiError(400, "Bad Request: CURRENCY_TOTAL_AMOUNT_INVALID")
        payload = str(p.get("payload") or "")
        if not 1 <= len(payload.encode()) <= 128:
            raise ApiError(400, "Bad Request: INVOICE_PAYLOAD_INVALID")
        title, description = str(p.get("title") or ""), str(p.get("description") or "")
        if not 1 <= len(title) <= 32 or not 1 <= len(description) <= 255:
            raise ApiError(
                400, "Bad Request: invoice title must be 1-32 and description 1-255 characters"
            )
        self._check_send(chat_id)
        invoice = {
            "title": title,
            "description": description,
            "start_parameter": "",
            "currency": "XTR",
            "total_amount": amount,
        }
        message = self._new_message(chat_id, invoice=invoice)
        message["_payload"] = payload
        message["_label"] = prices[0].get("label", "")
        #: the product picture Telegram shows on the invoice (optional, any URL)
        message["_photo_url"] = p.get("photo_url")
        self._log(
            chat_id,
            "bot",
            "invoice",
            f"{title}: {description} ({amount} XTR)",
            {"inline_keyboard": [[{"text": f"Pay ⭐{amount}"}]]},
        )
        return _public(message)

    async def _m_answerprecheckoutquery(self, p: dict[str, Any]) -> bool:
        future = self._precheckouts.get(str(p["pre_checkout_query_id"]))
        if future is None or future.done():
            raise ApiError(
                400,
                "Bad Request: query is too old and response timeout expired or query ID is invalid",
            )
        ok = bool(p.get("ok"))
        if not ok and not p.get("error_message"):
            raise ApiError(400, "Bad Request: error_message is required when ok is False")
        future.set_result((ok, p.get("error_message")))
        return True

    async def _m_refundstarpayment(self, p: dict[str, Any]) -> bool:
        charge = self.charges.get(str(p["telegram_payment_charge_id"]))
        if charge is None or charge.user_id != p["user_id"]:
            raise ApiError(400, "Bad Request: CHARGE_NOT_FOUND")
        if charge.refunded:
            raise ApiError(400, "Bad Request: CHARGE_ALREADY_REFUNDED")
        charge.refunded = True
        self.ledger.append((charge, True))
        self._log(charge.user_id, "bot", "refund", f"refunded {charge.amount} XTR")
        return True

    async def _m_getstartransactions(self, p: dict[str, Any]) -> dict[str, Any]:
        """Chronological order, as the Bot API documents: a refund is listed when it
        happened, with the id of the payment it returns."""
        offset, limit = int(p.get("offset") or 0), int(p.get("limit") or 100)
        if not 1 <= limit <= 100:
            raise ApiError(400, "Bad Request: limit must be between 1 and 100")
        self.star_transaction_reads.append((offset, limit))
        rows: list[dict[str, Any]] = []
        for charge, is_refund in self.ledger[offset : offset + limit]:
            user = self._users.get(
                charge.user_id, {"id": charge.user_id, "is_bot": False, "first_name": "user"}
            )
            # Bot API 9.0: TransactionPartnerUser carries a required transaction_type
            partner = {"type": "user", "transaction_type": "invoice_payment", "user": user}
            row = {"id": charge.charge_id, "amount": charge.amount, "date": charge.date}
            if is_refund:
                row["receiver"] = partner
            else:
                row["source"] = {**partner, "invoice_payload": charge.payload}
            rows.append(row)
        return {"transactions": rows}

    def take_charge(self, user_id: int, amount: int, payload: str) -> Charge:
        """Telegram takes Stars from a user for an invoice: a new charge in the ledger."""
        charge_id = f"stxCHARGE{len(self.charges) + 1:06d}"
        charge = Charge(charge_id, user_id, amount, payload, int(time.time()))
        self.charges[charge_id] = charge
        self.ledger.append((charge, False))
        return charge

    async def _m_senddocument(self, p: dict[str, Any]) -> dict[str, Any]:
        chat_id = p["chat_id"]
        self._check_send(chat_id)
        upload = p.get("document")
        if isinstance(upload, str) and upload.startswith("attach://"):
            upload = p.get(upload.removeprefix("attach://"))  # multipart: the file is its own field
        name, content = "document", b""
        if hasattr(upload, "file"):
            name, content = upload.filename or name, upload.file.read()
        file_id = f"doc-{len(self.documents) + 1}"
        self.documents[file_id] = content
        caption = plain_text(str(p.get("caption") or ""), p.get("parse_mode"))
        message = self._new_message(
            chat_id, document={"file_id": file_id, "file_unique_id": file_id, "file_name": name, "file_size": len(content)},
            **({"caption": caption} if caption else {}),
        )  # fmt: skip
        self._log(chat_id, "bot", "document", f"{name} ({len(content)} bytes) {caption}".strip())
        return _public(message)

    async def _m_sendphoto(self, p: dict[str, Any]) -> dict[str, Any]:
        chat_id = p["chat_id"]
        self._check_send(chat_id)
        caption = plain_text(str(p.get("caption") or ""), p.get("parse_mode"))
        upload = p.get("photo")
        if isinstance(upload, str) and upload.startswith("attach://"):
            upload = p.get(upload.removeprefix("attach://"))  # multipart: the file is its own field
        file_id = "photo-1"
        if hasattr(upload, "file"):  # an uploaded file, kept as documents are
            file_id = f"photo-{len(self.photos) + 2}"
            self.photos[file_id] = upload.file.read()
        message = self._new_message(
            chat_id,
            photo=[{"file_id": file_id, "file_unique_id": file_id, "width": 1, "height": 1}],
            caption=caption,
        )
        self._log(chat_id, "bot", "photo", caption)
        return _public(message)

    async def _m_copymessage(self, p: dict[str, Any]) -> dict[str, Any]:
        source = self._messages.get((p["from_chat_id"], p["message_id"]))
        if source is None:
            raise ApiError(400, "Bad Request: message to copy not found")
        chat_id = p["chat_id"]
        self._check_send(chat_id)
        content = {k: v for k, v in source.items() if k in ("text", "caption", "photo", "document")}
        if p.get("reply_markup"):
            content["reply_markup"] = p["reply_markup"]
        copy = self._new_message(chat_id, **content)
        self._log(
            chat_id,
            "bot",
            "copy",
            str(copy.get("text") or copy.get("caption") or ""),
            p.get("reply_markup"),
        )
        return {"message_id": copy["message_id"]}

    async def _m_getfile(self, p: dict[str, Any]) -> dict[str, Any]:
        file_id = str(p["file_id"])
        if file_id not in self.documents:
            raise ApiError(400, "Bad Request: invalid file_id")
        return {
            "file_id": file_id,
            "file_unique_id": file_id,
            "file_size": len(self.documents[file_id]),
            "file_path": file_id,
        }

    async def _download(self, request: web.Request) -> web.Response:
        if (
            request.match_info["token"] != self.token
            or request.match_info["path"] not in self.documents
        ):
            return web.Response(status=404)
        return web.Response(body=self.documents[request.match_info["path"]])

    async def _m_answerinlinequery(self, p: dict[str, Any]) -> bool:
        self.inline_answers[str(p["inline_query_id"])] = p.get("results") or []
        return True

    # -- the customer side -----------------------------------------------------------

    def user(
        self,
        user_id: int,
        first_name: str = "Customer",
        *,
        username: str | None = None,
        language_code: str = "en",
    ) -> FakeUser:
        """A Telegram user chatting with the bot in a private chat."""
        record: dict[str, Any] = {
            "id": user_id,
            "is_bot": False,
            "first_name": first_name,
            "language_code": language_code,
        }
        if username:
            record["username"] = username
        self._users[user_id] = record
        return FakeUser(self, record)

    def bot_messages(self, chat_id: int) -> list[dict[str, Any]]:
        return [
            self._messages[(chat_id, mid)]
            for mid in self._chat_messages[chat_id]
            if (chat_id, mid) in self._messages
            and self._messages[(chat_id, mid)].get("from") is self.bot_user
        ]

    async def wait_until(self, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Wait until ``predicate()`` is truthy after some Bot API call; returns its value.
        Raises ``TimeoutError``."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(predicate), timeout)
        return predicate()

    async def push(self, update: dict[str, Any], *, fan_out: bool = False) -> int:
        """Queue an update (for ``getUpdates`` or the webhook); ``fan_out``: a webhook
        delivers it to every target at once. Returns its update id."""
        async with self._changed:
            update_id = self._push_update(update, fan_out)
            self._changed.notify_all()
        return update_id


class FakeUser:
    """Acts as a customer: send text, press buttons, pay, read the bot's messages."""

    def __init__(self, telegram: FakeTelegram, record: dict[str, Any]) -> None:
        self.tg = telegram
        self.record = record
        self.id: int = record["id"]
        self._seen = 0

    @property
    def chat(self) -> dict[str, Any]:
        return self.tg._chat(self.id)

    def _user_message(self, **content: Any) -> dict[str, Any]:
        message_id = next(self.tg._message_ids[self.id])
        message = {
            "message_id": message_id,
            "from": self.record,
            "chat": self.chat,
            "date": int(time.time()),
            **content,
        }
        self.tg._messages[(self.id, message_id)] = message
        self.tg._chat_messages[self.id].append(message_id)
        return message

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Everything the bot has sent to this chat, oldest first (edits applied)."""
        return self.tg.bot_messages(self.id)

    @property
    def last(self) -> dict[str, Any]:
        return self.messages[-1]

    def texts(self) -> list[str]:
        return [m.get("text") or m.get("caption") or "" for m in self.messages]

    async def send(self, text: str, *, group_id: int | None = None) -> int:
        """Type ``text`` (a ``/command`` gets its bot_command entity), in the private chat
        with the bot or, with ``group_id`` (negative), in a group the bot is in. Returns the
        message id."""
        content: dict[str, Any] = {"text": text}
        if text.startswith("/"):
            content["entities"] = [
                {"type": "bot_command", "offset": 0, "length": len(text.split()[0])}
            ]
        if group_id is None:
            self.tg._log(self.id, "user", "text", text)
            message = self._user_message(**content)
            await self.tg.push({"message": message})
            return int(message["message_id"])
        chat = {"id": group_id, "type": "group", "title": f"group {group_id}"}
        message_id = next(self.tg._message_ids[group_id])
        self.tg._log(group_id, "user", "text", text)
        await self.tg.push(
            {
                "message": {
                    "message_id": message_id,
                    "from": self.record,
                    "chat": chat,
                    "date": int(time.time()),
                    **content,
                }
            }
        )
        return message_id

    async def send_document(self, file_name: str, content: bytes, caption: str = "") -> None:
        """Upload a file to the bot (a .txt or .csv list, say)."""
        file_id = f"user-doc-{len(self.tg.documents) + 1}"
        self.tg.documents[file_id] = content
        document = {
            "file_id": file_id,
            "file_unique_id": file_id,
            "file_name": file_name,
            "file_size": len(content),
        }
        self.tg._log(self.id, "user", "document", f"{file_name} ({len(content)} bytes)")
        await self.tg.push(
            {
                "message": self._user_message(
                    document=document, **({"caption": caption} if caption else {})
                )
            }
        )

    async def share_user(
        self, user_id: int, first_name: str, username: str | None = None, request_id: int = 1
    ) -> None:
        shared: dict[str, Any] = {"user_id": user_id, "first_name": first_name}
        if username:
            shared["username"] = username
        self.tg._log(self.id, "user", "share", f"shares contact {first_name}")
        await self.tg.push(
            {
                "message": self._user_message(
                    users_shared={"request_id": request_id, "users": [shared]}
                )
            }
        )

    async def forward_from(
        self, user: dict[str, Any] | None, text: str = "hi", hidden_name: str = "Hidden"
    ) -> None:
        origin = (
            {"type": "user", "date": int(time.time()), "sender_user": user}
            if user
            else {"type": "hidden_user", "date": int(time.time()), "sender_user_name": hidden_name}
        )
        self.tg._log(
            self.id,
            "user",
            "forward",
            f"forwards a message from {user['first_name'] if user else hidden_name}",
        )
        await self.tg.push({"message": self._user_message(text=text, forward_origin=origin)})

    def find_button(self, text: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The newest bot message with an inline button whose text contains ``text``."""
        for message in reversed(self.messages):
            for row in (message.get("reply_markup") or {}).get("inline_keyboard", []):
                for button in row:
                    if text in button["text"]:
                        return message, button
        raise LookupError(f"no button {text!r} in chat {self.id}")

    async def press(self, text: str) -> str:
        """Press the newest inline button containing ``text``; returns the callback query id."""
        message, button = self.find_button(text)
        if "callback_data" not in button:
            raise LookupError(f"button {button['text']!r} is a link, not a callback")
        return await self.press_data(button["callback_data"], message, label=button["text"])

    async def press_data(
        self, data: str, message: dict[str, Any] | None = None, label: str | None = None
    ) -> str:
        """Send a callback query with any ``data`` (crafted ones included)."""
        if message is None:  # crafted data: attach it to the newest bot message, or a made-up one
            message = (
                self.last
                if self.messages
                else {"message_id": 1, "from": self.tg.bot_user, "chat": self.chat, "date": 0}
            )
        query_id = f"{self.id}-{next(self.tg._query_ids)}"
        self.tg._log(self.id, "user", "press", label or data)
        await self.tg.push(
            {
                "callback_query": {
                    "id": query_id,
                    "from": self.record,
                    "message": _public(message),
                    "chat_instance": f"ci-{self.id}",
                    "data": data,
                }
            }
        )
        return query_id

    async def inline(self, query: str) -> list[dict[str, Any]]:
        """Type ``@bot query`` in some chat; returns the bot's inline results."""
        query_id = f"iq-{self.id}-{next(self.tg._query_ids)}"
        self.tg._log(self.id, "user", "inline", f"@{self.tg.bot_user['username']} {query}")
        await self.tg.push(
            {
                "inline_query": {
                    "id": query_id,
                    "from": self.record,
                    "query": query,
                    "offset": "",
                    "chat_type": "sender",
                }
            }
        )
        return await self.tg.wait_until(lambda: self.tg.inline_answers.get(query_id))  # type: ignore[no-any-return]

    def latest_invoice(self) -> dict[str, Any]:
        for message in reversed(self.messages):
            if "invoice" in message:
                return message
        raise LookupError(f"no invoice in chat {self.id}")

    async def pay(
        self,
        invoice: dict[str, Any] | None = None,
        *,
        repeat_update: bool = False,
        lose_update: bool = False,
        fan_out: bool = False,
    ) -> tuple[bool, str | None]:
        """Press Pay on the newest invoice: a pre-checkout query, then (if the bot says ok
        within the deadline) a ``successful_payment`` message. ``repeat_update`` delivers
        that update twice, as a webhook retry or a polling restart can; ``lose_update``
        takes the Stars but never delivers it, as a bot that died mid-update would see;
        ``fan_out`` delivers it to every webhook target at once (see
        :meth:`FakeTelegram.push`). Returns ``(paid, error_message)``."""
        invoice = invoice or self.latest_invoice()
        details = invoice["invoice"]
        query_id = f"pcq-{next(self.tg._query_ids)}"
        future: asyncio.Future[tuple[bool, str | None]] = asyncio.get_running_loop().create_future()
        self.tg._precheckouts[query_id] = future
        self.tg._log(self.id, "user", "pay", f"pays {details['total_amount']} ⭐")
        await self.tg.push(
            {
                "pre_checkout_query": {
                    "id": query_id,
                    "from": self.record,
                    "currency": details["currency"],
                    "total_amount": details["total_amount"],
                    "invoice_payload": invoice["_payload"],
                }
            }
        )
        try:
            ok, error = await asyncio.wait_for(asyncio.shield(future), self.tg.precheckout_deadline)
        except TimeoutError:
            future.cancel()
            self.tg._log(
                self.id, "bot", "precheckout", "no answer within the deadline: payment failed"
            )
            return False, "timeout"
        if not ok:
            self.tg._log(self.id, "bot", "precheckout", f"payment refused: {error}")
            return False, error
        charge = self.tg.take_charge(self.id, details["total_amount"], invoice["_payload"])
        payment = {
            "currency": details["currency"],
            "total_amount": details["total_amount"],
            "invoice_payload": invoice["_payload"],
            "telegram_payment_charge_id": charge.charge_id,
            "provider_payment_charge_id": "",
        }
        message = self._user_message(successful_payment=payment)
        if lose_update:
            return True, None
        await self.tg.push({"message": message}, fan_out=fan_out)
        if repeat_update:
            await self.tg.push({"message": message})
        return True, None

    async def send_payment(self, payload: str, amount: int, currency: str = "XTR") -> str:
        """A crafted ``successful_payment`` whose pre-checkout the bot never saw (another
        currency, a payload that is not the bot's, an amount that is not the invoice's).
        Telegram took the Stars: the charge is in the ledger. Returns its charge id."""
        charge = self.tg.take_charge(self.id, amount, payload)
        self.tg._log(self.id, "user", "pay", f"pays {amount} {currency} (crafted)")
        payment = {
            "currency": currency,
            "total_amount": amount,
            "invoice_payload": payload,
            "telegram_payment_charge_id": charge.charge_id,
            "provider_payment_charge_id": "",
        }
        await self.tg.push({"message": self._user_message(successful_payment=payment)})
        return charge.charge_id

    def mark(self) -> int:
        """A point in this chat; ``wait_for_text(..., since=mark)`` looks only after it."""
        return len(self.messages)

    async def wait_for_text(
        self, needle: str, timeout: float = 10.0, since: int = 0
    ) -> dict[str, Any]:
        """Wait for a bot message (new or edited) containing ``needle``, among the messages
        after ``since`` (see :meth:`mark`); returns it."""

        def found() -> dict[str, Any] | None:
            for message in reversed(self.messages[since:]):
                if needle in (message.get("text") or message.get("caption") or ""):
                    return message
            return None

        try:
            return await self.tg.wait_until(found, timeout)  # type: ignore[no-any-return]
        except TimeoutError:
            raise AssertionError(
                f"no message with {needle!r}; the bot sent: {self.texts()!r}"
            ) from None

    async def wait_for_new(self, count: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait until ``count`` messages arrive after the last call; returns them."""
        start = self._seen
        await self.tg.wait_until(lambda: len(self.messages) >= start + count, timeout)
        self._seen = len(self.messages)
        return self.messages[start:]

    async def block(self) -> None:
        self.tg.blocked.add(self.id)
