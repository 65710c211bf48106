"""A GamesDrop twin: the partner API endpoints of both guide editions on aiohttp.

Run it alone with ``python -m sandboxes.gamesdrop --port 8081`` or embed it::

    sandbox = GamesDropSandbox(SandboxConfig(topup_seconds=0.2))
    base_url = await sandbox.start()          # http://127.0.0.1:<port>
    ...
    await sandbox.stop()

It follows the merchant guide field by field: the shop token in ``Authorization``, the
``{"error": {"code", "message"}}`` envelope, numeric ``offerId`` only, the balance-profile
filter (offers whose settlement method the account's ``balanceProfile`` may not use are
missing from sync, find-one and servers, and create-order answers ``OFFER_NOT_FOUND``),
price confirmation (a confirmed price that covers the current one is accepted and the
order is charged the current price; test offer 999 wants its exact value),
``TRANSACTION_DUPLICATE`` on a reused ``transactionId``, a balance that purchases debit and
failures and refunds credit back, keys that complete at once and top-ups that go
SUBMITTED -> PROCESSING -> COMPLETED (or CANCELED/FAILED/REFUND for configured players),
Telegram Stars orders with ``fulfillmentData``. Faults can be injected for tests.

Neither guide edition names a request that answers ORDER_NOT_PROCESSING,
ORDER_NOT_COMPLETED, ORDER_ALREADY_CANCELED or ORDER_ALREADY_REFUNDED (they are listed
under "Possible Errors" only; there is no cancel or refund request), so the sandbox
emits none of them.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from aiohttp import web

from sandboxes.gamesdrop.catalogue import (
    CATEGORY_ALIASES,
    COMPATIBLE_METHODS,
    TEST_OFFER_ID,
    SandboxOffer,
    generate_catalogue,
    stars_price_usd,
)
from sandboxes.serving import LocalServer
from services import exact_json

logger = logging.getLogger(__name__)

USER_INFO_PATH = "/api/aggregator/a6/telegram/user-info"
DEFAULT_TOKEN = "sandbox-token"
STARS_MIN, STARS_MAX = 1, 2500

#: Supplier-side rates used to debit the USD balance for offers priced in other currencies.
SANDBOX_USD_RATES = {
    "USD": Decimal("1"),
    "EUR": Decimal("1.08"),
    "RUB": Decimal("0.011"),
    "KZT": Decimal("0.0020"),
}


@dataclass
class TelegramAccount:
    """A Telegram user known to the sandbox's user-info endpoint."""

    username: str
    first_name: str
    user_id: int | None  # None: has not talked to @gamesdrop_api_bot


def _default_accounts() -> list[TelegramAccount]:
    return [
        TelegramAccount("durov", "Pavel", 1_000_001),
        TelegramAccount("alice_gamer", "Alice", 1_000_002),
        TelegramAccount("bob_the_builder", "Bob", 1_000_003),
        TelegramAccount("blocked_bob", "Blocked Bob", 1_000_004),
        TelegramAccount("restricted_rita", "Rita", 1_000_005),
        TelegramAccount("igoryan34", "Igor", 143_594_291),
        TelegramAccount("shy_sam", "shy_sam", None),
    ]


