"""Settings from the environment and ``.env`` (see ``.env.example``).

Nested sections use ``__``: ``TELEGRAM__TOKEN``, ``PRICING__MARKUP``, and one section per
supplier package found under ``services/suppliers/`` (``<VENDOR>__TOKEN``...). Lists and
maps are JSON: ``ADMIN_IDS=[123, 456]``.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, SecretStr, create_model, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.suppliers.base import VendorSettings, VendorSpec
from services.suppliers.registry import discover_vendors


class TelegramSettings(BaseModel):
    token: SecretStr = SecretStr("")
    #: Bot API server: Telegram's, a self-hosted one, or the fake one (demo, tests).
    api_base: str = "https://api.telegram.org"
    #: Use Telegram's test environment (``/bot<token>/test/<method>``).
    test_environment: bool = False
    #: Webhook mode when set (e.g. ``https://shop.example.com/telegram``); else long polling.
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    webhook_host: str = "0.0.0.0"
    webhook_port: int = 8080
    webhook_path: str = "/telegram"


class HealthSettings(BaseModel):
    """``/healthz``, ``/readyz`` and ``/metrics`` (see :mod:`bot.health`). Webhook mode
    serves them on the webhook's port; long polling on ``port`` when it is set."""

    #: Long polling: serve the health and metrics endpoints on this port (unset: none,
    #: and prometheus-client is not even imported).
    port: int | None = Field(default=None, ge=0, le=65535)
    #: Long polling: the address they listen on (``0.0.0.0`` in a container).
    host: str = "127.0.0.1"
    #: Expose Prometheus metrics at ``/metrics`` wherever the health endpoints are served.
    metrics: bool = True
    #: Seconds a readiness check (database, Redis) may take before it counts as failed.
    check_timeout: float = Field(default=2.0, gt=0)
    #: Seconds the database figures of ``/metrics`` (orders by status, outbox depth,
    #: broadcast progress) are reused before they are counted again.
    gauge_seconds: float = Field(default=15.0, ge=0)


class PricingSettings(BaseModel):
    #: 0.15 sells at supplier price + 15 %.
    markup: Decimal = Decimal("0.15")
    #: USD value of one Telegram Star, used to turn USD into Stars.
    star_usd: Decimal = Decimal("0.013")
    #: USD per one unit of each supplier currency (the supplier balance is in USD).
    usd_rates: dict[str, Decimal] = Field(
        default_factory=lambda: {
            "USD": Decimal("1"),
            "EUR": Decimal("1.08"),
            "RUB": Decimal("0.011"),
            "KZT": Decimal("0.0020"),
        }
    )


class OrderSettings(BaseModel):
    #: First order-status check after PROCESSING, seconds; then x backoff up to max.
    first_check_seconds: float = 7.0
    max_check_seconds: float = 300.0
    #: An order still open after this many minutes is flagged to admins.
    stuck_after_minutes: float = 90.0
    #: An order whose create-order outcome is unknown is failed and refunded once the
    #: supplier has said for this many minutes that it has no such order.
    unknown_absent_minutes: float = 30.0
    #: Unpaid invoices expire after this many minutes.
    invoice_ttl_minutes: float = 60.0
    #: Minutes between reconciliations against getStarTransactions (and once at start).
    reconcile_minutes: float = 10.0
    #: Prefix of the supplier transactionId (``<prefix>-<order id>``); unique per shop.
    transaction_prefix: str = "shop"


class RoutingSettings(BaseModel):
    #: A supplier whose calls fail this many times in a row gets no new orders for a while.
    breaker_failures: int = Field(default=5, ge=1)
    #: How long such a supplier is skipped before one order tries it again, minutes.
    breaker_cooldown_minutes: float = Field(default=5.0, gt=0)
    #: Seconds each source's fresh price may take when a good is quoted from several.
    quote_timeout: float = Field(default=3.0, gt=0)


class AlertSettings(BaseModel):
    #: Admins are told when the prepaid supplier balance falls under this (USD).
    balance_threshold_usd: Decimal = Decimal("50")
    #: How often the supplier balance is checked, minutes.
    check_minutes: float = 5.0
    #: Admins are told when the supplier has not answered for this long, minutes.
    unreachable_minutes: float = 5.0
    #: Alerts of one kind are sent at most this often; the rest are counted, minutes.
    min_interval_minutes: float = 10.0


class StockSettings(BaseModel):
    """Own stock of keys (``services.own_stock``): on when ``key`` is set."""

    #: Secret the stored keys are encrypted with (at least 32 characters; losing or
    #: changing it makes the keys held unreadable). Unset: own stock is off.
    key: SecretStr | None = None
    #: Admins are alerted once when a product's free keys fall to this many or fewer.
    low_threshold: int = Field(default=3, ge=0)

    @field_validator("key")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and 0 < len(value.get_secret_value().strip()) < 32:
            raise ValueError("STOCK__KEY must be at least 32 characters (a random secret)")
        return value

    def enabled(self) -> bool:
        """``True`` when ``key`` is set (non-empty)."""
        return self.key is not None and bool(self.key.get_secret_value().strip())


