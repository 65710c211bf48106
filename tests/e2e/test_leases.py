"""Two shops on one database (two worker processes' worth, issue 20): the first takes
every background job at start without waiting, the second stands by, and takes them all
as soon as the first stops; a key paid for meanwhile still reaches the customer once."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.app import Shop, create_shop
from bot.offline import OfflineShop
from sandboxes.gamesdrop import SandboxConfig
from sandboxes.gamesdrop.catalogue import TEST_OFFER_ID
from tests.e2e.journeys import reach_invoice

JOBS = {
    "delivery outbox", "order worker", "refund worker", "loyalty worker", "payments",
    "broadcasts", "campaigns", "supplier watch gamesdrop",
}  # fmt: skip


async def _holding(shop: Shop, jobs: set[str], timeout: float = 3.0) -> None:
    assert shop.leases is not None
    async with asyncio.timeout(timeout):  # the lease services' own state: poll it
        while True:
            if jobs <= shop.leases.held:
                return
            await asyncio.sleep(0.01)


async def test_a_second_shop_stands_by_and_takes_every_job_when_the_first_stops(
    tmp_path: Path,
) -> None:
    offline = OfflineShop(
        tmp_path / "shop.sqlite3",
        sandbox_config=SandboxConfig(topup_seconds=0.2),
        settings_overrides={"leases": {"ttl_seconds": 0.6}},
    )
    await offline.start()
    second: Shop | None = None
    try:
        assert offline.shop is not None
        await _holding(offline.shop, JOBS, timeout=1.0)  # at once: nothing to wait out
        second = await create_shop(offline.settings(), timings=offline.timings)
        await second.start_background(initial_sync=False)
        await asyncio.sleep(0.6)  # several claims: the first shop holds every job
        assert second.leases is not None and second.leases.held == set()

        await offline.stop_bot()  # a clean stop releases the jobs
        await _holding(second, JOBS, timeout=2.0)

        # the second shop's workers now deliver what the first one's customers paid for
        await offline.start_bot()  # answers updates; its background jobs stand by
        ann = offline.telegram.user(1201, "Ann")
        await reach_invoice(offline, ann, TEST_OFFER_ID)
        since = offline.telegram.last_update_id
        paid, error = await ann.pay()
        assert paid, error
        await offline.wait_handled(since)  # the payment is recorded, the key queued
        # The worker that queued the key wakes only its own outbox, which stands by: the
        # outbox running in the second shop finds it at its next idle pass (30 s). Until
        # wake-ups cross processes (Redis, issue 20), the test wakes it as one would.
        second.outbox.wake()
        await ann.wait_for_text("Your key", timeout=10)
        assert offline.shop is not None and offline.shop.leases is not None
        assert offline.shop.leases.held == set()
        assert sum("Your key" in text for text in ann.texts()) == 1
    finally:
        if second is not None:
            await second.close()
        await offline.stop()
