"""``python -m bot.healthcheck``: exit 0 when the running bot wrote its heartbeat lately.

The bot touches ``heartbeat`` beside its database every 30 s from its event loop, so a
stale file means a dead or frozen process (the Dockerfile's HEALTHCHECK runs this).
"""

from __future__ import annotations

import sys
import time

from bot.app import HEARTBEAT_SECONDS, heartbeat_path
from bot.settings import Settings


def main() -> None:
    path = heartbeat_path(Settings())
    try:
        age = time.time() - float(path.read_text())
    except (OSError, ValueError) as exc:
        sys.exit(f"unhealthy: no heartbeat at {path}: {exc}")
    if age > 4 * HEARTBEAT_SECONDS:
        sys.exit(f"unhealthy: last heartbeat {age:.0f} s ago")
    print(f"healthy: heartbeat {age:.0f} s ago")


if __name__ == "__main__":
    main()
