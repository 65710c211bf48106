"""The whole shop offline: supplier sandboxes + fake Telegram Bot API + the real bot.

Used by the demo (``python -m bot.demo``), the end-to-end tests and the benchmarks::

    offline = OfflineShop(Path("demo.sqlite3"))
    await offline.start()
    alice = offline.telegram.user(1001, "Alice")
    await alice.send("/start")
    ...
    await offline.stop()

The bot really long-polls the fake Bot API over HTTP on 127.0.0.1 and really calls the
sandbox over HTTP; :meth:`OfflineShop.restart_bot` stops it (gracefully or as a crash
would) and starts a new one on the same database.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from pathlib import Path
from typing import Any

from bot.app import Shop, create_shop
from bot.settings import Settings
from sandboxes import SupplierSandbox
from sandboxes.telegram import FakeTelegram
from services.orders import OrderTimings
from services.suppliers.registry import vendor

logger = logging.getLogger(__name__)

BOT_TOKEN = "123456:SANDBOX-bot-token"
ADMIN_ID = 900_001


def fast_timings() -> OrderTimings:
    """Order checks in tenths of a second, for tests and the demo."""
    return OrderTimings(
        first_check=0.2, backoff=1.5, max_check=1.0, payment_grace=5.0, stuck_after=3600.0,
        precheck_budget=2.0, precheck_deadline=3.0, worker_tick=0.1,
    )  # fmt: skip


def create_vendor_sandbox(name: str, **options: Any) -> SupplierSandbox:
    """The sandbox of vendor ``name``: ``create_sandbox(**options)`` of the package its
    ``VendorSpec.sandbox`` names (imported only here, in sandbox mode)."""
    package = importlib.import_module(vendor(name).sandbox)
    sandbox: SupplierSandbox = package.create_sandbox(**options)
    return sandbox


class OfflineShop:
    """Starts and stops the parts; ``settings_overrides`` go into :class:`Settings`.

    ``vendors``: the suppliers whose sandboxes are hosted (each started through its
    ``VendorSpec.sandbox`` package's ``create_sandbox``), ``sandbox_options[name]`` their
    options; ``sandbox_config`` is the first vendor's whole config (its sandbox's own
    config class). ``sandboxes[name]`` is each sandbox; ``sandbox`` the first one's.
    """

    def __init__(
        self,
        database_path: Path | str,
        *,
        vendors: tuple[str, ...] = ("gamesdrop",),
        sandbox_options: dict[str, dict[str, Any]] | None = None,
        sandbox_config: Any = None,
        timings: OrderTimings | None = None,
        settings_overrides: dict[str, Any] | None = None,
        telegram_options: dict[str, Any] | None = None,
        initial_sync: bool = True,
        database_url: str | None = None,
    ) -> None:
        self.database_path = database_path
        #: a ``postgresql://`` database instead of SQLite at ``database_path`` (whose
        #: folder still holds the heartbeat file)
        self.database_url = database_url
        self.vendors = tuple(vendors)
        self.sandboxes: dict[str, SupplierSandbox] = {}
        for index, name in enumerate(self.vendors):
            options = dict((sandbox_options or {}).get(name, {}))
            if index == 0 and sandbox_config is not None:
                options["config"] = sandbox_config
            self.sandboxes[name] = create_vendor_sandbox(name, **options)
        self.sandbox: Any = self.sandboxes[self.vendors[0]] if self.vendors else None
        self.telegram = FakeTelegram(BOT_TOKEN, **(telegram_options or {}))
        self.timings = timings or fast_timings()
        self.settings_overrides = settings_overrides or {}
        self.initial_sync = initial_sync
        self.shop: Shop | None = None
        self._polling: asyncio.Task[None] | None = None
        #: ids of the updates the bot has finished handling (error handlers included)
        self.handled_updates: set[int] = set()
        self._handled = asyncio.Condition()

    def settings_values(self) -> dict[str, Any]:
        """What :meth:`settings` builds :class:`Settings` from, by field name (sections as
        dicts), the overrides applied: the values a bot process gets as environment
        variables from :mod:`sandboxes.cluster`."""
        values: dict[str, Any] = {
            "telegram": {"token": BOT_TOKEN, "api_base": self.telegram.base_url},
            **{
                name: {
                    **sandbox.supplier_settings(),
                    "sync_interval_minutes": 0,
                    "read_timeout": 3.0,
                    "create_order_timeout": 3.0,
                }
                for name, sandbox in self.sandboxes.items()
            },
            "database_path": self.database_path,
            **({"database_url": self.database_url} if self.database_url else {}),
            "sandbox": True,
            "admin_ids": [ADMIN_ID],
            "shop_name": "Game Shop (sandbox)",
            "support_contact": "@game_shop_support",
        }
        for key, value in self.settings_overrides.items():
            if isinstance(value, dict) and isinstance(values.get(key), dict):
                values[key] = {**values[key], **value}
            else:
                values[key] = value
        return values

    def settings(self) -> Settings:
        return Settings(_env_file=None, **self.settings_values())  # type: ignore[call-arg]

    async def start(self) -> None:
        for sandbox in self.sandboxes.values():
            await sandbox.start()
        await self.telegram.start()
        self.telegram.user(ADMIN_ID, "Owner")  # the admin has opened a chat with the bot
        await self.start_bot()

    async def start_bot(self) -> Shop:
        """Build a fresh bot on the same database and start long polling."""
        self.shop = await create_shop(self.settings(), timings=self.timings)
        self._count_handled_updates(self.shop)
        await self.shop.register_commands()
        await self.shop.start_background(initial_sync=self.initial_sync)
        self._polling = asyncio.create_task(self.shop.run_polling(), name="polling")
        return self.shop

    def _count_handled_updates(self, shop: Shop) -> None:
        """Record each update once the dispatcher is done with it (``feed_update`` runs the
        middlewares, the handlers and the error handlers), for :meth:`wait_handled`."""
        feed_update = shop.dispatcher.feed_update

        async def feed_and_record(bot: Any, update: Any, **kwargs: Any) -> Any:
            try:
                return await feed_update(bot, update, **kwargs)
            finally:
                async with self._handled:
                    self.handled_updates.add(update.update_id)
                    self._handled.notify_all()

        shop.dispatcher.feed_update = feed_and_record  # type: ignore[method-assign]

    async def wait_handled(self, since: int, timeout: float = 10.0) -> None:
        """Wait until the bot has finished handling every update pushed after update id
        ``since`` (take it from ``telegram.last_update_id`` before sending): the positive
        signal that lets a test assert that the bot did *not* answer.
        Raises ``TimeoutError``."""
        wanted = set(range(since + 1, self.telegram.last_update_id + 1))
        async with self._handled:
            await asyncio.wait_for(
                self._handled.wait_for(lambda: wanted <= self.handled_updates), timeout
            )

    async def settle(self, rounds: int = 2, timeout: float = 10.0) -> None:
        """Wake the order, refund, delivery and loyalty workers and wait until each has finished
        ``rounds`` more passes: the positive signal that lets a test assert that nothing
        more happens in the background (no second refund, no second message).
        Raises ``TimeoutError``."""
        assert self.shop is not None
        workers = (self.shop.orders, self.shop.refunds, self.shop.outbox, self.shop.loyalty)
        for worker in workers:
            start = worker.passes.count
            for n in range(1, rounds + 1):
                worker.wake()
                await worker.passes.wait_for(start + n, timeout)

    async def stop_bot(self, *, crash: bool = False) -> None:
        """Stop the bot. ``crash=True`` cancels everything mid-flight, as a killed process
        would leave it (the database keeps only what was committed)."""
        shop, polling = self.shop, self._polling
        self.shop, self._polling = None, None
        if shop is None or polling is None:
            return
        in_flight: list[asyncio.Task[object]] = []
        if crash:
            polling.cancel()
            # a killed process takes its half-handled updates with it (aiogram keeps the
            # tasks of updates handled concurrently in this set)
            in_flight = list(shop.dispatcher._handle_update_tasks)
            for task in in_flight:
                task.cancel()
        else:
            try:
                await shop.dispatcher.stop_polling()
            except RuntimeError:  # polling has not begun yet: nothing to drain
                polling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await polling
        await asyncio.gather(*in_flight, return_exceptions=True)
        await shop.close()

    async def restart_bot(self, *, crash: bool = False) -> Shop:
        await self.stop_bot(crash=crash)
        return await self.start_bot()

    async def stop(self) -> None:
        await self.stop_bot()
        await self.telegram.stop()
        for sandbox in self.sandboxes.values():
            await sandbox.stop()
