"""``python -m bot.sync_child [--vendor NAME]``: a catalogue sync in a process of its own.

``python -m bot`` runs its start-up and hourly syncs here (``Shop.sync_in_child``): a
64,000-offer sync parses and writes tens of MiB that the bot process would otherwise keep
(glibc and pymalloc rarely give it all back). The child reads the same settings (the
environment and ``.env``), writes into the same SQLite database, logs to the same stderr
and prints one JSON line per supplier it synced (the fields of
:class:`services.catalogue.SyncReport`). Exit status 1 when every supplier failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import sys

import httpx

from services.catalogue import SyncReport


async def sync(vendor: str | None) -> list[SyncReport]:
    """Build the shop's catalogue service from settings and sync ``vendor`` (every
    enabled supplier when ``None``); raises what :meth:`CatalogueService.sync_all` does."""
    from bot.app import build_suppliers, catalogue_service
    from bot.logs import setup_logging
    from bot.settings import Settings
    from storage.db import Database

    settings = Settings()
    setup_logging(settings.log_level, settings.log_level_libraries)
    db = await Database.open(settings.database)
    try:
        async with httpx.AsyncClient() as http:
            catalogue = catalogue_service(settings, build_suppliers(settings, http), db)
            if vendor is None:
                return await catalogue.sync_all()
            return [await catalogue.sync(vendor)]
    finally:
        await db.close()


async def run_sync_child(vendor: str | None) -> list[SyncReport]:
    """In the bot: run ``python -m bot.sync_child`` and return its reports. Raises
    ``RuntimeError`` when it fails (its own log says why); killed when cancelled."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.sync_child", *(["--vendor", vendor] if vendor else []),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, _ = await process.communicate()
    except asyncio.CancelledError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise
    if process.returncode != 0:
        raise RuntimeError(f"the catalogue sync process exited with {process.returncode}")
    return [SyncReport(**json.loads(line)) for line in out.decode().splitlines() if line]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bot.sync_child")
    parser.add_argument("--vendor", default=None)
    args = parser.parse_args()
    try:
        reports = asyncio.run(sync(args.vendor))
    except Exception as exc:  # logged by the catalogue service; the bot reads the status
        print(f"catalogue sync failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)
    for report in reports:
        print(json.dumps(dataclasses.asdict(report)), flush=True)


if __name__ == "__main__":
    main()
