"""Start-up: an admin who never opened the bot, a rejected token."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

import pytest

from bot.offline import ADMIN_ID, OfflineShop
from sandboxes.telegram import FakeTelegram

ROOT = Path(__file__).resolve().parents[2]
NEVER_STARTED = 123_456_789  # the example id from .env.example


async def test_an_admin_who_never_started_the_bot_does_not_stop_the_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    shop = OfflineShop(
        tmp_path / "shop.sqlite3", settings_overrides={"admin_ids": [NEVER_STARTED, ADMIN_ID]}
    )
    caplog.set_level(logging.WARNING, logger="bot")
    try:
        await shop.start()
        customer = shop.telegram.user(8101, "Wes")
        await customer.send("/start")
        await customer.wait_for_text("Welcome")
        assert {"admin", "refund"} <= {c["command"] for c in shop.telegram.commands[("chat", "ru")]}
        assert any(str(NEVER_STARTED) in r.getMessage() for r in caplog.records)
    finally:
        await shop.stop()


async def test_a_rejected_token_is_one_clear_line(tmp_path: Path) -> None:
    telegram = FakeTelegram("999:the-real-token")
    await telegram.start()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM", "GAMESDROP"))},
        "TELEGRAM__TOKEN": "123456789:replace-with-your-bot-token",
        "TELEGRAM__API_BASE": telegram.base_url,
        "DATABASE_PATH": str(tmp_path / "shop.sqlite3"),
        "LOG_LEVEL": "DEBUG",  # the shop's loggers only: no SQL with values from aiosqlite
        "PYTHONPATH": str(ROOT),
    }
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "--sandbox", cwd=tmp_path, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, stderr = await asyncio.wait_for(process.communicate(), 60)
    finally:
        await telegram.stop()
    text = stderr.decode()
    assert process.returncode not in (0, None)
    assert "Traceback" not in text, text
    assert "TELEGRAM__TOKEN" in text and "401" in text, text
    assert "DEBUG storage" in text or "DEBUG bot" in text or "INFO storage" in text
    assert "aiosqlite" not in text and "SELECT" not in text and "INSERT" not in text, text


async def _make_run(tmp_path: Path) -> asyncio.subprocess.Process:
    """``make run`` in ``tmp_path`` (its ``.env`` is the one read), with this venv."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM", "GAMESDROP"))}
    return await asyncio.create_subprocess_exec(
        "make", "--no-print-directory", "-f", str(ROOT / "Makefile"), "run",
        f"VENV={Path(sys.executable).parent.parent}", "STAMP=", cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, start_new_session=True,
    )  # fmt: skip


async def test_make_run_starts_the_live_shop_from_dot_env(tmp_path: Path) -> None:
    telegram = FakeTelegram("4242:make-run-token")
    await telegram.start()
    (tmp_path / ".env").write_text(
        "TELEGRAM__TOKEN=4242:make-run-token\n"
        f"TELEGRAM__API_BASE={telegram.base_url}\n"
        f"DATABASE_PATH={tmp_path / 'shop.sqlite3'}\n"
        "SANDBOX=true\nSHOP_NAME=Dot Env Shop\nEVENT_LOOP=uvloop\n",
        encoding="utf-8",
    )
    process = await _make_run(tmp_path)
    try:
        customer = telegram.user(8102, "Rae")
        await customer.send("/start")
        welcome = await customer.wait_for_text("Dot Env Shop", timeout=60)
        assert "Welcome" in welcome["text"]
    finally:
        if process.returncode is None:
            os.killpg(process.pid, signal.SIGINT)
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
        await telegram.stop()
    assert "event loop: uvloop" in stderr.decode()  # the operator's choice, from .env


async def test_make_run_without_dot_env_says_what_to_do(tmp_path: Path) -> None:
    process = await _make_run(tmp_path)
    _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode != 0
    assert "cp .env.example .env" in stderr.decode()


async def test_the_search_index_is_ready_when_the_start_up_sync_ends(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The first customer's search does not wait for the index (~0.2 s for 64,000 offers)."""
    shop = OfflineShop(tmp_path / "shop.sqlite3")
    caplog.set_level(logging.INFO, logger="services.search")
    try:
        await shop.start()  # an empty database: the sync runs before the first update
        assert any(r.getMessage().startswith("search index:") for r in caplog.records)
        customer = shop.telegram.user(8103, "Sam")
        await customer.send("/start")
        await customer.wait_for_text("Welcome")
        caplog.clear()
        await customer.send("genshin")
        await customer.wait_for_text("Found 1 product")
        assert not any(r.getMessage().startswith("search index:") for r in caplog.records)
    finally:
        await shop.stop()
