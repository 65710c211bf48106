"""``create_sandbox(**options)``: the GamesDrop sandbox as the offline shop and the demo
host it (see :class:`sandboxes.SupplierSandbox`)."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from sandboxes.gamesdrop.server import DEFAULT_TOKEN, GamesDropSandbox, SandboxConfig


class HostedGamesDropSandbox(GamesDropSandbox):
    """A :class:`GamesDropSandbox` that says which vendor it twins and how the shop's
    ``gamesdrop`` settings section reaches it."""

    vendor = "gamesdrop"

    def supplier_settings(self) -> dict[str, Any]:
        """``{"token", "base_url", "user_info_url"}`` for the ``gamesdrop`` section: the
        first token the sandbox accepts and its URLs (after :meth:`start`)."""
        token = sorted(self.config.tokens)[0] if self.config.tokens else DEFAULT_TOKEN
        return {"token": token, "base_url": self.base_url, "user_info_url": self.user_info_url}


def create_sandbox(**options: Any) -> HostedGamesDropSandbox:
    """A GamesDrop sandbox (not started). ``config``: a whole :class:`SandboxConfig`;
    otherwise any :class:`SandboxConfig` field by name (``offers=300``, ``token="t"``
    for ``tokens={"t"}``, ``topup_seconds`` (default 1 s here)...). Raises ``TypeError`` on an unknown
    option."""
    config = options.pop("config", None)
    if config is None:
        options.setdefault("topup_seconds", 1.0)  # hosted for a demo: a top-up takes a second
        known = {f.name for f in fields(SandboxConfig)}
        if "token" in options:
            options["tokens"] = {options.pop("token")}
        unknown = set(options) - known
        if unknown:
            raise TypeError(f"unknown GamesDrop sandbox options: {sorted(unknown)}")
        config = SandboxConfig(**options)
    elif options:
        raise TypeError("pass either config or SandboxConfig fields, not both")
    return HostedGamesDropSandbox(config)
