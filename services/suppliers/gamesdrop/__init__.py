"""GamesDrop: client, settings section and the ``VENDOR`` spec the shop discovers."""

from __future__ import annotations

from typing import Any

import httpx

from services.suppliers.base import VendorSettings, VendorSpec
from services.suppliers.gamesdrop.client import GamesDropClient, Timeouts
from services.suppliers.gamesdrop.settings import GamesDropSettings


def build(section: VendorSettings, http: httpx.AsyncClient) -> GamesDropClient:
    """The client for a ``gamesdrop`` settings section over the shop's shared ``http``."""
    assert isinstance(section, GamesDropSettings)
    return GamesDropClient(
        http,
        section.token,
        base_url=section.base_url,
        user_info_url=section.user_info_url,
        timeouts=Timeouts(read=section.read_timeout, create_order=section.create_order_timeout),
        sync_concurrency=section.sync_concurrency,
    )


VENDOR = VendorSpec(
    name="gamesdrop",
    short="g",
    settings=GamesDropSettings,
    build=build,
    sandbox="sandboxes.gamesdrop",
)

__all__: list[Any] = ["VENDOR", "GamesDropClient", "GamesDropSettings"]
