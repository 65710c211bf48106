"""``python -m bot.demo``: the shop working offline, as a readable transcript.

Starts the GamesDrop and CodeGames sandboxes, the fake Telegram Bot API and the real bot
(long polling over HTTP on 127.0.0.1, an SQLite order log in a temporary folder), then
scripted customers and an admin walk the journeys: buy test offer 999 and get the key, top
up a game with player and server, gift Stars to someone who has not met the shop yet, a
supplier failure refunded, a card sold by both suppliers bought at the other when the
cheaper one sells out after payment, then refunded once when neither can deliver, the
admin checking balance and stats. Every bot message is
labelled with who receives it (a customer or the admin). ``--language ru`` (``make demo
LANG=ru``) plays it in Russian: the people write in Russian and the script finds its
way by the bot's own catalogue texts. Ends with a summary from the order log.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
import textwrap
from decimal import Decimal
from pathlib import Path

from bot.i18n import LANGUAGES, create_i18n
from bot.logs import setup_logging
from bot.offline import ADMIN_ID, OfflineShop
from sandboxes.gamesdrop import SandboxConfig
from sandboxes.telegram import FakeUser, TranscriptLine
from services.suppliers.base import Capability

GENSHIN_60 = 10_010
PUBG_60 = 10_001
#: Steam Wallet / 5 USD: the same good at GamesDrop and at CodeGames (linked by name)
STEAM_5_GAMESDROP = 10_034
STEAM_5_CODEGAMES = "2062"
CENT = Decimal("0.01")
WIDTH = 78

#: the demo's own narration (not bot texts: those come from the bot's catalogues)
NARRATION = {
    "en": {
        "title": "Game shop: offline demo (GamesDrop sandbox + fake Telegram Bot API on 127.0.0.1)",
        "customer": "customer", "admin": "admin", "presses": "presses", "types": "types", "pays": "pays",
        "alice": "Alice browses the catalogue and buys test offer 999",
        "bob": "Bob tops up Genshin Impact: player ID, server, login check",
        "waiting": "(the supplier takes {seconds:.0f} s; the bot keeps polling the order)",
        "vera": "Vera gifts 100 Telegram Stars to @shy_sam, who has not met the shop yet",
        "dave": "Dave's top-up is canceled by the supplier and refunded",
        "erin": "Erin buys a 5 USD Steam Wallet card, sold by two suppliers: the cheaper one sells out as she pays",
        "erin_note": "(GamesDrop answers OUT_OF_STOCK after the payment; the shop buys at CodeGames instead)",
        "finn": "Finn buys the same card when neither supplier can deliver it: one refund",
        "finn_note": "(CodeGames no longer sells the card, and GamesDrop sells out the moment Finn pays)",
        "owner": "The shop owner checks the supplier balance and today's stats",
        "log": "Order log", "search": "steam",
    },
    "ru": {
        "title": "Игровой магазин: офлайн-демо (песочница GamesDrop + имитация Telegram Bot API на 127.0.0.1)",
        "customer": "покупатель", "admin": "админ", "presses": "нажимает", "types": "вводит", "pays": "платит",
        "alice": "Алиса листает каталог и покупает тестовое предложение 999",
        "bob": "Боб пополняет Genshin Impact: ID игрока, сервер, проверка логина",
        "waiting": "(поставщик выполняет заказ {seconds:.0f} с; бот опрашивает статус)",
        "vera": "Вера дарит 100 Telegram Stars пользователю @shy_sam, который ещё не знаком с магазином",
        "dave": "Поставщик отменяет пополнение Дэйва, и Stars возвращаются",
        "erin": "Эрин покупает карту Steam Wallet на 5 USD, которую продают два поставщика: у более дешёвого она заканчивается в момент оплаты",
        "erin_note": "(GamesDrop отвечает OUT_OF_STOCK после оплаты; магазин покупает у CodeGames)",
        "finn": "Финн покупает ту же карту, когда её не может поставить ни один поставщик: один возврат",
        "finn_note": "(CodeGames больше не продаёт карту, а у GamesDrop она заканчивается в момент оплаты)",
        "owner": "Владелец проверяет баланс у поставщика и статистику за сегодня",
        "log": "Журнал заказов", "search": "steam",
    },
}  # fmt: skip
NAMES = {
    "en": {"alice": "Alice", "bob": "Bob", "vera": "Vera", "sam": "Sam", "dave": "Dave",
           "erin": "Erin", "finn": "Finn", "admin": "Admin"},
    "ru": {"alice": "Алиса", "bob": "Боб", "vera": "Вера", "sam": "Сэм", "dave": "Дэйв",
           "erin": "Эрин", "finn": "Финн", "admin": "Админ"},
}  # fmt: skip


class Texts:
    """What the scripted people look for, in the demo's language: the longest literal
    piece of a bot message (``key`` of the ``.po`` catalogue), placeholders and tags cut."""

    def __init__(self, language: str) -> None:
        self._i18n = create_i18n()
        self.language = language

    def __call__(self, key: str, count: int | None = None) -> str:
        """The longest literal piece of ``key``; ``count`` picks a plural form."""
        with self._i18n.for_locale(self.language):
            if count is None:
                text = self._i18n.gettext(key)
            else:
                text = self._i18n.gettext(key, key, count)
        pieces = re.split(r"\{[^}]*\}|<[^>]+>|\n", text)
        return max((p.strip() for p in pieces), key=len)


class Narrator:
    """Prints the fake Bot API's transcript as it grows."""

    def __init__(
        self, offline: OfflineShop, names: dict[int, str], roles: dict[int, str], words: dict
    ) -> None:
        self._offline = offline
        self._names = names
        self._roles = roles
        self._words = words
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
            verbs = {"press": self._words["presses"], "inline": self._words["types"]}
            verb = verbs.get(line.kind)
            text = f"[{line.text}]" if line.kind == "press" else line.text
            if line.kind == "pay":
                text = text.replace("pays", self._words["pays"], 1)
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
        role = self._words[self._roles.get(line.chat_id, "customer")]
        body = textwrap.indent(line.text, " " * 11).strip()
        out = f"{'bot':>8} → {name} ({role}) › {marks.get(line.kind, '')}{body}"
        for row in line.buttons:
            out += "\n" + " " * 11 + "  ".join(f"[{b}]" for b in row)
        return out


