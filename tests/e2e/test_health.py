"""What an orchestrator and Prometheus read from a running worker: ``/healthz``,
``/readyz`` (503 once the database stops answering) and ``/metrics`` after a real
purchase through the fake Bot API and the supplier sandbox."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bot.app import create_shop
from bot.health import serve
from bot.offline import OfflineShop
from sandboxes.gamesdrop import TEST_OFFER_ID
from sandboxes.serving import free_port
from tests.e2e.journeys import reach_invoice
from tests.servers.redis import RedisServer

ROOT = Path(__file__).resolve().parents[2]


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """``{(sample name, labels): value}`` of a Prometheus text exposition."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(
    found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


async def test_readyz_turns_503_when_the_database_stops_answering(tmp_path: Path) -> None:
    offline = OfflineShop(tmp_path / "shop.sqlite3")
    port = free_port()
    offline.settings_overrides = {"health": {"port": port, "check_timeout": 1.0}}
    shop = await create_shop(offline.settings(), timings=offline.timings)
    runner = await serve(shop, "127.0.0.1", port)
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as client:
            ready = await client.get(f"{base}/readyz")
            assert ready.status_code == 200, ready.text
            body = ready.json()
            assert body["status"] == "ready" and body["checks"]["database"]["ok"] is True
            assert set(body["checks"]["suppliers"]) == set(offline.vendors)
            assert "redis" not in body["checks"]  # REDIS_URL unset: nothing to ping

            await shop.db.close()

            unready = await client.get(f"{base}/readyz")
            assert unready.status_code == 503, unready.text
            database = unready.json()["checks"]["database"]
            assert database["ok"] is False and database["error"]
            alive = await client.get(f"{base}/healthz")
            assert alive.status_code == 200 and alive.json()["status"] == "ok"
    finally:
        await runner.cleanup()
        await shop.close()


async def test_readyz_pings_redis_when_redis_url_is_set(tmp_path: Path) -> None:
    """A real redis-server on 127.0.0.1 of its own: ready while it answers, 503 once it is
    gone."""
    redis = await asyncio.to_thread(RedisServer().start)
    offline = OfflineShop(tmp_path / "shop.sqlite3")
    port = free_port()
    offline.settings_overrides = {
        "health": {"port": port, "check_timeout": 1.0}, "redis_url": redis.url,
    }  # fmt: skip
    shop = await create_shop(offline.settings(), timings=offline.timings)
    runner = await serve(shop, "127.0.0.1", port)
    try:
        async with httpx.AsyncClient() as client:
            ready = await client.get(f"http://127.0.0.1:{port}/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json()["checks"]["redis"]["ok"] is True
            await asyncio.to_thread(redis.stop)
            unready = await client.get(f"http://127.0.0.1:{port}/readyz")
            assert unready.status_code == 503, unready.text
            checks = unready.json()["checks"]
            assert checks["redis"]["ok"] is False and checks["database"]["ok"] is True
    finally:
        await asyncio.to_thread(redis.stop)
        await runner.cleanup()
        await shop.close()


async def test_metrics_count_a_purchase_its_supplier_call_and_a_flood_wait(
    tmp_path: Path,
) -> None:
    port = free_port()
    offline = OfflineShop(
        tmp_path / "shop.sqlite3", settings_overrides={"health": {"port": port, "gauge_seconds": 0}}
    )
    await offline.start()
    supplier = offline.vendors[0]
    try:
        liv = offline.telegram.user(5301, "Liv")
        await reach_invoice(offline, liv, TEST_OFFER_ID)
        offline.telegram.flood_chat(liv.id, sends=1, retry_after=1)
        await liv.pay()
        await liv.wait_for_text("Your key", timeout=15)
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{port}/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        found = samples(response.text)
    finally:
        await offline.stop()
    for kind in ("message", "callback_query", "pre_checkout_query"):
        assert value(found, "shop_updates_total", kind=kind, outcome="ok") >= 1, kind
        assert value(found, "shop_update_seconds_count", kind=kind) >= 1, kind
    assert value(found, "shop_orders", status="completed") == 1
    assert value(found, "shop_outbox_pending", outbox="deliveries") == 0
    assert value(found, "shop_outbox_pending", outbox="refunds") == 0
    create = {"supplier": supplier, "endpoint": "create_order"}
    assert value(found, "shop_supplier_calls_total", **create, outcome="ok") == 1
    assert value(found, "shop_supplier_call_seconds_count", **create) == 1
    assert value(found, "shop_telegram_flood_waits_total", method="sendMessage") == 1
    assert value(found, "shop_telegram_flood_wait_seconds_total", method="sendMessage") == 1
    assert value(found, "shop_supplier_up", supplier=supplier) == 1


def test_the_default_polling_shop_never_imports_prometheus_client(tmp_path: Path) -> None:
    """The embedded default (long polling, no HEALTH__PORT) stays as lean as it was."""
    code = (
        "import asyncio, sys\n"
        "from bot.app import create_shop\n"
        "from bot.offline import OfflineShop\n"
        "async def main():\n"
        f"    offline = OfflineShop({str(tmp_path / 'shop.sqlite3')!r})\n"
        "    shop = await create_shop(offline.settings())\n"
        "    print(shop.metrics, 'prometheus_client' in sys.modules)\n"
        "    await shop.close()\n"
        "asyncio.run(main())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["None", "False"]


async def test_the_docker_health_check_reads_readyz(tmp_path: Path) -> None:
    offline = OfflineShop(tmp_path / "shop.sqlite3")
    port = free_port()
    offline.settings_overrides = {"health": {"port": port}}
    shop = await create_shop(offline.settings(), timings=offline.timings)
    runner = await serve(shop, "127.0.0.1", port)
    probe = (sys.executable, "-m", "bot.healthcheck", "--url", f"http://127.0.0.1:{port}/readyz")
    try:
        ok = await asyncio.create_subprocess_exec(
            *probe, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await ok.communicate()
        assert ok.returncode == 0, err.decode()
        assert "ready" in out.decode()
        await shop.db.close()
        failing = await asyncio.create_subprocess_exec(
            *probe, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        _, err = await failing.communicate()
        assert failing.returncode != 0
        assert "503" in err.decode() and "database" in err.decode()
    finally:
        await runner.cleanup()
        await shop.close()
