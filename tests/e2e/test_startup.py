"""Start-up: an admin who never opened the bot, a rejected token."""

from __future__ import annotations

import asyncio
import logging
import os
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
