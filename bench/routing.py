"""``python -m bench.routing [--repeats N] [--offers N] [--only latency sync]
[--gaming-goods-rate-limit N] [--verbose]``

Issue 13's figures: one good sold from three sources (GamesDrop, CodeGames, Gaming Goods).

* **latency**: the Buy press (``OrderService.quote``: find-one asked of every source at once,
  then the order and its invoice) and the pre-checkout answer (``pre_checkout_query`` ->
  ``answerPreCheckoutQuery``: find-one of every source again, plus the balances), with
  three sources per good, p50 / p95: one customer after another, then 10 customers at
  once; a one-source good is measured alongside for scale.
* **sync**: the bot's start-up sync of all three vendors' catalogues of ``--offers``
  offers each (default 64,000): seconds per vendor (from ``sync_runs``) and in all, and
  the peak RSS (VmHWM) of the bot process. CodeGames has no feed: all its offer ids are
  listed (``CODEGAMES__OFFER_IDS``) and refreshed one find-one each. With
  ``BENCH_PROFILE=path`` (and py-spy on ``PATH``) the first round's bot is sampled from
  its start until it polls.

Every part is a process of its own on 127.0.0.1: the three sandboxes
(``python -m sandboxes.<name>``), the bot (``python -m bot``, run from a folder whose
``.env`` holds its settings, as deployed) and this process, which serves the fake Bot API.

The default catalogues of the three sandboxes share no good under
``services.routing.match_key`` (Gaming Goods names an offer by its whole title, the
others by product and amount), so the latency run links goods the way a shop owner
would: ``/link g:<id> c:<id>`` and ``/link g:<id> gg:<id>`` sent by the bot's admin
through the fake Bot API. Each linked good is three gift cards (no player ID) in stock.

Gaming Goods allows 100 requests per minute per IP (FIELD-NOTES); the sandbox enforces
it. ``--gaming-goods-rate-limit`` (default 100,000, i.e. off) sets the sandbox's limit:
the default measures the bot's own cost; ``100`` measures what the documented limit does
(the sync then waits out a minute per 100 pages of 100 products).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx

from bench.harness import (
    BOT_TOKEN,
    ROOT,
    SUPPLIER_TOKEN,
    Figure,
    free_port,
    median,
    memory_mb,
    percentile,
    start_profiler,
    stop,
    stop_profiler,
)
from sandboxes.codegames import generate_catalogue as codegames_catalogue
from sandboxes.gaming_goods import DEFAULT_API_KEY, DEFAULT_JWT
from sandboxes.telegram import FakeTelegram, FakeUser

CATALOGUE_OFFERS = 64_000
ADMIN_ID = 4_200_001
#: goods linked across the three suppliers; each is bought twice per repeat one customer
#: at a time, and once more in the crowded pass
LINKED_GOODS = 20
#: customers buying at the same time in the crowded pass
CROWD = 10


@dataclass
class Sandboxes:
    """The three sandbox processes and their base URLs."""

    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    urls: dict[str, str] = field(default_factory=dict)

    def stop(self) -> None:
        for process in self.processes:
            stop(process)


def spawn_sandbox(name: str, port: int, offers: int, *extra: str) -> subprocess.Popen[bytes]:
    """``python -m sandboxes.<name> --port P --offers N [extra]`` in its own process."""
    command = [sys.executable, "-m", f"sandboxes.{name}", "--port", str(port)]
    return subprocess.Popen(
        [*command, "--offers", str(offers), *extra],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


async def start_sandboxes(offers: int, gaming_goods_rate_limit: int) -> Sandboxes:
    """GamesDrop (postpaid), CodeGames and Gaming Goods (Partner API), ``offers`` offers
    each, every one ``python -m sandboxes.<name>`` in its own process."""
    commands = {
        "gamesdrop": ["--token", SUPPLIER_TOKEN, "--postpaid", "--topup-seconds", "1"],
        "codegames": ["--token", SUPPLIER_TOKEN, "--process-seconds", "1"],
        "gaming_goods": ["--rate-limit", str(gaming_goods_rate_limit), "--fulfil-seconds", "0"],
    }
    running = Sandboxes()
    try:
        for name, extra in commands.items():
            port = free_port()
            running.processes.append(spawn_sandbox(name, port, offers, *extra))
            running.urls[name] = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient() as client:
            for name, url in running.urls.items():
                for _ in range(1200):
                    try:
                        await client.get(f"{url}/_sandbox/state", timeout=1)
                        break
                    except httpx.TransportError:
                        await asyncio.sleep(0.1)
                else:
                    raise RuntimeError(f"the {name} sandbox did not start")
    except BaseException:
        running.stop()
        raise
    return running


def bot_settings(
    telegram_url: str, sandboxes: Sandboxes, database: Path, codegames_ids: list[str]
) -> dict[str, str]:
    """The ``.env`` of the bot under test: all three vendors on their sandboxes, no
    scheduled syncs, the benchmark's admin. (``CODEGAMES__OFFER_IDS`` for 64,000 offers
    is ~380 kB, over the 128 kB Linux allows one environment variable: hence a file.)"""
    gg = sandboxes.urls["gaming_goods"]
    return {
        "TELEGRAM__TOKEN": BOT_TOKEN,
        "TELEGRAM__API_BASE": telegram_url,
        "GAMESDROP__TOKEN": SUPPLIER_TOKEN,
        "GAMESDROP__BASE_URL": sandboxes.urls["gamesdrop"],
        "GAMESDROP__USER_INFO_URL": f"{sandboxes.urls['gamesdrop']}/api/aggregator/a6/telegram/user-info",
        "GAMESDROP__SYNC_INTERVAL_MINUTES": "0",
        "CODEGAMES__TOKEN": SUPPLIER_TOKEN,
        "CODEGAMES__BASE_URL": sandboxes.urls["codegames"],
        # JSON: the comma form of .env.example fails to load (report of this branch)
        "CODEGAMES__OFFER_IDS": json.dumps(codegames_ids),
        "CODEGAMES__SYNC_INTERVAL_MINUTES": "0",
        "GAMING_GOODS__ORDER_API": "partner",
        "GAMING_GOODS__API_KEY": DEFAULT_API_KEY,
        "GAMING_GOODS__JWT": DEFAULT_JWT,
        "GAMING_GOODS__CATALOG_URL": f"{gg}/api/v1",
        "GAMING_GOODS__PARTNER_URL": f"{gg}/api/partner/v1",
        "DATABASE_PATH": str(database),
        "THROTTLE_RATE": "0",
        "LOG_LEVEL": "WARNING",
        "ADMIN_IDS": f"[{ADMIN_ID}]",
    }


def start_bot(folder: Path, settings: dict[str, str]) -> subprocess.Popen[bytes]:
    """``python -m bot`` run from ``folder``, whose ``.env`` is ``settings``; its stderr
    goes to ``folder/bot.log``. Settings named in this process's environment are removed
    from the child's, so the ``.env`` decides."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ".env").write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
    prefixes = ("TELEGRAM__", "GAMESDROP__", "CODEGAMES__", "GAMING_GOODS__")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes) and k not in settings}
    env["PYTHONPATH"] = str(ROOT)
    with (folder / "bot.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "bot"], cwd=folder, env=env,
            stdout=subprocess.DEVNULL, stderr=log,
        )  # fmt: skip


