"""The ``gamesdrop`` settings section (``GAMESDROP__TOKEN``, ``GAMESDROP__BASE_URL``...)."""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field, SecretStr

from services.suppliers.base import VendorSettings
from services.suppliers.gamesdrop.client import DEFAULT_BASE_URL, DEFAULT_USER_INFO_URL


class GamesDropSettings(VendorSettings):
    """GamesDrop takes part in the shop when ``GAMESDROP__TOKEN`` is set."""

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

    def enabled(self) -> bool:
        return bool(self.token.get_secret_value())