#: a share of the Stars paid, 0 to 100 %
Percent = Annotated[Decimal, Field(ge=0, le=100)]


class LoyaltySettings(BaseModel):
    #: Cashback: percent of the Stars paid credited to the customer (0: none).
    cashback_percent: Percent = Decimal(0)
    #: Cashback percent per catalogue category, overriding the above (JSON map).
    category_cashback_percent: dict[str, Percent] = Field(default_factory=dict)
    #: Referrals: percent of a referred customer's Stars paid credited to the referrer.
    referral_percent: Percent = Decimal(0)
    #: Orders under this many Stars earn nothing.
    min_order_stars: int = Field(default=0, ge=0)
    #: Hours a reward waits before it can be withdrawn or spent (refunds come first).
    hold_hours: float = Field(default=0.0, ge=0)
    #: Withdraw automatically once a balance reaches the smallest Stars pack on sale.
    auto_payout: bool = False


class LeaseSettings(BaseModel):
    """Background jobs shared by several worker processes on one database (issue 20)."""

    #: Seconds a job's lease lasts without renewal: a killed worker's jobs are taken over
    #: by another this long after its last renewal (renewed every third of it).
    ttl_seconds: float = Field(default=15.0, gt=0)


class ShopSettings(BaseSettings):
    """Everything the bot reads at start but the supplier sections (see :data:`Settings`)."""

    model_config = SettingsConfigDict(
        env_file=".env", env_nested_delimiter="__", extra="ignore", env_file_encoding="utf-8"
    )

    telegram: TelegramSettings = TelegramSettings()
    pricing: PricingSettings = PricingSettings()
    orders: OrderSettings = OrderSettings()
    alerts: AlertSettings = AlertSettings()
    stock: StockSettings = StockSettings()
    loyalty: LoyaltySettings = LoyaltySettings()
    routing: RoutingSettings = RoutingSettings()
    leases: LeaseSettings = LeaseSettings()
    health: HealthSettings = HealthSettings()
    admin_ids: list[int] = Field(default_factory=list)
    database_path: Path = Path("data/shop.sqlite3")
    #: ``postgresql://user:password@host:5432/shop`` for several worker processes (or
    #: ``sqlite:///path``); unset: SQLite at :attr:`database_path`
    database_url: SecretStr | None = None

    @property
    def database(self) -> str:
        """What :meth:`storage.db.Database.open` opens: :attr:`database_url`, else the
        SQLite file at :attr:`database_path`."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return str(self.database_path)

    #: Redis shared by several bot processes (``redis://host:6379/0``): conversation state,
    #: per-user event isolation, one flood budget and cache invalidation. Unset: one
    #: process, everything in memory and in the database.
    redis_url: SecretStr | None = None
    #: Run against the embedded supplier sandboxes; every message and invoice says "test".
    sandbox: bool = False
    shop_name: str = "Game Shop"
    support_contact: str = "@support"
    default_language: str = "en"
    #: Per-user updates per second allowed on average, and the burst above it.
    throttle_rate: float = 3.0
    throttle_burst: int = 10
    #: Broadcast messages per second in all (Telegram allows about 30).
    broadcast_rate: float = 25.0
    #: Supplier calls per second during campaigns (the supplier's documented limit or less).
    supplier_rate: float = 25.0
    #: Level of the shop's own loggers (bot, services, storage).
    log_level: str = "INFO"
    #: Level of every other library's loggers (aiosqlite, aiogram, aiohttp, httpx...). Below
    #: WARNING they log SQL values and updates: keys, charge ids, player ids.
    log_level_libraries: str = "WARNING"
    #: The event loop ``python -m bot`` runs on: ``asyncio`` (the standard library's) or
    #: ``uvloop`` (installed with the shop, except on Windows): about 8 % less CPU per
    #: catalogue press and 1.4-4 MiB more memory in the benchmark (``bench/README.md``).
    event_loop: Literal["asyncio", "uvloop"] = "asyncio"

    def vendor_sections(self) -> dict[str, VendorSettings]:
        """Every supplier section by vendor name, enabled or not."""
        return {
            name: section
            for name in type(self).model_fields
            if isinstance(section := getattr(self, name), VendorSettings)
        }

    def enabled_vendors(self) -> list[str]:
        """Names of the vendors whose section is enabled (credentials set), in order."""
        return [name for name, section in self.vendor_sections().items() if section.enabled()]


def settings_class(vendors: tuple[VendorSpec, ...]) -> type[ShopSettings]:
    """:class:`ShopSettings` with one section per vendor: ``<name>: <spec.settings>``, so
    ``<NAME>__TOKEN`` and the rest of a vendor's fields are read from the environment."""
    sections: dict[str, Any] = {spec.name: (spec.settings, spec.settings()) for spec in vendors}
    model: type[ShopSettings] = create_model(  # type: ignore[call-overload]
        "Settings", __base__=ShopSettings, __module__=__name__, **sections
    )
    model.__doc__ = "Everything the bot reads at start, with a section per discovered supplier."
    return model


#: The settings class of this installation: the common sections plus one per supplier
#: package discovered under ``services/suppliers/``.
Settings = settings_class(discover_vendors())