async def _invoice(user: FakeUser, offline: OfflineShop) -> None:
    await offline.telegram.wait_until(lambda: any("invoice" in m for m in user.messages[-2:]))


async def run_demo(database: Path, topup_seconds: float, language: str = "en") -> int:
    """Play the scripted journeys in ``language`` (``en`` or ``ru``); prints the
    transcript, every bot message labelled with its reader. Returns the exit code."""
    words, who, t = NARRATION[language], NAMES[language], Texts(language)
    offline = OfflineShop(
        database,
        vendors=("gamesdrop", "codegames"),
        sandbox_config=SandboxConfig(topup_seconds=topup_seconds),
        sandbox_options={"codegames": {"process_seconds": 1.0}},
    )
    await offline.start()
    tg = offline.telegram
    alice = tg.user(1001, who["alice"], username="alice_gamer", language_code=language)
    bob = tg.user(1002, who["bob"], username="bob_the_builder", language_code=language)
    vera = tg.user(1003, who["vera"], username="vera_ru", language_code=language)
    sam = tg.user(1005, who["sam"], username="shy_sam", language_code=language)
    dave = tg.user(1004, who["dave"], language_code=language)
    erin = tg.user(1006, who["erin"], language_code=language)
    finn = tg.user(1007, who["finn"], language_code=language)
    admin = tg.user(ADMIN_ID, who["admin"], username="shop_owner", language_code=language)
    people = (alice, bob, vera, sam, dave, erin, finn, admin)
    names = {user.id: user.record["first_name"] for user in people}
    roles = {user.id: "admin" if user is admin else "customer" for user in people}
    narrator = Narrator(offline, names, roles, words)
    try:
        print(words["title"])
        narrator.chapter(words["alice"])
        await alice.send("/start")
        await alice.wait_for_text(t("start.welcome"))
        await alice.press(t("menu.catalogue"))
        await alice.wait_for_text(t("catalogue.title"))
        await alice.press(t("category.gift_cards"))
        await alice.wait_for_text(t("catalogue.products"))
        await alice.send(words["search"])
        await alice.wait_for_text(t("search.found", 2))  # the sandbox has two Steam products
        await alice.press("Steam US")
        await alice.wait_for_text(t("catalogue.offers"))
        await alice.press("TEST OFFER GROUP")
        await alice.wait_for_text(t("offer.delivery_key"))
        await alice.press(t("offer.buy"))
        await _invoice(alice, offline)
        await alice.pay()
        await alice.wait_for_text(t("receipt.text"))

        narrator.chapter(words["bob"])
        await bob.send(f"/start offer_{GENSHIN_60}")
        await bob.wait_for_text("⭐")
        await bob.press(t("offer.buy"))
        await bob.wait_for_text(t("player.ask"))
        await bob.send("12345678")
        await bob.wait_for_text(t("player.choose_server"))
        await bob.press("Europe")
        await bob.wait_for_text(t("confirm.title"))
        await bob.press(t("confirm.pay"))
        await _invoice(bob, offline)
        await bob.pay()
        await bob.wait_for_text(t("delivery.processing"))
        narrator.flush()
        print(f"{'':>8}   " + words["waiting"].format(seconds=topup_seconds))
        await bob.wait_for_text(t("receipt.text"), timeout=topup_seconds + 30)

        narrator.chapter(words["vera"])
        await vera.send("/start")
        await vera.wait_for_text(t("start.welcome"))
        await vera.press(t("menu.gift_stars"))
        await vera.wait_for_text(t("stars.choose_pack"))
        await vera.press("100 Stars")
        await vera.wait_for_text(t("stars.ask_recipient"))
        await vera.send("@shy_sam")
        invite = await vera.wait_for_text(t("stars.invite"))
        link = re.search(r"\?start=(\S+)", invite["text"])
        assert link is not None, invite["text"]
        await sam.send(f"/start {link.group(1)}")
        await sam.wait_for_text(t("stars.invite_welcome"))
        await vera.wait_for_text(t("stars.confirm"))
        await vera.press(t("confirm.pay"))
        await _invoice(vera, offline)
        await vera.pay()
        await vera.wait_for_text(t("receipt.text"))

        narrator.chapter(words["dave"])
        await dave.send(f"/start offer_{PUBG_60}")
        await dave.wait_for_text("⭐")
        await dave.press(t("offer.buy"))
        await dave.wait_for_text(t("player.ask"))
        await dave.send("55555555")
        await dave.wait_for_text(t("confirm.title"))
        await dave.press(t("confirm.pay"))
        await _invoice(dave, offline)
        await dave.pay()
        await dave.wait_for_text(t("delivery.failed"), timeout=topup_seconds + 30)
        await dave.wait_for_text(t("delivery.refunded"), timeout=30)

        narrator.chapter(words["erin"])
        await _two_sources_same_stars(offline)
        offline.sandboxes["gamesdrop"].faults.create_refusals.append("OUT_OF_STOCK")
        await _buy_steam_card(erin, offline, t)
        narrator.flush()
        print(f"{'':>8}   " + words["erin_note"])
        await erin.wait_for_text(t("receipt.text"), timeout=30)

        narrator.chapter(words["finn"])
        offline.sandboxes["codegames"].remove_offer(STEAM_5_CODEGAMES)
        offline.sandboxes["gamesdrop"].faults.create_refusals.append("OUT_OF_STOCK")
        await _buy_steam_card(finn, offline, t)
        narrator.flush()
        print(f"{'':>8}   " + words["finn_note"])
        await finn.wait_for_text(t("delivery.refunded"), timeout=30)

        narrator.chapter(words["owner"])
        await admin.send("/admin")
        await admin.wait_for_text(t("admin.menu"))
        await admin.press(t("admin.balance"))
        await admin.wait_for_text(t("admin.balance_text"))
        mark = admin.mark()
        await admin.press(t("admin.back"))
        await admin.wait_for_text(t("admin.menu"), since=mark - 1)
        await admin.press(t("admin.stats"))
        await admin.wait_for_text(t("admin.stats_text"))
        narrator.flush()
        await _summary(offline, words)
        return 0
    finally:
        await offline.stop()