@dataclass
class SandboxConfig:
    """Everything that shapes the sandbox's behaviour. Times in seconds, money Decimal."""

    tokens: set[str] = field(default_factory=lambda: {DEFAULT_TOKEN})
    offers: int = 300
    seed: int = 7
    ton_usd: Decimal = Decimal("2.57")
    balance: Decimal = Decimal("500.00")
    postpaid: bool = False
    #: FIAT, USDT or MIXED: which offer settlement methods this account sees and buys
    balance_profile: str = "MIXED"
    partner_id: int = 4242
    #: which balance paths answer; an account may answer only one of them.
    balance_paths: tuple[str, ...] = ("/api/v1/offers/balance", "/api/v1/balance")
    #: top-ups: SUBMITTED until half of this, PROCESSING until all of it, then final.
    topup_seconds: float = 6.0
    #: player ids -> login; any other id of 5 to 12 digits is valid with a made-up login.
    players: dict[str, str] = field(default_factory=lambda: {"12345678": "DragonSlayer"})
    invalid_players: dict[str, str] = field(
        default_factory=lambda: {"00000": "Игрок не найден", "666": "Player is banned"}
    )
    #: player ids whose top-ups end CANCELED (with this message) or FAILED.
    canceled_players: dict[str, str] = field(
        default_factory=lambda: {"55555555": "Top-up rejected by game server"}
    )
    failed_players: dict[str, str] = field(
        default_factory=lambda: {"77777777": "Provider internal error"}
    )
    #: player ids whose top-ups end REFUND (the money comes back, no message)
    refunded_players: set[str] = field(default_factory=lambda: {"88888888"})
    #: price confirmation as older accounts did it: only the exact current price is
    #: accepted (by default a confirmed price that covers the current one is)
    exact_price: bool = False
    telegram_accounts: list[TelegramAccount] = field(default_factory=_default_accounts)
    #: Telegram user ids whose Stars deliveries fail, with the documented reason.
    stars_failures: dict[int, str] = field(
        default_factory=lambda: {
            999_000_001: "user not found",
            1_000_004: "bot was blocked by user",
            1_000_005: "STARGIFT_INVALID",
        }
    )
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        if self.balance_profile not in COMPATIBLE_METHODS:
            raise ValueError(f"balance_profile is one of {sorted(COMPATIBLE_METHODS)}")


#: HTTP status of each refusal a create-order can answer (as the sandbox answers them)
_REFUSAL_STATUS = {"OUT_OF_STOCK": 409, "OFFER_NOT_FOUND": 404, "INSUFFICIENT_BALANCE": 402}


@dataclass
class Faults:
    """Injected trouble. Counters go down by one per affected request."""

    latency: float = 0.0
    unavailable: int = 0  # next N requests answer 503 SERVICE_UNAVAILABLE
    rate_limited: int = 0  # next N requests answer 429 with Retry-After
    #: the code in a 429's error envelope, and the Retry-After (s) of 429s and 5xx faults
    rate_limit_code: str = "TOO_MANY_REQUESTS"
    retry_after: int = 1
    create_rate_limited: int = 0  # next N create-orders answer 429 (nothing is made)
    create_unavailable: int = 0  # next N create-orders answer 500 SERVICE_UNAVAILABLE, unmade
    create_unavailable_after_making: int = 0  # next N create-orders are made, then answer 500
    create_field_validation: int = 0  # next N create-orders: 500 "Field validation ... failed"
    drop_create_answers: int = 0  # next N create-orders are made, then the connection is cut
    balance_unavailable: int = 0  # next N balance reads answer 503 BALANCE_UNAVAILABLE
    create_latency: float = 0.0  # extra delay before create-order answers (after it is made)
    out_of_stock: set[int] = field(default_factory=set)
    #: the next create-orders answer these refusals, one code each, although find-one said
    #: the offer is there at its price (guide: "the cheapest supplier became unavailable"
    #: between the price check and the order): OUT_OF_STOCK, OFFER_NOT_FOUND,
    #: INSUFFICIENT_BALANCE
    create_refusals: list[str] = field(default_factory=list)
    #: offer id -> a new price it takes at its next create-order (it rose meanwhile)
    price_rises: dict[int, Decimal] = field(default_factory=dict)
    #: sync lists only the first N offers, with ``count`` N (0: ``{"count":0,"rows":[]}``)
    sync_offers: int | None = None
    #: the first N page boundaries of sync repeat the previous page's last row, shifting the
    #: rest (seen in the field): the last offers spill past ``ceil(count / limit)`` pages
    sync_repeated_rows: int = 0


@dataclass
class SandboxOrder:
    order_id: int
    transaction_id: str
    offer: SandboxOffer
    price: Decimal
    cost_usd: Decimal
    game_user_id: str | None
    game_server_id: str | None
    created_at: datetime
    created_clock: float
    key: str | None = None
    final_status: str = "COMPLETED"
    message: str | None = None
    fulfillment: dict[str, Any] | None = None
    settled: bool = False


class SandboxError(Exception):
    def __init__(self, code: str, http_status: int, message: str | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.http_status = http_status
        self.message = message or f"{code} (status={http_status})"


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        text=exact_json.dumps(body), status=status, content_type="application/json", headers=headers
    )


