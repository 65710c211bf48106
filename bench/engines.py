"""``python -m bench.engines [--repeats N]``: the storage benchmarks on both engines.

The same 64,000-offer catalogue is synced from the GamesDrop sandbox into SQLite and
into a throwaway PostgreSQL on 127.0.0.1 (each sync in a process of its own, into an
empty then a full database), then searched and browsed through the same repository
calls the bot makes. One ``engine figure value unit`` line per figure; medians over
repeats.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg

from bench.harness import ROOT, median, percentile, start_sandbox, stop
from services.search import SearchService
from storage.catalogue import CatalogueRepository
from storage.db import Database
from tests.servers.postgres import PostgresServer

OFFERS = 64_000
#: what people type (as bench/__main__.py's storefront rounds)
QUERIES = [
    "genshn", "stim", "геншин", "пабг", "hsr", "impact gensh", "steam wal", "roblox",
    "pubg mobile 60", "telegram stars", "genshin", "steam", "pubg",
]  # fmt: skip


def _sync(url: str, database: str) -> tuple[float, float]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.sync_worker", url, database],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert int(out[2]) == OFFERS, out
    return float(out[0]), float(out[1])


async def _reads(database: str, repeats: int) -> dict[str, float]:
    db = await Database.open(database)
    repo = CatalogueRepository(db)
    search = SearchService(repo)
    await search.search("warm up")
    categories = await repo.categories()
    random.seed(7)
    raw, people, pages = [], [], []
    for _ in range(repeats):
        for query in QUERIES * 4:
            started = time.perf_counter()
            await repo.search_products(query, limit=8)
            raw.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            await search.search(query, 0, 8)
            people.append((time.perf_counter() - started) * 1000)
        for _ in range(len(QUERIES) * 4):
            category, count = random.choice(categories)
            started = time.perf_counter()
            await repo.products(category, random.randrange(0, max(1, count)), 8)
            pages.append((time.perf_counter() - started) * 1000)
    await db.close()
    return {
        "search_p95": percentile(raw, 95),
        "search_people_p95": percentile(people, 95),
        "category_page_p95": percentile(pages, 95),
    }


async def main(repeats: int) -> int:
    logging.basicConfig(level=logging.ERROR)
    postgres = PostgresServer()
    postgres.start()
    sandbox, url = await start_sandbox(OFFERS)
    try:
        print(f"# {time.strftime('%Y-%m-%d %H:%M')} · {OFFERS} offers · {repeats} repeats")
        with tempfile.TemporaryDirectory() as folder:
            for engine in ("sqlite", "postgresql"):
                empty, full, peaks = [], [], []
                for round_no in range(repeats):
                    if engine == "sqlite":
                        database = str(Path(folder) / f"sync-{round_no}.sqlite3")
                    else:
                        admin = await asyncpg.connect(postgres.url)
                        await admin.execute(f"CREATE DATABASE sync_{round_no}")
                        await admin.close()
                        database = postgres.url_of(f"sync_{round_no}")
                    seconds, peak = await asyncio.to_thread(_sync, url, database)
                    empty.append(seconds)
                    seconds, peak_full = await asyncio.to_thread(_sync, url, database)
                    full.append(seconds)
                    peaks += [peak, peak_full]
                print(f"{engine} catalogue_sync_empty_db {median(empty):.2f} s", flush=True)
                print(f"{engine} catalogue_sync_full_db {median(full):.2f} s", flush=True)
                print(f"{engine} catalogue_sync_peak_rss {max(peaks):.1f} MiB", flush=True)
                for name, value in (await _reads(database, repeats)).items():
                    print(f"{engine} {name} {value:.2f} ms", flush=True)
    finally:
        stop(sandbox)
        postgres.stop()
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.engines")
    parser.add_argument("--repeats", type=int, default=3)
    sys.exit(asyncio.run(main(parser.parse_args().repeats)))
