"""``python -m bot.demo``: the shop working offline, as a readable transcript.

Starts the GamesDrop sandbox, the fake Telegram Bot API and the real bot (long polling
over HTTP on 127.0.0.1, an SQLite order log in a temporary folder), then scripted
customers and an admin walk the journeys: buy test offer 999 and get the key, top up a
game with player and server, gift Stars to a @username, a supplier failure refunded,
the admin checking balance and stats. Ends with a summary from the order log.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import textwrap
from pathlib import Path

from bot.logs import setup_logging
from bot.offline import ADMIN_ID, OfflineShop
from sandboxes.gamesdrop import SandboxConfig
from sandboxes.telegram import FakeUser, TranscriptLine

GENSHIN_60 = 10_010
PUBG_60 = 10_001
WIDTH = 78


class Narrator:
    """Prints the fake Bot API's transcript as it grows."""

    def __init__(self, offline: OfflineShop, names: dict[int, str]) -> None:
        self._offline = offline
        self._names = names
        self._printed = 0

    def chapter(self, title: str) -> None:
        self.flush()
        print(f"\n── {title} " + "─" * max(3, WIDTH - len(title) - 4))

    def flush(self) -> None:
        lines = self._offline.telegram.transcript
        for line in lines[self._printed :]:
            print(self._format(line))
        self._printed = len(lines)

    def _format(self, line: TranscriptLine) -> str:
        name = self._names.get(line.chat_id, str(line.chat_id))
        if line.who == "user":
            verbs = {"press": "presses", "pay": "", "share": "", "forward": "", "inline": "types"}
            verb = verbs.get(line.kind)
            text = f"[{line.text}]" if line.kind == "press" else line.text
            head = f"{name:>8} › " + (f"{verb} {text}" if verb else text)
            return head
        marks = {
            "edit": "✎ ",
            "invoice": "🧾 ",
            "refund": "↩ ",
            "toast": "💬 ",
            "alert": "⚠ ",
            "precheckout": "✖ ",
        }
        body = textwrap.indent(line.text, " " * 11).strip()
        out = f"{'bot':>8} › {marks.get(line.kind, '')}{body}"
        for row in line.buttons:
            out += "\n" + " " * 11 + "  ".join(f"[{b}]" for b in row)
        return out


async def _invoice(user: FakeUser, offline: OfflineShop) -> None:
    await offline.telegram.wait_until(lambda: any("invoice" in m for m in user.messages[-2:]))