async def wait_polling(
    tg: FakeTelegram, process: subprocess.Popen[bytes], log: Path, timeout: float
) -> float:
    """Seconds until the bot first asks ``getUpdates`` (it syncs every supplier first)."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if tg.method_calls["getUpdates"]:
            return time.perf_counter() - started
        if process.poll() is not None:
            raise RuntimeError(f"the bot exited: {tail(log)}")
        await asyncio.sleep(0.05)
    raise RuntimeError(f"the bot did not start polling in {timeout:.0f} s")


def tail(log: Path, chars: int = 3000) -> str:
    return log.read_text()[-chars:]


def sync_runs(database: Path) -> dict[str, tuple[float, int, str]]:
    """Each supplier's latest sync: (seconds, offers, status), from ``sync_runs``."""
    found: dict[str, tuple[float, int, str]] = {}
    with sqlite3.connect(database) as conn:
        for supplier, started, finished, offers, status in conn.execute(
            "SELECT supplier, started_at, finished_at, offers, status FROM sync_runs ORDER BY id"
        ):
            seconds = (
                datetime.fromisoformat(finished) - datetime.fromisoformat(started)
            ).total_seconds()
            found[supplier] = (seconds, offers or 0, status)
    return found


def report_log(log: Path, verbose: bool) -> None:
    """Say how many warnings and errors the bot logged (``verbose``: print them)."""
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    print(f"# {log.parent.name}: {len(lines)} log lines at WARNING or above", flush=True)
    if verbose:
        for line in lines[-40:]:
            print(f"#   {line}", flush=True)


