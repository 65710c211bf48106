"""Compact offer references in callback data (< 64 bytes, UUID ids included), vendor
discovery and the per-vendor settings sections."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bot.callbacks import BuyOffer, OfferView, ProductView, StarsPack
from bot.settings import Settings
from services.suppliers.registry import Suppliers, UnknownSupplier, discover_vendors

UUID = "3f2c1a9e-7b4d-4c1e-9a2b-1d2e3f4a5b6c"


def test_the_longest_callback_with_a_uuid_stays_under_64_bytes() -> None:
    datas = [
        BuyOffer(s="gg", offer_id=UUID, stars=9_999_999).pack(),
        OfferView(s="gg", offer_id=UUID).pack(),
        ProductView(s="gg", product_id=UUID, back_page=100_000).pack(),
        StarsPack(s="gg", offer_id=UUID).pack(),
    ]
    assert all(len(data.encode()) < 64 for data in datas), datas
    assert OfferView.unpack(f"ofr:g:{UUID}") == OfferView(s="g", offer_id=UUID)


@pytest.mark.parametrize("data", ["ofr:g:", "ofr:g:1;drop", "ofr:toolong:1", "ofr:G:1"])
def test_malformed_offer_references_do_not_unpack(data: str) -> None:
    with pytest.raises((ValueError, ValidationError)):
        OfferView.unpack(data)


def test_an_unknown_short_code_is_a_lookup_error_not_a_crash() -> None:
    class Fake:
        name, short, capabilities = "gamesdrop", "g", frozenset()

    suppliers = Suppliers([Fake()])  # type: ignore[list-item]
    assert suppliers.resolve("g", "999") == ("gamesdrop", "999")
    with pytest.raises(UnknownSupplier):
        suppliers.resolve("zz", "999")


def test_vendors_are_discovered_and_each_gets_a_settings_section(monkeypatch) -> None:
    specs = discover_vendors()
    assert "gamesdrop" in [spec.name for spec in specs]
    monkeypatch.setenv("GAMESDROP__TOKEN", "t-123")
    monkeypatch.setenv("GAMESDROP__BASE_URL", "https://gd.example")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    for spec in specs:
        assert isinstance(getattr(settings, spec.name), spec.settings)
    assert settings.gamesdrop.base_url == "https://gd.example"  # type: ignore[attr-defined]
    assert "gamesdrop" in settings.enabled_vendors()


def test_every_delivered_key_gets_its_own_code_block() -> None:
    from dataclasses import replace

    from bot.texts import keys_html
    from storage.orders import Order

    order = Order.__new__(Order)
    for name in Order.__dataclass_fields__:
        object.__setattr__(order, name, None)
    order = replace(order, delivered_key="AAAA<1>\nBBBB-2")
    assert f"<code>{keys_html(order)}</code>" == "<code>AAAA&lt;1&gt;</code>\n<code>BBBB-2</code>"