async def run_demo(database: Path, topup_seconds: float) -> int:
    offline = OfflineShop(database, sandbox_config=SandboxConfig(topup_seconds=topup_seconds))
    await offline.start()
    tg = offline.telegram
    alice = tg.user(1001, "Alice", username="alice_gamer")
    bob = tg.user(1002, "Bob", username="bob_the_builder")
    vera = tg.user(1003, "Vera", username="vera_ru", language_code="ru")
    dave = tg.user(1004, "Dave")
    admin = tg.user(ADMIN_ID, "Owner", username="shop_owner")
    names = {alice.id: "Alice", bob.id: "Bob", vera.id: "Vera", dave.id: "Dave", admin.id: "Admin"}
    narrator = Narrator(offline, names)
    try:
        narrator.chapter("Alice browses the catalogue and buys test offer 999")
        await alice.send("/start")
        await alice.wait_for_text("Welcome")
        await alice.press("Catalogue")
        await alice.wait_for_text("Choose a category")
        await alice.press("Gift cards")
        await alice.wait_for_text("choose a game")
        await alice.send("steam")
        await alice.wait_for_text("Found for")
        await alice.press("Steam US")
        await alice.wait_for_text("denomination")
        await alice.press("TEST OFFER GROUP")
        await alice.wait_for_text("You get")
        await alice.press("Buy for")
        await _invoice(alice, offline)
        await alice.pay()
        await alice.wait_for_text("Your key")

        narrator.chapter("Bob tops up Genshin Impact: player ID, server, login check")
        await bob.send(f"/start offer_{GENSHIN_60}")
        await bob.wait_for_text("Price:")
        await bob.press("Buy for")
        await bob.wait_for_text("Send your player ID")
        await bob.send("12345678")
        await bob.wait_for_text("Choose your game server")
        await bob.press("Europe")
        await bob.wait_for_text("Please check your order")
        await bob.press("Pay")
        await _invoice(bob, offline)
        await bob.pay()
        await bob.wait_for_text("is being processed")
        narrator.flush()
        print(
            f"{'':>8}   (the supplier takes {topup_seconds:.0f} s; the bot keeps polling the order)"
        )
        await bob.wait_for_text("is complete", timeout=topup_seconds + 30)

        narrator.chapter("Vera (Russian) gifts 100 Telegram Stars to @alice_gamer")
        await vera.send("/start")
        await vera.wait_for_text("Привет")
        await vera.press("Подарить Stars")
        await vera.wait_for_text("сколько Stars")
        await vera.press("100 Stars")
        await vera.wait_for_text("Кому отправить")
        await vera.send("@shy_sam")
        await vera.wait_for_text("id аккаунта пока недоступен")
        await vera.send("t.me/alice_gamer")
        await vera.wait_for_text("Вы дарите")
        await vera.press("Оплатить")
        await _invoice(vera, offline)
        await vera.pay()
        await vera.wait_for_text("отправлены получателю")

        narrator.chapter("Dave's top-up is canceled by the supplier and refunded")
        await dave.send(f"/start offer_{PUBG_60}")
        await dave.wait_for_text("Price:")
        await dave.press("Buy for")
        await dave.wait_for_text("Send your player ID")
        await dave.send("55555555")
        await dave.wait_for_text("Please check your order")
        await dave.press("Pay")
        await _invoice(dave, offline)
        await dave.pay()
        await dave.wait_for_text("could not be completed", timeout=topup_seconds + 30)
        await dave.wait_for_text("were refunded", timeout=30)

        narrator.chapter("The shop owner checks the supplier balance and today's stats")
        await admin.send("/admin")
        await admin.wait_for_text("What do you want")
        await admin.press("Balance")
        await admin.wait_for_text("Supplier balance")
        await admin.press("Back")
        await admin.wait_for_text("What do you want", since=admin.mark() - 1)
        await admin.press("Stats")
        await admin.wait_for_text("Stats: today")
        narrator.flush()
        await _summary(offline)
        return 0
    finally:
        await offline.stop()


async def _summary(offline: OfflineShop) -> None:
    assert offline.shop is not None
    db = offline.shop.db
    print("\n── Order log " + "─" * (WIDTH - 13))
    rows = await db.fetchall(
        """SELECT o.id, u.first_name, o.product_name, o.offer_name, o.stars, o.status,
                  o.supplier_order_id, (SELECT count(*) FROM order_events e WHERE e.order_id = o.id) AS events
           FROM orders o JOIN users u ON u.id = o.user_id ORDER BY o.id"""
    )
    print(
        f"{'#':>3}  {'customer':<8} {'product':<34} {'Stars':>5}  {'status':<10} {'supplier':>9} {'events':>6}"
    )
    for r in rows:
        product = f"{r['product_name']} — {r['offer_name']}"[:34]
        print(
            f"{r['id']:>3}  {r['first_name']:<8} {product:<34} {r['stars']:>5}  {r['status']:<10} "
            f"{r['supplier_order_id'] or '-':>9} {r['events']:>6}"
        )
    taken = await db.fetchval("SELECT coalesce(sum(stars), 0) FROM payments")
    refunded = await db.fetchval(
        "SELECT coalesce(sum(stars), 0) FROM refunds WHERE status = 'done'"
    )
    balance = await next(iter(offline.shop.suppliers)).get_balance()
    print(
        f"\nStars taken: {taken}   refunded: {refunded}   kept: {taken - refunded}   "
        f"supplier balance: {balance.balance} {balance.currency}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bot.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--database", type=Path, help="SQLite file (default: a temporary one)")
    parser.add_argument(
        "--topup-seconds", type=float, default=3.0, help="how long the sandbox takes per top-up"
    )
    parser.add_argument("--verbose", action="store_true", help="show the bot's logs too")
    args = parser.parse_args()
    setup_logging(*(("INFO", "WARNING") if args.verbose else ("ERROR", "ERROR")))
    print("Game shop: offline demo (GamesDrop sandbox + fake Telegram Bot API on 127.0.0.1)")
    with tempfile.TemporaryDirectory() as folder:
        database = args.database or Path(folder) / "demo.sqlite3"
        sys.exit(asyncio.run(run_demo(database, args.topup_seconds)))


if __name__ == "__main__":
    main()
