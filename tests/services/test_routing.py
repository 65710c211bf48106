"""Which offers are one good, which source sells it, and when a supplier is skipped: the
routing service over a real SQLite catalogue with two scripted suppliers."""

from __future__ import annotations

from decimal import Decimal

import pytest

from services.catalogue import CatalogueService
from services.orders import OrderService
from services.pricing import PriceBook, PricingService
from services.routing import (
    CircuitBreaker,
    LinkRefused,
    RoutingService,
    SourceMode,
    match_key,
    normalise,
    product_key,
)
from services.suppliers import errors
from services.suppliers.base import Capability
from services.suppliers.models import CatalogueRow, GameServer, OfferDetails
from services.suppliers.registry import Suppliers
from storage.catalogue import CatalogueRepository
from storage.db import Database
from storage.orders import IncomingCharge, NewOrder, OrdersRepository, OrderStatus, SourceSwitch
from storage.settings import ShopSettingsRepository
from storage.users import UsersRepository

BOOK = PriceBook({"USD": Decimal(1), "EUR": Decimal("1.10")}, Decimal("0.10"), Decimal("0.01"))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (
            ("Genshin Impact™", "1,980 Genesis Crystals"),
            ("genshin impact", "1980 genesis crystals"),
        ),
        (("PUBG Mobile", "60 UC"), ("PUBG  Mobile", "UC 60")),
        (("Steam Wallet", "$5"), ("Steam Wallet", "5 USD")),
        (("Pokémon TCG", "100 Coins"), ("Pokemon TCG", "100 coins")),
    ],
)
def test_the_same_good_written_differently_gets_one_key(a, b) -> None:
    assert match_key("x", "Top Up", *a, False) == match_key("y", "Top Up", *b, False)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (("Top Up", "Steam US", "5 USD"), ("Top Up", "Steam EU", "5 USD")),  # region
        (("Top Up", "PUBG Mobile", "60 UC"), ("Top Up", "PUBG Mobile", "600 UC")),  # amount
        (("Top Up", "PUBG Mobile", "60 UC"), ("Gift Cards", "PUBG Mobile", "60 UC")),  # kind
    ],
)
def test_different_goods_get_different_keys(a, b) -> None:
    assert match_key("x", *a, False) != match_key("y", *b, False)


def test_goods_needing_a_server_are_never_matched_across_suppliers() -> None:
    args = ("Top Up", "Genshin Impact", "60 Genesis Crystals", True)
    assert match_key("gamesdrop", *args) != match_key("codegames", *args)
    assert match_key("gamesdrop", *args) == match_key("gamesdrop", *args)
    assert normalise("  Honkai: Star Rail ") == "honkai star rail"


class Breaker(CircuitBreaker):
    def __init__(self) -> None:
        self.now = 0.0
        super().__init__(3, 60.0, clock=lambda: self.now)
        self.alerts: list[tuple[str, int]] = []

        async def alert(name: str, failures: int) -> None:
            self.alerts.append((name, failures))

        self.on_open = alert


async def test_a_supplier_failing_calls_in_a_row_is_skipped_for_the_cooldown_and_alerted_once() -> (
    None
):
    breaker = Breaker()
    down = errors.SupplierConnectionError("refused")
    for _ in range(2):
        await breaker.failure("gamesdrop", down)
    assert not breaker.is_open("gamesdrop")
    await breaker.failure("gamesdrop", down)
    await breaker.failure("gamesdrop", down)  # still open: no second alert
    assert breaker.is_open("gamesdrop") and not breaker.is_open("codegames")
    assert breaker.alerts == [("gamesdrop", 3)]

    breaker.now = 61.0  # cooled off: one order may try again
    assert not breaker.is_open("gamesdrop")
    await breaker.failure("gamesdrop", down)  # the trial failed: open again, told again
    assert breaker.is_open("gamesdrop") and len(breaker.alerts) == 2
    breaker.now = 200.0
    breaker.success("gamesdrop")
    await breaker.failure("gamesdrop", down)
    assert not breaker.is_open("gamesdrop")  # a success starts the count again


def test_refusals_do_not_count_against_a_supplier() -> None:
    refused = errors.OutOfStock(None, 409, "{}")
    assert not CircuitBreaker.counts(refused)
    assert CircuitBreaker.counts(errors.SupplierTimeout("slow"))
    assert CircuitBreaker.counts(errors.ServiceUnavailable(None, 503, "{}"))


