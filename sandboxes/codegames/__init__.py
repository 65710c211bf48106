"""CodeGames sandbox: a local twin of the CodeGames API hub for demos, tests and benchmarks.

``create_sandbox(**options)`` builds one (options are :class:`SandboxConfig` fields, e.g.
``offers=5000``, ``legacy_envelope=True``, ``full_status=True``); run it alone with
``python -m sandboxes.codegames --port 8082 [--offers N]``.
"""

from __future__ import annotations

from typing import Any

from sandboxes.codegames.catalogue import (
    KEY_LATER_OFFER_ID,
    KEY_LIST_OFFER_ID,
    KEY_NOW_OFFER_ID,
    TOP_UP_OFFER_ID,
    SandboxOffer,
    generate_catalogue,
)
from sandboxes.codegames.server import (
    DEFAULT_TOKEN,
    KEYS_REFUSED_CODE,
    CodeGamesSandbox,
    Faults,
    SandboxConfig,
)


def create_sandbox(**options: Any) -> CodeGamesSandbox:
    """A :class:`CodeGamesSandbox` (a :class:`sandboxes.SupplierSandbox`, ``vendor =
    "codegames"``) configured by :class:`SandboxConfig` fields; ``token`` is accepted as
    a shorthand for ``tokens={token}``. Call ``await sandbox.start()`` to serve it."""
    token = options.pop("token", None)
    if token is not None:
        options["tokens"] = {token}
    return CodeGamesSandbox(SandboxConfig(**options))


__all__ = [
    "DEFAULT_TOKEN",
    "KEYS_REFUSED_CODE",
    "KEY_LATER_OFFER_ID",
    "KEY_LIST_OFFER_ID",
    "KEY_NOW_OFFER_ID",
    "TOP_UP_OFFER_ID",
    "CodeGamesSandbox",
    "Faults",
    "SandboxConfig",
    "SandboxOffer",
    "create_sandbox",
    "generate_catalogue",
]
