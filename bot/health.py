"""``/healthz``, ``/readyz`` and ``/metrics`` of a running worker (aiohttp routes).

- ``/healthz`` (liveness): 200 as long as the event loop answers a request at all. Both
  bodies name the worker's ``pid`` (which of ``--workers`` answered).
- ``/readyz`` (readiness): the database answers ``SELECT 1`` through the shop's
  :class:`~storage.db.Database`, and Redis answers ``PING`` when ``REDIS_URL`` is set, each
  within ``HEALTH__CHECK_TIMEOUT`` seconds: 200, else 503. The suppliers are reported from
  what the shop already knows (circuit breaker, balance watch), never with a call per
  probe, and do not make the worker unready: every worker shares the same suppliers, so
  taking them all out of the load balancer would only stop customers from browsing and
  from being told that a supplier is away.
- ``/metrics``: Prometheus text format (:mod:`bot.metrics`), when metrics are on.

Webhook mode adds them to the webhook's aiohttp app; long polling serves them on
``HEALTH__HOST``:``HEALTH__PORT`` when that is set (:func:`serve`). The Docker health check
(``python -m bot.healthcheck --url http://127.0.0.1:8080/readyz``) reads ``/readyz``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from bot.app import Shop

logger = logging.getLogger(__name__)


class HealthEndpoints:
    """The three routes for ``shop``; :meth:`register` adds them to an app."""

    def __init__(self, shop: Shop) -> None:
        self.shop = shop
        self.timeout = shop.settings.health.check_timeout

    def register(self, app: web.Application) -> None:
        """Add ``GET /healthz``, ``/readyz`` and (metrics on) ``/metrics`` to ``app``."""
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/readyz", self.readyz)
        if self.shop.metrics is not None:
            app.router.add_get("/metrics", self.metrics)

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "pid": os.getpid()})

    async def readyz(self, request: web.Request) -> web.Response:
        checks = await self.readiness()
        ready = all(check["ok"] for name, check in checks.items() if name != "suppliers")
        body = {"status": "ready" if ready else "unready", "pid": os.getpid(), "checks": checks}
        return web.json_response(body, status=200 if ready else 503)

    async def metrics(self, request: web.Request) -> web.Response:
        assert self.shop.metrics is not None
        payload, content_type = await self.shop.metrics.exposition()
        response = web.Response(body=payload)
        response.headers["Content-Type"] = content_type
        return response

    async def readiness(self) -> dict[str, Any]:
        """``{"database": {...}, "redis": {...}?, "suppliers": {...}}``; each check has
        ``ok`` and, when it failed, ``error``; ``ms`` is how long it took."""
        checks: dict[str, Any] = {"database": await self._check("database", self._database)}
        if self.shop.shared is not None:
            checks["redis"] = await self._check("redis", self._redis_ping)
        checks["suppliers"] = self.shop.supplier_states()
        return checks

    async def _check(self, name: str, probe: Any) -> dict[str, Any]:
        start = time.perf_counter()
        try:
            await asyncio.wait_for(probe(), self.timeout)
        except TimeoutError:
            error = f"no answer within {self.timeout:g}s"
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        else:
            return {"ok": True, "ms": round((time.perf_counter() - start) * 1000, 1)}
        logger.warning("readiness: %s check failed: %s", name, error)
        return {"ok": False, "error": error}

    async def _database(self) -> None:
        if await self.shop.db.fetchval("SELECT 1") != 1:
            raise RuntimeError("SELECT 1 did not answer 1")

    async def _redis_ping(self) -> None:
        assert self.shop.shared is not None
        if not await self.shop.shared.client.ping():
            raise RuntimeError("PING did not answer PONG")


class HealthServerError(Exception):
    """The health server cannot listen (``HEALTH__HOST``/``HEALTH__PORT``), in one line."""


async def serve(shop: Shop, host: str, port: int) -> web.AppRunner:
    """Long polling: serve the health routes on ``host``:``port``; the caller cleans the
    returned runner up. Raises :class:`HealthServerError` when the port is taken."""
    app = web.Application()
    HealthEndpoints(shop).register(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        raise HealthServerError(f"HEALTH__HOST/HEALTH__PORT {host}:{port}: {exc}") from exc
    logger.info("health and metrics on http://%s:%s (/healthz /readyz /metrics)", host, port)
    return runner
