"""CodeGames (``codegames-api.txt``): find-one, create-order, order-status and keys.

The vendor has no catalogue sync: the shop sells the offers listed in
``CODEGAMES__OFFER_IDS`` and refreshes each by find-one every ``sync_interval_minutes``.
Enabled by ``CODEGAMES__TOKEN``.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import httpx
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from services.suppliers.base import VendorSettings, VendorSpec
from services.suppliers.codegames.client import (
    DEFAULT_BASE_URL,
    RECHECK_INTERVAL_SECONDS,
    RECHECK_LIMIT,
    CodeGamesClient,
    KeysNotReturned,
    RetryPolicy,
    Timeouts,
)


class CodeGamesSettings(VendorSettings):
    """The ``CODEGAMES__...`` section.

    ``token``: the shop token (``Authorization``); ``base_url``: the API host;
    ``read_timeout`` / ``create_order_timeout``: seconds; ``offer_ids``: the catalogue
    the owner sells, CodeGames offer ids as decimal text (JSON list, e.g.
    ``CODEGAMES__OFFER_IDS='["2061", "2062"]'``, or ``2061,2062``); ``sync_interval_minutes``:
    minutes between find-one refreshes of those offers.
    """

    token: SecretStr = SecretStr("")
    base_url: str = DEFAULT_BASE_URL
    read_timeout: float = Field(default=8.0, gt=0)
    create_order_timeout: float = Field(default=25.0, gt=0)
    # NoDecode: the environment's "2061,2062" reaches the validator as text instead of
    # being read as JSON first (which refuses it)
    offer_ids: Annotated[list[str], NoDecode] = Field(default_factory=list)
    sync_interval_minutes: float = Field(default=30.0, ge=0)

    @field_validator("offer_ids", mode="before")
    @classmethod
    def _offer_id_list(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().startswith("["):
            value = json.loads(value)  # the JSON list form
        elif isinstance(value, str):
            value = value.replace(";", ",").split(",")
        if isinstance(value, list | tuple):
            ids: dict[str, None] = {}  # ordered, and a repeat costs no search
            for item in value:
                text = str(item).strip()
                if not text:
                    continue
                if not text.isdigit():
                    raise ValueError(f"CodeGames offer ids are numbers, got {text!r}")
                ids[text] = None
            return list(ids)
        return value

    def enabled(self) -> bool:
        """CodeGames takes part when its token is set."""
        return bool(self.token.get_secret_value().strip())


def build(section: VendorSettings, http: httpx.AsyncClient) -> CodeGamesClient:
    """A :class:`CodeGamesClient` for ``section`` (a :class:`CodeGamesSettings`) over ``http``."""
    if not isinstance(section, CodeGamesSettings):
        raise TypeError("CodeGames needs a CodeGamesSettings section")
    return CodeGamesClient(
        http,
        section.token,
        base_url=section.base_url,
        timeouts=Timeouts(read=section.read_timeout, create_order=section.create_order_timeout),
    )


VENDOR = VendorSpec(
    name="codegames",
    short="c",
    settings=CodeGamesSettings,
    build=build,
    sandbox="sandboxes.codegames",
)

__all__ = [
    "RECHECK_INTERVAL_SECONDS",
    "RECHECK_LIMIT",
    "VENDOR",
    "CodeGamesClient",
    "CodeGamesSettings",
    "KeysNotReturned",
    "RetryPolicy",
    "Timeouts",
    "build",
]
