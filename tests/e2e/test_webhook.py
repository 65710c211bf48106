"""Webhook mode: updates arrive over HTTP with Telegram's secret-token header."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from pathlib import Path

import httpx

from bot.app import create_shop
from bot.offline import OfflineShop


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_webhook_checks_the_secret_token_and_handles_updates(tmp_path: Path) -> None:
    offline = OfflineShop(tmp_path / "webhook.sqlite3")
    await offline.sandbox.start()
    await offline.telegram.start()
    port = free_port()
    offline.settings_overrides = {
        "telegram": {"webhook_url": "https://shop.example/telegram", "webhook_secret": "s3cret",
                     "webhook_host": "127.0.0.1", "webhook_port": port},
    }  # fmt: skip
    shop = await create_shop(offline.settings(), timings=offline.timings)
    server = asyncio.create_task(shop.run_webhook())
    try:
        await offline.telegram.wait_until(lambda: offline.telegram.webhook_url, timeout=10)
        assert offline.telegram.webhook_url == "https://shop.example/telegram"
        user = offline.telegram.user(4242, "Hook")
        update = {"update_id": 1, "message": {"message_id": 1, "date": 0, "text": "/start",
                  "chat": {"id": 4242, "type": "private", "first_name": "Hook"},
                  "from": {"id": 4242, "is_bot": False, "first_name": "Hook"},
                  "entities": [{"type": "bot_command", "offset": 0, "length": 6}]}}  # fmt: skip
        async with httpx.AsyncClient() as client:
            for _ in range(50):
                try:
                    refused = await client.post(
                        f"http://127.0.0.1:{port}/telegram", json=update,
                        headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"},
                    )  # fmt: skip
                    break
                except httpx.ConnectError:
                    await asyncio.sleep(0.1)
            assert refused.status_code == 401
            assert user.messages == []
            accepted = await client.post(
                f"http://127.0.0.1:{port}/telegram", json=update,
                headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret"},
            )  # fmt: skip
        assert accepted.status_code == 200
        await user.wait_for_text("Welcome")
    finally:
        server.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await server
        await shop.close()
        await offline.telegram.stop()
        await offline.sandbox.stop()
