"""``python -m bot.healthcheck``: exit 0 when the running bot wrote its heartbeat lately.

The bot touches ``heartbeat`` beside its database every 30 s from its event loop, so a
stale file means a dead or frozen process (the Dockerfile's HEALTHCHECK runs this).

``python -m bot.healthcheck --url http://127.0.0.1:8080/readyz`` asks a worker's readiness
endpoint instead (:mod:`bot.health`: database, Redis): exit 0 on 200, else 1 naming the
failed checks. The compose file uses it (the slim image has neither curl nor wget).

Docker gives the check 5 s, so it imports nothing but the standard library (aiogram and
pydantic alone take about 3 s): it finds ``DATABASE_PATH`` as :class:`bot.settings.Settings`
does (the environment, any case, then ``.env`` in the working directory, then the default).
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

HEARTBEAT_SECONDS = 30.0
DEFAULT_DATABASE_PATH = "data/shop.sqlite3"


def heartbeat_file(database_path: str | Path) -> Path:
    """The heartbeat file beside the database at ``database_path``."""
    return Path(database_path).with_name("heartbeat")


def database_path(environ: Mapping[str, str] | None = None, env_file: Path = Path(".env")) -> Path:
    """``DATABASE_PATH`` from the environment (names in any case), else from ``env_file``,
    else ``data/shop.sqlite3``; relative paths stay relative to the working directory."""
    environ = os.environ if environ is None else environ
    for name, value in environ.items():
        if name.upper() == "DATABASE_PATH":
            return Path(value)
    try:
        lines = env_file.read_text(encoding="utf-8").splitlines()
    except OSError:
        lines = []
    found: str | None = None
    for line in lines:
        name, sep, value = line.strip().removeprefix("export ").partition("=")
        if sep and name.strip().upper() == "DATABASE_PATH":
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            else:
                value = value.split(" #", 1)[0].strip()
            found = value  # the last one wins, as in python-dotenv
    return Path(found) if found else Path(DEFAULT_DATABASE_PATH)


def check_url(url: str, timeout: float = 4.0) -> str:
    """GET ``url`` (a ``/readyz`` or ``/healthz``); returns a line for the log on 200.
    Raises ``RuntimeError`` naming the status and the failed checks otherwise, or why
    nothing answered (within ``timeout`` seconds)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return f"{response.status} from {url}"
    except urllib.error.HTTPError as exc:
        failed = ""
        try:
            checks = json.loads(exc.read().decode("utf-8", "replace")).get("checks", {})
            failed = "; ".join(
                f"{name}: {check.get('error', 'failed')}"
                for name, check in checks.items()
                if isinstance(check, dict) and check.get("ok") is False
            )
        except (ValueError, AttributeError):
            pass  # not our JSON: the status says enough
        raise RuntimeError(f"{exc.code} from {url}" + (f": {failed}" if failed else "")) from None
    except (OSError, ValueError) as exc:
        raise RuntimeError(f"no answer from {url}: {exc}") from None


def main() -> None:
    args = sys.argv[1:]
    if args[:1] == ["--url"] and len(args) == 2:
        try:
            print(f"ready: {check_url(args[1])}")
        except RuntimeError as exc:
            sys.exit(f"unhealthy: {exc}")
        return
    if args:
        sys.exit("usage: python -m bot.healthcheck [--url http://127.0.0.1:8080/readyz]")
    path = heartbeat_file(database_path())
    try:
        age = time.time() - float(path.read_text())
    except (OSError, ValueError) as exc:
        sys.exit(f"unhealthy: no heartbeat at {path}: {exc}")
    if age > 4 * HEARTBEAT_SECONDS:
        sys.exit(f"unhealthy: last heartbeat {age:.0f} s ago")
    print(f"healthy: heartbeat {age:.0f} s ago")


if __name__ == "__main__":
    main()
