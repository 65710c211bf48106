"""``python -m bench [--only NAME ...] [--repeats N] [--broadcast-users N]``

``--only workers`` (not run by default: it needs PostgreSQL and Redis) runs
:mod:`bench.workers`, one and two webhook workers.

Runs the benchmarks on 127.0.0.1 and prints one ``name value unit`` line per figure,
then a last line saying which targets were met. Medians over repeats; comparisons
(storefront vs echo bot) are measured in the same run, alternating.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.harness import (
    BOT_TOKEN,
    ROOT,
    Figure,
    TelegramProcess,
    bot_environment,
    cpu_seconds,
    median,
    memory_mb,
    percentile,
    start_process,
    start_profiler,
    start_sandbox,
    stop,
    stop_profiler,
)
from sandboxes.gamesdrop import TEST_OFFER_ID
from storage.catalogue import CatalogueRepository
from storage.db import Database, utcnow_iso

CATALOGUE_OFFERS = 64_000
USERS_IN_DATABASE = 100_000


@dataclass
class Context:
    folder: Path
    repeats: int
    broadcast_users: int
    sandbox_url: str = ""
    synced_db: Path | None = None
    figures: list[Figure] = field(default_factory=list)

    def add(self, figure: Figure) -> None:
        self.figures.append(figure)
        print(figure.line(), flush=True)


# -- 1. catalogue sync -----------------------------------------------------------------


def _sync_once(url: str, database: Path) -> tuple[float, float, int]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.sync_worker", url, str(database)],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    return float(out[0]), float(out[1]), int(out[2])


async def bench_sync(ctx: Context) -> None:
    empty, update, peaks = [], [], []
    for round_no in range(ctx.repeats):
        database = ctx.folder / f"sync-{round_no}.sqlite3"
        seconds, peak, offers = await asyncio.to_thread(_sync_once, ctx.sandbox_url, database)
        assert offers == CATALOGUE_OFFERS, offers
        empty.append(seconds)
        peaks.append(peak)
        seconds, peak, _ = await asyncio.to_thread(_sync_once, ctx.sandbox_url, database)
        update.append(seconds)
        peaks.append(peak)
        ctx.synced_db = database
    ctx.add(Figure("catalogue_sync_empty_db", median(empty), "s", ("<", 5)))
    ctx.add(Figure("catalogue_sync_full_db", median(update), "s", ("<", 5)))
    ctx.add(Figure("catalogue_sync_peak_rss_own_process", max(peaks), "MiB", ("<", 150)))


# -- 2. search and browse --------------------------------------------------------------


async def bench_search(ctx: Context) -> None:
    assert ctx.synced_db is not None
    db = await Database.open(ctx.synced_db)
    repo = CatalogueRepository(db)
    names = [
        row["name"]
        for row in await db.fetchall("SELECT name FROM products ORDER BY random() LIMIT 200")
    ]
    words = [name.split()[0][: random.randint(3, 8)] for name in names] + [
        "genshin",
        "steam",
        "pubg",
        "telegram stars",
    ]
    categories = [(name, count) for name, count in await repo.categories()]
    search_p50, search_p95, page_p50, page_p95 = [], [], [], []
    for _ in range(ctx.repeats):
        searches, pages = [], []
        for word in words * 2:
            started = time.perf_counter()
            await repo.search_products(word, limit=8)
            searches.append((time.perf_counter() - started) * 1000)
        for _ in range(len(words) * 2):
            category, count = random.choice(categories)
            started = time.perf_counter()
            await repo.products(category, random.randrange(0, max(1, count)), 8)
            pages.append((time.perf_counter() - started) * 1000)
        search_p50.append(percentile(searches, 50))
        search_p95.append(percentile(searches, 95))
        page_p50.append(percentile(pages, 50))
        page_p95.append(percentile(pages, 95))
    people_p50, people_p95, miss_p95 = await _bench_people_search(ctx, repo)
    await db.close()
    ctx.add(Figure("search_p50", median(search_p50), "ms"))
    ctx.add(Figure("search_p95", median(search_p95), "ms", ("<", 5)))
    ctx.add(Figure("search_people_p50", people_p50, "ms"))
    ctx.add(Figure("search_people_p95", people_p95, "ms", ("<", 5)))
    ctx.add(Figure("search_nothing_found_p95", miss_p95, "ms", ("<", 5)))
    ctx.add(Figure("category_page_p50", median(page_p50), "ms"))
    ctx.add(Figure("category_page_p95", median(page_p95), "ms", ("<", 5)))


#: what people type (issue 16): typos, other scripts, aliases, partial words, word order
PEOPLE_QUERIES = [
    "genshn", "stim", "геншин", "пабг", "стим", "hsr", "cod", "mlbb", "impact gensh",
    "star rail honkai", "steam wal", "плейстейшн", "dragn qest", "isl", "galaxy knights",
    "roblox", "робл", "valorant", "pubg mobile 60", "telegram stars",
]  # fmt: skip
#: queries that find nothing, so the closest products are suggested
MISSED_QUERIES = ["qqqzzz", "genshin qqqzzz", "абвгд", "zzzz island"]


async def _bench_people_search(
    ctx: Context, repo: CatalogueRepository
) -> tuple[float, float, float]:
    """p50 and p95 of the customer search (services.search: FTS5, corrections, rapidfuzz
    ranking, the first page and its count) over :data:`PEOPLE_QUERIES`, and p95 of
    queries that find nothing (suggestions over the whole catalogue), medians over repeats;
    the in-memory index is built once before timing, as after a sync."""
    from services.search import SearchService

    search = SearchService(repo)
    await search.search("warm up")
    p50, p95, missed = [], [], []
    for _ in range(ctx.repeats):
        found, nothing = [], []
        for query in PEOPLE_QUERIES * 5:
            started = time.perf_counter()
            await search.search(query, 0, 8)
            found.append((time.perf_counter() - started) * 1000)
        for query in MISSED_QUERIES * 10:
            started = time.perf_counter()
            result = await search.search(query, 0, 8)
            nothing.append((time.perf_counter() - started) * 1000)
            assert result.total == 0, (query, result.total)
        p50.append(percentile(found, 50))
        p95.append(percentile(found, 95))
        missed.append(percentile(nothing, 95))
    return median(p50), median(p95), median(missed)


# -- 3-5. the bot as its own process: start-up, memory, mixed load, the fair baseline ----

CUSTOMERS = 40  # closed loops: each presses again as soon as it is answered
PRESSES = 25
PACED_RATE = 100.0  # updates/s offered by the mixed, paced load
PACED_SECONDS = 20.0
PURCHASES = 20  # offer 999, one after another, per round
#: what customers type: Latin, Cyrillic, typos, aliases (issue 16)
SEARCHES = [*PEOPLE_QUERIES, "genshin", "steam", "pubg", "telegram stars"]
#: the mixed load: (kind, weight, updates it sends)
MIX = (("page", 50, 1), ("product", 25, 1), ("search", 20, 1), ("checkout", 3, 4))


@dataclass
class Round:
    """What one round of a bot process measured."""

    rate: float = 0.0  # catalogue presses answered per second, closed loops
    saturated: list[float] = field(default_factory=list)  # their latencies, ms
    cpu_ms: dict[str, float] = field(default_factory=dict)  # bot CPU per update, by kind
    paced: dict[str, list[float]] = field(default_factory=dict)  # mixed load latencies, ms
    paced_cpu: float = 0.0  # bot CPU during the mixed load, % of one core
    paced_rate: float = 0.0  # updates/s the mixed load achieved
    startup: float = 0.0  # s from spawning the process to answering /start
    rss: float = 0.0  # MiB, steady, after the load
    sync_peak: float = 0.0  # MiB, VmHWM after the start-up sync (runs in the bot process)
    peak: float = 0.0  # MiB, VmHWM at the end
    keys: list[float] = field(default_factory=list)  # payment to key, ms


def _add_users(database: Path, count: int) -> None:
    now = utcnow_iso()
    with sqlite3.connect(database) as conn:
        conn.executemany(
            "INSERT OR IGNORE INTO users (id, username, first_name, first_seen, last_seen) VALUES (?, ?, ?, ?, ?)",
            ((10_000_000 + i, f"user{i}", f"User {i}", now, now) for i in range(count)),
        )


def _last_sync_run(database: Path) -> tuple[int, str | None]:
    with sqlite3.connect(database) as conn:
        row = conn.execute("SELECT id, finished_at FROM sync_runs ORDER BY id DESC LIMIT 1")
        found = row.fetchone()
    return (int(found[0]), found[1]) if found else (0, None)


async def _wait_sync_after(database: Path, run_id: int, process: subprocess.Popen[bytes]) -> None:
    """Until a sync run newer than ``run_id`` has finished."""
    for _ in range(1200):
        newest, finished = await asyncio.to_thread(_last_sync_run, database)
        if newest > run_id and finished:
            return
        if process.poll() is not None:
            raise RuntimeError("the bot exited during its start-up sync")
        await asyncio.sleep(0.1)
    raise RuntimeError("the start-up sync did not finish")


async def _closed_loops(
    pid: int, users: list[int], steps: int, act: Callable[[int, int], Awaitable[dict[str, Any]]]
) -> tuple[float, list[float], float]:
    """Every user acts ``steps`` times, each as soon as the last was answered; returns
    (answers/s, latencies in ms, bot CPU ms per answer)."""
    latencies: list[float] = []

    async def loop(user: int) -> None:
        for step in range(steps):
            latencies.append((await act(user, step))["ms"])

    started, cpu = time.perf_counter(), cpu_seconds(pid)
    await asyncio.gather(*(loop(user) for user in users))
    elapsed, cpu = time.perf_counter() - started, cpu_seconds(pid) - cpu
    return len(latencies) / elapsed, latencies, cpu * 1000 / len(latencies)


def _products(buttons: list[list[str]]) -> list[str]:
    return [data for _, data in buttons if data.startswith("prd:")]


async def _mixed_load(tg: TelegramProcess, pid: int, users: list[int]) -> Round:
    """Customers browse pages, open product cards, search and buy offer 999, paced
    (exponential gaps) so that together they offer :data:`PACED_RATE` updates/s."""
    result = Round(paced={kind: [] for kind, _, _ in MIX} | {"offer": [], "buy": [], "pay": []})
    per_user = PACED_RATE / len(users)
    kinds, weights = [k for k, _, _ in MIX], [w for _, w, _ in MIX]
    updates_of = {k: n for k, _, n in MIX}
    sent = 0

    async def customer(user: int) -> None:
        nonlocal sent
        products: list[str] = []
        shown = ""
        due = time.perf_counter() + random.expovariate(per_user)
        while True:
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            if time.perf_counter() >= deadline:
                return
            kind = random.choices(kinds, weights)[0]
            if kind == "product" and len(products) < 2:
                kind = "page"
            if kind == "page":
                page = shown
                while page == shown:  # the same page again would not edit the message
                    page = f"cat:{random.choice(('top', 'gift'))}:{random.randrange(30)}"
                shown = page
                answer = await tg.act(user, "press_data", page)
                products = _products(answer["buttons"]) or products
                result.paced["page"].append(answer["ms"])
            elif kind == "product":
                shown = random.choice([data for data in products if data != shown] or products)
                answer = await tg.act(user, "press_data", shown)
                result.paced["product"].append(answer["ms"])
            elif kind == "search":
                shown = ""
                answer = await tg.act(user, "send", random.choice(SEARCHES))
                result.paced["search"].append(answer["ms"])
            else:
                shown = ""
                for step, action, arg, wait in (
                    ("offer", "send", f"/start offer_{TEST_OFFER_ID}", "text:Price:"),
                    ("buy", "press", "Buy for", "any"),
                    ("pay", "pay", "", "text:Your key"),
                ):
                    result.paced[step].append((await tg.act(user, action, arg, wait))["ms"])
            sent += updates_of[kind]
            due += random.expovariate(per_user) * updates_of[kind]

    started, cpu = time.perf_counter(), cpu_seconds(pid)
    deadline = started + PACED_SECONDS
    await asyncio.gather(*(customer(user) for user in users))
    elapsed = time.perf_counter() - started
    result.paced_cpu = 100 * (cpu_seconds(pid) - cpu) / elapsed
    result.paced_rate = sent / elapsed
    return result


async def _storefront_round(ctx: Context, tg: TelegramProcess, database: Path) -> Round:
    env = bot_environment(tg.url, ctx.sandbox_url, database)
    run_before, _ = await asyncio.to_thread(_last_sync_run, database)
    base = 7_000_000 + random.randrange(10**6) * 1000  # fresh chats every round
    started = time.perf_counter()
    process = start_process("bot", env, ROOT, ctx.folder / "bot.log")
    try:
        await tg.act(base, "send", "/start", "text:Welcome", timeout=120)
        startup = time.perf_counter() - started
        await _wait_sync_after(database, run_before, process)
        sync_peak = memory_mb(process.pid)[1]
        users = [base + 1 + i for i in range(CUSTOMERS)]
        await asyncio.gather(*(tg.act(u, "send", "/start", "text:Welcome") for u in users))
        await asyncio.gather(*(tg.act(u, "press", "Catalogue", "text:Choose") for u in users))
        # BENCH_PROFILE=/tmp/x.txt: py-spy samples of the bot during one phase
        # (BENCH_PROFILE_PHASE: pages, the default, cards, searches or purchases)
        phase = os.environ.get("BENCH_PROFILE_PHASE", "pages")
        spy = start_profiler(process.pid) if phase == "pages" else None
        rate, saturated, page_cpu = await _closed_loops(
            process.pid, users, PRESSES,
            lambda user, step: tg.act(user, "press_data", f"cat:top:{(step + 1) % 5}"),
        )  # fmt: skip
        stop_profiler(spy)
        pages = await asyncio.gather(*(tg.act(u, "press_data", "cat:gift:1") for u in users))
        cards = {u: _products(page["buttons"]) for u, page in zip(users, pages, strict=True)}
        spy = start_profiler(process.pid) if phase == "cards" else None
        _, _, card_cpu = await _closed_loops(
            process.pid, users, 4,
            lambda user, step: tg.act(user, "press_data", cards[user][step % len(cards[user])]),
        )  # fmt: skip
        stop_profiler(spy)
        spy = start_profiler(process.pid) if phase == "searches" else None
        _, _, search_cpu = await _closed_loops(
            process.pid, users[:10], len(SEARCHES) // 2,
            lambda user, step: tg.act(user, "send", random.choice(SEARCHES)),
        )  # fmt: skip
        stop_profiler(spy)
        result = await _mixed_load(tg, process.pid, users)
        spy = start_profiler(process.pid) if phase == "purchases" else None
        for i in range(PURCHASES):
            buyer = base + 500 + i
            await tg.act(buyer, "send", f"/start offer_{TEST_OFFER_ID}", "text:Price:")
            await tg.act(buyer, "press", "Buy for")
            result.keys.append((await tg.act(buyer, "pay", "", "text:Your key"))["ms"])
        stop_profiler(spy)
        result.rate, result.saturated, result.startup = rate, saturated, startup
        result.cpu_ms = {"page": page_cpu, "product": card_cpu, "search": search_cpu}
        result.sync_peak = sync_peak
        result.rss, result.peak = memory_mb(process.pid)
        print(
            f"# storefront: mixed load {result.paced_rate:.0f} updates/s, bot "
            f"{result.paced_cpu:.0f}% of a core; start-up {startup:.2f} s",
            flush=True,
        )
        return result
    except Exception:
        _print_tail(ctx.folder / "bot.log")
        raise
    finally:
        stop(process)


def _print_tail(log: Path, lines: int = 60) -> None:
    if log.exists():
        tail = log.read_text(errors="replace").splitlines()[-lines:]
        print("\n".join(f"# bot.log: {line}" for line in tail), file=sys.stderr, flush=True)


async def _baseline_round(ctx: Context, tg: TelegramProcess) -> Round:
    env = {"TELEGRAM__TOKEN": BOT_TOKEN, "TELEGRAM__API_BASE": tg.url, "PATH": "/usr/bin:/bin"}
    base = 8_000_000 + random.randrange(10**6) * 1000  # fresh chats every round
    process = start_process("bench.baseline_bot", env, ROOT, ctx.folder / "baseline.log")
    try:
        users = [base + i for i in range(CUSTOMERS)]
        await tg.act(users[0], "send", "/start", timeout=120)
        await asyncio.gather(*(tg.act(u, "send", "/start") for u in users[1:]))
        rate, saturated, cpu = await _closed_loops(
            process.pid, users, PRESSES, lambda user, step: tg.act(user, "press_data", "prd:x")
        )
        result = Round(rate=rate, saturated=saturated, cpu_ms={"page": cpu})
        result.rss, result.peak = memory_mb(process.pid)
        return result
    finally:
        stop(process)


def _pooled(rounds: list[Round], kind: str) -> list[float]:
    return [ms for r in rounds for ms in r.paced.get(kind, [])]


async def bench_bot_process(ctx: Context) -> None:
    assert ctx.synced_db is not None
    database = ctx.folder / "bot.sqlite3"
    shutil.copy(ctx.synced_db, database)
    _add_users(database, USERS_IN_DATABASE)
    tg = await TelegramProcess.start()
    shop: list[Round] = []
    base: list[Round] = []
    print(f"# machine load before the bot rounds: {os.getloadavg()[0]:.2f} (2 cores)", flush=True)
    loop = os.environ.get("EVENT_LOOP", "asyncio")
    print(f"# both bots' event loop: EVENT_LOOP={loop}", flush=True)
    try:
        for _ in range(ctx.repeats):  # alternate, so both see the same machine state
            base.append(await _baseline_round(ctx, tg))
            shop.append(await _storefront_round(ctx, tg, database))
    finally:
        await tg.stop()
    print(f"# machine load after: {os.getloadavg()[0]:.2f}", flush=True)
    shop_rate, base_rate = median([r.rate for r in shop]), median([r.rate for r in base])
    every = [ms for r in shop for kind in ("page", "product", "search") for ms in r.paced[kind]]
    every += [ms for r in shop for kind in ("offer", "buy", "pay") for ms in r.paced[kind]]
    keys = [ms for r in shop for ms in r.keys] + _pooled(shop, "pay")
    ctx.add(
        Figure("bot_rss_64k_offers_100k_users", median([r.rss for r in shop]), "MiB", ("<=", 110))
    )
    ctx.add(
        Figure("bot_peak_rss_start_up_sync", max(r.sync_peak for r in shop), "MiB", ("<=", 140))
    )
    ctx.add(Figure("bot_peak_rss", max(r.peak for r in shop), "MiB"))
    ctx.add(Figure("baseline_bot_rss_aiogram_floor", median([r.rss for r in base]), "MiB"))
    ctx.add(Figure("mixed_load_updates_s", median([r.paced_rate for r in shop]), "updates/s"))
    ctx.add(Figure("mixed_load_p50", percentile(every, 50), "ms"))
    ctx.add(Figure("mixed_load_p95", percentile(every, 95), "ms", ("<=", 25)))
    ctx.add(Figure("mixed_load_p99", percentile(every, 99), "ms", ("<=", 50)))
    for kind in ("page", "product", "search", "offer", "buy"):
        ctx.add(Figure(f"mixed_load_{kind}_p95", percentile(_pooled(shop, kind), 95), "ms"))
    ctx.add(
        Figure("mixed_load_bot_cpu", median([r.paced_cpu for r in shop]), "% of a core", ("<=", 30))
    )
    ctx.add(Figure("updates_storefront_catalogue_presses", shop_rate, "updates/s"))
    ctx.add(Figure("updates_baseline_bot_same_calls", base_rate, "updates/s"))
    # each storefront round against the baseline round just before it, then the median
    ratios = [100 * s.rate / b.rate for s, b in zip(shop, base, strict=True)]
    ctx.add(Figure("updates_storefront_vs_baseline", median(ratios), "%", (">=", 80)))
    cpu_ratios = [
        100 * b.cpu_ms["page"] / s.cpu_ms["page"] for s, b in zip(shop, base, strict=True)
    ]
    ctx.add(Figure("cpu_baseline_over_storefront_per_press", median(cpu_ratios), "%"))
    ctx.add(
        Figure(
            "reply_p95_storefront_saturated",
            median([percentile(r.saturated, 95) for r in shop]),
            "ms",
        )
    )
    ctx.add(
        Figure(
            "reply_p95_baseline_saturated",
            median([percentile(r.saturated, 95) for r in base]),
            "ms",
        )
    )
    ctx.add(
        Figure(
            "cpu_per_catalogue_press", median([r.cpu_ms["page"] for r in shop]), "ms", ("<=", 1.5)
        )
    )
    ctx.add(Figure("cpu_per_product_card", median([r.cpu_ms["product"] for r in shop]), "ms"))
    ctx.add(Figure("cpu_per_search", median([r.cpu_ms["search"] for r in shop]), "ms", ("<=", 4)))
    ctx.add(Figure("cpu_per_press_baseline_bot", median([r.cpu_ms["page"] for r in base]), "ms"))
    ctx.add(Figure("checkout_payment_to_key_p50", percentile(keys, 50), "ms"))
    ctx.add(Figure("checkout_payment_to_key_p95", percentile(keys, 95), "ms", ("<=", 20)))
    ctx.add(Figure("start_up_to_first_answer", median([r.startup for r in shop]), "s", ("<=", 2)))


# -- 6. broadcast ----------------------------------------------------------------------


async def bench_broadcast(ctx: Context) -> None:
    from bot.offline import ADMIN_ID, OfflineShop

    rate = 25.0
    offline = OfflineShop(
        ctx.folder / "broadcast.sqlite3",
        settings_overrides={"broadcast_rate": rate, "throttle_rate": 0},
        telegram_options={"flood_limit": True, "global_rate": 30, "chat_rate": 1},
    )
    await offline.start()
    try:
        shop = offline.shop
        assert shop is not None
        admin = offline.telegram.user(ADMIN_ID, "Owner")
        offline.telegram.flood_limit = False
        source = await admin.send("Weekend sale: -20% on every top-up!")
        user_ids = [20_000_000 + i for i in range(ctx.broadcast_users)]
        now = utcnow_iso()
        async with shop.db.transaction() as conn:
            await conn.executemany(
                "INSERT INTO users (id, first_name, first_seen, last_seen) VALUES (?, 'Fan', ?, ?)",
                [(uid, now, now) for uid in user_ids],
            )
        offline.telegram.flood_limit = True
        repo = shop.broadcasts._repo  # the same repository the admin flow uses
        broadcast = await repo.create_broadcast(ADMIN_ID, ADMIN_ID, source, None, None, user_ids)
        started = time.perf_counter()
        await shop.broadcasts.start(broadcast)
        await shop.broadcasts.wait(broadcast.id)
        elapsed = time.perf_counter() - started
        counts = await repo.broadcast_counts(broadcast.id)
        received = {line.chat_id for line in offline.telegram.transcript if line.kind == "copy"}
        lost = len(set(user_ids) - received)
        achieved = counts.get("sent", 0) / elapsed
        ctx.add(Figure("broadcast_rate", achieved, "msg/s"))
        ctx.add(Figure("broadcast_rate_of_configured", achieved / rate * 100, "%", (">=", 90)))
        ctx.add(
            Figure(
                "broadcast_429_received",
                float(offline.telegram.flood.too_many_requests),
                "count",
                ("<", 1),
            )
        )
        ctx.add(Figure("broadcast_lost", float(lost), "messages", ("<", 1)))
    finally:
        await offline.stop()


# -- 7. one and two webhook workers on PostgreSQL + Redis (issue 20) --------------------


async def bench_workers(ctx: Context) -> None:
    """:mod:`bench.workers` (its own servers and a 4,000-offer sandbox); only with
    ``--only workers``: it needs PostgreSQL and Redis installed."""
    from bench import workers

    for figure in await workers.run(ctx.repeats):
        ctx.add(figure)


BENCHMARKS = {
    "sync": bench_sync,
    "search": bench_search,
    "bot": bench_bot_process,
    "broadcast": bench_broadcast,
    "workers": bench_workers,
}
#: what runs without ``--only``
DEFAULT = ("sync", "search", "bot", "broadcast")


async def main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory() as folder:
        ctx = Context(Path(folder), args.repeats, args.broadcast_users)
        sandbox, ctx.sandbox_url = await start_sandbox(CATALOGUE_OFFERS)
        try:
            print(
                f"# {time.strftime('%Y-%m-%d %H:%M')} · {CATALOGUE_OFFERS} offers · {args.repeats} repeats, medians",
                flush=True,
            )
            selected = args.only or list(DEFAULT)
            if any(name in selected for name in ("search", "bot")) and "sync" not in selected:
                selected = ["sync", *selected]
            for name in selected:
                await BENCHMARKS[name](ctx)
        finally:
            stop(sandbox)
        judged = [f for f in ctx.figures if f.met is not None]
        missed = [f.name for f in judged if not f.met]
        print(
            f"targets: {len(judged) - len(missed)} of {len(judged)} met"
            + (f"; missed: {', '.join(missed)}" if missed else "")
        )
        return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--only", nargs="*", choices=list(BENCHMARKS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--broadcast-users", type=int, default=2000)
    sys.exit(asyncio.run(main(parser.parse_args())))
