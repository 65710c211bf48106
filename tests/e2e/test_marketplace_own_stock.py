"""Own stock to the marketplace through the real bot, with the real own stock (needs
branches seller and stock merged): moved keys leave own stock in the same step."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from bot.offline import ADMIN_ID, OfflineShop
from services.own_stock import UploadTarget, read_lines
from tests.e2e.test_marketplace import _desk, _open, _press, _send


async def test_keys_moved_from_real_own_stock_are_never_sold_in_the_shop(tmp_path: Path) -> None:
    shop = OfflineShop(
        tmp_path / "shop.sqlite3",
        vendors=("gaming_goods",),
        settings_overrides={
            "throttle_rate": 100.0, "throttle_burst": 100, "stock": {"key": "k" * 40},
        },
    )  # fmt: skip
    await shop.start()
    try:
        assert shop.shop is not None and shop.shop.own_stock is not None
        stock = shop.shop.own_stock
        report = await stock.upload(
            UploadTarget("p-hades", "Hades", "Steam Key", "Game Keys"),
            read_lines("HD-1\nHD-2\nHD-3"), Decimal("3.00"), "EUR", by=ADMIN_ID,
        )  # fmt: skip
        assert report.added == 3
        admin, start = await _open(shop)
        await _press(shop, admin, "New listing")
        await _send(shop, admin, "Hades Steam Key")
        await _send(shop, admin, "14.99")
        await _press(shop, admin, "Automatically")
        await _send(shop, admin, "HD-0")
        await admin.wait_for_text("The listing is created", since=start)
        await _press(shop, admin, "Upload codes")
        await _press(shop, admin, "From own stock")
        await _press(shop, admin, "Hades — Steam Key (3)")
        await _send(shop, admin, "2")
        await admin.wait_for_text("Keys moved from own stock: 2", since=start)

        [listing] = [x for x in _desk(shop).listings.values() if x.title == "Hades Steam Key"]
        assert sorted(listing.codes) == ["HD-0", "HD-1", "HD-2"]
        [product] = await stock.products()
        assert (product.available, product.withdrawn) == (1, 2)
    finally:
        await shop.stop()