# -- latency ---------------------------------------------------------------------------


def codegames_gift_cards(offers: int, count: int) -> list[str]:
    """``count`` CodeGames gift cards (instant, a key, no player ID) spread over the
    sandbox's catalogue of ``offers``."""
    cards = [
        str(o.offer_id)
        for o in codegames_catalogue(offers)
        if o.returns_key and o.instant and not o.needs_player and o.in_stock
    ]
    step = max(1, len(cards) // count)
    return cards[::step][:count]


def gift_cards(database: Path, supplier: str, count: int, seed: int) -> list[str]:
    """``count`` active gift cards of ``supplier`` in stock (no player ID, no server) from
    the bot's synced catalogue, chosen at random (same ``seed``, same choice)."""
    with sqlite3.connect(database) as conn:
        ids = [
            row[0]
            for row in conn.execute(
                """SELECT offer_id FROM offers WHERE supplier = ? AND active = 1 AND in_stock = 1
                   AND needs_player = 0 AND needs_server = 0 AND category = 'Gift Cards'
                   ORDER BY offer_id""",
                (supplier,),
            )
        ]
    return random.Random(seed).sample(ids, count)


async def admin_link(admin: FakeUser, first: str, second: str) -> None:
    mark = admin.mark()
    await admin.send(f"/link {first} {second}")
    await admin.wait_for_text("Linked:", timeout=30, since=mark)


async def buy_once(tg: FakeTelegram, user: FakeUser, ref: str) -> tuple[float, float]:
    """Open the offer ``<short>_<id>``, press Buy, pay: (ms from the Buy press to the
    invoice, ms from the pre-checkout query to the bot's answer)."""
    mark = user.mark()
    await user.send(f"/start offer_{ref}")
    await user.wait_for_text("⭐", timeout=30, since=mark)
    mark = user.mark()
    message, button = user.find_button("Buy for")
    started = time.perf_counter()
    await user.press_data(button["callback_data"], message)
    invoice = await tg.wait_until(
        lambda: next((m for m in user.messages[mark:] if "invoice" in m), None), timeout=30
    )
    quote_ms = (invoice["_sent_at"] - started) * 1000
    started = time.perf_counter()
    paid, error = await user.pay(invoice)
    precheckout_ms = (time.perf_counter() - started) * 1000  # the answer, then one push
    if not paid:
        raise RuntimeError(f"pre-checkout refused {ref}: {error}")
    return quote_ms, precheckout_ms


async def buy_at_once(
    tg: FakeTelegram, refs: list[str], round_no: int
) -> list[tuple[float, float]]:
    """:data:`CROWD` customers at once, each buying ``len(refs) / CROWD`` linked goods
    one after another: (quote ms, pre-checkout ms) of every purchase."""
    users = [tg.user(6_000_000 + round_no * 100 + i, f"Crowd {i}") for i in range(CROWD)]
    for user in users:
        await user.send("/start")
    await tg.wait_until(lambda: all(u.messages for u in users), timeout=30)

    async def shop(i: int, user: FakeUser) -> list[tuple[float, float]]:
        return [await buy_once(tg, user, ref) for ref in refs[i::CROWD]]

    found = await asyncio.gather(*(shop(i, user) for i, user in enumerate(users)))
    return [sample for samples in found for sample in samples]


async def bench_latency(
    args: argparse.Namespace, folder: Path, sandboxes: Sandboxes
) -> list[Figure]:
    tg = FakeTelegram(BOT_TOKEN, precheckout_deadline=10)
    await tg.start()
    database = folder / "latency.sqlite3"
    codegames_ids = codegames_gift_cards(args.offers, LINKED_GOODS)
    bot = start_bot(
        folder / "latency-bot", bot_settings(tg.base_url, sandboxes, database, codegames_ids)
    )
    try:
        await wait_polling(tg, bot, folder / "latency-bot" / "bot.log", timeout=900)
        gamesdrop = gift_cards(database, "gamesdrop", 2 * LINKED_GOODS, seed=13)
        gaming_goods = gift_cards(database, "gaming_goods", LINKED_GOODS, seed=17)
        linked, alone = gamesdrop[:LINKED_GOODS], gamesdrop[LINKED_GOODS:]
        admin = tg.user(ADMIN_ID, "Owner")
        await admin.send("/start")
        await admin.wait_for_text("Welcome", timeout=30)
        for g, c, gg in zip(linked, codegames_ids, gaming_goods, strict=True):
            await admin_link(admin, f"g:{g}", f"c:{c}")
            await admin_link(admin, f"g:{g}", f"gg:{gg}")
        with sqlite3.connect(database) as conn:
            sources = conn.execute(
                "SELECT count(*) FROM offer_links WHERE how = 'manual'"
            ).fetchone()[0]
        if sources != 3 * LINKED_GOODS:
            raise RuntimeError(f"expected {3 * LINKED_GOODS} linked offers, found {sources}")
        # every linked good is opened through each of its three offers in turn
        refs = [
            [f"g_{g}", f"c_{c}", f"gg_{gg}"][i % 3]
            for i, (g, c, gg) in enumerate(zip(linked, codegames_ids, gaming_goods, strict=True))
        ]
        quote_p50, quote_p95, pre_p50, pre_p95, one_quote_p95, one_pre_p95 = [], [], [], [], [], []
        crowd_quote_p95: list[float] = []
        crowd_pre_p95: list[float] = []
        for round_no in range(args.repeats):
            user = tg.user(5_000_000 + round_no, f"Buyer {round_no}")
            await user.send("/start")
            await user.wait_for_text("Welcome", timeout=30)
            three = [await buy_once(tg, user, ref) for ref in refs * 2]
            one = [await buy_once(tg, user, f"g_{g}") for g in alone]
            quotes, pres = [q for q, _ in three], [p for _, p in three]
            quote_p50.append(percentile(quotes, 50))
            quote_p95.append(percentile(quotes, 95))
            pre_p50.append(percentile(pres, 50))
            pre_p95.append(percentile(pres, 95))
            one_quote_p95.append(percentile([q for q, _ in one], 95))
            one_pre_p95.append(percentile([p for _, p in one], 95))
            crowd = await buy_at_once(tg, refs, round_no)
            crowd_quote_p95.append(percentile([q for q, _ in crowd], 95))
            crowd_pre_p95.append(percentile([p for _, p in crowd], 95))
        report_log(folder / "latency-bot" / "bot.log", args.verbose)
        return [
            Figure("quote_3_sources_p50 (Buy press -> invoice)", median(quote_p50), "ms"),
            Figure(
                "quote_3_sources_p95 (Buy press -> invoice)", median(quote_p95), "ms", ("<", 300)
            ),
            Figure("precheckout_3_sources_p50 (query -> answer)", median(pre_p50), "ms"),
            Figure(
                "precheckout_3_sources_p95 (query -> answer)", median(pre_p95), "ms", ("<", 300)
            ),
            Figure(
                f"quote_3_sources_p95_{CROWD}_customers_at_once",
                median(crowd_quote_p95),
                "ms",
                ("<", 300),
            ),
            Figure(
                f"precheckout_3_sources_p95_{CROWD}_customers_at_once",
                median(crowd_pre_p95),
                "ms",
                ("<", 300),
            ),
            Figure("quote_1_source_p95 (for scale)", median(one_quote_p95), "ms"),
            Figure("precheckout_1_source_p95 (for scale)", median(one_pre_p95), "ms"),
        ]
    finally:
        stop(bot)
        await tg.stop()


# -- sync ------------------------------------------------------------------------------


async def bench_sync(args: argparse.Namespace, folder: Path, sandboxes: Sandboxes) -> list[Figure]:
    """The bot's start-up sync of all three vendors into an empty database, ``repeats``
    times (a fresh bot and database each)."""
    tg = FakeTelegram(BOT_TOKEN)
    await tg.start()
    codegames_ids = [str(o.offer_id) for o in codegames_catalogue(args.offers)]
    per_vendor: dict[str, list[float]] = {}
    totals, to_polling, peaks = [], [], []
    try:
        for round_no in range(args.repeats):
            database = folder / f"sync-{round_no}.sqlite3"
            where = folder / f"sync-bot-{round_no}"
            tg.method_calls.clear()
            bot = start_bot(where, bot_settings(tg.base_url, sandboxes, database, codegames_ids))
            spy = start_profiler(bot.pid) if round_no == 0 else None
            try:
                to_polling.append(await wait_polling(tg, bot, where / "bot.log", timeout=3600))
                peaks.append(memory_mb(bot.pid)[1])
            finally:
                stop_profiler(spy)
                stop(bot)
            report_log(where / "bot.log", args.verbose)
            runs = sync_runs(database)
            for name, (seconds, offers, status) in runs.items():
                if status != "ok" or offers != args.offers:
                    raise RuntimeError(f"sync of {name}: {status}, {offers} offers")
                per_vendor.setdefault(name, []).append(seconds)
            totals.append(sum(seconds for seconds, _, _ in runs.values()))
            print(f"# sync round {round_no + 1}: " + ", ".join(
                f"{name} {seconds:.1f} s" for name, (seconds, _, _) in runs.items()
            ), flush=True)  # fmt: skip
        figures = [
            Figure(f"catalogue_sync_{name}_{args.offers}", median(values), "s")
            for name, values in sorted(per_vendor.items())
        ]
        codegames = median(per_vendor["codegames"])
        figures += [
            Figure("catalogue_sync_codegames_per_offer", codegames / args.offers * 1000, "ms"),
            Figure("catalogue_sync_all_three (sum of the three)", median(totals), "s"),
            Figure("bot_start_to_polling (imports, migrations, the three syncs)", median(to_polling), "s"),
            Figure("catalogue_sync_all_three_peak_rss (bot process VmHWM)", max(peaks), "MB"),
        ]  # fmt: skip
        return figures
    finally:
        await tg.stop()


async def main(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        print(
            f"# {time.strftime('%Y-%m-%d %H:%M')} · {args.offers} offers per vendor · "
            f"{args.repeats} repeats, medians · Gaming Goods sandbox limit "
            f"{args.gaming_goods_rate_limit} requests/min",
            flush=True,
        )
        sandboxes = await start_sandboxes(args.offers, args.gaming_goods_rate_limit)
        figures: list[Figure] = []
        try:
            for part, run in (("latency", bench_latency), ("sync", bench_sync)):
                if part in args.only:
                    for figure in await run(args, folder, sandboxes):
                        figures.append(figure)
                        print(figure.line(), flush=True)
        finally:
            sandboxes.stop()
    judged = [f for f in figures if f.met is not None]
    missed = [f.name for f in judged if not f.met]
    print(
        f"targets: {len(judged) - len(missed)} of {len(judged)} met"
        + (f"; missed: {', '.join(missed)}" if missed else "")
    )
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.routing")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--offers", type=int, default=CATALOGUE_OFFERS, help="per vendor")
    parser.add_argument(
        "--only", nargs="*", choices=["latency", "sync"], default=["latency", "sync"]
    )
    parser.add_argument("--gaming-goods-rate-limit", type=int, default=100_000)
    parser.add_argument("--verbose", action="store_true", help="print the tail of the bot's log")
    sys.exit(asyncio.run(main(parser.parse_args())))
