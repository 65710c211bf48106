"""Catalogue sync against the sandbox: a supplier answer that would empty or gut the shop
is held for an admin's confirmation instead of applied."""

from __future__ import annotations

from decimal import Decimal

import pytest

from sandboxes.gamesdrop import TEST_OFFER_ID, GamesDropSandbox
from services.catalogue import CatalogueService, HeldSyncGone
from services.suppliers.gamesdrop.client import GamesDropClient
from storage.catalogue import CatalogueRepository
from storage.db import Database


class Alerts:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict[str, object]]] = []

    async def __call__(self, key: str, msgid: str, **params: object) -> None:
        self.sent.append((key, msgid, params))


@pytest.fixture
def alerts() -> Alerts:
    return Alerts()


@pytest.fixture
async def catalogue(client: GamesDropClient, db: Database, alerts: Alerts) -> CatalogueService:
    service = CatalogueService(client, CatalogueRepository(db), page_size=100)
    service.alert = alerts
    report = await service.sync()
    assert report.offers == 300 and not report.held
    return service


async def _products(service: CatalogueService) -> int:
    return sum(count for _, count in await service.repo.categories())


@pytest.mark.parametrize("listed", [0, 20])
async def test_an_empty_or_shrunken_answer_is_held_and_deactivates_nothing(
    sandbox: GamesDropSandbox, catalogue: CatalogueService, alerts: Alerts, listed: int
) -> None:
    products = await _products(catalogue)
    sandbox.faults.sync_offers = listed
    report = await catalogue.sync()
    assert await catalogue.repo.size() == 300
    assert await _products(catalogue) == products
    assert (await catalogue.repo.get("gamesdrop", TEST_OFFER_ID)).active  # type: ignore[union-attr]
    assert report.held and (report.previous, report.listed, report.offers) == (300, listed, 300)
    run = await catalogue.repo.latest_run()
    assert run is not None and (run.status, run.offers) == ("held", listed)
    [(key, msgid, params)] = alerts.sent
    assert (key, msgid) == ("catalogue_held", "alert.catalogue_held")
    assert (params["listed"], params["previous"]) == (listed, 300)


async def test_a_shrink_within_the_allowed_share_is_applied(
    sandbox: GamesDropSandbox, catalogue: CatalogueService, alerts: Alerts
) -> None:
    sandbox.faults.sync_offers = 270  # 10 % fewer, under the default 20 %
    report = await catalogue.sync()
    assert not report.held and report.offers == 270
    assert await catalogue.repo.size() == 270
    assert alerts.sent == []


async def test_the_share_is_configurable_and_its_bound_is_allowed(
    sandbox: GamesDropSandbox, client: GamesDropClient, db: Database
) -> None:
    service = CatalogueService(client, CatalogueRepository(db), max_shrink=Decimal("0.05"))
    await service.sync()
    sandbox.faults.sync_offers = 285  # exactly 5 % fewer
    assert not (await service.sync()).held
    sandbox.faults.sync_offers = 270  # 5.3 % fewer than 285
    assert (await service.sync()).held
    assert await service.repo.size() == 285


async def test_the_first_sync_into_an_empty_catalogue_is_never_held(
    sandbox: GamesDropSandbox, client: GamesDropClient, db: Database
) -> None:
    sandbox.faults.sync_offers = 20
    service = CatalogueService(client, CatalogueRepository(db))
    report = await service.sync()
    assert not report.held and await service.repo.size() == 20


async def test_confirming_a_held_sync_applies_what_it_listed(
    sandbox: GamesDropSandbox, catalogue: CatalogueService, alerts: Alerts
) -> None:
    sandbox.faults.sync_offers = 20
    held = await catalogue.sync()
    assert held.held and await catalogue.repo.size() == 300
    report = await catalogue.apply_held(held.run_id)
    assert not report.held and report.offers == 20
    assert await catalogue.repo.size() == 20
    assert await _products(catalogue) < 20
    run = await catalogue.repo.latest_run()
    assert run is not None and (run.id, run.status, run.offers) == (held.run_id, "ok", 20)
    with pytest.raises(HeldSyncGone):
        await catalogue.apply_held(held.run_id)  # a second tap changes nothing


async def test_a_held_sync_superseded_by_a_newer_one_cannot_be_applied(
    sandbox: GamesDropSandbox, catalogue: CatalogueService
) -> None:
    sandbox.faults.sync_offers = 0
    held = await catalogue.sync()
    sandbox.faults.sync_offers = None
    assert not (await catalogue.sync()).held
    with pytest.raises(HeldSyncGone):
        await catalogue.apply_held(held.run_id)
    assert await catalogue.repo.size() == 300


async def test_a_category_page_counts_the_products_of_the_latest_sync(
    sandbox: GamesDropSandbox, catalogue: CatalogueService
) -> None:
    """The product count under a category page is held between syncs, not past one."""
    counts = dict(await catalogue.repo.categories())
    category = next(iter(counts))
    _, total = await catalogue.repo.products(category, 0, 8)
    assert total == counts[category]
    sandbox.faults.sync_offers = 270
    await catalogue.sync()
    fewer = dict(await catalogue.repo.categories())
    assert sum(fewer.values()) < sum(counts.values())
    assert {c: (await catalogue.repo.products(c, 0, 8))[1] for c in fewer} == fewer


async def test_a_sync_run_elsewhere_refreshes_what_the_bot_holds_and_alerts_when_held(
    sandbox: GamesDropSandbox,
    client: GamesDropClient,
    db: Database,
    catalogue: CatalogueService,
    alerts: Alerts,
) -> None:
    """The bot's start-up and hourly syncs run in a child process (bot.sync_child), another
    connection to the same database: the bot's counts and search follow it, and a held
    sync still alerts admins."""
    category, count = (await catalogue.repo.categories())[0]
    assert (await catalogue.repo.products(category, 0, 8))[1] == count
    elsewhere = CatalogueService(client, CatalogueRepository(db), page_size=100)
    sandbox.faults.sync_offers = 270
    [report] = await catalogue.sync_elsewhere(lambda: elsewhere.sync_all())
    assert report.offers == 270 and not report.held
    fewer = dict(await catalogue.repo.categories())
    assert (await catalogue.repo.products(category, 0, 8))[1] == fewer[category] < count
    sandbox.faults.sync_offers = 0
    [held] = await catalogue.sync_elsewhere(lambda: elsewhere.sync_all())
    assert held.held
    [(key, _, params)] = alerts.sent
    assert key == "catalogue_held" and params["previous"] == 270
