"""Catalogue: sync from the supplier into the order log's offer tables, and fresh quotes.

Sync rows do not say their category nor whether a key is returned, so both are inferred:
"Telegram Stars" by product name, "Top Up" when a player ID is required, otherwise
"Gift Cards"; find-one later tells the truth about keys and is stored.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from services.routing import match_key, product_key
from services.search import SearchService
from services.shared_state import CATALOGUE, CacheBus
from services.suppliers.base import Capability, Supplier
from services.suppliers.errors import OfferNotFound
from services.suppliers.models import CatalogueRow, OfferDetails
from services.suppliers.registry import Suppliers
from storage.catalogue import CatalogueRepository, OfferRow, StoredOffer, SyncRun
from storage.db import utcnow_iso

logger = logging.getLogger(__name__)

CATEGORY_TOP_UP = "Top Up"
CATEGORY_GIFT_CARDS = "Gift Cards"
CATEGORY_STARS = "Telegram Stars"
CATEGORIES = (CATEGORY_TOP_UP, CATEGORY_GIFT_CARDS, CATEGORY_STARS)

_STARS_PRODUCT = re.compile(r"telegram\s*stars", re.IGNORECASE)
_FIRST_NUMBER = re.compile(r"\d+")
#: rows written per transaction during a sync: a page of the feed (5000 held ~6 MiB more
#: in the bot process at its peak, for no measurable gain in sync time)
_BATCH = 1000
ALERT_HELD = "catalogue_held"
#: find-ones in flight at once while listed offers are refreshed (each has its timeout)
LISTED_CONCURRENCY = 8
DEFAULT_MAX_SHRINK = Decimal("0.2")


def product_id_of(product_name: str, category: str) -> str:
    """A product id for a vendor whose find-one names the product but gives no id: a
    short stable digest of name and category (offers of one product in one category
    group together, and the id fits callback data)."""
    key = f"{category}\n{product_name.strip().casefold()}"
    return "n" + hashlib.blake2s(key.encode(), digest_size=6).hexdigest()


def stars_amount_of(product_name: str, offer_name: str) -> int | None:
    """``("Telegram Stars", "100 Stars")`` -> 100; ``None`` for anything else."""
    if not _STARS_PRODUCT.search(product_name):
        return None
    match = _FIRST_NUMBER.search(offer_name)
    return int(match.group()) if match else None


def category_of(row: CatalogueRow | OfferDetails) -> str:
    if _STARS_PRODUCT.search(row.product_name):
        return CATEGORY_STARS
    return CATEGORY_TOP_UP if row.requires_game_user_id else CATEGORY_GIFT_CARDS


@dataclass(frozen=True, slots=True)
class SyncReport:
    """What a sync did. ``offers``: active offers afterwards (when ``held``, the stored ones
    that keep selling); ``listed``: distinct offers the supplier listed; ``previous``: active
    offers before it; ``run_id``: its ``sync_runs`` row."""

    offers: int
    seconds: float
    listed: int = 0
    previous: int = 0
    held: bool = False
    run_id: int = 0
    supplier: str = ""


class HeldSyncGone(LookupError):
    """The held sync asked for can no longer be applied: it was applied already, or a newer
    sync finished after it."""


class CatalogueService:
    """Keeps the local catalogue in step with every supplier of the shop.

    A supplier with ``CATALOGUE_SYNC`` is synced from its feed; one without it gets its
    catalogue from a list of offer ids (``offer_ids[name]`` from its settings section, plus
    the ids admins added with ``/offers``), each refreshed by find-one (:meth:`refresh_listed`).

    A sync whose supplier answer would shrink a non-empty catalogue by more than
    ``max_shrink`` (a share, 0.2 = 20 %) is *held*: its rows are stored but no offer is
    deactivated, admins are alerted through ``alert(key, msgid, **params)`` (set by the composition
    root), and :meth:`apply_held` applies it once an admin confirms.
    """

    def __init__(
        self,
        suppliers: Suppliers | Supplier,
        repo: CatalogueRepository,
        page_size: int | Mapping[str, int] = 1000,
        *,
        max_shrink: Decimal | Mapping[str, Decimal] = DEFAULT_MAX_SHRINK,
        offer_ids: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.suppliers = suppliers if isinstance(suppliers, Suppliers) else Suppliers([suppliers])
        self.repo = repo
        #: customer search over the synced products (text, its pages, inline mode)
        self.search = SearchService(repo)
        self._page_sizes = page_size
        self._max_shrinks = max_shrink
        self._offer_ids = {name: list(ids) for name, ids in (offer_ids or {}).items()}
        self._sync_lock = asyncio.Lock()
        #: admin alerts, ``alert(key, msgid, **params)`` (a .po message); set by the composition root
        self.alert: Callable[..., Awaitable[None]] | None = None
        self._bus = CacheBus()

    def share_through(self, bus: CacheBus) -> None:
        """Tell other processes on ``bus`` when a sync rebuilt the products, and start
        search and page counts afresh when another process's sync did (several workers);
        search aliases too (:meth:`SearchService.share_through`)."""
        self._bus = bus
        bus.subscribe(CATALOGUE, lambda _key: self.repo.products_changed())
        self.search.share_through(bus)

    @property
    def is_syncing(self) -> bool:
        return self._sync_lock.locked()

    def _page_size(self, name: str) -> int:
        sizes = self._page_sizes
        return sizes if isinstance(sizes, int) else sizes.get(name, 1000)

    def _max_shrink(self, name: str) -> Decimal:
        shares = self._max_shrinks
        return shares if isinstance(shares, Decimal) else shares.get(name, DEFAULT_MAX_SHRINK)

    def _shrinks_too_much(self, name: str, previous: int, listed: int) -> bool:
        return previous > 0 and Decimal(previous - listed) > previous * self._max_shrink(name)

    def _only(self, name: str | None) -> Supplier:
        if name is not None:
            return self.suppliers.get(name)
        if len(self.suppliers) != 1:
            raise ValueError("several suppliers: name the one to sync")
        return next(iter(self.suppliers))

    async def sync_all(self) -> list[SyncReport]:
        """:meth:`sync` every supplier in turn; a supplier that fails is logged and the
        others still sync (its stored catalogue keeps selling). Raises the first failure
        only when every supplier failed."""
        reports: list[SyncReport] = []
        failures: list[Exception] = []
        for supplier in self.suppliers:
            try:
                reports.append(await self.sync(supplier.name))
            except Exception as exc:
                logger.exception("catalogue sync of %s failed", supplier.name)
                failures.append(exc)
        if failures and not reports:
            raise failures[0]
        return reports

    async def sync(self, name: str | None = None) -> SyncReport:
        """Sync supplier ``name`` (may be omitted when the shop has one supplier): its
        whole feed when it has ``CATALOGUE_SYNC``, else :meth:`refresh_listed`."""
        supplier = self._only(name)
        generation = self.repo.generation
        try:
            if Capability.CATALOGUE_SYNC not in supplier.capabilities:
                return await self.refresh_listed(supplier.name)
            return await self._sync_feed(supplier)
        finally:
            if self.repo.generation != generation:
                await self._bus.publish(CATALOGUE, supplier.name)

    async def sync_elsewhere(
        self, run: Callable[[], Awaitable[list[SyncReport]]]
    ) -> list[SyncReport]:
        """Let ``run()`` sync into the same database from elsewhere (a child process, whose
        memory stays out of the bot's), holding this service's sync lock meanwhile; then
        take note that products were rebuilt and alert admins about held syncs, as
        :meth:`sync` does."""
        async with self._sync_lock:
            reports = await run()
            self.repo.products_changed()
        await self._bus.publish(CATALOGUE)
        for report in reports:
            if report.held:
                await self._alert_held(report)
        return reports

    async def listed_ids(self, name: str) -> list[str]:
        """Offer ids of a supplier without a feed: its settings list, then admins' ones."""
        ids = list(self._offer_ids.get(name, []))
        for offer_id in await self.repo.listed_offer_ids(name):
            if offer_id not in ids:
                ids.append(offer_id)
        return ids

    async def refresh_listed(self, name: str) -> SyncReport:
        """Ask find-one for every listed offer id of supplier ``name`` and store what it
        said; an id the supplier does not know is deactivated, an id that fails otherwise
        is logged and keeps its stored row. Offers no longer listed are deactivated."""
        supplier = self.suppliers.get(name)
        async with self._sync_lock:
            started = time.perf_counter()
            synced_at = utcnow_iso()
            run_id = await self.repo.start_sync_run(name, synced_at)
            previous = await self.repo.size(name)
            kept: list[str] = []
            listed = await self.listed_ids(name)
            asking = asyncio.Semaphore(LISTED_CONCURRENCY)

            async def refresh(offer_id: str) -> OfferDetails | None:
                async with asking:
                    try:
                        return await supplier.find_offer(offer_id)
                    except OfferNotFound:
                        logger.warning("listed offer %s:%s is gone", name, offer_id)
                    except Exception as exc:
                        kept.append(offer_id)
                        logger.warning("listed offer %s:%s not refreshed: %s", name, offer_id, exc)
                    return None

            for start in range(0, len(listed), _BATCH):
                chunk = listed[start : start + _BATCH]
                answers = await asyncio.gather(*(refresh(offer_id) for offer_id in chunk))
                rows = [
                    self._details_row(name, offer_id, details, synced_at)
                    for offer_id, details in zip(chunk, answers, strict=True)
                    if details is not None
                ]
                await self.repo.upsert_offers(rows)
            await self.repo.touch_offers(name, kept, synced_at)
            active = await self.repo.finish_sync(name, synced_at)
            detail = f"{len(kept)} listed offers not answered" if kept else None
            await self.repo.finish_sync_run(run_id, "ok", active, detail)
            seconds = time.perf_counter() - started
            logger.info("listed offers of %s refreshed: %d active in %.2fs", name, active, seconds)
            return SyncReport(active, seconds, len(listed), previous, False, run_id, name)

    @staticmethod
    def _details_row(name: str, offer_id: str, details: OfferDetails, synced_at: str) -> OfferRow:
        category = category_of(details)
        return (
            name, offer_id, product_id_of(details.product_name, category),
            details.product_name,
            details.offer_name,
            category, str(details.price), details.currency, int(details.in_stock),
            int(details.requires_game_user_id), int(details.requires_game_server_id),
            int(details.is_return_data_for_customer),
            stars_amount_of(details.product_name, details.offer_name), synced_at, 1,
            details.image_url,
            match_key(name, category, details.product_name, details.offer_name,
                      details.requires_game_server_id),
            product_key(category, details.product_name),
        )  # fmt: skip

    async def _sync_feed(self, supplier: Supplier) -> SyncReport:
        """Fetch every page of ``POST /api/v1/offers/sync`` and apply it.

        Rows are written in batches as they arrive; offers missing from the feed are
        deactivated only after the whole feed arrived and its distinct offers added up to
        its ``count`` (``CatalogueIncomplete`` otherwise, leaving the old offers active),
        and only when the feed does not shrink the catalogue by more than ``max_shrink``:
        such a sync is recorded as ``held``, admins are alerted, and nothing is deactivated
        until :meth:`apply_held`. The first sync into an empty catalogue is never held.
        """
        name = supplier.name
        async with self._sync_lock:
            started = time.perf_counter()
            synced_at = utcnow_iso()
            run_id = await self.repo.start_sync_run(name, synced_at)
            batch: list[OfferRow] = []
            listed = 0
            try:
                previous = await self.repo.size(name)
                async for row in supplier.iter_catalogue(page_size=self._page_size(name)):
                    batch.append(self._offer_row(name, row, synced_at))
                    listed += 1
                    if len(batch) >= _BATCH:
                        await self.repo.upsert_offers(batch)
                        batch = []
                if batch:
                    await self.repo.upsert_offers(batch)
                held = self._shrinks_too_much(name, previous, listed)
                active = await self.repo.finish_sync(name, synced_at, deactivate=not held)
            except Exception as exc:
                await self.repo.finish_sync_run(
                    run_id, "failed", None, f"{type(exc).__name__}: {exc}"
                )
                raise
            seconds = time.perf_counter() - started
            report = SyncReport(active, seconds, listed, previous, held, run_id, name)
            if held:
                detail = f"supplier listed {listed} of {previous} active offers; not applied"
                await self.repo.finish_sync_run(run_id, "held", listed, detail)
                logger.warning("catalogue sync #%d held: %s", run_id, detail)
                await self._alert_held(report)
                return report
            await self.repo.finish_sync_run(run_id, "ok", active)
            logger.info("catalogue sync of %s: %d offers in %.2fs", name, active, seconds)
            return report

    async def _alert_held(self, report: SyncReport) -> None:
        if self.alert is None:
            return
        fewer = (report.previous - report.listed) * 100 // report.previous
        allowed = f"{(self._max_shrink(report.supplier) * 100).normalize():f}"
        try:
            await self.alert(
                ALERT_HELD, "alert.catalogue_held", run=report.run_id, supplier=report.supplier,
                listed=report.listed, previous=report.previous, fewer=fewer, allowed=allowed,
            )  # fmt: skip
        except Exception:
            logger.exception("could not alert admins about held sync #%d", report.run_id)

    async def held_run(self) -> SyncRun | None:
        """A held sync that :meth:`apply_held` would apply (a supplier's latest finished
        run when it is held, the first supplier's first), or ``None``."""
        for supplier in self.suppliers:
            run = await self.repo.latest_run(supplier.name)
            if run is not None and run.status == "held":
                return run
        return None

    async def apply_held(self, run_id: int) -> SyncReport:
        """Apply held sync ``run_id`` as its supplier answer listed it, after an admin's
        confirmation: offers it did not list are deactivated, products rebuilt, the run
        becomes ``ok``. Nothing is fetched again. Raises :class:`HeldSyncGone` when the run
        is not the latest finished one or is not held any more."""
        async with self._sync_lock:
            started = time.perf_counter()
            run = await self.repo.run(run_id)
            latest = await self.repo.latest_run(run.supplier) if run else None
            if run is None or latest is None or latest.id != run_id or latest.status != "held":
                raise HeldSyncGone(f"sync #{run_id} is not the latest held sync")
            previous = await self.repo.size(run.supplier)
            active = await self.repo.finish_sync(run.supplier, run.started_at)
            await self.repo.finish_sync_run(run.id, "ok", active, "held, then applied by an admin")
            logger.warning(
                "held catalogue sync #%d applied: %d -> %d offers", run.id, previous, active
            )
            return SyncReport(
                active,
                time.perf_counter() - started,
                run.offers or 0,
                previous,
                False,
                run.id,
                run.supplier,
            )

    @staticmethod
    def _offer_row(name: str, row: CatalogueRow, synced_at: str) -> OfferRow:
        returns_key = None if row.returns_key is None else int(row.returns_key)
        category = row.category or category_of(row)
        return (
            name, row.offer_group_id, row.product_id, row.product_name,
            row.offer_group_name, category, str(row.price), row.currency,
            int(row.in_stock), int(row.requires_game_user_id), int(row.requires_game_server_id),
            returns_key, stars_amount_of(row.product_name, row.offer_group_name), synced_at, 1,
            row.image_url,
            match_key(name, category, row.product_name, row.offer_group_name,
                      row.requires_game_server_id),
            product_key(category, row.product_name),
        )  # fmt: skip

    async def quote(self, supplier: str, offer_id: str) -> tuple[StoredOffer, OfferDetails]:
        """Ask find-one for the latest price of an offer and store what it said.

        Raises ``OfferNotFound`` (and deactivates the offer) when it is gone, or
        ``LookupError`` when the offer was never synced.
        """
        stored = await self.repo.get(supplier, offer_id)
        if stored is None or supplier not in self.suppliers:
            raise LookupError(f"offer {supplier}:{offer_id} is not in the catalogue")
        try:
            details = await self.suppliers.get(supplier).find_offer(offer_id)
        except OfferNotFound:
            await self.repo.deactivate(supplier, offer_id)
            raise
        await self.repo.set_offer_details(
            supplier, offer_id, details.price, details.currency,
            details.is_return_data_for_customer,
            details.requires_game_user_id or stored.needs_player,
            details.requires_game_server_id or stored.needs_server,
        )  # fmt: skip
        fresh = await self.repo.get(supplier, offer_id)
        assert fresh is not None
        return fresh, details
