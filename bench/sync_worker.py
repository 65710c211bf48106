"""One catalogue sync in a process of its own: prints ``seconds peak_rss_mb offers``.

``python -m bench.sync_worker SANDBOX_URL DATABASE`` (a SQLite path or a PostgreSQL URL)."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import httpx

from bench.harness import SUPPLIER_TOKEN
from services.catalogue import CatalogueService
from services.suppliers.gamesdrop.client import GamesDropClient
from storage.catalogue import CatalogueRepository
from storage.db import Database


async def main(url: str, database: str) -> None:
    db = await Database.open(database)
    async with httpx.AsyncClient() as http:
        supplier = GamesDropClient(http, SUPPLIER_TOKEN, base_url=url)
        report = await CatalogueService(supplier, CatalogueRepository(db)).sync()
    await db.close()
    print(f"{report.seconds:.4f} {peak_mb():.1f} {report.offers}")


def peak_mb() -> float:
    """VmHWM of this process in MB. Not getrusage's ru_maxrss: Linux keeps the forking
    parent's size in it across the exec, and the benchmark process starting this is large."""
    status = Path("/proc/self/status").read_text()
    match = re.search(r"VmHWM:\s+(\d+) kB", status)
    return int(match.group(1)) / 1024 if match else 0.0


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
