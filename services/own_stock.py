"""Own stock: keys the shop holds itself (bought in bulk, from promotions, from partners),
sold like any supplier's goods under the source name ``own_stock`` (short code ``o``).

It is not a vendor (it is the shop itself), so it lives here rather than under
``services/suppliers/``; it implements the :class:`~services.suppliers.base.Supplier`
protocol and the composition root adds it to the suppliers when ``STOCK__KEY`` is set.

Keys are encrypted at rest with Fernet (``cryptography``); duplicates are found by an
HMAC-SHA256 fingerprint. Both keys are derived from ``STOCK__KEY`` with HKDF-SHA256, so a
database dump alone reveals neither a key nor which keys are equal to a guessed one.
A key is never logged.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import csv
import hashlib
import hmac
import io
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from services.suppliers.base import Capability, Customer, OrderAttempt
from services.suppliers.errors import FixRequestError, OfferNotFound, OrderNotFound, OutOfStock
from services.suppliers.models import (
    Balance,
    CatalogueRow,
    GameServer,
    OfferDetails,
    OrderStatus,
    PlayerCheck,
    SupplierOrder,
    TelegramUserInfo,
    TransactionPage,
)
from services.suppliers.registry import SHOP_SOURCES
from storage.stock import NewKey, StockKey, StockProduct, StockRepository

logger = logging.getLogger(__name__)

NAME = "own_stock"
SHORT = SHOP_SOURCES[NAME]
#: longest key accepted, characters
MAX_KEY_LENGTH = 500
#: most keys one upload may carry
MAX_KEYS_PER_UPLOAD = 10_000
#: a first CSV cell that is a header, not a key
_CSV_HEADERS = {"key", "keys", "code", "codes"}


class UnreadableKey(ValueError):
    """A stored key that the current secret cannot decrypt (``STOCK__KEY`` changed)."""


class KeyBox:
    """Encrypts keys (Fernet) and fingerprints them (HMAC-SHA256), both with keys derived
    from one secret (``STOCK__KEY``) by HKDF-SHA256 with distinct ``info``.

    ``encrypt(key) -> str`` (a Fernet token), ``decrypt(token) -> str`` (raises
    :class:`UnreadableKey` for a token made with another secret),
    ``fingerprint(key) -> str`` (64 hex digits). ``purpose`` keeps the keys of different
    uses apart: ``own-stock`` (the stock) and ``delivered`` (keys delivered in orders,
    :class:`storage.orders.KeySeal`)."""

    def __init__(self, secret: str, purpose: str = "own-stock") -> None:
        # imported here: ``cryptography`` costs ~8 MiB, paid only when own stock is on
        from cryptography.fernet import Fernet

        material = secret.encode("utf-8")
        info = purpose.encode("ascii")
        self._fernet = Fernet(base64.urlsafe_b64encode(_derive(material, info + b" fernet")))
        self._mac_key = _derive(material, info + b" fingerprint")

    def encrypt(self, key: str) -> str:
        return self._fernet.encrypt(key.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except InvalidToken:
            raise UnreadableKey("this key was encrypted under another secret") from None

    def fingerprint(self, key: str) -> str:
        return hmac.new(self._mac_key, key.encode("utf-8"), hashlib.sha256).hexdigest()


def _derive(material: bytes, info: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(material)


# -- reading uploads -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyLines:
    """Keys read from an upload: ``keys`` as ``(line number, key)`` (1-based, stripped,
    empty lines left out); ``too_long``: line numbers of keys over :data:`MAX_KEY_LENGTH`."""

    keys: list[tuple[int, str]]
    too_long: list[int] = field(default_factory=list)


def read_lines(text: str) -> KeyLines:
    """One key per line of pasted text or a .txt file."""
    return _collect(enumerate(text.splitlines(), start=1))


def read_file(file_name: str, data: bytes) -> KeyLines:
    """A .txt (one key per line) or .csv (the first cell of each row; a first row whose
    first cell is ``key``/``code`` is a header) upload, UTF-8 (a BOM allowed). Raises
    ``UnicodeDecodeError`` for text that is not UTF-8."""
    text = data.decode("utf-8-sig")
    if not file_name.lower().endswith(".csv"):
        return read_lines(text)
    rows = [(n, row[0] if row else "") for n, row in enumerate(csv.reader(io.StringIO(text)), 1)]
    if rows and rows[0][1].strip().lower() in _CSV_HEADERS:
        rows = rows[1:]
    return _collect(rows)


def _collect(lines: Any) -> KeyLines:
    keys: list[tuple[int, str]] = []
    too_long: list[int] = []
    for number, raw in lines:
        key = raw.strip()
        if not key:
            continue
        if len(key) > MAX_KEY_LENGTH:
            too_long.append(number)
        else:
            keys.append((number, key))
    return KeyLines(keys, too_long)


# -- the source ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UploadTarget:
    """What the uploaded keys are for: the product id, names and category of catalogue
    offer ``source`` (``(supplier, offer id)``), or of a new product (``source=None``)."""

    product_id: str
    product_name: str
    offer_name: str
    category: str
    source: tuple[str, str] | None = None


@dataclass(frozen=True, slots=True)
class UploadReport:
    """What an upload did: ``product`` (own-stock offer id), ``added`` keys; line numbers
    of keys left out because they repeat an earlier line (``repeated``), are held already
    (``held``) or are too long (``too_long``); ``available`` keys of the product now."""

    product: int
    added: int
    repeated: list[int]
    held: list[int]
    too_long: list[int]
    available: int


@dataclass(frozen=True, slots=True)
class Withdrawal:
    """Keys moved out of own stock for the marketplace: ``batch`` names them for
    :meth:`OwnStock.return_withdrawn`; ``keys`` are the keys in clear text."""

    batch: str
    keys: list[str]


class NotEnoughKeys(LookupError):
    """Fewer free keys than asked for (``available``); nothing was withdrawn."""

    def __init__(self, product: int, wanted: int, available: int) -> None:
        super().__init__(f"own stock product {product}: {wanted} keys wanted, {available} free")
        self.product, self.wanted, self.available = product, wanted, available


class StockKeyUnreadable(FixRequestError):
    """A key that ``STOCK__KEY`` cannot decrypt (the secret was changed): the order fails
    and is refunded; the key stays bound to that order so nobody else gets it."""

    default_code = "STOCK_KEY_UNREADABLE"


def _offer_id(offer_id: str) -> int | None:
    return int(offer_id) if offer_id.isdigit() and len(offer_id) <= 18 else None


class OwnStock:
    """The shop's own keys as a source (:class:`~services.suppliers.base.Supplier`):
    ``CATALOGUE_SYNC`` (every product held is one offer priced at the cost of its next
    key) and ``IDEMPOTENT_CREATE`` (create-order takes one key bound to the order's
    transaction id; a repeat returns the same key).

    ``low_threshold``: admins are alerted once when a product's free keys fall to it or
    below (again only after an upload lifts it above). Hooks set by the composition root:
    ``changed()`` (refresh the catalogue's own-stock offers) and ``alert(key, msgid,
    **params)`` (admin alerts)."""

    name = NAME
    short = SHORT

    def __init__(self, repo: StockRepository, box: KeyBox, *, low_threshold: int = 3) -> None:
        self.repo = repo
        self._box = box
        self.low_threshold = low_threshold
        self.capabilities: frozenset[Capability] = frozenset(
            {Capability.CATALOGUE_SYNC, Capability.IDEMPOTENT_CREATE}
        )
        self.changed: Callable[[], Awaitable[object]] | None = None
        self.alert: Callable[..., Awaitable[None]] | None = None
        self._refresh: asyncio.Task[None] | None = None
        self._refresh_again = False

    # -- catalogue -------------------------------------------------------------------

    async def iter_catalogue(
        self, *, page_size: int = 1000, category: str | None = None, search: str | None = None
    ) -> AsyncIterator[CatalogueRow]:
        """One row per product that ever had a key: priced at its next key's cost (the
        last one's when none is left), in stock while free keys remain."""
        for product in await self.repo.products():
            if product.cost is None or product.currency is None:
                continue
            if category is not None and product.category != category:
                continue
            yield CatalogueRow(
                product_id=product.product_id,
                product_name=product.product_name,
                offer_group_id=str(product.id),
                offer_group_name=product.offer_name,
                price=product.cost,
                currency=product.currency,
                in_stock=product.available > 0,
                returns_key=True,
                category=product.category,
            )

    async def find_offer(self, offer_id: str) -> OfferDetails:
        """The product held as offer ``offer_id`` at its next key's cost. Raises
        ``OfferNotFound`` (no such product) or ``OutOfStock`` (no free key left)."""
        product = await self._product(offer_id)
        if product.available == 0 or product.cost is None or product.currency is None:
            raise OutOfStock(None, 409, "", "no keys left in own stock", endpoint=NAME)
        return OfferDetails(
            offer_id=str(product.id),
            product_name=product.product_name,
            offer_name=product.offer_name,
            price=product.cost,
            currency=product.currency,
            is_return_data_for_customer=True,
            in_stock=True,
        )

    async def _product(self, offer_id: str) -> StockProduct:
        number = _offer_id(offer_id)
        product = await self.repo.product(number) if number is not None else None
        if product is None:
            raise OfferNotFound(None, 404, "", f"no own stock product {offer_id}", endpoint=NAME)
        return product

    # -- orders ----------------------------------------------------------------------

    async def create_order(
        self, offer_id: str, price: Decimal, transaction_id: str, customer: Customer
    ) -> SupplierOrder:
        """Take the next free key of product ``offer_id`` for ``transaction_id`` (one
        atomic statement; a repeat returns the same key), whatever ``price`` says: the
        order records the key's own cost. Raises ``OfferNotFound``, ``OutOfStock`` (no key
        left: the shop refunds) or :class:`StockKeyUnreadable`."""
        product = await self._product(offer_id)
        key = await self.repo.take(product.id, transaction_id)
        if key is None:
            raise OutOfStock(None, 409, "", "no keys left in own stock", endpoint=NAME)
        logger.info(
            "own stock key %s of product %s sold to %s", key.id, key.product, transaction_id
        )
        await self._after_take(product)
        return self._order(key)

    async def resolve_order(
        self, offer_id: str, price: Decimal, transaction_id: str, customer: Customer
    ) -> SupplierOrder:
        """Same as :meth:`create_order` (it is idempotent)."""
        return await self.create_order(offer_id, price, transaction_id, customer)

    async def get_order(
        self,
        *,
        order_id: str | None = None,
        transaction_id: str | None = None,
        attempt: OrderAttempt | None = None,
    ) -> SupplierOrder:
        """The key sold as ``order_id`` (the key's id) or to ``transaction_id``, as a
        completed order. Raises ``OrderNotFound`` when no key was taken for it."""
        key: StockKey | None = None
        if order_id is not None:
            number = _offer_id(order_id)
            key = await self.repo.sold_key(number) if number is not None else None
        elif transaction_id is not None:
            key = await self.repo.taken_by(transaction_id)
        if key is None:
            raise OrderNotFound(None, 404, "", "no own stock key for this order", endpoint=NAME)
        return self._order(key)

    def _order(self, key: StockKey) -> SupplierOrder:
        try:
            secret = self._box.decrypt(key.secret)
        except UnreadableKey:
            logger.error("own stock key %s cannot be decrypted: was STOCK__KEY changed?", key.id)
            raise StockKeyUnreadable(
                None, 500, "", "STOCK__KEY cannot decrypt this key", endpoint=NAME
            ) from None
        return SupplierOrder(
            order_id=str(key.id),
            status=OrderStatus.COMPLETED,
            price=key.cost,
            currency=key.currency,
            offer_id=str(key.product),
            is_return_data_for_customer=True,
            key=secret,
        )

    async def _after_take(self, product: StockProduct) -> None:
        """Refresh the catalogue row; alert admins once when the product runs low."""
        self._catalogue_changed()
        left = await self.repo.available(product.id)
        if left > self.low_threshold or self.alert is None:
            return
        if await self.repo.set_low_alerted(product.id, True):
            try:
                await self.alert(
                    f"stock_low:{product.id}", "alert.stock_low", product=product.product_name,
                    offer=product.offer_name, left=left, threshold=self.low_threshold,
                    ref=f"{SHORT}:{product.id}",
                )  # fmt: skip
            except Exception:
                logger.exception("could not alert admins: own stock product %s low", product.id)

    def _catalogue_changed(self) -> None:
        """Run ``changed()`` in the background, one at a time (a change during a run runs
        it once more); a failure is logged."""
        if self.changed is None:
            return
        if self._refresh is not None and not self._refresh.done():
            self._refresh_again = True
            return
        self._refresh = asyncio.create_task(self._run_changed(), name="own stock catalogue")

    async def _run_changed(self) -> None:
        while True:
            self._refresh_again = False
            try:
                assert self.changed is not None
                await self.changed()
            except Exception:
                logger.exception("refreshing the own stock offers failed")
            if not self._refresh_again:
                return

    async def close(self) -> None:
        """Stop a catalogue refresh under way (the shop is closing)."""
        if self._refresh is not None and not self._refresh.done():
            self._refresh.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresh

    async def catalogue_settled(self) -> None:
        """Wait for a pending catalogue refresh (tests, shutdown)."""
        if self._refresh is not None:
            await asyncio.shield(self._refresh)

    # -- admin -----------------------------------------------------------------------

    async def upload(
        self,
        target: UploadTarget,
        lines: KeyLines,
        cost: Decimal,
        currency: str,
        by: int | None,
    ) -> UploadReport:
        """Add the keys of ``lines`` for ``target`` at ``cost`` per key in ``currency``.
        A key repeating an earlier line or held already (sold ones included) is not added
        but reported by line number. Raises ``ValueError`` for more than
        :data:`MAX_KEYS_PER_UPLOAD` keys."""
        if len(lines.keys) > MAX_KEYS_PER_UPLOAD:
            raise ValueError(f"at most {MAX_KEYS_PER_UPLOAD} keys per upload")
        product = await self.repo.product_for(
            product_id=target.product_id, product_name=target.product_name,
            offer_name=target.offer_name, category=target.category, source=target.source, by=by,
        )  # fmt: skip
        seen: set[str] = set()
        repeated: list[int] = []
        fresh: list[NewKey] = []
        for line, key in lines.keys:
            fingerprint = self._box.fingerprint(key)
            if fingerprint in seen:
                repeated.append(line)
                continue
            seen.add(fingerprint)
            fresh.append(NewKey(self._box.encrypt(key), fingerprint, line))
        known = await self.repo.known_fingerprints([k.fingerprint for k in fresh])
        held = [k.line for k in fresh if k.fingerprint in known]
        fresh = [k for k in fresh if k.fingerprint not in known]
        # a key uploaded meanwhile (another admin, another process) is skipped here
        raced = await self.repo.add_keys(product, fresh, cost, currency, by)
        held += raced
        added = len(fresh) - len(raced)
        available = await self.repo.available(product)
        if available > self.low_threshold:
            await self.repo.set_low_alerted(product, False)
        logger.info(
            "own stock product %s: %d keys added by admin %s (%d repeated, %d held already)",
            product, added, by, len(repeated), len(held),
        )  # fmt: skip
        if added:
            self._catalogue_changed()
        return UploadReport(product, added, repeated, sorted(held), list(lines.too_long), available)

    async def products(self) -> list[StockProduct]:
        """Every product held with its counts (free, sold, withdrawn), oldest first."""
        return await self.repo.products()

    async def withdraw_for_marketplace(
        self, offer_id: str, count: int, *, by: int | None = None
    ) -> Withdrawal:
        """Take ``count`` free keys of product ``offer_id`` (own-stock offer id, e.g. the
        ``3`` of ``o:3``) out of the stock in one step, all or none, so they can never be
        sold here; the keys come back in clear text for the marketplace upload.
        Raises ``OfferNotFound``, ``ValueError`` (``count`` < 1) or :class:`NotEnoughKeys`."""
        if count < 1:
            raise ValueError("count must be at least 1")
        product = await self._product(offer_id)
        batch = f"mp-{uuid.uuid4().hex}"
        keys = await self.repo.withdraw(product.id, count, batch)
        if not keys:
            raise NotEnoughKeys(product.id, count, await self.repo.available(product.id))
        logger.info(
            "own stock product %s: %d keys withdrawn for the marketplace as %s by %s",
            product.id, len(keys), batch, by,
        )  # fmt: skip
        await self._after_take(product)
        return Withdrawal(batch, [self._box.decrypt(key.secret) for key in keys])

    async def return_withdrawn(self, batch: str, keys: Sequence[str] | None = None) -> int:
        """Put keys of withdrawal ``batch`` back on sale: all of them, or only ``keys``
        (those the marketplace refused). Returns how many came back."""
        fingerprints = None if keys is None else [self._box.fingerprint(k.strip()) for k in keys]
        restored = await self.repo.restore(batch, fingerprints)
        logger.info("own stock: %d keys of %s back on sale", restored, batch)
        if restored:
            self._catalogue_changed()
        return restored

    # -- what own stock does not have ------------------------------------------------

    async def get_balance(self) -> Balance:
        raise NotImplementedError("own stock has no balance")

    async def list_transactions(self, page: int = 1, limit: int = 20) -> TransactionPage:
        raise NotImplementedError("own stock has no transaction history")

    async def fetch_keys(self, order: SupplierOrder, transaction_id: str) -> list[str]:
        raise NotImplementedError("own stock delivers the key with the order")

    async def get_servers(self, offer_id: str) -> list[GameServer]:
        raise NotImplementedError("own stock keys need no game server")

    async def check_player(
        self, offer_id: str, game_user_id: str, game_server_id: str | None = None
    ) -> PlayerCheck:
        raise NotImplementedError("own stock keys need no player")

    async def get_telegram_user(self, username_or_id: str) -> TelegramUserInfo:
        raise NotImplementedError("own stock has no Telegram user lookup")
