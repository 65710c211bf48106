"""Sandboxes: twins of the suppliers' APIs and a fake Telegram Bot API, written field by
field from the vendor documents. They are products (the offline demo, trying the shop
without accounts, the end-to-end tests), not runtime services: the shop never imports
them outside ``--sandbox`` mode. Each runs alone too, e.g. ``python -m sandboxes.gamesdrop``.
"""

from __future__ import annotations

from typing import Any, Protocol


class SupplierSandbox(Protocol):
    """What every supplier sandbox package offers through ``create_sandbox(**options)``
    (options: ``offers`` for a catalogue of that size, and the sandbox's own config).
    ``vendor`` is the vendor's ``VendorSpec.name``."""

    vendor: str

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on ``host:port`` (0: any free port); returns the base URL."""
        ...

    async def stop(self) -> None: ...

    def supplier_settings(self) -> dict[str, Any]:
        """The vendor's settings section that points the shop at this sandbox
        (credentials it accepts, base URLs)."""
        ...
