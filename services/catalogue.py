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
from dataclasses import dataclass

from services.suppliers.base import Supplier
from services.suppliers.errors import OfferNotFound
from services.suppliers.models import CatalogueRow, OfferDetails
from storage.catalogue import CatalogueRepository, OfferRow, StoredOffer
from storage.db import utcnow_iso

logger = logging.getLogger(__name__)

CATEGORY_TOP_UP = "Top Up"
CATEGORY_GIFT_CARDS = "Gift Cards"
CATEGORY_STARS = "Telegram Stars"
CATEGORIES = (CATEGORY_TOP_UP, CATEGORY_GIFT_CARDS, CATEGORY_STARS)

_STARS_PRODUCT = re.compile(r"telegram\s*stars", re.IGNORECASE)
_FIRST_NUMBER = re.compile(r"\d+")
_BATCH = 5000


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
    offers: int
    seconds: float


class CatalogueService:
    """Keeps the local catalogue in step with one supplier."""

    def __init__(
        self, supplier: Supplier, repo: CatalogueRepository, page_size: int = 1000
    ) -> None:
        self.supplier = supplier
        self.repo = repo
        self._page_size = page_size
        self._sync_lock = asyncio.Lock()

    @property
    def is_syncing(self) -> bool:
        return self._sync_lock.locked()

    async def sync(self) -> SyncReport:
        """Fetch every page of ``POST /api/v1/offers/sync`` and apply it.

        Rows are written in batches as they arrive; offers missing from the feed are
        deactivated only after the whole feed arrived and added up to its ``count``
        (``CatalogueIncomplete`` otherwise, leaving the old offers active).
        """
        async with self._sync_lock:
            started = time.perf_counter()
            run_id = await self.repo.start_sync_run(self.supplier.name)
            synced_at = utcnow_iso()
            batch: list[OfferRow] = []
            try:
                async for row in self.supplier.iter_catalogue(page_size=self._page_size):
                    batch.append(self._offer_row(row, synced_at))
                    if len(batch) >= _BATCH:
                        await self.repo.upsert_offers(batch)
                        batch = []
                if batch:
                    await self.repo.upsert_offers(batch)
                active = await self.repo.finish_sync(self.supplier.name, synced_at)
            except Exception as exc:
                await self.repo.finish_sync_run(
                    run_id, "failed", None, f"{type(exc).__name__}: {exc}"
                )
                raise
            await self.repo.finish_sync_run(run_id, "ok", active)
            seconds = time.perf_counter() - started
            logger.info("catalogue sync: %d offers in %.2fs", active, seconds)
            return SyncReport(active, seconds)

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
