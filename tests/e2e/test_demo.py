"""The offline demo (``make demo``, ``make demo LANG=ru``): it plays through, in either
language, and says who receives every bot message."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.demo import demo_language, run_demo


@pytest.mark.parametrize(
    ("language", "customer", "admin", "russian"),
    [
        ("en", "customer", "admin", None),
        ("ru", "покупатель", "админ", "Ваш ключ"),
    ],
)
async def test_the_demo_labels_who_receives_every_bot_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], language: str, customer: str,
    admin: str, russian: str | None,
) -> None:  # fmt: skip
    assert await run_demo(tmp_path / "demo.sqlite3", 0.3, language) == 0
    out = capsys.readouterr().out

    bot_lines = [line for line in out.splitlines() if line.lstrip().startswith("bot ")]
    assert len(bot_lines) > 20
    label = re.compile(rf"^\s*bot → \S+ \(({customer}|{admin})\) › ")
    assert [line for line in bot_lines if not label.match(line)] == []
    assert any(f"({admin}) ›" in line for line in bot_lines)
    assert any(f"({customer}) ›" in line for line in bot_lines)
    if russian:
        assert russian in out and "Your key" not in out
    # the routing chapter: bought at the other source after the cheaper one sold out, then
    # refunded once when neither could deliver
    log = out.split("──")[-1]
    assert re.search(r"\n\s*5\s+\S+\s+Steam Wallet — 5 USD\s+\d+\s+completed\s+codegames", log)
    assert re.search(r"\n\s*6\s+\S+\s+Steam Wallet — 5 USD\s+\d+\s+refunded\s+gamesdrop", log)


def test_make_demo_lang_picks_the_language() -> None:
    assert demo_language("ru") == "ru"
    assert demo_language("ru_RU.UTF-8") == "ru"
    assert demo_language("C.UTF-8") == "en"
    assert demo_language("") == "en"
    assert '--language "$(LANG)"' in (Path(__file__).parents[2] / "Makefile").read_text()
