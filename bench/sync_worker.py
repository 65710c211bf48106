"""One catalogue sync in a process of its own: prints ``seconds peak_rss_mb offers``."""

from __future__ import annotations

import asyncio
import resource
import sys
from pathlib import Path

import httpx

from bench.harness import SUPPLIER_TOKEN
from services.catalogue import CatalogueService
from services.suppliers.gamesdrop.client import GamesDropClient
from storage.catalogue import CatalogueRepository
from storage.db import Database


async def main(url: str, database: Path) -> None:
    db = await Database.open(database)
    async with httpx.AsyncClient() as http:
        supplier = GamesDropClient(http, SUPPLIER_TOKEN, base_url=url)
        report = await CatalogueService(supplier, CatalogueRepository(db)).sync()
    await db.close()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{report.seconds:.4f} {peak_mb:.1f} {report.offers}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], Path(sys.argv[2])))
