"""GamesDrop sandbox: a local twin of the partner API for demos, tests and benchmarks."""

from sandboxes.gamesdrop.catalogue import (
    STARS_OFFER_IDS,
    TEST_OFFER_ID,
    SandboxOffer,
    generate_catalogue,
)
from sandboxes.gamesdrop.hosting import HostedGamesDropSandbox, create_sandbox
from sandboxes.gamesdrop.server import (
    DEFAULT_TOKEN,
    Faults,
    GamesDropSandbox,
    SandboxConfig,
    TelegramAccount,
)

__all__ = [
    "DEFAULT_TOKEN",
    "STARS_OFFER_IDS",
    "TEST_OFFER_ID",
    "Faults",
    "GamesDropSandbox",
    "HostedGamesDropSandbox",
    "SandboxConfig",
    "SandboxOffer",
    "TelegramAccount",
    "create_sandbox",
    "generate_catalogue",
]
