"""Settings from the environment and ``.env`` (see ``.env.example``).

Nested sections use ``__``: ``TELEGRAM__TOKEN``, ``GAMESDROP__TOKEN``,
``PRICING__MARKUP``. Lists and maps are JSON: ``ADMIN_IDS=[123, 456]``.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.suppliers.gamesdrop.client import DEFAULT_BASE_URL, DEFAULT_USER_INFO_URL


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


class GamesDropSettings(BaseModel):
    token: SecretStr = SecretStr("")
    base_url: str = DEFAULT_BASE_URL
    user_info_url: str = DEFAULT_USER_INFO_URL
    read_timeout: float = 8.0
    create_order_timeout: float = 25.0
    sync_page_size: int = 1000
    sync_concurrency: int = 4
    #: Minutes between scheduled catalogue syncs (0: only at start).
    sync_interval_minutes: int = 60
    #: A sync that would shrink the catalogue by more than this share (0.2 = 20 %) is held
    #: until an admin confirms it (the stored catalogue keeps selling meanwhile).
    sync_max_shrink: Decimal = Field(default=Decimal("0.2"), ge=0, le=1)


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


class AlertSettings(BaseModel):
    #: Admins are told when the prepaid supplier balance falls under this (USD).
    balance_threshold_usd: Decimal = Decimal("50")
    #: How often the supplier balance is checked, minutes.
    check_minutes: float = 5.0
    #: Admins are told when the supplier has not answered for this long, minutes.
    unreachable_minutes: float = 5.0
    #: Alerts of one kind are sent at most this often; the rest are counted, minutes.
    min_interval_minutes: float = 10.0


class Settings(BaseSettings):
    """Everything the bot reads at start."""

    model_config = SettingsConfigDict(
        env_file=".env", env_nested_delimiter="__", extra="ignore", env_file_encoding="utf-8"
    )

    telegram: TelegramSettings = TelegramSettings()
    gamesdrop: GamesDropSettings = GamesDropSettings()
    pricing: PricingSettings = PricingSettings()
    orders: OrderSettings = OrderSettings()
    alerts: AlertSettings = AlertSettings()
    admin_ids: list[int] = Field(default_factory=list)
    database_path: Path = Path("data/shop.sqlite3")
    #: Run against the embedded GamesDrop sandbox; every message and invoice says "test".
    sandbox: bool = False
    shop_name: str = "Game Shop"
    support_contact: str = "@support"
    default_language: str = "en"
    #: Per-user updates per second allowed on average, and the burst above it.
    throttle_rate: float = 3.0
    throttle_burst: int = 10
    #: Broadcast messages per second in all (Telegram allows about 30).
    broadcast_rate: float = 25.0
    #: Supplier calls per second during campaigns (GamesDrop documents 30).
    supplier_rate: float = 25.0
    #: Level of the shop's own loggers (bot, services, storage).
    log_level: str = "INFO"
    #: Level of every other library's loggers (aiosqlite, aiogram, aiohttp, httpx...). Below
    #: WARNING they log SQL values and updates: keys, charge ids, player ids.
    log_level_libraries: str = "WARNING"
