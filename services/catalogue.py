"""Catalogue: sync from the supplier into the order log's offer tables, and fresh quotes.

Sync rows do not say their category nor whether a key is returned, so both are inferred:
"Telegram Stars" by product name, "Top Up" when a player ID is required, otherwise
"Gift Cards"; find-one later tells the truth about keys and is stored.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal

from services.suppliers.base import Supplier
from services.suppliers.errors import OfferNotFound
from services.suppliers.models import CatalogueRow, OfferDetails
from storage.catalogue import CatalogueRepository, OfferRow, StoredOffer, SyncRun
from storage.db import utcnow_iso

logger = logging.getLogger(__name__)

CATEGORY_TOP_UP = "Top Up"
CATEGORY_GIFT_CARDS = "Gift Cards"
CATEGORY_STARS = "Telegram Stars"
CATEGORIES = (CATEGORY_TOP_UP, CATEGORY_GIFT_CARDS, CATEGORY_STARS)

_STARS_PRODUCT = re.compile(r"telegram\s*stars", re.IGNORECASE)
_FIRST_NUMBER = re.compile(r"\d+")
_BATCH = 5000
ALERT_HELD = "catalogue_held"
DEFAULT_MAX_SHRINK = Decimal("0.2")


def stars_amount_of(product_name: str, offer_name: str) -> int | None:
    """``("Telegram Stars", "100 Stars")`` -> 100; ``None`` for anything else."""
    if not _STARS_PRODUCT.search(product_name):
        return None
    match = _FIRST_NUMBER.search(offer_name)
    return int(match.group()) if match else None


def category_of(row: CatalogueRow) -> str:
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


class HeldSyncGone(LookupError):
    """The held sync asked for can no longer be applied: it was applied already, or a newer
    sync finished after it."""


class CatalogueService:
    """Keeps the local catalogue in step with one supplier.

    A sync whose supplier answer would shrink a non-empty catalogue by more than
    ``max_shrink`` (a share, 0.2 = 20 %) is *held*: its rows are stored but no offer is
    deactivated, admins are alerted through ``alert(key, text)`` (set by the composition
    root), and :meth:`apply_held` applies it once an admin confirms.
    """

    def __init__(
        self,
        supplier: Supplier,
        repo: CatalogueRepository,
        page_size: int = 1000,
        *,
        max_shrink: Decimal = DEFAULT_MAX_SHRINK,
    ) -> None:
        self.supplier = supplier
        self.repo = repo
        self._page_size = page_size
        self._max_shrink = max_shrink
        self._sync_lock = asyncio.Lock()
        #: admin alerts, ``alert(key, text)``; set by the composition root
        self.alert: Callable[[str, str], Awaitable[None]] | None = None

    @property
    def is_syncing(self) -> bool:
        return self._sync_lock.locked()

    def _shrinks_too_much(self, previous: int, listed: int) -> bool:
        return previous > 0 and Decimal(previous - listed) > previous * self._max_shrink

    async def sync(self) -> SyncReport:
        """Fetch every page of ``POST /api/v1/offers/sync`` and apply it.

        Rows are written in batches as they arrive; offers missing from the feed are
        deactivated only after the whole feed arrived and its distinct offers added up to
        its ``count`` (``CatalogueIncomplete`` otherwise, leaving the old offers active),
        and only when the feed does not shrink the catalogue by more than ``max_shrink``:
        such a sync is recorded as ``held``, admins are alerted, and nothing is deactivated
        until :meth:`apply_held`. The first sync into an empty catalogue is never held.
        """
        async with self._sync_lock:
            started = time.perf_counter()
            synced_at = utcnow_iso()
            run_id = await self.repo.start_sync_run(self.supplier.name, synced_at)
            batch: list[OfferRow] = []
            listed = 0
            try:
                previous = await self.repo.size(self.supplier.name)
                async for row in self.supplier.iter_catalogue(page_size=self._page_size):
                    batch.append(self._offer_row(row, synced_at))
                    listed += 1
                    if len(batch) >= _BATCH:
                        await self.repo.upsert_offers(batch)
                        batch = []
                if batch:
                    await self.repo.upsert_offers(batch)
                held = self._shrinks_too_much(previous, listed)
                active = await self.repo.finish_sync(
                    self.supplier.name, synced_at, deactivate=not held
                )
            except Exception as exc:
                await self.repo.finish_sync_run(
                    run_id, "failed", None, f"{type(exc).__name__}: {exc}"
                )
                raise
            seconds = time.perf_counter() - started
            report = SyncReport(active, seconds, listed, previous, held, run_id)
            if held:
                detail = f"supplier listed {listed} of {previous} active offers; not applied"
                await self.repo.finish_sync_run(run_id, "held", listed, detail)
                logger.warning("catalogue sync #%d held: %s", run_id, detail)
                await self._alert_held(report)
                return report
            await self.repo.finish_sync_run(run_id, "ok", active)
            logger.info("catalogue sync: %d offers in %.2fs", active, seconds)
            return report

    async def _alert_held(self, report: SyncReport) -> None:
        if self.alert is None:
            return
        fewer = (report.previous - report.listed) * 100 // report.previous
        text = (
            f"🛑 Catalogue sync #{report.run_id} held: the supplier listed {report.listed} "
            f"offers, the shop has {report.previous} active ({fewer}% fewer, more than the "
            f"{(self._max_shrink * 100).normalize():f}% allowed). Nothing was deactivated; "
            "the stored catalogue keeps selling. If the supplier really removed them, apply "
            "it with /sync force or Admin → Catalogue → Apply anyway."
        )
        try:
            await self.alert(ALERT_HELD, text)
        except Exception:
            logger.exception("could not alert admins about held sync #%d", report.run_id)

    async def held_run(self) -> SyncRun | None:
        """The held sync that :meth:`apply_held` would apply (the latest finished run when
        it is held), or ``None``."""
        run = await self.repo.latest_run(self.supplier.name)
        return run if run is not None and run.status == "held" else None

    async def apply_held(self, run_id: int) -> SyncReport:
        """Apply held sync ``run_id`` as its supplier answer listed it, after an admin's
        confirmation: offers it did not list are deactivated, products rebuilt, the run
        becomes ``ok``. Nothing is fetched again. Raises :class:`HeldSyncGone` when the run
        is not the latest finished one or is not held any more."""
        async with self._sync_lock:
            started = time.perf_counter()
            run = await self.held_run()
            if run is None or run.id != run_id:
                raise HeldSyncGone(f"sync #{run_id} is not the latest held sync")
            previous = await self.repo.size(self.supplier.name)
            active = await self.repo.finish_sync(self.supplier.name, run.started_at)
            await self.repo.finish_sync_run(run.id, "ok", active, "held, then applied by an admin")
            logger.warning(
                "held catalogue sync #%d applied: %d -> %d offers", run.id, previous, active
            )
            return SyncReport(
                active, time.perf_counter() - started, run.offers or 0, previous, False, run.id
            )

    def _offer_row(self, row: CatalogueRow, synced_at: str) -> OfferRow:
        return (
            self.supplier.name, row.offer_group_id, row.product_id, row.product_name,
            row.offer_group_name, category_of(row), str(row.price), row.currency,
            int(row.in_stock), int(row.requires_game_user_id), int(row.requires_game_server_id),
            None, stars_amount_of(row.product_name, row.offer_group_name), synced_at, 1,
        )  # fmt: skip

    async def quote(self, offer_id: int) -> tuple[StoredOffer, OfferDetails]:
        """Ask find-one for the latest price of an offer and store what it said.

        Raises ``OfferNotFound`` (and deactivates the offer) when it is gone, or
        ``LookupError`` when the offer was never synced.
        """
        stored = await self.repo.get(self.supplier.name, offer_id)
        if stored is None:
            raise LookupError(f"offer {offer_id} is not in the catalogue")
        try:
            details = await self.supplier.find_offer(offer_id)
        except OfferNotFound:
            await self.repo.deactivate(self.supplier.name, offer_id)
            raise
        await self.repo.set_offer_details(
            self.supplier.name, offer_id, details.price, details.currency,
            details.is_return_data_for_customer,
            details.requires_game_user_id or stored.needs_player,
            details.requires_game_server_id or stored.needs_server,
        )  # fmt: skip
        fresh = await self.repo.get(self.supplier.name, offer_id)
        assert fresh is not None
        return fresh, details