class Scripted:
    """A supplier whose catalogue and find-one answers are set by the test."""

    capabilities = frozenset({Capability.CATALOGUE_SYNC, Capability.IDEMPOTENT_CREATE})

    def __init__(self, name: str, short: str) -> None:
        self.name, self.short = name, short
        self.rows: list[CatalogueRow] = []
        self.prices: dict[str, Decimal] = {}
        self.stock: dict[str, bool] = {}
        self.currency = "USD"
        self.asked: list[str] = []

    def offer(self, offer_id: str, product: str, name: str, price: str) -> None:
        self.rows.append(
            CatalogueRow(
                product_id=f"p-{product}",
                product_name=product,
                offer_group_id=offer_id,
                offer_group_name=name,
                price=Decimal(price),
                currency=self.currency,
            )
        )
        self.prices[offer_id] = Decimal(price)

    async def iter_catalogue(self, **_: object):
        for row in self.rows:
            yield row

    async def find_offer(self, offer_id: str) -> OfferDetails:
        self.asked.append(offer_id)
        if offer_id not in self.prices:
            raise errors.OfferNotFound(None, 404, "{}")
        row = next(r for r in self.rows if r.offer_group_id == offer_id)
        return OfferDetails(
            offer_id=offer_id, product_name=row.product_name, offer_name=row.offer_group_name,
            price=self.prices[offer_id], currency=self.currency,
            in_stock=self.stock.get(offer_id, True),
        )  # fmt: skip


@pytest.fixture
async def world(db: Database):
    gd, cg = Scripted("gamesdrop", "g"), Scripted("codegames", "c")
    gd.offer("1", "Steam Wallet", "5 USD", "5.15")
    gd.offer("2", "Steam Wallet", "10 USD", "10.30")
    gd.offer("3", "Roblox", "400 Robux", "5.00")
    cg.offer("71", "Steam Wallet", "$5", "5.25")
    cg.offer("72", "Steam Wallet", "20 USD", "20.00")
    suppliers = Suppliers([gd, cg])
    repo = CatalogueRepository(db)
    catalogue = CatalogueService(suppliers, repo)
    await catalogue.sync_all()
    pricing = PricingService(BOOK, ShopSettingsRepository(db))
    orders = OrderService(suppliers, OrdersRepository(db), catalogue, pricing, None)  # type: ignore[arg-type]
    return gd, cg, orders


async def test_one_product_of_two_suppliers_is_listed_once_with_every_good(world) -> None:
    _gd, _cg, orders = world
    repo = orders.catalogue.repo
    products, total = await repo.products("Gift Cards", 0, 10)
    assert sorted(p.name for p in products) == ["Roblox", "Steam Wallet"] and total == 2
    steam = next(p for p in products if p.name == "Steam Wallet")

    goods = await orders.routing.goods_of_product(steam.supplier, steam.product_id)

    assert [(g.shown.offer_name, g.stars, g.sources) for g in goods] == [
        ("5 USD", BOOK.stars(Decimal("5.15"), "USD"), 2),
        ("10 USD", BOOK.stars(Decimal("10.30"), "USD"), 1),
        ("20 USD", BOOK.stars(Decimal("20.00"), "USD"), 1),
    ]
    assert [p.name for p in await repo.search_products("steam")] == ["Steam Wallet"]


async def test_the_price_comes_from_the_cheapest_source_in_stock_of_a_usable_supplier(
    world, db: Database
) -> None:
    _gd, _cg, orders = world
    routing = orders.routing
    repo = orders.catalogue.repo
    await db.execute(
        "UPDATE offers SET in_stock = 0 WHERE supplier = 'gamesdrop' AND offer_id = '1'"
    )
    good = await routing.good("gamesdrop", "1")
    assert good is not None and good.stars == BOOK.stars(Decimal("5.25"), "USD")
    assert good.shown.supplier == "codegames"

    await db.execute("UPDATE offers SET in_stock = 1 WHERE supplier = 'gamesdrop'")
    await routing.set_mode("gamesdrop", SourceMode.DISABLED, 1)
    good = await routing.good("codegames", "71")
    assert good is not None and good.shown.supplier == "codegames"
    assert good.stars == BOOK.stars(Decimal("5.25"), "USD")
    await routing.set_mode("gamesdrop", SourceMode.ENABLED, 1)
    assert len(await repo.linked_offers("codegames", "71")) == 2


