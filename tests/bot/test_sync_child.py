"""The bot's start-up and hourly syncs run in a child process (``python -m bot.sync_child``),
so their memory never lands in the bot process; it syncs the same database from the same
settings and reports back."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.sync_child import run_sync_child
from sandboxes.gamesdrop import DEFAULT_TOKEN, GamesDropSandbox
from storage.catalogue import CatalogueRepository
from storage.db import Database


async def test_the_child_syncs_the_bots_database_and_reports(
    sandbox: GamesDropSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "shop.sqlite3"
    monkeypatch.chdir(tmp_path)  # no .env here
    for name, value in {
        "TELEGRAM__TOKEN": "123456:TEST-token",
        "GAMESDROP__TOKEN": DEFAULT_TOKEN,
        "GAMESDROP__BASE_URL": sandbox.base_url,
        "DATABASE_PATH": str(database),
        "ADMIN_IDS": "[]",
    }.items():
        monkeypatch.setenv(name, value)

    [report] = await run_sync_child(None)

    assert (report.supplier, report.offers, report.held) == ("gamesdrop", 300, False)
    db = await Database.open(database)
    try:
        assert await CatalogueRepository(db).size("gamesdrop") == 300
    finally:
        await db.close()


async def test_a_failing_child_is_an_error_in_the_bot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_PATH", str(tmp_path / "shop.sqlite3"))
    monkeypatch.setenv("GAMESDROP__TOKEN", DEFAULT_TOKEN)
    monkeypatch.setenv("GAMESDROP__BASE_URL", "http://127.0.0.1:9")  # nothing listens
    with pytest.raises(RuntimeError, match="exited with 1"):
        await run_sync_child(None)
