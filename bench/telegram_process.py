"""``python -m bench.telegram_process --port P [--webhook-target URL ...]``: the fake Bot API
in a process of its own.

The benchmark's simulated customers run in the benchmark process and act through
``POST /_bench/act`` (JSON ``{"user", "action", "arg", "wait", "timeout"}``); this process
pushes the update, waits for the bot's answer and measures the latency on its own clock,
from the moment the update was queued (for ``getUpdates``, or for webhook delivery) to
the Bot API call that answered it. So neither the customers' work nor the bot's shares a process (or an event
loop) with the measurement.

Actions: ``send`` (type ``arg``), ``press`` (the newest button whose text contains
``arg``), ``press_data`` (callback data ``arg`` on the newest bot message), ``pay`` (the
newest invoice; latency from the ``successful_payment`` update). ``wait``: ``any`` (a new
bot message, or an edit of the pressed one) or ``text:<needle>``. The answer:
``{"ms", "text", "buttons": [[text, data], ...]}``; ``{"error"}`` with status 504 on timeout.
``GET /_bench/calls`` gives the Bot API calls served so far; ``GET /_bench/ready`` says
whether the bot has polled.

``--webhook-target URL`` (repeatable): once the bot calls ``setWebhook``, its updates are
POSTed to these URLs in turn, as a load balancer in front of the bot's workers would
(:attr:`sandboxes.telegram.FakeTelegram.webhook_targets`); one URL for ``python -m bot
--workers N`` (its workers share one socket), one per process for separate processes.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from aiohttp import web

from sandboxes.serving import run_command_line
from sandboxes.telegram import FakeTelegram, FakeUser


class BenchTelegram(FakeTelegram):
    """The fake Bot API plus the ``/_bench`` routes the benchmark drives it by. Each chat's
    latest bot output (a new message or an edit) wakes only that chat's waiting customer,
    so the fake's own work does not grow with the number of customers or messages."""

    def __init__(self, token: str, webhook_targets: list[str] | None = None) -> None:
        super().__init__(token, precheckout_deadline=10, webhook_targets=webhook_targets)
        self.customers: dict[int, FakeUser] = {}
        self._pushed_at: dict[int, float] = {}  # user id -> when their latest update was queued
        self._outputs: dict[int, asyncio.Queue[dict[str, Any]]] = {}
        self.app.router.add_post("/_bench/act", self._act)
        self.app.router.add_get("/_bench/calls", self._calls)

    def customer(self, user_id: int) -> FakeUser:
        if user_id not in self.customers:
            self.customers[user_id] = self.user(user_id, f"Customer {user_id}")
        return self.customers[user_id]

    def _push_update(self, update: dict[str, Any], fan_out: bool = False) -> int:
        update_id = super()._push_update(update, fan_out)
        for event in update.values():
            if isinstance(event, dict) and isinstance(event.get("from"), dict):
                self._pushed_at[event["from"]["id"]] = self.push_times[update_id]
        return update_id

    def _output(self, chat_id: int, message: dict[str, Any]) -> None:
        queue = self._outputs.get(chat_id)
        if queue is not None:
            queue.put_nowait(message)

    def _new_message(self, chat_id: int, **content: Any) -> dict[str, Any]:
        message = super()._new_message(chat_id, **content)
        self._output(chat_id, message)
        return message

    async def _m_editmessagetext(self, p: dict[str, Any]) -> dict[str, Any]:
        result = await super()._m_editmessagetext(p)
        self._output(p["chat_id"], self._messages[(p["chat_id"], p["message_id"])])
        return result

    async def _calls(self, request: web.Request) -> web.Response:
        return web.json_response(dict(self.method_calls))

    async def _act(self, request: web.Request) -> web.Response:
        body = await request.json()
        user = self.customer(int(body["user"]))
        outputs = self._outputs[user.id] = asyncio.Queue()
        try:
            ms, last = await asyncio.wait_for(
                self._perform(
                    user, outputs, body["action"], str(body.get("arg", "")), body["wait"]
                ),
                float(body.get("timeout", 30)),
            )
        except TimeoutError:
            return web.json_response({"error": f"no answer: {user.texts()[-1:]}"}, status=504)
        except LookupError as exc:
            return web.json_response({"error": str(exc)}, status=409)
        finally:
            self._outputs.pop(user.id, None)
        buttons = [
            [button["text"], button.get("callback_data", "")]
            for row in (last.get("reply_markup") or {}).get("inline_keyboard", [])
            for button in row
        ]
        return web.json_response({"ms": ms, "text": last.get("text") or "", "buttons": buttons})

    async def _perform(
        self,
        user: FakeUser,
        outputs: asyncio.Queue[dict[str, Any]],
        action: str,
        arg: str,
        wait: str,
    ) -> tuple[float, dict[str, Any]]:
        """Act, then wait for the bot's first output to this chat (``any``) or the first
        one containing the text; returns (ms since the update was queued, that message)."""
        if action == "send":
            await user.send(arg)
        elif action == "press":
            target, button = user.find_button(arg)
            await user.press_data(button["callback_data"], target, label=button["text"])
        elif action == "press_data":
            await user.press_data(arg, user.last if user.messages else None)
        elif action == "pay":
            paid, error = await user.pay()
            if not paid:
                raise LookupError(f"payment refused: {error}")
        else:
            raise LookupError(f"unknown action {action!r}")
        pushed = self._pushed_at[user.id]
        needle = wait[5:] if wait.startswith("text:") else ""
        while True:
            message = await outputs.get()
            if needle in (message.get("text") or ""):
                return (message["_sent_at"] - pushed) * 1000, message


async def serve(port: int, token: str, webhook_targets: list[str]) -> None:
    telegram = BenchTelegram(token, webhook_targets)
    await telegram.start(port=port)
    print(f"ready {time.time()}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await telegram.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.telegram_process")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument(
        "--webhook-target", action="append", default=[], metavar="URL",
        help="where webhook updates go (repeat for several; round-robin)",
    )  # fmt: skip
    args = parser.parse_args()
    run_command_line(lambda: serve(args.port, args.token, args.webhook_target))


if __name__ == "__main__":
    main()