async def test_a_quote_buys_where_it_is_cheapest_now_and_a_preferred_supplier_when_it_costs_no_more(
    world,
) -> None:
    gd, _cg, orders = world
    quote = await orders.quote("codegames", "71")
    assert (quote.offer.supplier, quote.stars) == ("gamesdrop", BOOK.stars(Decimal("5.15"), "USD"))

    gd.prices["1"] = Decimal("6.00")  # GamesDrop rose since the sync
    quote = await orders.quote("gamesdrop", "1")
    assert (quote.offer.supplier, quote.details.price) == ("codegames", Decimal("5.25"))

    gd.prices["1"] = Decimal("5.25")  # the same cost: the preferred one is chosen
    await orders.routing.set_mode("codegames", SourceMode.PREFERRED, 1)
    assert (await orders.quote("gamesdrop", "1")).offer.supplier == "codegames"
    gd.prices["1"] = Decimal("5.00")  # the preferred one is dearer: the customer pays less
    assert (await orders.quote("gamesdrop", "1")).offer.supplier == "gamesdrop"


async def test_pre_checkout_moves_an_unpaid_order_to_a_source_that_still_fits(
    world, db: Database
) -> None:
    gd, cg, orders = world
    await UsersRepository(db).touch(5, "u", "U", "en")
    quote = await orders.quote("gamesdrop", "1")
    order = await orders.open_checkout(5, 5, quote)
    assert order.transaction_id == f"shop-{order.id}-g"
    gd.stock["1"] = False  # sold out at GamesDrop since the invoice
    cg.prices["71"] = Decimal("5.151")  # dearer, but the same Stars: it fits the invoice

    refusal = await orders.pre_checkout(order.id, 5, order.stars, "XTR")
    for task in list(orders._background):
        await task

    assert refusal is None
    moved = await orders.orders.get(order.id)
    assert moved is not None and (moved.supplier, moved.offer_id) == ("codegames", "71")
    assert moved.transaction_id == f"shop-{order.id}-c" and moved.stars == order.stars

    cg.prices["71"] = Decimal("9.00")  # now nobody can sell it for the Stars on the invoice
    assert (await orders.pre_checkout(order.id, 5, order.stars, "XTR")).value == "price_rose"


async def test_admins_review_doubtful_matches_and_links_survive_a_sync(world) -> None:
    _gd, cg, orders = world
    cg.offer("73", "Roblox Gift Card", "400 Robux", "4.90")
    await orders.catalogue.sync_all()
    routing = orders.routing
    [pair] = await routing.doubtful()
    assert {pair.first.product_name, pair.second.product_name} == {"Roblox", "Roblox Gift Card"}

    await routing.link(("codegames", "73"), ("gamesdrop", "3"), 1)
    await orders.catalogue.sync_all()
    assert {o.offer_id for o in await routing.linked("gamesdrop", "3")} == {"3", "73"}
    assert await routing.doubtful() == []
    assert product_key("Gift Cards", "Roblox") != product_key("Gift Cards", "Roblox Gift Card")


async def test_order_ids_at_two_sources_never_collide(db: Database) -> None:
    repo = OrdersRepository(db, "shop")
    await UsersRepository(db).touch(5, "u", "U", "en")
    new = dict(
        user_id=5, chat_id=5, supplier="gamesdrop", offer_id="1", product_id="p",
        product_name="P", offer_name="O", returns_key=True, supplier_price=Decimal("1"),
        supplier_currency="USD", cost_usd=Decimal("1"), stars=100,
    )  # fmt: skip
    a = await repo.create(NewOrder(**new, source_code="g"))
    b = await repo.create(NewOrder(**new))
    assert (a.transaction_id, b.transaction_id) == (f"shop-{a.id}-g", f"shop-{b.id}")
    assert repo.transaction_id(a.id, "c") != a.transaction_id


