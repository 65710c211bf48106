"""Webhook mode: updates arrive over HTTP with Telegram's secret-token header."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import httpx

from bot.app import create_shop
from bot.offline import OfflineShop
from sandboxes.gamesdrop import TEST_OFFER_ID
from sandboxes.serving import free_port


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


async def test_a_stopping_webhook_finishes_the_updates_in_hand(tmp_path: Path) -> None:
    """SIGTERM (the task cancelled) while a Buy press waits on a slow supplier: Telegram
    was answered 200 already, so the worker finishes it (the invoice goes out) first."""
    from sandboxes.telegram.server import _public

    offline = OfflineShop(tmp_path / "webhook.sqlite3")
    await offline.sandbox.start()
    await offline.telegram.start()
    port = free_port()
    offline.settings_overrides = {
        "telegram": {"webhook_url": "https://shop.example/telegram", "webhook_host": "127.0.0.1",
                     "webhook_port": port},
    }  # fmt: skip
    shop = await create_shop(offline.settings(), timings=offline.timings)
    await shop.start_background()
    server = asyncio.create_task(shop.run_webhook())
    user = offline.telegram.user(4343, "Slow")
    card = {"update_id": 1, "message": {"message_id": 1, "date": 0,
            "text": f"/start offer_{TEST_OFFER_ID}", "chat": {"id": 4343, "type": "private"},
            "from": user.record, "entities": [{"type": "bot_command", "offset": 0, "length": 6}]}}  # fmt: skip
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(100):
                try:
                    await client.post(f"http://127.0.0.1:{port}/telegram", json=card)
                    break
                except httpx.ConnectError:
                    await asyncio.sleep(0.05)
            await user.wait_for_text("⭐")
            message, button = user.find_button("Buy for")
            offline.sandbox.faults.latency = 1.0  # the fresh price takes a second
            press = {"update_id": 2, "callback_query": {"id": "q-slow", "from": user.record,
                     "message": _public(message), "chat_instance": "ci",
                     "data": button["callback_data"]}}  # fmt: skip
            accepted = await client.post(f"http://127.0.0.1:{port}/telegram", json=press)
        assert accepted.status_code == 200
        await asyncio.sleep(0.3)
        assert "q-slow" not in offline.telegram.callback_answers  # still in hand
        server.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await server
        assert "q-slow" in offline.telegram.callback_answers
        assert any("invoice" in m for m in user.messages)
    finally:
        server.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await server
        await shop.close()
        await offline.telegram.stop()
        await offline.sandbox.stop()
