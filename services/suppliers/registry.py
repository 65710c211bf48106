"""Vendor discovery and the registry of the suppliers a shop runs with.

:func:`discover_vendors` finds every package under ``services/suppliers/`` that exports
``VENDOR = VendorSpec(...)`` without naming any; :class:`Suppliers` holds the clients the
composition root built (by ``name`` and by ``short`` code) and turns compact offer
references (``"<short>:<offer id>"`` in callback data) back into offers.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import Iterable, Iterator
from functools import cache

import services.suppliers as suppliers_package
from services.suppliers.base import Capability, Supplier, VendorSpec
from services.suppliers.models import OfferRef

logger = logging.getLogger(__name__)


#: sources that are the shop itself rather than a vendor (no package here): name -> short
#: code in callback data. Vendors may use neither.
SHOP_SOURCES: dict[str, str] = {"own_stock": "o"}


@cache
def discover_vendors() -> tuple[VendorSpec, ...]:
    """Every ``VendorSpec`` exported as ``VENDOR`` by a package under
    ``services/suppliers/``, sorted by name. Raises ``ValueError`` when two vendors share a
    name or a short code (callback data could not tell them apart)."""
    found: list[VendorSpec] = []
    for module in pkgutil.iter_modules(suppliers_package.__path__):
        if not module.ispkg:
            continue
        package = importlib.import_module(f"{suppliers_package.__name__}.{module.name}")
        spec = getattr(package, "VENDOR", None)
        if isinstance(spec, VendorSpec):
            found.append(spec)
    found.sort(key=lambda spec: spec.name)
    for attribute, own in (("name", list(SHOP_SOURCES)), ("short", list(SHOP_SOURCES.values()))):
        values = [getattr(spec, attribute) for spec in found] + own
        if len(values) != len(set(values)):
            raise ValueError(f"two vendors share a {attribute}: {values}")
    return tuple(found)


def vendor(name: str) -> VendorSpec:
    """The discovered vendor called ``name``; ``KeyError`` when there is none."""
    for spec in discover_vendors():
        if spec.name == name:
            return spec
    raise KeyError(name)


def short_code(name: str) -> str:
    """The callback-data code of vendor ``name`` (its ``VendorSpec.short``) or of one of
    the shop's own :data:`SHOP_SOURCES`; ``KeyError`` for a vendor not discovered."""
    if name in SHOP_SOURCES:
        return SHOP_SOURCES[name]
    return vendor(name).short


class UnknownSupplier(LookupError):
    """An offer reference names no supplier this shop runs (unknown short code or name)."""


class Suppliers:
    """The suppliers the shop runs with, by ``name`` (stored with offers and orders) and by
    ``short`` code (callback data). Iterates in the order given."""

    def __init__(self, suppliers: Iterable[Supplier]) -> None:
        self._by_name: dict[str, Supplier] = {}
        self._by_short: dict[str, Supplier] = {}
        for supplier in suppliers:
            self._by_name[supplier.name] = supplier
            self._by_short[supplier.short] = supplier

    def __iter__(self) -> Iterator[Supplier]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    @property
    def names(self) -> list[str]:
        return list(self._by_name)

    def get(self, name: str) -> Supplier:
        """The supplier called ``name``; raises :class:`UnknownSupplier`."""
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownSupplier(f"no supplier {name!r} in this shop") from None

    def by_short(self, short: str) -> Supplier:
        """The supplier whose callback code is ``short``; raises :class:`UnknownSupplier`."""
        try:
            return self._by_short[short]
        except KeyError:
            raise UnknownSupplier(f"no supplier with code {short!r} in this shop") from None

    def having(self, capability: Capability) -> list[Supplier]:
        """The suppliers that can do ``capability``, in order."""
        return [s for s in self._by_name.values() if capability in s.capabilities]

    def can(self, name: str, capability: Capability) -> bool:
        """Whether supplier ``name`` is here and can do ``capability``."""
        supplier = self._by_name.get(name)
        return supplier is not None and capability in supplier.capabilities

    def short_of(self, name: str) -> str:
        return self.get(name).short

    def ref(self, offer: OfferRef) -> tuple[str, str]:
        """``(short, offer id)`` of an offer for callback data."""
        return self.get(offer.supplier).short, offer.offer_id

    def resolve(self, short: str, offer_id: str) -> OfferRef:
        """The offer a callback's ``(short, offer id)`` names; :class:`UnknownSupplier` for
        an unknown short code."""
        return OfferRef(self.by_short(short).name, offer_id)
