"""Own stock storage: keys are not in the database file in clear text, and a key is handed
out once, even to two takers on two connections to one file (two bot processes)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from services.own_stock import KeyBox, OwnStock, UploadTarget, read_lines
from storage.db import Database
from storage.stock import StockRepository

SECRET = "a-test-secret-that-is-long-enough-0123456789"
TARGET = UploadTarget("n1", "Steam Wallet", "Steam 10 USD", "Gift Cards")


@pytest.fixture
async def two_dbs(tmp_path: Path) -> AsyncIterator[tuple[Database, Database]]:
    first = await Database.open(tmp_path / "shop.sqlite3")
    second = await Database.open(tmp_path / "shop.sqlite3")
    yield first, second
    await first.close()
    await second.close()


def _database_bytes(folder: Path, stem: str) -> bytes:
    """The database file with its WAL and shared-memory files, as a dump would copy them."""
    return b"".join(p.read_bytes() for p in sorted(folder.iterdir()) if p.name.startswith(stem))


def _stock(db: Database) -> OwnStock:
    return OwnStock(StockRepository(db), KeyBox(SECRET))


async def _upload(stock: OwnStock, keys: list[str], cost: str = "4.50") -> int:
    report = await stock.upload(TARGET, read_lines("\n".join(keys)), Decimal(cost), "USD", 1)
    assert report.added == len(keys)
    return report.product


async def test_the_database_file_never_holds_a_key_in_clear_text(tmp_path: Path) -> None:
    path = tmp_path / "dump.sqlite3"
    db = await Database.open(path)
    keys = [f"AAAA-BBBB-{n:04d}-ZZZZ" for n in range(50)]
    try:
        await _upload(_stock(db), keys)
    finally:
        await db.close()

    dump = _database_bytes(tmp_path, "dump")
    assert b"stock_keys" in dump  # the table is there...
    for key in keys:
        assert key.encode() not in dump  # ...but no key in clear text
    assert b"AAAA-BBBB" not in dump


async def test_two_connections_taking_at_once_never_share_a_key(
    two_dbs: tuple[Database, Database],
) -> None:
    first, second = (StockRepository(db) for db in two_dbs)
    keys = [f"KEY-{n:03d}" for n in range(20)]
    product = await _upload(_stock(two_dbs[0]), keys)

    taken = await asyncio.gather(
        *(
            (first if n % 2 else second).take(product, f"shop-{n}")
            for n in range(30)  # 30 orders for 20 keys, alternating processes
        )
    )

    sold = [key for key in taken if key is not None]
    assert len(sold) == 20
    assert len({key.id for key in sold}) == 20
    assert len({key.taken_by for key in sold}) == 20
    assert sum(key is None for key in taken) == 10


async def test_the_last_key_goes_to_exactly_one_of_two_takers(
    two_dbs: tuple[Database, Database],
) -> None:
    product = await _upload(_stock(two_dbs[0]), ["THE-LAST-KEY"])
    first, second = (StockRepository(db) for db in two_dbs)

    a, b = await asyncio.gather(first.take(product, "shop-1"), second.take(product, "shop-2"))

    assert (a is None) != (b is None)
    assert await first.available(product) == 0


async def test_a_repeat_with_the_same_transaction_id_gets_the_same_key(
    two_dbs: tuple[Database, Database],
) -> None:
    product = await _upload(_stock(two_dbs[0]), ["K-1", "K-2", "K-3"])
    first, second = (StockRepository(db) for db in two_dbs)

    once = await first.take(product, "shop-7")
    again = await second.take(product, "shop-7")  # the other process, same order

    assert once is not None and again is not None
    assert once.id == again.id
    assert await first.available(product) == 2


async def test_a_withdrawal_is_all_or_none_and_can_be_returned(db: Database) -> None:
    stock = _stock(db)
    product = await _upload(stock, ["W-1", "W-2", "W-3"])
    repo = stock.repo

    assert await repo.withdraw(product, 4, "batch-a") == []
    assert await repo.available(product) == 3

    moved = await repo.withdraw(product, 2, "batch-b")
    assert len(moved) == 2
    assert await repo.available(product) == 1
    assert await repo.take(product, "shop-1") is not None
    assert await repo.take(product, "shop-2") is None  # withdrawn keys are not for sale

    assert await repo.restore("batch-b") == 2
    assert await repo.available(product) == 2


#: one bot process taking keys: opens the database, says "ready", waits for the go file,
#: then takes one key for each of ``count`` orders and prints the ids of the keys it got
_TAKER = """
import asyncio, pathlib, sys
from storage.db import Database
from storage.stock import StockRepository

async def main(path, go, prefix, count, product):
    db = await Database.open(path)
    print("ready", flush=True)
    while not pathlib.Path(go).exists():
        await asyncio.sleep(0.01)
    repo, got = StockRepository(db), []
    for n in range(count):
        key = await repo.take(product, f"{prefix}-{n}")
        if key is not None:
            got.append(key.id)
    await db.close()
    print(" ".join(map(str, got)), flush=True)

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])))
"""


async def test_two_bot_processes_on_one_file_never_hand_out_the_same_key(
    tmp_path: Path,
) -> None:
    path, go = tmp_path / "shop.sqlite3", tmp_path / "go"
    db = await Database.open(path)
    try:
        product = await _upload(_stock(db), [f"P-{n:03d}" for n in range(40)])
    finally:
        await db.close()
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _TAKER,
            str(path),
            str(go),
            prefix,
            "30",
            str(product),
            stdout=asyncio.subprocess.PIPE,
        )
        for prefix in ("one", "two")
    ]
    for process in processes:
        assert process.stdout is not None
        assert await asyncio.wait_for(process.stdout.readline(), 30) == b"ready\n"
    go.touch()
    outputs = [await asyncio.wait_for(p.communicate(), 60) for p in processes]

    assert [p.returncode for p in processes] == [0, 0]
    taken = [[int(i) for i in out.split()] for out, _err in outputs]
    assert sum(len(ids) for ids in taken) == 40  # 60 orders, 40 keys
    assert set(taken[0]).isdisjoint(taken[1])
    assert len(set(taken[0]) | set(taken[1])) == 40