class WithServers(Scripted):
    capabilities = Scripted.capabilities | {Capability.SERVERS}

    def __init__(self, name: str, short: str, servers: list[str]) -> None:
        super().__init__(name, short)
        self.servers = servers

    def offer(self, offer_id: str, product: str, name: str, price: str) -> None:
        super().offer(offer_id, product, name, price)
        row = self.rows[-1]
        self.rows[-1] = row.model_copy(
            update={"requires_game_user_id": True, "requires_game_server_id": True}
        )

    async def get_servers(self, offer_id: str) -> list[GameServer]:
        return [GameServer(label=server, server_id=server) for server in self.servers]


@pytest.mark.parametrize(
    ("theirs", "linked"), [(["os_usa", "os_euro"], True), (["usa", "euro"], False)]
)
async def test_goods_needing_a_server_link_only_when_both_take_the_same_server_ids(
    db: Database, theirs: list[str], linked: bool
) -> None:
    gd = WithServers("gamesdrop", "g", ["os_usa", "os_euro"])
    cg = WithServers("codegames", "c", theirs)
    gd.offer("1", "Genshin Impact", "60 Genesis Crystals", "0.99")
    cg.offer("9", "Genshin Impact", "60 Genesis Crystals", "0.95")
    suppliers = Suppliers([gd, cg])
    catalogue = CatalogueService(suppliers, CatalogueRepository(db))
    await catalogue.sync_all()
    routing = RoutingService(suppliers, catalogue.repo, ShopSettingsRepository(db), lambda: BOOK)
    assert len(await routing.linked("gamesdrop", "1")) == 1  # never matched automatically

    if linked:
        await routing.link(("gamesdrop", "1"), ("codegames", "9"), 1)
    else:
        with pytest.raises(LinkRefused) as refused:
            await routing.link(("gamesdrop", "1"), ("codegames", "9"), 1)
        assert refused.value.reason == "servers_differ"

    assert len(await routing.linked("gamesdrop", "1")) == (2 if linked else 1)


async def test_a_source_chosen_at_pre_checkout_never_moves_an_order_already_paid(
    world, db: Database
) -> None:
    """The pre-checkout's choice is written after its answer; when the payment got there
    first (and create-order may be on its way) the order keeps the source it is paid at."""
    _gd, _cg, orders = world
    await UsersRepository(db).touch(5, "u", "U", "en")
    order = await orders.open_checkout(5, 5, await orders.quote("gamesdrop", "1"))
    charge = IncomingCharge("ch-1", 5, order.stars, "XTR", f"order:{order.id}", order.id)
    assert (await orders.orders.record_payment(charge, 0.0)).rejection is None
    other = SourceSwitch("codegames", "71", Decimal("5.25"), "USD", Decimal("5.25"), True, "c")

    moved = await orders.orders.switch_source(
        order.id, other, "planned", "late pre-checkout write",
        from_transaction=order.transaction_id, statuses=(OrderStatus.AWAITING_PAYMENT,),
    )  # fmt: skip

    assert moved is None
    paid = await orders.orders.get(order.id)
    assert paid is not None and (paid.supplier, paid.transaction_id) == (
        "gamesdrop",
        order.transaction_id,
    )
    stale = await orders.orders.switch_source(
        order.id, other, "refused", "a second worker",
        from_transaction="shop-999-g", statuses=(OrderStatus.PAID,),
    )  # fmt: skip
    assert stale is None


async def test_pre_checkout_asks_only_the_invoice_source_while_it_still_fits(
    world, db: Database
) -> None:
    """A supplier allowing 100 requests a minute is not asked at every pre-checkout of
    goods another source sells: the invoice's source is asked first, the others only when
    it no longer fits."""
    gd, cg, orders = world
    await UsersRepository(db).touch(5, "u", "U", "en")
    order = await orders.open_checkout(5, 5, await orders.quote("codegames", "71"))
    assert order.supplier == "gamesdrop"
    gd.asked.clear()
    cg.asked.clear()

    assert await orders.pre_checkout(order.id, 5, order.stars, "XTR") is None
    assert (gd.asked, cg.asked) == (["1"], [])

    gd.stock["1"] = False
    cg.prices["71"] = Decimal("5.151")
    assert await orders.pre_checkout(order.id, 5, order.stars, "XTR") is None
    assert (gd.asked, cg.asked) == (["1", "1"], ["71"])