def _money(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), ROUND_HALF_UP)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _legacy_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}+00"


class GamesDropSandbox(LocalServer):
    """The embeddable sandbox. ``app`` is the aiohttp application; ``start()`` serves it."""

    label = "GamesDrop sandbox"

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self.faults = Faults()
        self.offers: dict[int, SandboxOffer] = {
            offer.offer_id: offer
            for offer in generate_catalogue(
                self.config.offers, seed=self.config.seed, ton_usd=self.config.ton_usd
            )
        }
        self._offer_list = list(self.offers.values())
        self._visible_lists: dict[str, list[SandboxOffer]] = {}
        self._row_cache: dict[int, str] = {}
        self.balance = self.config.balance
        self.transactions: list[dict[str, Any]] = [
            self._transaction_row(1, self.config.balance, "DEPOSIT", "Sandbox opening deposit")
        ]
        self.orders: dict[int, SandboxOrder] = {}
        self.orders_by_transaction: dict[str, SandboxOrder] = {}
        self.create_order_calls = 0
        #: requests served, by path (the supplier API's, not the /_sandbox/ controls)
        self.calls: dict[str, int] = {}
        self._served = asyncio.Condition()
        self._next_order_id = 10_222_500
        self._runner: web.AppRunner | None = None
        self.base_url = ""
        self.app = self._build_app()

    async def wait_calls(self, path: str, count: int, timeout: float = 10.0) -> None:
        """Wait until ``path`` has been requested ``count`` times in all (a positive signal
        that a client's background loop has run). Raises ``TimeoutError``."""
        async with self._served:
            await asyncio.wait_for(
                self._served.wait_for(lambda: self.calls.get(path, 0) >= count), timeout
            )

    @property
    def user_info_url(self) -> str:
        return f"{self.base_url}{USER_INFO_PATH}"

    # -- controls for tests and demos -----------------------------------------------

    def set_price(self, offer_id: int, price: Decimal) -> None:
        """Change one offer's price (price drift)."""
        self.offers[offer_id].price = price
        self._row_cache.pop(offer_id, None)

    def drift_prices(self, percent: Decimal) -> None:
        """Move every price by ``percent`` (e.g. ``Decimal(5)`` for +5 %)."""
        factor = 1 + percent / 100
        for offer in self._offer_list:
            offer.price = _money(offer.price * factor)
        self._row_cache.clear()

    def set_ton_rate(self, ton_usd: Decimal) -> None:
        """Re-price the Telegram Stars packs from a new TON/USD rate."""
        for offer in self._offer_list:
            if offer.stars_amount:
                self.set_price(offer.offer_id, stars_price_usd(offer.stars_amount, ton_usd))

    def remove_offer(self, offer_id: int) -> None:
        """Make an offer disappear (find-one and create-order answer OFFER_NOT_FOUND)."""
        self.offers.pop(offer_id, None)
        self._offer_list = list(self.offers.values())
        self._visible_lists.clear()
        self._row_cache.pop(offer_id, None)

    def refund_order(self, order_id: int) -> None:
        """GamesDrop refunds an order it made (as its support does): order-status answers
        REFUND from then on (a top-up still under way gets there when it would have
        finished), without ``key``, and the cost comes back to the balance once.
        Raises ``KeyError`` for an unknown order, ``ValueError`` for a CANCELED or FAILED
        one (already credited back)."""
        order = self.orders[order_id]
        if order.final_status in {"CANCELED", "FAILED"}:
            raise ValueError(f"order {order_id} is {order.final_status}: nothing to refund")
        order.final_status = "REFUND"
        order.message = None

    # -- app -------------------------------------------------------------------------

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        routes = [
            web.get("/api/v1/offers/balance", self._balance),
            web.get("/api/v1/balance", self._balance),
            web.get("/api/v1/balance/transactions", self._transactions),
            web.post("/api/v1/offers/find-one", self._find_one),
            web.post("/api/v1/offers/sync", self._sync),
            web.post("/api/v1/offers/create-order", self._create_order),
            web.post("/api/v1/offers/order-status", self._order_status),
            web.post("/api/v1/offers/servers", self._servers),
            web.post("/api/v1/partner/product-offer/servers", self._servers),
            web.post("/api/v1/offers/check-game-data", self._check_game_data),
            web.post(USER_INFO_PATH, self._user_info),
            web.get("/_sandbox/state", self._control_state),
            web.post("/_sandbox/faults", self._control_faults),
        ]
        app.add_routes(routes)
        return app

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        if request.path.startswith("/_sandbox/"):
            return await handler(request)  # type: ignore[no-any-return]
        async with self._served:
            self.calls[request.path] = self.calls.get(request.path, 0) + 1
            self._served.notify_all()
        if self.faults.latency:
            await asyncio.sleep(self.faults.latency)
        try:
            if self.faults.rate_limited > 0:
                self.faults.rate_limited -= 1
                return self._rate_limited()
            if self.faults.unavailable > 0:
                self.faults.unavailable -= 1
                raise SandboxError("SERVICE_UNAVAILABLE", 503)
            if request.headers.get("Authorization", "") not in self.config.tokens:
                raise SandboxError("INVALID_TOKEN", 401)
            return await handler(request)  # type: ignore[no-any-return]
        except SandboxError as exc:
            return _json({"error": {"code": exc.code, "message": exc.message}}, exc.http_status)

    def _rate_limited(self) -> web.Response:
        return _json(
            {"error": {"code": self.faults.rate_limit_code, "message": "Too many requests"}},
            429,
            {"Retry-After": str(self.faults.retry_after)},
        )

    def _unavailable(self, message: str | None = None) -> web.Response:
        """500 SERVICE_UNAVAILABLE as seen in the field (FIELD-NOTES.md), with Retry-After."""
        return _json(
            {"error": {"code": "SERVICE_UNAVAILABLE",
                       "message": message or "SERVICE_UNAVAILABLE (status=500)"}},
            500,
            {"Retry-After": str(self.faults.retry_after)},
        )  # fmt: skip

    async def _body(self, request: web.Request) -> dict[str, Any]:
        try:
            body = exact_json.loads(await request.text())
        except ValueError as exc:
            raise SandboxError("INVALID_REQUEST_BODY", 400, "body is not JSON") from exc
        if not isinstance(body, dict):
            raise SandboxError("INVALID_REQUEST_BODY", 400, "body must be an object")
        return body

    @staticmethod
    def _offer_id(body: dict[str, Any]) -> int:
        offer_id = body.get("offerId")
        if isinstance(offer_id, bool) or not isinstance(offer_id, int):
            raise SandboxError("INVALID_REQUEST_BODY", 400, "offerId must be a number")
        return offer_id

    def _visible(self, offer: SandboxOffer) -> bool:
        """Whether the account's balance profile may see and buy ``offer``."""
        return offer.settlement_method in COMPATIBLE_METHODS[self.config.balance_profile]

    def _visible_list(self) -> list[SandboxOffer]:
        """The catalogue as this account sees it, in catalogue order."""
        profile = self.config.balance_profile
        visible = self._visible_lists.get(profile)
        if visible is None:
            visible = self._visible_lists[profile] = [
                o for o in self._offer_list if self._visible(o)
            ]
        return visible

    def _offer(self, offer_id: int) -> SandboxOffer:
        """The offer, or OFFER_NOT_FOUND when it is absent or hidden by the balance profile
        ("Product not found or no access")."""
        offer = self.offers.get(offer_id)
        if offer is None:
            raise SandboxError("OFFER_NOT_FOUND", 404)
        if not self._visible(offer):
            raise SandboxError(
                "OFFER_NOT_FOUND",
                404,
                f"OFFER_NOT_FOUND (status=404): not available to the "
                f"{self.config.balance_profile} balance profile",
            )
        return offer

    # -- balance ---------------------------------------------------------------------

    def _transaction_row(
        self, row_id: int, amount: Decimal, kind: str, description: str
    ) -> dict[str, Any]:
        return {
            "id": row_id,
            "amount": _money(amount),
            "type": kind,
            "description": description,
            "balanceAfter": _money(self.balance),
            "createdAt": _iso(datetime.now(UTC)),
        }

    def _book(self, amount: Decimal, kind: str, description: str) -> None:
        self.balance += amount
        self.transactions.append(
            self._transaction_row(len(self.transactions) + 1, amount, kind, description)
        )

    async def _balance(self, request: web.Request) -> web.Response:
        if self.faults.balance_unavailable > 0:
            self.faults.balance_unavailable -= 1
            raise SandboxError("BALANCE_UNAVAILABLE", 503)
        if request.path not in self.config.balance_paths:
            return _json({"error": {"code": "NOT_FOUND", "message": "Cannot GET"}}, 404)
        body: dict[str, Any] = {
            "balance": _money(self.balance),
            "draftBalance": _money(self._draft_balance()),
            "currency": {"id": 3, "code": "USD"},
        }
        if request.path == "/api/v1/offers/balance":
            body |= {
                "isPostpaid": self.config.postpaid,
                "balanceProfile": self.config.balance_profile,
                "partnerId": self.config.partner_id,
            }
        return _json(body)

    def _draft_balance(self) -> Decimal:
        return sum(
            (
                o.cost_usd
                for o in self.orders.values()
                if self._status(o) in {"SUBMITTED", "PROCESSING"}
            ),
            Decimal(0),
        )

    async def _transactions(self, request: web.Request) -> web.Response:
        try:
            page = max(1, int(request.query.get("page", "1")))
            limit = max(1, min(100, int(request.query.get("limit", "20"))))
        except ValueError as exc:
            raise SandboxError("INVALID_REQUEST_BODY", 400, "page and limit are numbers") from exc
        newest_first = self.transactions[::-1]
        rows = newest_first[(page - 1) * limit : page * limit]
        return _json({"transactions": rows, "total": len(self.transactions)})

    # -- catalogue -------------------------------------------------------------------

    def _offer_body(self, offer: SandboxOffer) -> dict[str, Any]:
        return {
            "offerId": offer.offer_id,
            "productName": offer.product_name,
            "offerName": offer.offer_name,
            "count": 1,
            "price": offer.price,
            "currency": offer.currency,
            "settlementMethod": offer.settlement_method,
            "balanceProfile": self.config.balance_profile,
            "isSettlementCompatible": True,
            "isReturnDataForCustomer": offer.returns_key,
            "isRequiredGameUserId": offer.needs_player,
            "isRequiredGameServerId": offer.needs_server,
        }

    async def _find_one(self, request: web.Request) -> web.Response:
        offer = self._offer(self._offer_id(await self._body(request)))
        return _json(self._offer_body(offer))

    def _row_json(self, offer: SandboxOffer) -> str:
        cached = self._row_cache.get(offer.offer_id)
        if cached is None:
            row: dict[str, Any] = {
                "productId": offer.product_id,
                "productName": offer.product_name,
                "offerGroupId": offer.offer_id,
                "offerGroupName": offer.offer_name,
                "price": offer.price,
                "currency": offer.currency,
                "inStock": offer.in_stock and offer.offer_id not in self.faults.out_of_stock,
                "isRequiredGameUserId": offer.needs_player,
                "isRequiredGameServerId": offer.needs_server,
            }
            if offer.offer_id % 7 == 0:  # live rows sometimes carry extra fields
                row["priceBreakdown"] = {
                    "providerPrice": offer.price,
                    "providerCurrency": offer.currency,
                    "addedPercent": 0,
                    "isPriceFresh": True,
                }
            cached = self._row_cache[offer.offer_id] = exact_json.dumps(row)
        return cached

    async def _sync(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        limit, page = body.get("limit", 1000), body.get("page", 1)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (limit, page)):
            raise SandboxError("INVALID_REQUEST_BODY", 400, "limit and page must be numbers")
        if not 1 <= limit <= 5000 or page < 1:
            raise SandboxError("INVALID_REQUEST_BODY", 400, "limit is 1..5000, page from 1")
        matches = self._visible_list()
        if self.faults.sync_offers is not None:
            matches = matches[: self.faults.sync_offers]
        category = body.get("category")
        if category:
            category = CATEGORY_ALIASES.get(category, category)
            matches = [o for o in matches if o.category == category]
        search = body.get("search")
        if search:
            needle = str(search).casefold()
            matches = [o for o in matches if needle in o.product_name.casefold()]
        start = (page - 1) * limit - min(page - 1, self.faults.sync_repeated_rows)
        rows = matches[start : start + limit]
        text = f'{{"count":{len(matches)},"rows":[{",".join(self._row_json(o) for o in rows)}]}}'
        return web.Response(text=text, content_type="application/json")

    async def _servers(self, request: web.Request) -> web.Response:
        offer = self._offer(self._offer_id(await self._body(request)))
        return _json(offer.servers)

    # -- players ---------------------------------------------------------------------

    def _player_login(self, offer: SandboxOffer, user_id: str, server_id: str | None) -> str:
        """The player's login, or raise ``ValueError`` with the supplier's message."""
        if offer.offer_id == TEST_OFFER_ID:
            return self.config.players.get(user_id, "TestPlayer")
        if offer.needs_server and server_id not in offer.servers.values():
            raise ValueError("Unknown game server")
        if user_id in self.config.invalid_players:
            raise ValueError(self.config.invalid_players[user_id])
        if user_id in self.config.players:
            return self.config.players[user_id]
        if user_id.isdigit() and 5 <= len(user_id) <= 12:
            return f"Player{user_id[-4:]}"
        raise ValueError("Игрок не найден")

    async def _check_game_data(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        customer = body.get("customer") if isinstance(body.get("customer"), dict) else {}
        user_id = body.get("gameUserId") or customer.get("gameUserId")
        server_id = body.get("gameServerId") or customer.get("gameServerId")
        if not user_id:
            raise SandboxError(
                "SERVICE_UNAVAILABLE",
                500,
                "Field validation for 'GameUserID' failed on the 'required' tag",
            )
        offer_id = body.get("offerId")
        offer = self.offers.get(offer_id) if isinstance(offer_id, int) else None
        if offer is None or not self._visible(offer):
            return _json({"status": "INVALID", "message": "Offer not found"})
        try:
            login = self._player_login(offer, str(user_id), str(server_id) if server_id else None)
        except ValueError as exc:
            return _json({"status": "INVALID", "message": str(exc)})
        return _json({"status": "VALID", "gameUserLogin": login})

    async def _user_info(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        raw = str(body.get("username") or "").strip()
        name = raw.removeprefix("@")
        account = None
        if name.isdigit():
            account = next(
                (a for a in self.config.telegram_accounts if a.user_id == int(name)), None
            )
        else:
            valid = 4 <= len(name) <= 32 and name.replace("_", "").isalnum() and name[0].isalpha()
            if not valid:
                return _json({"valid": False, "message": "Invalid username format"})
            account = next(
                (a for a in self.config.telegram_accounts if a.username.lower() == name.lower()),
                None,
            )
        if account is None or account.user_id is None:
            return _json(
                {
                    "valid": True,
                    "username": name,
                    "userInfo": {"username": name, "first_name": name},
                    "message": "Username format is valid, but user details are not publicly "
                    "available. Full verification requires user interaction with the bot.",
                }
            )
        return _json(
            {
                "valid": True,
                "username": account.username,
                "userInfo": {
                    "id": account.user_id,
                    "first_name": account.first_name,
                    "username": account.username,
                },
                "message": "User account verified successfully",
            }
        )

    # -- orders ----------------------------------------------------------------------

    def _status(self, order: SandboxOrder) -> str:
        """Current status; settles the balance the first time a failure is reached."""
        if order.offer.returns_key or order.offer.stars_amount:
            status = order.final_status
        else:
            elapsed = self.config.clock() - order.created_clock
            if elapsed < self.config.topup_seconds / 2:
                return "SUBMITTED"
            if elapsed < self.config.topup_seconds:
                return "PROCESSING"
            status = order.final_status
        if status in {"CANCELED", "FAILED", "REFUND"} and not order.settled:
            order.settled = True
            if order.offer.offer_id != TEST_OFFER_ID:
                self._book(order.cost_usd, "REFUND", f"Refund for order {order.order_id}")
        return status

    def _order_body(self, order: SandboxOrder) -> dict[str, Any]:
        status = self._status(order)
        offer = order.offer
        body: dict[str, Any] = {
            "orderId": order.order_id,
            "count": 1,
            "price": order.price,
            "currency": offer.currency,
            "offerId": offer.offer_id,
            "productName": offer.product_name,
            "offerName": offer.offer_name,
            "status": status,
            "isReturnDataForCustomer": offer.returns_key,
            "isRequiredGameUserId": offer.needs_player,
            "isRequiredGameServerId": offer.needs_server,
            # the guide shows both formats; keys answer the older one, Stars the newer
            "createdAt": _iso(order.created_at)
            if offer.stars_amount
            else _legacy_time(order.created_at),
        }
        if status == "COMPLETED" and offer.returns_key and order.key:
            body["key"] = order.key
        if status in {"CANCELED", "FAILED"} and order.message:
            body["message"] = order.message
        if order.fulfillment is not None:
            body["fulfillmentData"] = order.fulfillment
        return body

    async def _create_order(self, request: web.Request) -> web.StreamResponse:
        self.create_order_calls += 1
        faults = self.faults
        if faults.create_rate_limited > 0:
            faults.create_rate_limited -= 1
            return self._rate_limited()
        if faults.create_unavailable > 0:
            faults.create_unavailable -= 1
            return self._unavailable()
        if faults.create_field_validation > 0:
            faults.create_field_validation -= 1
            return self._unavailable(
                "Field validation for 'GameUserID' failed on the 'required' tag"
            )
        body = await self._body(request)
        offer_id = self._offer_id(body)
        price = body.get("price")
        if isinstance(price, bool) or not isinstance(price, int | Decimal):
            raise SandboxError("INVALID_REQUEST_BODY", 400, "price must be a number")
        transaction_id = body.get("transactionId")
        if not isinstance(transaction_id, str) or not transaction_id.strip():
            raise SandboxError("INVALID_REQUEST_BODY", 400, "transactionId is required")
        customer = body.get("customer") or {}
        if not isinstance(customer, dict):
            raise SandboxError("INVALID_REQUEST_BODY", 400, "customer must be an object")
        offer = self._offer(offer_id)
        if transaction_id in self.orders_by_transaction:
            raise SandboxError("TRANSACTION_DUPLICATE", 409)
        if not offer.in_stock or offer_id in self.faults.out_of_stock:
            raise SandboxError("OUT_OF_STOCK", 409)
        if self.faults.create_refusals:
            code = self.faults.create_refusals.pop(0)
            raise SandboxError(code, _REFUSAL_STATUS[code])
        if offer_id in self.faults.price_rises:
            self.set_price(offer_id, self.faults.price_rises.pop(offer_id))
        # "The order will only be accepted if the confirmed price still covers the required
        # GamesDrop purchase price"; the test product wants "exact value".
        if self.config.exact_price or offer_id == TEST_OFFER_ID:
            refused = Decimal(price) != offer.price
        else:
            refused = Decimal(price) < offer.price
        if refused:
            raise SandboxError("WRONG_PRICE", 409, f"WRONG_PRICE: current price is {offer.price}")
        user_id = customer.get("gameUserId")
        server_id = customer.get("gameServerId")
        if offer.needs_player and not user_id:
            raise SandboxError("INVALID_REQUEST_BODY", 400, "customer.gameUserId is required")
        if offer.needs_server and server_id not in offer.servers.values():
            raise SandboxError("INVALID_REQUEST_BODY", 400, "customer.gameServerId is required")
        if offer.stars_amount and not str(user_id).isdigit():
            raise SandboxError(
                "INVALID_REQUEST_BODY", 400, "gameUserId must be a numeric Telegram user id"
            )
        cost = _money(offer.price * SANDBOX_USD_RATES.get(offer.currency, Decimal(1)))
        is_test = offer_id == TEST_OFFER_ID
        if not is_test and not self.config.postpaid and self.balance < cost:
            raise SandboxError("INSUFFICIENT_BALANCE", 402)
        order = self._make_order(offer, offer.price, cost, transaction_id, user_id, server_id)
        if not is_test:
            self._book(-cost, "PURCHASE", f"API Purchase - {offer.product_name} {offer.offer_name}")
        if self.faults.create_latency:
            await asyncio.sleep(self.faults.create_latency)
        if self.faults.create_unavailable_after_making > 0:
            self.faults.create_unavailable_after_making -= 1
            return self._unavailable()
        if self.faults.drop_create_answers > 0:
            self.faults.drop_create_answers -= 1
            logger.info("sandbox: dropping the answer to create-order %s", transaction_id)
            if request.transport is not None:
                request.transport.close()
            raise asyncio.CancelledError
        return _json(self._order_body(order))

    def _make_order(
        self,
        offer: SandboxOffer,
        price: Decimal,
        cost: Decimal,
        transaction_id: str,
        user_id: Any,
        server_id: Any,
    ) -> SandboxOrder:
        self._next_order_id += 1
        order = SandboxOrder(
            order_id=self._next_order_id,
            transaction_id=transaction_id,
            offer=offer,
            price=price,
            cost_usd=cost,
            game_user_id=str(user_id) if user_id else None,
            game_server_id=str(server_id) if server_id else None,
            created_at=datetime.now(UTC),
            created_clock=self.config.clock(),
        )
        if offer.returns_key and not offer.stars_amount:
            digest = (
                hashlib.sha256(f"{self.config.seed}:{transaction_id}".encode()).hexdigest().upper()
            )
            order.key = "-".join(digest[i : i + 5] for i in range(0, 15, 5))
        elif offer.stars_amount:
            telegram_id = int(str(user_id))
            reason = self.config.stars_failures.get(telegram_id)
            order.fulfillment = {
                "telegram_user_id": telegram_id,
                "stars_amount": offer.stars_amount,
                "delivery_status": "failed" if reason else "completed",
            }
            if reason:
                order.final_status = "CANCELED"
                order.message = f"Failed to deliver Stars: {reason}"
                order.fulfillment["error_message"] = reason
            else:
                order.fulfillment["transaction_id"] = f"tg_tx_{order.order_id}"
        elif order.game_user_id in self.config.canceled_players:
            order.final_status = "CANCELED"
            order.message = self.config.canceled_players[order.game_user_id]
        elif order.game_user_id in self.config.failed_players:
            order.final_status = "FAILED"
            order.message = self.config.failed_players[order.game_user_id]
        elif order.game_user_id in self.config.refunded_players:
            order.final_status = "REFUND"
        self.orders[order.order_id] = order
        self.orders_by_transaction[transaction_id] = order
        return order

    async def _order_status(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        order: SandboxOrder | None = None
        if body.get("orderId") is not None:
            order_id = body["orderId"]
            if isinstance(order_id, bool) or not isinstance(order_id, int):
                raise SandboxError("INVALID_REQUEST_BODY", 400, "orderId must be a number")
            order = self.orders.get(order_id)
        elif isinstance(body.get("transactionId"), str):
            order = self.orders_by_transaction.get(body["transactionId"])
        else:
            raise SandboxError("INVALID_REQUEST_BODY", 400, "orderId or transactionId is required")
        if order is None:
            raise SandboxError("ORDER_NOT_FOUND", 404)
        return _json(self._order_body(order))

    # -- control endpoints (standalone runs) ----------------------------------------

    async def _control_state(self, request: web.Request) -> web.Response:
        return _json(
            {
                "balance": _money(self.balance),
                "offers": len(self.offers),
                "orders": len(self.orders),
                "createOrderCalls": self.create_order_calls,
            }
        )

    async def _control_faults(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        for name in (
            "unavailable", "rate_limited", "drop_create_answers", "balance_unavailable",
            "retry_after", "create_rate_limited", "create_unavailable",
            "create_unavailable_after_making", "create_field_validation",
            "sync_repeated_rows",
        ):  # fmt: skip
            if isinstance(body.get(name), int):
                setattr(self.faults, name, body[name])
        if "sync_offers" in body and (
            body["sync_offers"] is None or isinstance(body["sync_offers"], int)
        ):
            self.faults.sync_offers = body["sync_offers"]
        for name in ("latency", "create_latency"):
            if isinstance(body.get(name), int | Decimal):
                setattr(self.faults, name, float(body[name]))
        if isinstance(body.get("drift_percent"), int | Decimal):
            self.drift_prices(Decimal(body["drift_percent"]))
        return await self._control_state(request)
