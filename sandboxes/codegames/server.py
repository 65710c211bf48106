"""A CodeGames twin on aiohttp, written field by field from ``codegames-api.txt`` and the
CodeGames part of FIELD-NOTES.md.

Run it alone with ``python -m sandboxes.codegames --port 8082`` or embed it::

    sandbox = CodeGamesSandbox(SandboxConfig(process_seconds=0.2))
    base_url = await sandbox.start()          # http://127.0.0.1:<port>
    ...
    await sandbox.stop()

Endpoints (all ``POST``, shop token bare in ``Authorization`` as on the operator's
GamesDrop API): ``/api/v1/offers/find-one`` (``required: ["gameUserId"]`` for top-ups),
``/api/v1/offers/create-order`` (with or without ``customer``; price confirmation that
accepts a price covering the current one), ``/api/v1/offers/order-status`` (by
``orderId`` or ``transactionId``; the minimal ``{status, isReturnDataForCustomer}``
answer unless ``full_status``), ``/api/v1/offers/keys`` (``{"key": "..."}`` or a list;
an error for orders that return no data to the customer). Statuses PROCESSING,
COMPLETED, CANCELED, REFUND.

Envelopes: errors as ``{"error": {"code", "message"}}`` with an HTTP error status, or with
``legacy_envelope`` the older ``{"status": "OK" | <code>, "comment": ...}`` (HTTP 200 for
refusals; ``TXN_DUPLICATE`` for a reused transaction id; an order's status as
``orderStatus``). Faults (:class:`Faults`) inject latency, 5xx, 429 with Retry-After and
lost create-order answers.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from aiohttp import web

from sandboxes.codegames.catalogue import SandboxOffer, generate_catalogue
from sandboxes.serving import LocalServer
from services import exact_json

logger = logging.getLogger(__name__)

DEFAULT_TOKEN = "codegames-sandbox-token"

#: Supplier-side rates used to debit the USD balance for offers priced in other currencies.
USD_RATES = {
    "USD": Decimal("1"),
    "EUR": Decimal("1.08"),
    "RUB": Decimal("0.011"),
    "KZT": Decimal("0.0020"),
}

#: The code the keys endpoint answers for an order that returns no data to the customer.
#: The document says only "the query will return an error"; this name is the sandbox's.
KEYS_REFUSED_CODE = "DATA_NOT_RETURNED_FOR_CUSTOMER"

#: Codes spelled differently by the older edition.
LEGACY_NAMES = {"TRANSACTION_DUPLICATE": "TXN_DUPLICATE"}


@dataclass
class SandboxConfig:
    """Everything that shapes the sandbox. Times in seconds, money Decimal."""

    tokens: set[str] = field(default_factory=lambda: {DEFAULT_TOKEN})
    offers: int = 20
    seed: int = 11
    #: answer in the older ``{"status": "OK" | <code>, "comment"}`` envelope
    legacy_envelope: bool = False
    #: order-status answers the whole order (else the documented minimal answer)
    full_status: bool = False
    #: ``/offers/keys`` answers a list even for one code (else a string for one code)
    keys_as_list: bool = False
    #: orders that are not instant stay PROCESSING this long, then reach their final status
    process_seconds: float = 3.0
    balance_usd: Decimal = Decimal("1000.00")
    #: player ids whose top-ups end CANCELED / REFUND (with this message)
    canceled_players: dict[str, str] = field(
        default_factory=lambda: {"55555555": "Top-up rejected by game server"}
    )
    refund_players: dict[str, str] = field(
        default_factory=lambda: {"77777777": "Refunded by provider"}
    )
    clock: Callable[[], float] = time.monotonic


@dataclass
class Faults:
    """Injected trouble. Counters go down by one per affected request."""

    latency: float = 0.0
    unavailable: int = 0  # next N requests answer 503 SERVICE_UNAVAILABLE (nothing done)
    rate_limited: int = 0  # next N requests answer 429 with Retry-After (nothing done)
    retry_after: int = 1  # the Retry-After (s) of 429s and 5xx faults
    create_unavailable: int = 0  # next N create-orders answer 500, unmade
    create_unavailable_after_making: int = 0  # next N create-orders are made, then 500
    drop_create_answers: int = 0  # next N create-orders are made, then the connection is cut
    create_latency: float = 0.0  # delay before create-order answers (after it is made)
    out_of_stock: set[int] = field(default_factory=set)


@dataclass
class SandboxOrder:
    order_id: int
    transaction_id: str
    offer: SandboxOffer
    price: Decimal
    cost_usd: Decimal
    game_user_id: str | None
    created_clock: float
    keys: list[str]
    final_status: str = "COMPLETED"
    message: str | None = None
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


class CodeGamesSandbox(LocalServer):
    """The embeddable sandbox. ``app`` is the aiohttp application; ``start()`` serves it.
    Implements :class:`sandboxes.SupplierSandbox` (``vendor = "codegames"``)."""

    label = "CodeGames sandbox"

    vendor = "codegames"

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self.faults = Faults()
        self.offers: dict[int, SandboxOffer] = {
            offer.offer_id: offer
            for offer in generate_catalogue(self.config.offers, seed=self.config.seed)
        }
        self.balance_usd = self.config.balance_usd
        self.orders: dict[int, SandboxOrder] = {}
        self.orders_by_transaction: dict[str, SandboxOrder] = {}
        self.calls: dict[str, int] = {}
        self._next_order_id = 10_500
        self._runner: web.AppRunner | None = None
        self.base_url = ""
        self.app = self._build_app()

    def supplier_settings(self) -> dict[str, Any]:
        """The ``codegames`` settings section pointing at this sandbox: ``token``,
        ``base_url`` and ``offer_ids`` (every offer of its catalogue, as text)."""
        return {
            "token": sorted(self.config.tokens)[0],
            "base_url": self.base_url,
            "offer_ids": [str(offer_id) for offer_id in self.offers],
        }

    # -- controls for tests and demos -----------------------------------------------

    def set_price(self, offer_id: int | str, price: Decimal) -> None:
        """Change one offer's price (price drift)."""
        self.offers[int(offer_id)].price = price

    def remove_offer(self, offer_id: int | str) -> None:
        """Make an offer disappear (find-one and create-order answer OFFER_NOT_FOUND)."""
        self.offers.pop(int(offer_id), None)

    def complete_now(self) -> None:
        """Move every PROCESSING order past ``process_seconds`` (for demos)."""
        for order in self.orders.values():
            order.created_clock -= self.config.process_seconds

    # -- app -------------------------------------------------------------------------

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        app.add_routes(
            [
                web.post("/api/v1/offers/find-one", self._find_one),
                web.post("/api/v1/offers/create-order", self._create_order),
                web.post("/api/v1/offers/order-status", self._order_status),
                web.post("/api/v1/offers/keys", self._keys),
                web.get("/_sandbox/state", self._control_state),
                web.post("/_sandbox/faults", self._control_faults),
            ]
        )
        return app

    def _error(self, code: str, http_status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:  # fmt: skip
        if self.config.legacy_envelope:
            # refusals answer 200 in the older edition; 429 and 5xx keep their status
            status = http_status if http_status == 429 or http_status >= 500 else 200
            body = {"status": LEGACY_NAMES.get(code, code), "comment": message}
            return _json(body, status, headers)
        return _json({"error": {"code": code, "message": message}}, http_status, headers)

    def _ok(self, fields: dict[str, Any]) -> web.Response:
        if not self.config.legacy_envelope:
            return _json(fields)
        body: dict[str, Any] = {"status": "OK", "comment": ""}
        for name, value in fields.items():
            body["orderStatus" if name == "status" else name] = value
        return _json(body)

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        if request.path.startswith("/_sandbox/"):
            return await handler(request)  # type: ignore[no-any-return]
        self.calls[request.path] = self.calls.get(request.path, 0) + 1
        if self.faults.latency:
            await asyncio.sleep(self.faults.latency)
        retry_after = {"Retry-After": str(self.faults.retry_after)}
        if self.faults.rate_limited > 0:
            self.faults.rate_limited -= 1
            return self._error("TOO_MANY_REQUESTS", 429, "Too many requests", retry_after)
        if self.faults.unavailable > 0:
            self.faults.unavailable -= 1
            return self._error("SERVICE_UNAVAILABLE", 503, "Service unavailable", retry_after)
        try:
            if request.headers.get("Authorization", "") not in self.config.tokens:
                raise SandboxError("INVALID_TOKEN", 401)
            return await handler(request)  # type: ignore[no-any-return]
        except SandboxError as exc:
            return self._error(exc.code, exc.http_status, exc.message)

    async def _body(self, request: web.Request) -> dict[str, Any]:
        try:
            body = exact_json.loads(await request.text())
        except ValueError as exc:
            raise SandboxError("INVALID_REQUEST_BODY", 400, "body is not JSON") from exc
        if not isinstance(body, dict):
            raise SandboxError("INVALID_REQUEST_BODY", 400, "body must be an object")
        return body

    @staticmethod
    def _number(body: dict[str, Any], name: str) -> int:
        value = body.get(name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise SandboxError("INVALID_REQUEST_BODY", 400, f"{name} must be a number")
        return value

    def _offer(self, offer_id: int) -> SandboxOffer:
        offer = self.offers.get(offer_id)
        if offer is None:
            raise SandboxError("OFFER_NOT_FOUND", 404)
        return offer

    # -- find-one --------------------------------------------------------------------

    async def _find_one(self, request: web.Request) -> web.Response:
        offer = self._offer(self._number(await self._body(request), "offerId"))
        fields: dict[str, Any] = {
            "offerId": offer.offer_id,
            "productName": offer.product_name,
            "offerName": offer.offer_name,
            "price": offer.price,
            "currency": offer.currency,
            "isReturnDataForCustomer": offer.returns_key,
        }
        if offer.needs_player:
            fields["required"] = ["gameUserId"]
        return self._ok(fields)

    # -- orders ----------------------------------------------------------------------

    def _status(self, order: SandboxOrder) -> str:
        """Current status; a failure credits the balance back the first time it is seen."""
        if not order.offer.instant:
            if self.config.clock() - order.created_clock < self.config.process_seconds:
                return "PROCESSING"
        status = order.final_status
        if status in {"CANCELED", "REFUND"} and not order.settled:
            order.settled = True
            self.balance_usd += order.cost_usd
        return status

    def _order_fields(self, order: SandboxOrder, *, in_create: bool) -> dict[str, Any]:
        status = self._status(order)
        offer = order.offer
        fields: dict[str, Any] = {
            "orderId": order.order_id,
            "count": 1,
            "price": order.price,
            "currency": offer.currency,
            "offerId": offer.offer_id,
            "productName": offer.product_name,
            "offerName": offer.offer_name,
            "status": status,
            "isReturnDataForCustomer": offer.returns_key,
        }
        show_key = in_create or offer.key_in_status
        if status == "COMPLETED" and order.keys and show_key:
            fields["key"] = order.keys[0]
        if status in {"CANCELED", "REFUND"} and order.message:
            fields["message"] = order.message
        return fields

    async def _create_order(self, request: web.Request) -> web.StreamResponse:
        faults = self.faults
        retry_after = {"Retry-After": str(faults.retry_after)}
        if faults.create_unavailable > 0:
            faults.create_unavailable -= 1
            return self._error("SERVICE_UNAVAILABLE", 500, "Internal error", retry_after)
        body = await self._body(request)
        offer_id = self._number(body, "offerId")
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
            raise SandboxError(
                "TRANSACTION_DUPLICATE", 409, "an order with this transactionId exists"
            )
        if not offer.in_stock or offer_id in faults.out_of_stock:
            raise SandboxError("OUT_OF_STOCK", 409)
        if Decimal(price) < offer.price:
            raise SandboxError("WRONG_PRICE", 409, f"WRONG_PRICE: current price is {offer.price}")
        user_id = customer.get("gameUserId")
        if offer.needs_player and not (isinstance(user_id, str | int) and str(user_id).strip()):
            raise SandboxError("INVALID_REQUEST_BODY", 400, "customer.gameUserId is required")
        cost = _money(offer.price * USD_RATES.get(offer.currency, Decimal(1)))
        if self.balance_usd < cost:
            raise SandboxError("INSUFFICIENT_BALANCE", 402)
        order = self._make_order(offer, cost, transaction_id, str(user_id) if user_id else None)
        if faults.create_latency:
            await asyncio.sleep(faults.create_latency)
        if faults.create_unavailable_after_making > 0:
            faults.create_unavailable_after_making -= 1
            return self._error("SERVICE_UNAVAILABLE", 500, "Internal error", retry_after)
        if faults.drop_create_answers > 0:
            faults.drop_create_answers -= 1
            logger.info("sandbox: dropping the answer to create-order %s", transaction_id)
            if request.transport is not None:
                request.transport.close()
            raise asyncio.CancelledError
        return self._ok(self._order_fields(order, in_create=True))

    def _make_order(
        self, offer: SandboxOffer, cost: Decimal, transaction_id: str, user_id: str | None
    ) -> SandboxOrder:
        self._next_order_id += 1
        keys: list[str] = []
        if offer.returns_key:
            for index in range(offer.key_count):
                digest = hashlib.sha256(
                    f"{self.config.seed}:{transaction_id}:{index}".encode()
                ).hexdigest()
                keys.append(str(int(digest[:12], 16) % 10**12).zfill(12))
        order = SandboxOrder(
            order_id=self._next_order_id,
            transaction_id=transaction_id,
            offer=offer,
            price=offer.price,
            cost_usd=cost,
            game_user_id=user_id,
            created_clock=self.config.clock(),
            keys=keys,
        )
        if user_id in self.config.canceled_players:
            order.final_status = "CANCELED"
            order.message = self.config.canceled_players[user_id]
        elif user_id in self.config.refund_players:
            order.final_status = "REFUND"
            order.message = self.config.refund_players[user_id]
        self.balance_usd -= cost
        self.orders[order.order_id] = order
        self.orders_by_transaction[transaction_id] = order
        return order

    def _find_order(self, body: dict[str, Any]) -> SandboxOrder:
        if body.get("orderId") is not None:
            order = self.orders.get(self._number(body, "orderId"))
        elif isinstance(body.get("transactionId"), str):
            order = self.orders_by_transaction.get(body["transactionId"])
        else:
            raise SandboxError("INVALID_REQUEST_BODY", 400, "orderId is required")
        if order is None:
            raise SandboxError("ORDER_NOT_FOUND", 404)
        return order

    async def _order_status(self, request: web.Request) -> web.Response:
        order = self._find_order(await self._body(request))
        if self.config.full_status:
            return self._ok(self._order_fields(order, in_create=False))
        return self._ok(
            {"status": self._status(order), "isReturnDataForCustomer": order.offer.returns_key}
        )

    async def _keys(self, request: web.Request) -> web.Response:
        order = self._find_order(await self._body(request))
        if not order.offer.returns_key:
            raise SandboxError(
                KEYS_REFUSED_CODE, 400, "isReturnDataForCustomer is false: this order has no keys"
            )
        status = self._status(order)
        if status == "CANCELED":
            raise SandboxError("ORDER_ALREADY_CANCELED", 409)
        if status == "REFUND":
            raise SandboxError("ORDER_ALREADY_REFUNDED", 409)
        if status != "COMPLETED":
            raise SandboxError("ORDER_NOT_COMPLETED", 409)
        if len(order.keys) == 1 and not self.config.keys_as_list:
            return self._ok({"key": order.keys[0]})
        return self._ok({"key": list(order.keys)})

    # -- control endpoints (standalone runs) ----------------------------------------

    async def _control_state(self, request: web.Request) -> web.Response:
        return _json(
            {
                "balanceUsd": _money(self.balance_usd),
                "offers": len(self.offers),
                "orders": len(self.orders),
                "calls": self.calls,
            }
        )

    async def _control_faults(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        for name in (
            "unavailable", "rate_limited", "retry_after", "create_unavailable",
            "create_unavailable_after_making", "drop_create_answers",
        ):  # fmt: skip
            if isinstance(body.get(name), int) and not isinstance(body.get(name), bool):
                setattr(self.faults, name, body[name])
        for name in ("latency", "create_latency"):
            if isinstance(body.get(name), int | Decimal) and not isinstance(body.get(name), bool):
                setattr(self.faults, name, float(body[name]))
        return await self._control_state(request)
