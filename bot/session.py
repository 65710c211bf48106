"""The Bot API session: aiogram's aiohttp session, with the per-call overhead taken out.

Every button press costs two Bot API calls (``answerCallbackQuery``, then
``editMessageText`` with a keyboard) and a share of a ``getUpdates``. With aiogram's own
session, encoding and checking those calls was about a fifth of the bot's CPU per press
(issue 15, py-spy under the throughput benchmark):

- the request body went through aiohttp's ``FormData`` (a multipart writer is built even
  for a plain form) and the keyboard was dumped to a dict, to JSON and percent-encoded on
  every call, although the catalogue's page keyboards are built once and shared
  (:class:`bot.keyboards.SharedKeyboard`);
- each answer was parsed into models, the edited message of every ``editMessageText``
  too (its chat, sender and whole keyboard: about 0.1 ms), although nothing in the shop
  reads it.

:class:`ShopSession` sends the same bytes (``application/x-www-form-urlencoded``, as
aiogram does; ``tests/bot/test_session.py`` compares them with aiogram's own encoding),
encodes a shared keyboard once, and answers a successful edit with ``True`` instead of
parsing the edited message: the Bot API's own result for an edit of an inline message,
so every caller of an edit already handles it. Other answers are validated straight
from their JSON text. Errors are aiogram's: anything but a successful answer goes
through aiogram's own checks and exceptions.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote_plus

from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.methods import EditMessageReplyMarkup, EditMessageText
from aiogram.methods.base import Response, TelegramMethod, TelegramType
from aiohttp import BytesPayload, FormData
from pydantic import BaseModel, ConfigDict, ValidationError

if TYPE_CHECKING:
    from aiogram import Bot

#: shared keyboards whose encoding is kept, each with its keyboard (which it keeps alive):
#: as many as the catalogue's page cache holds (``bot.keyboards``), ~2.5 kB each encoded
ENCODED_KEYBOARDS = 1024

_FORM = "application/x-www-form-urlencoded"

#: methods whose result is ``Message | True`` and whose message the shop never reads
EDITS: tuple[type[TelegramMethod[Any]], ...] = (EditMessageText, EditMessageReplyMarkup)


def _quoted(value: object) -> str:
    """As ``urllib.parse.urlencode`` quotes a value: a ``str`` (a ``str`` enum such as
    ``ParseMode.HTML`` too) by its characters, anything else by ``str()``."""
    return quote_plus(value if isinstance(value, str) else str(value))


class _Outcome(BaseModel):
    """Only whether a Bot API call succeeded: ``{"ok": true, ...}``."""

    model_config = ConfigDict(extra="ignore")
    ok: bool


class ShopSession(AiohttpSession):
    """:class:`aiogram.client.session.aiohttp.AiohttpSession` that encodes requests and
    checks answers with less work: the bytes sent are the same, and so are the results,
    but for a successful edit's (``True``).

    Follows the Bot API's "Making requests": parameters as
    ``application/x-www-form-urlencoded`` (``multipart/form-data`` when a file is
    uploaded: aiogram's own encoding then), answers ``{"ok": true, "result": ...}``.
    Takes :class:`aiogram.client.session.aiohttp.AiohttpSession`'s arguments (``api``,
    ``timeout`` in seconds, ...).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._responses: dict[type[TelegramMethod[Any]], type[Response[Any]]] = {}
        #: id(keyboard) -> (keyboard, its encoded ``reply_markup=...`` field); the keyboard
        #: is held so that its id cannot be reused while its encoding is kept
        self._keyboards: OrderedDict[int, tuple[BaseModel, str]] = OrderedDict()

    def build_form_data(self, bot: Bot, method: TelegramMethod[TelegramType]) -> FormData:
        """The request body for ``method``: the same urlencoded bytes aiogram's
        ``FormData`` would produce, or aiogram's ``FormData`` itself when the method
        uploads a file. A ``frozen`` (shared) keyboard is encoded once."""
        markup = getattr(method, "reply_markup", None)
        shared = markup is not None and markup.model_config.get("frozen", False)
        values = method.model_dump(warnings=False, exclude={"reply_markup"} if shared else None)
        files: dict[str, Any] = {}
        fields = []
        for key, value in values.items():
            prepared = self.prepare_value(value, bot=bot, files=files)
            if prepared:
                fields.append(f"{quote_plus(key)}={_quoted(prepared)}")
        if files:  # an upload: multipart, exactly as aiogram builds it
            return super().build_form_data(bot, method)
        if shared:
            fields.append(self._encoded_keyboard(bot, markup))
        body = "&".join(fields).encode()
        # aiohttp posts a payload as it is; aiogram's make_request passes it as ``data``
        return cast(FormData, BytesPayload(body, content_type=_FORM))

    def _encoded_keyboard(self, bot: Bot, markup: BaseModel) -> str:
        entry = self._keyboards.get(id(markup))
        if entry is not None and entry[0] is markup:
            self._keyboards.move_to_end(id(markup))
            return entry[1]
        prepared = self.prepare_value(markup.model_dump(warnings=False), bot=bot, files={})
        encoded = f"reply_markup={_quoted(prepared)}"
        self._keyboards[id(markup)] = (markup, encoded)
        if len(self._keyboards) > ENCODED_KEYBOARDS:
            self._keyboards.popitem(last=False)
        return encoded

    def check_response(
        self, bot: Bot, method: TelegramMethod[TelegramType], status_code: int, content: str
    ) -> Response[TelegramType]:
        """The answer to ``method`` as aiogram's ``Response[T]``, validated straight from
        its JSON text; for a successful edit (:data:`EDITS`) the result is ``True``, the
        edited message is not parsed. Raises what aiogram raises: ``ClientDecodeError``
        for an answer that is not the method's result, ``TelegramBadRequest``,
        ``TelegramRetryAfter``, ... for an error (``ok`` false or an HTTP error status)."""
        response_type = self._responses.get(type(method))
        if response_type is None:
            response_type = Response[method.__returning__]  # type: ignore[name-defined]
            self._responses[type(method)] = response_type
        if 200 <= status_code <= 226:
            if isinstance(method, EDITS):
                try:
                    succeeded = _Outcome.model_validate_json(content).ok
                except ValidationError:
                    succeeded = False
                if succeeded:
                    return cast(Response[TelegramType], response_type(ok=True, result=True))
            try:
                response = response_type.model_validate_json(content, context={"bot": bot})
            except ValidationError:
                pass  # aiogram's own checks below say what is wrong, with its exception
            else:
                if response.ok:
                    return cast(Response[TelegramType], response)
        return super().check_response(bot, method, status_code, content)
