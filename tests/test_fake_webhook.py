"""The fake Bot API delivers webhooks the way Telegram does: the secret header, one update
of a chat at a time and in order, retries after a non-2xx or a dead connection,
round-robin over a load balancer's targets, and one update fanned out to all of them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramBadRequest, TelegramConflictError
from aiogram.types import LabeledPrice
from aiohttp import web

from sandboxes.serving import LocalServer, free_port
from sandboxes.telegram import FakeTelegram

TOKEN = "42:fake"
SECRET = "hook-Secret_1"


class Receiver(LocalServer):
    """A bot worker's webhook endpoint: records what arrives; answers ``fail`` of the
    next requests with 500 and holds each request ``hold`` seconds."""

    label = "webhook receiver"

    def __init__(self, name: str) -> None:
        self.name = name
        self.got: list[tuple[dict[str, Any], str | None]] = []
        self.fail = 0
        self.hold = 0.0
        self.app = web.Application()
        self.app.router.add_post("/telegram", self._receive)

    async def _receive(self, request: web.Request) -> web.Response:
        update = await request.json()
        await asyncio.sleep(self.hold)
        if self.fail > 0:
            self.fail -= 1
            return web.Response(status=500)
        self.got.append((update, request.headers.get("X-Telegram-Bot-Api-Secret-Token")))
        return web.json_response({})

    def update_ids(self) -> list[int]:
        return [update["update_id"] for update, _ in self.got]


@pytest.fixture
async def receivers() -> AsyncIterator[list[Receiver]]:
    pair = [Receiver("a"), Receiver("b")]
    for receiver in pair:
        await receiver.start()
    yield pair
    for receiver in pair:
        await receiver.stop()


@pytest.fixture
async def tg(receivers: list[Receiver]) -> AsyncIterator[FakeTelegram]:
    server = FakeTelegram(
        TOKEN, webhook_targets=[f"{r.base_url}/telegram" for r in receivers], precheckout_deadline=2
    )
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def bot(tg: FakeTelegram) -> AsyncIterator[Bot]:
    instance = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(tg.base_url)))
    await instance.set_webhook("https://shop.example/telegram", secret_token=SECRET)
    yield instance
    await instance.session.close()


async def test_updates_alternate_between_the_targets_with_the_secret_header(
    tg: FakeTelegram, receivers: list[Receiver], bot: Bot
) -> None:
    users = [tg.user(100 + i) for i in range(4)]
    for user in users:
        await user.send("/start")
    await tg.wait_until(lambda: sum(len(r.got) for r in receivers) == 4)

    assert [len(r.got) for r in receivers] == [2, 2]
    assert {secret for r in receivers for _, secret in r.got} == {SECRET}
    texts = sorted(u["message"]["text"] for r in receivers for u, _ in r.got)
    assert texts == ["/start"] * 4
    assert (await bot.get_webhook_info()).pending_update_count == 0
    with pytest.raises(TelegramConflictError):
        await bot.get_updates()


async def test_a_chat_gets_its_next_update_only_after_the_previous_was_accepted(
    tg: FakeTelegram, receivers: list[Receiver], bot: Bot
) -> None:
    for receiver in receivers:
        receiver.fail = 2  # both workers answer 500 twice: the first update is retried
    alice, bob = tg.user(201), tg.user(202)
    first = await alice.send("one")
    await alice.send("two")
    await bob.send("bob")
    await tg.wait_until(lambda: sum(len(r.got) for r in receivers) == 3, timeout=5)

    got = sorted(
        ((tg.push_times[u["update_id"]], u) for r in receivers for u, _ in r.got),
        key=lambda pair: pair[0],
    )
    alice_texts = [u["message"]["text"] for _, u in got if u["message"]["chat"]["id"] == 201]
    assert alice_texts == ["one", "two"]
    attempts = [a for a in tg.webhook_attempts if a.update_id == first]
    assert [a.ok for a in attempts][-1] and not all(a.ok for a in attempts)
    accepted_first = next(a.at for a in attempts if a.ok)
    second_tries = [a.at for a in tg.webhook_attempts if a.update_id == first + 1]
    assert min(second_tries) > accepted_first  # never before the first got its 2xx
    info = await bot.get_webhook_info()
    assert "500" in (info.last_error_message or "")


async def test_a_dead_target_is_skipped_by_the_retry(
    tg: FakeTelegram, receivers: list[Receiver], bot: Bot
) -> None:
    tg.webhook_targets[1] = f"http://127.0.0.1:{free_port()}/telegram"  # nobody listens
    users = [tg.user(300 + i) for i in range(3)]
    for user in users:
        await user.send("hi")
    await tg.wait_until(lambda: len(receivers[0].got) == 3, timeout=5)

    failed = [a for a in tg.webhook_attempts if a.target == 1]
    assert failed and all(a.status is None and "Connection" in a.error for a in failed)
    assert {a.update_id for a in failed} <= set(receivers[0].update_ids())
    assert len(set(receivers[0].update_ids())) == 3  # each once, none lost


async def test_a_fanned_out_payment_reaches_every_target_at_once(
    tg: FakeTelegram, receivers: list[Receiver], bot: Bot
) -> None:
    for receiver in receivers:
        receiver.hold = 0.3  # both POSTs are under way at the same time

    async def answer_precheckouts() -> None:
        while True:
            for receiver in receivers:
                for update, _ in receiver.got:
                    query = update.get("pre_checkout_query")
                    if query and not query.get("_answered"):
                        query["_answered"] = True
                        await bot.answer_pre_checkout_query(query["id"], ok=True)
            await asyncio.sleep(0.02)

    dora = tg.user(400)
    await bot.send_invoice(
        400, "Key", "A game key", "order:1", "XTR", [LabeledPrice(label="Key", amount=5)]
    )
    answering = asyncio.create_task(answer_precheckouts())
    try:
        paid, error = await dora.pay(fan_out=True)
        assert paid, error
        update_id = tg.last_update_id
        await tg.wait_until(lambda: len(tg.delivered_to(update_id)) == 2, timeout=5)
    finally:
        answering.cancel()

    payments = [
        u["update_id"]
        for r in receivers
        for u, _ in r.got
        if "successful_payment" in u.get("message", {})
    ]
    assert payments == [update_id, update_id]
    starts = sorted(a.at for a in tg.webhook_attempts if a.update_id == update_id)
    assert starts[1] - starts[0] < 0.25  # concurrent, not one after the other


async def test_set_webhook_follows_the_bot_api_rules(tg: FakeTelegram) -> None:
    bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(tg.base_url)))
    try:
        with pytest.raises(TelegramBadRequest, match="HTTPS URL"):
            await bot.set_webhook("http://shop.example/telegram")
        with pytest.raises(TelegramBadRequest, match="secret token"):
            await bot.set_webhook("https://shop.example/telegram", secret_token="no spaces")
        user = tg.user(500)
        await user.send("while polling")
        assert [u.message.text for u in await bot.get_updates()] == ["while polling"]
        await bot.set_webhook("https://shop.example/telegram", secret_token=SECRET)
        await bot.delete_webhook()
        await user.send("polling again")
        texts = [u.message.text for u in await bot.get_updates()]
        assert texts[-1] == "polling again"
    finally:
        await bot.session.close()


async def test_an_update_no_worker_took_stays_pending_for_get_updates(tg: FakeTelegram) -> None:
    tg.webhook_targets = [f"http://127.0.0.1:{free_port()}/telegram"]  # every worker is down
    bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(tg.base_url)))
    try:
        await bot.set_webhook("https://shop.example/telegram", secret_token=SECRET)
        await tg.user(600).send("anyone?")
        await tg.wait_until(lambda: tg.webhook_attempts, timeout=5)
        info = await bot.get_webhook_info()
        assert info.pending_update_count == 1
        assert "Connection failed" in (info.last_error_message or "")

        await bot.delete_webhook()
        assert [u.message.text for u in await bot.get_updates()] == ["anyone?"]
    finally:
        await bot.session.close()
