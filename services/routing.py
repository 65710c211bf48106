"""One product, several sources: which offers are the same good, and where to buy it.

Offers of different suppliers are *linked* when they are the same good: the same category,
the same game or brand (normalised product name, region words included) and the same
amount or denomination (:func:`match_key`). A product that needs a game server is never
linked automatically: two suppliers' server ids may differ, so an admin links such
offers by hand after the servers are compared (:meth:`RoutingService.link`). Admins also
unlink an offer (it stays apart from automatic matching) and review doubtful matches
(:meth:`RoutingService.doubtful`); both survive re-syncs (``offer_links``).

A customer sees one price per good: the cheapest source in stock, converted to USD with
``PRICING__USD_RATES`` and then to Stars. An order is placed at the best source whose fresh
cost still fits the Stars paid (:meth:`RoutingService.candidates`): a *preferred*
supplier first, then by cost; a *disabled* supplier, or one whose calls keep failing
(:class:`CircuitBreaker`), is skipped.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import unicodedata
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from itertools import combinations

from rapidfuzz import fuzz

from services.pricing import PriceBook, UnknownCurrency
from services.shared_state import SHOP_SETTINGS, CacheBus
from services.suppliers.base import Capability, Supplier
from services.suppliers.errors import (
    OfferNotFound,
    OrderOutcomeUnknown,
    RefreshPriceError,
    RetryLaterError,
    SupplierConnectionError,
    SupplierError,
)
from services.suppliers.models import OfferDetails
from services.suppliers.registry import Suppliers
from storage.catalogue import CatalogueRepository, StoredOffer
from storage.settings import ShopSettingsRepository

logger = logging.getLogger(__name__)

_MARKS = re.compile(r"[™®©]")
_THOUSANDS = re.compile(r"(?<=\d)[,\u00a0\u202f ](?=\d{3}\b)")
_SYMBOLS = {"$": " usd ", "€": " eur ", "£": " gbp ", "₽": " rub ", "₸": " kzt "}
_NOT_WORD = re.compile(r"[^\w]+", re.UNICODE)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")

MODE_KEY = "routing.mode."
ALERT_BREAKER = "supplier_breaker"


def normalise(text: str) -> str:
    """Lower case without accents, trade marks or punctuation, words single-spaced, digit
    groups joined (``"Genshin Impact™ 1,980"`` -> ``"genshin impact 1980"``); currency
    signs become their codes (``$5`` -> ``usd 5``)."""
    text = _THOUSANDS.sub("", _MARKS.sub("", text))
    for sign, code in _SYMBOLS.items():
        text = text.replace(sign, code)
    text = unicodedata.normalize("NFKD", text.casefold())
    text = "".join(char for char in text if not unicodedata.combining(char))
    return " ".join(_NOT_WORD.sub(" ", text).split())


def amount_key(offer_name: str) -> str:
    """The amount or denomination of an offer name, word order ignored
    (``"60 UC"`` and ``"UC 60"`` -> ``"60 uc"``)."""
    return " ".join(sorted(normalise(offer_name).split()))


def product_key(category: str, product_name: str) -> str:
    """Products of several suppliers with the same key are one product in the storefront."""
    return f"{category}|{normalise(product_name)}"


def match_key(
    supplier: str, category: str, product_name: str, offer_name: str, needs_server: bool
) -> str:
    """Offers with the same key are linked automatically: same category (top-up, gift card,
    Stars), same normalised product name and amount. An offer that needs a game server
    keys apart per supplier (server ids are the supplier's own)."""
    key = f"{product_key(category, product_name)}|{amount_key(offer_name)}"
    return f"{key}|server:{supplier}" if needs_server else key


class SourceMode(StrEnum):
    """An admin's switch per supplier, effective at once. ``preferred``: tried first
    whenever its cost fits the price the customer pays."""

    ENABLED = "enabled"
    DISABLED = "disabled"
    PREFERRED = "preferred"


class CircuitBreaker:
    """Skips a supplier whose calls keep failing: ``threshold`` failures in a row (no
    answer, a timeout, a 5xx, a rate limit) open it for ``cooldown`` seconds, during which
    no new order goes there (open orders keep being checked). After the cooldown one
    order may try again; a success closes it. ``on_open(name, failures)`` is awaited once
    per opening (the composition root alerts the admins)."""

    def __init__(
        self,
        threshold: int = 5,
        cooldown: float = 300.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self._failures: dict[str, int] = {}
        self._open_until: dict[str, float] = {}
        self.on_open: Callable[[str, int], Awaitable[None]] | None = None

    def is_open(self, name: str) -> bool:
        """Whether ``name`` is being skipped now."""
        until = self._open_until.get(name)
        return until is not None and self._clock() < until

    def open_until(self, name: str) -> float | None:
        """Clock time the cooling-off of ``name`` ends, while it is open."""
        return self._open_until.get(name) if self.is_open(name) else None

    def success(self, name: str) -> None:
        self._failures.pop(name, None)
        if self._open_until.pop(name, None) is not None:
            logger.warning("supplier %s answers again: breaker closed", name)

    async def failure(self, name: str, error: BaseException) -> None:
        """Count a failed call; opens the breaker at the threshold (and after a failed
        trial call once the cooldown is over)."""
        failures = self._failures.get(name, 0) + 1
        self._failures[name] = failures
        if failures < self.threshold or self.is_open(name):
            return
        self._open_until[name] = self._clock() + self.cooldown
        logger.error(
            "supplier %s failed %d calls in a row (%s: %s): skipped for %.0f s",
            name, failures, type(error).__name__, error, self.cooldown,
        )  # fmt: skip
        if self.on_open is not None:
            try:
                await self.on_open(name, failures)
            except Exception:
                logger.exception("could not alert admins about supplier %s", name)

    @staticmethod
    def counts(error: BaseException) -> bool:
        """Whether ``error`` says the supplier is unwell (not that it refused a request)."""
        return isinstance(
            error,
            SupplierConnectionError | OrderOutcomeUnknown | RetryLaterError | TimeoutError,
        )


@dataclass(frozen=True, slots=True)
class Source:
    """One source of a good: the stored offer and, after asking the supplier, its fresh
    ``details``; ``cost_usd`` is the cost converted with the price book."""

    offer: StoredOffer
    cost_usd: Decimal
    details: OfferDetails | None = None

    @property
    def supplier(self) -> str:
        return self.offer.supplier

    @property
    def price(self) -> Decimal:
        return self.details.price if self.details else self.offer.price

    @property
    def currency(self) -> str:
        return self.details.currency if self.details else self.offer.currency

    @property
    def in_stock(self) -> bool:
        return self.details.in_stock if self.details else self.offer.in_stock


@dataclass(frozen=True, slots=True)
class Quotes:
    """Fresh find-one answers of a good's sources: ``in_stock`` ranked, ``gone`` (the
    supplier says the offer no longer exists), ``unanswered`` (no answer or refused)."""

    in_stock: list[Source]
    gone: list[Source]
    unanswered: int


@dataclass(frozen=True, slots=True)
class Good:
    """What the storefront shows for one linked group: the offer to show (its name and
    button), the Stars of the cheapest source in stock (``None`` when no source is in
    stock or can be priced), and how many sources it has."""

    shown: StoredOffer
    stars: int | None
    sources: int


@dataclass(frozen=True, slots=True)
class Doubtful:
    """Two offers of different suppliers with the same amount and similar product names
    that automatic matching kept apart (``score`` 0-100)."""

    first: StoredOffer
    second: StoredOffer
    score: float


class LinkRefused(ValueError):
    """A link an admin asked for cannot be made; ``reason`` is a stable code
    (``same_supplier``, ``unknown_offer``, ``different_kind``, ``servers_differ``,
    ``servers_unknown``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RoutingService:
    """Sources of a good, ranked; supplier switches and the circuit breaker; links.

    ``find_timeout``: seconds one fresh find-one may take while ranking (the whole ranking
    runs concurrently, so a quote costs about the slowest answer within it).
    """

    def __init__(
        self,
        suppliers: Suppliers,
        repo: CatalogueRepository,
        settings: ShopSettingsRepository,
        book: Callable[[], PriceBook],
        *,
        breaker: CircuitBreaker | None = None,
        find_timeout: float = 3.0,
    ) -> None:
        self.suppliers = suppliers
        self.repo = repo
        self._settings = settings
        self._book = book
        self.breaker = breaker or CircuitBreaker()
        self.find_timeout = find_timeout
        self._modes: dict[str, SourceMode] = {}
        self._bus = CacheBus()

    def share_through(self, bus: CacheBus) -> None:
        """Tell other processes about switches on ``bus``, and reload the saved switches
        when another process announces one (several workers)."""
        self._bus = bus
        bus.subscribe(SHOP_SETTINGS, lambda _key: self.load())

    # -- supplier switches -------------------------------------------------------------

    async def load(self) -> None:
        """Read the admins' saved switches (call once at start)."""
        saved = await self._settings.all()
        for name in self.suppliers.names:
            value = saved.get(MODE_KEY + name)
            if value in SourceMode.__members__.values():
                self._modes[name] = SourceMode(value)

    def mode(self, name: str) -> SourceMode:
        return self._modes.get(name, SourceMode.ENABLED)

    async def set_mode(self, name: str, mode: SourceMode, admin_id: int | None) -> None:
        """Switch supplier ``name`` (effective for the next quote). Raises
        ``UnknownSupplier`` for a supplier this shop does not run."""
        self.suppliers.get(name)
        await self._settings.set(MODE_KEY + name, mode.value, admin_id)
        self._modes[name] = mode
        await self._bus.publish(SHOP_SETTINGS, MODE_KEY + name)
        logger.warning("supplier %s switched to %s by %s", name, mode.value, admin_id)

    def usable(self, name: str) -> bool:
        """Whether new orders may go to supplier ``name`` now."""
        return (
            name in self.suppliers
            and self.mode(name) is not SourceMode.DISABLED
            and not self.breaker.is_open(name)
        )

    # -- ranking -------------------------------------------------------------------------

    def _source(self, offer: StoredOffer, details: OfferDetails | None = None) -> Source | None:
        price, currency = (
            (details.price, details.currency) if details else (offer.price, offer.currency)
        )
        try:
            return Source(offer, self._book().usd(price, currency), details)
        except UnknownCurrency:
            return None

    def rank(self, sources: Iterable[Source]) -> list[Source]:
        """In stock first, then preferred suppliers, then by cost (USD), then by name."""
        return sorted(
            sources,
            key=lambda s: (
                not s.in_stock,
                self.mode(s.supplier) is not SourceMode.PREFERRED,
                s.cost_usd,
                s.supplier,
                s.offer.offer_id,
            ),
        )

    async def linked(self, supplier: str, offer_id: str) -> list[StoredOffer]:
        """Every active offer of the good ``supplier:offer_id`` is (itself included, first
        when active), of suppliers this shop runs."""
        offers = await self.repo.linked_offers(supplier, offer_id)
        return [o for o in offers if o.supplier in self.suppliers]

    async def sources(
        self, supplier: str, offer_id: str, *, exclude: Iterable[tuple[str, str]] = ()
    ) -> list[Source]:
        """The usable sources of a good from the stored catalogue, ranked (:meth:`rank`);
        offers in ``exclude`` (``(supplier, offer id)``) and unpriceable ones left out."""
        skip = set(exclude)
        found = []
        for offer in await self.linked(supplier, offer_id):
            if (offer.supplier, offer.offer_id) in skip or not self.usable(offer.supplier):
                continue
            source = self._source(offer)
            if source is not None:
                found.append(source)
        return self.rank(found)

    async def fresh(
        self,
        sources: Sequence[Source],
        accept: Callable[[Source, Sequence[Source]], bool] | None = None,
    ) -> Quotes:
        """Fresh find-one answers of ``sources`` (ranked, each asked within
        ``find_timeout``): the sources in stock ranked (:meth:`rank`), the ones the
        supplier says are gone, and how many did not answer (each counts against its
        supplier's breaker). A source priced in a currency without a rate is left out.

        With ``accept(first, others)``, the best-ranked source is asked alone first and,
        when it is in stock and ``accept`` says it will do against the others' stored
        prices, the others are not asked at all: a purchase then spends one call at one
        supplier (whose limits may be as low as 100 requests a minute), not one at each.
        Otherwise the others are asked at once."""
        if accept is not None and len(sources) > 1:
            first = await self.fresh(sources[:1])
            if first.in_stock and accept(first.in_stock[0], sources[1:]):
                return first
            rest = await self.fresh(sources[1:])
            return Quotes(
                self.rank([*first.in_stock, *rest.in_stock]),
                [*first.gone, *rest.gone],
                first.unanswered + rest.unanswered,
            )

        async def ask(source: Source) -> Source | BaseException | None:
            supplier = self.suppliers.get(source.supplier)
            try:
                async with asyncio.timeout(self.find_timeout):
                    details = await supplier.find_offer(source.offer.offer_id)
            except (SupplierError, TimeoutError) as exc:
                if CircuitBreaker.counts(exc):
                    await self.breaker.failure(source.supplier, exc)
                logger.info(
                    "source %s:%s not quoted: %s", source.supplier, source.offer.offer_id, exc
                )
                return exc
            self.breaker.success(source.supplier)
            return self._source(source.offer, details)

        answers = await asyncio.gather(*(ask(source) for source in sources))
        in_stock, gone, unanswered = [], [], 0
        for source, answer in zip(sources, answers, strict=True):
            if isinstance(answer, OfferNotFound):
                gone.append(source)
            elif isinstance(answer, BaseException):
                unanswered += not isinstance(answer, RefreshPriceError)
            elif answer is not None and answer.in_stock:
                in_stock.append(answer)
        return Quotes(self.rank(in_stock), gone, unanswered)

    def stars(self, source: Source) -> int:
        """Retail Stars of ``source`` at its (fresh or stored) price."""
        return self._book().stars(source.price, source.currency, source.offer.stars_amount)

    # -- the storefront ------------------------------------------------------------------

    async def goods_of_product(self, supplier: str, product_id: str) -> list[Good]:
        """The goods a product page lists (the product and those of other suppliers with
        the same normalised name): one per linked group, priced from its cheapest usable
        source in stock, cheapest first (goods without a price last)."""
        offers = await self.repo.product_offers(supplier, product_id)
        groups: dict[str, list[StoredOffer]] = {}
        for group, offer in offers:
            groups.setdefault(group, []).append(offer)
        goods = [self._good(members) for members in groups.values()]
        return sorted(
            (g for g in goods if g is not None),
            key=lambda g: (g.stars is None, g.stars or 0, g.shown.offer_name),
        )

    async def good(self, supplier: str, offer_id: str) -> Good | None:
        """The good an offer reference names (its offer card), or ``None``."""
        return self._good(await self.linked(supplier, offer_id), first=(supplier, offer_id))

    def _good(
        self, members: Sequence[StoredOffer], first: tuple[str, str] | None = None
    ) -> Good | None:
        usable = [o for o in members if o.supplier in self.suppliers and o.active]
        if not usable:
            return None
        in_stock = [
            s
            for s in (self._source(o) for o in usable if o.in_stock and self.usable(o.supplier))
            if s is not None
        ]
        if in_stock:
            best = self.rank(in_stock)[0]
            cheapest = min(self.stars(s) for s in in_stock)
            return Good(best.offer, cheapest, len(usable))
        shown = next((o for o in usable if (o.supplier, o.offer_id) == first), usable[0])
        return Good(shown, None, len(usable))

    # -- links ---------------------------------------------------------------------------

    async def link(
        self, first: tuple[str, str], second: tuple[str, str], admin_id: int | None
    ) -> str:
        """Link two offers of different suppliers as one good (both join ``first``'s
        group, which survives re-syncs). Offers needing a server are linked only when both
        suppliers list the same server ids. Returns the group. Raises
        :class:`LinkRefused`."""
        if first[0] == second[0]:
            raise LinkRefused("same_supplier")
        a = await self.repo.get(*first)
        b = await self.repo.get(*second)
        if (
            a is None
            or b is None
            or a.supplier not in self.suppliers
            or b.supplier not in self.suppliers
        ):
            raise LinkRefused("unknown_offer")
        if a.category != b.category or a.needs_player != b.needs_player:
            raise LinkRefused("different_kind")
        if a.needs_server or b.needs_server:
            await self._same_servers(a, b)
        group = await self.repo.group_of(a.supplier, a.offer_id)
        await self.repo.set_link(a.supplier, a.offer_id, group, "manual", admin_id)
        await self.repo.set_link(b.supplier, b.offer_id, group, "manual", admin_id)
        logger.info("offers %s:%s and %s:%s linked by %s", *first, *second, admin_id)
        return group

    async def _same_servers(self, a: StoredOffer, b: StoredOffer) -> None:
        if not (a.needs_server and b.needs_server):
            raise LinkRefused("servers_differ")
        ids = []
        for offer in (a, b):
            supplier: Supplier = self.suppliers.get(offer.supplier)
            if Capability.SERVERS not in supplier.capabilities:
                raise LinkRefused("servers_unknown")
            try:
                servers = await supplier.get_servers(offer.offer_id)
            except SupplierError as exc:
                logger.warning("servers of %s:%s not read: %s", offer.supplier, offer.offer_id, exc)
                raise LinkRefused("servers_unknown") from exc
            ids.append({server.server_id for server in servers})
        if ids[0] != ids[1]:
            raise LinkRefused("servers_differ")

    async def unlink(self, offer: tuple[str, str], admin_id: int | None) -> None:
        """Keep an offer apart: a source of its own, whatever automatic matching says."""
        stored = await self.repo.get(*offer)
        if stored is None:
            raise LinkRefused("unknown_offer")
        await self.repo.set_link(*offer, f"apart:{offer[0]}:{offer[1]}", "apart", admin_id)
        logger.info("offer %s:%s unlinked by %s", *offer, admin_id)

    async def doubtful(self, limit: int = 10) -> list[Doubtful]:
        """Offers an admin should review: of different suppliers, same category and amount,
        not linked, whose product names differ only by words one of them adds (``PUBG``
        and ``PUBG Mobile``, ``Roblox`` and ``Roblox Gift Card``), most alike first.

        Works on product names (a few per thousand offers) through an index of their word
        sets, so a catalogue of 200,000 offers is reviewed in about a second without
        loading its offers; only the candidate pairs are looked up offer by offer."""
        by_words: dict[tuple[str, frozenset[str]], list[tuple[str, str, str]]] = {}
        for supplier, product_id, name, category in await self.repo.product_names():
            if supplier in self.suppliers:
                key = (category, frozenset(normalise(name).split()))
                by_words.setdefault(key, []).append((supplier, product_id, name))
        pairs: list[tuple[float, tuple[str, str, str], tuple[str, str, str]]] = []
        for (category, words), products in by_words.items():
            if len(words) > _MAX_WORDS:
                continue
            for size in range(1, len(words)):
                for subset in combinations(sorted(words), size):
                    for shorter in by_words.get((category, frozenset(subset)), ()):
                        for longer in products:
                            if shorter[0] != longer[0]:
                                score = fuzz.ratio(normalise(shorter[2]), normalise(longer[2]))
                                pairs.append((score, shorter, longer))
        pairs.sort(key=lambda p: (-p[0], p[1][2], p[2][2], p[1][0], p[2][0]))
        found: list[Doubtful] = []
        for score, shorter, longer in pairs:
            found.extend(await self._unlinked_offers(shorter, longer, score, limit - len(found)))
            if len(found) >= limit:
                break
        return found

    async def _unlinked_offers(
        self, a: tuple[str, str, str], b: tuple[str, str, str], score: float, limit: int
    ) -> list[Doubtful]:
        """Offers of products ``a`` and ``b`` (supplier, product id, name) with the same
        amount, in different groups."""
        offers_b: dict[str, list[StoredOffer]] = {}
        for offer in await self.repo.offers_of(b[0], b[1]):
            if not offer.needs_server:
                offers_b.setdefault(amount_key(offer.offer_name), []).append(offer)
        found = []
        for offer in await self.repo.offers_of(a[0], a[1]):
            if offer.needs_server:
                continue
            for other in offers_b.get(amount_key(offer.offer_name), []):
                if other.category != offer.category or len(found) >= limit:
                    continue
                group = await self.repo.group_of(offer.supplier, offer.offer_id)
                if group != await self.repo.group_of(other.supplier, other.offer_id):
                    found.append(Doubtful(offer, other, score))
        return found


#: product names with more words are not searched for shorter names within them
_MAX_WORDS = 8