async def _two_sources_same_stars(offline: OfflineShop) -> None:
    """Price the card a cent apart at the two suppliers, for the same Stars: GamesDrop is
    the cheaper source, and CodeGames can still deliver what was paid at its price. The
    catalogue is synced again, as the hourly sync would."""
    assert offline.shop is not None
    book = offline.shop.orders.pricing.book
    price = Decimal("5.00")
    while book.stars(price, "USD") != book.stars(price + CENT, "USD"):
        price += CENT
    offline.sandboxes["gamesdrop"].set_price(STEAM_5_GAMESDROP, price)
    offline.sandboxes["codegames"].set_price(STEAM_5_CODEGAMES, price + CENT)
    await offline.shop.catalogue.sync_all()


async def _buy_steam_card(user: FakeUser, offline: OfflineShop, t: Texts) -> None:
    await user.send(f"/start offer_{STEAM_5_GAMESDROP}")
    await user.wait_for_text("⭐")
    await user.press(t("offer.buy"))
    await _invoice(user, offline)
    await user.pay()


async def _summary(offline: OfflineShop, words: dict[str, str]) -> None:
    assert offline.shop is not None
    db = offline.shop.db
    print(f"\n── {words['log']} " + "─" * max(3, WIDTH - len(words["log"]) - 4))
    rows = await db.fetchall(
        """SELECT o.id, u.first_name, o.product_name, o.offer_name, o.stars, o.status,
                  o.supplier, (SELECT count(*) FROM order_events e WHERE e.order_id = o.id) AS events
           FROM orders o JOIN users u ON u.id = o.user_id ORDER BY o.id"""
    )
    print(
        f"{'#':>3}  {'customer':<8} {'product':<34} {'Stars':>5}  {'status':<10} {'supplier':>10} {'events':>6}"
    )
    for r in rows:
        product = f"{r['product_name']} — {r['offer_name']}"[:34]
        print(
            f"{r['id']:>3}  {r['first_name']:<8} {product:<34} {r['stars']:>5}  {r['status']:<10} "
            f"{r['supplier']:>10} {r['events']:>6}"
        )
    taken = await db.fetchval("SELECT coalesce(sum(stars), 0) FROM payments")
    refunded = await db.fetchval(
        "SELECT coalesce(sum(stars), 0) FROM refunds WHERE status = 'done'"
    )
    balances = []
    for supplier in offline.shop.suppliers.having(Capability.BALANCE):
        balance = await supplier.get_balance()
        balances.append(f"{supplier.name} {balance.balance} {balance.currency}")
    print(
        f"\nStars taken: {taken}   refunded: {refunded}   kept: {taken - refunded}   "
        f"supplier balance: {', '.join(balances)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bot.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--database", type=Path, help="SQLite file (default: a temporary one)")
    parser.add_argument(
        "--topup-seconds", type=float, default=3.0, help="how long the sandbox takes per top-up"
    )
    parser.add_argument("--verbose", action="store_true", help="show the bot's logs too")
    parser.add_argument(
        "--language",
        default="en",
        help="en or ru; a locale such as ru_RU.UTF-8 counts as its language, others as en",
    )
    args = parser.parse_args()
    setup_logging(*(("INFO", "WARNING") if args.verbose else ("ERROR", "ERROR")))
    language = demo_language(args.language)
    with tempfile.TemporaryDirectory() as folder:
        database = args.database or Path(folder) / "demo.sqlite3"
        sys.exit(asyncio.run(run_demo(database, args.topup_seconds, language)))


def demo_language(value: str) -> str:
    """``ru``, ``ru_RU.UTF-8``, ``ru-RU`` -> ``ru``; anything the demo does not speak -> ``en``."""
    code = re.split(r"[_.\-@]", value.strip().lower() or "en")[0]
    return code if code in NARRATION and code in LANGUAGES else "en"


if __name__ == "__main__":
    main()
