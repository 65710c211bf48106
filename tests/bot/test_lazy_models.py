"""aiogram's types are built on first use, not at import (bot.lazy_models): the bot's
memory stays ~100 MiB lower, and every type still validates and serializes as before."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot import lazy_models

ROOT = Path(__file__).resolve().parents[2]
#: ``import bot.app`` measured 73 MiB with the types deferred, 179 MiB without them
IMPORT_CEILING_MIB = 100

# VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over an exec, so a child
# forked from a big test process would report the parent's size
PROBE = """
import json, re, sys
import bot.app
from bot import lazy_models
built = sum(1 for cls in lazy_models.deferred if cls.__pydantic_complete__)
status = open("/proc/self/status").read()
rss = int(re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1)) / 1024
print(json.dumps({"deferred": len(lazy_models.deferred), "built": built, "rss": rss}))
"""


def _child(code: str) -> Any:
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_importing_the_bot_builds_no_telegram_type_and_stays_under_the_memory_ceiling() -> None:
    probe = _child(PROBE)
    assert probe["deferred"] > 300, probe  # aiogram 3.31 has ~400 types
    assert probe["built"] == 0, probe
    assert probe["rss"] < IMPORT_CEILING_MIB, probe


def test_a_deferred_type_is_built_on_first_use_with_its_forward_references() -> None:
    probe = _child(
        """
import json
import bot
from aiogram.types import InlineKeyboardMarkup, Update
update = Update.model_validate({"update_id": 1, "callback_query": {
    "id": "q1", "from": {"id": 5, "is_bot": False, "first_name": "Ann"}, "chat_instance": "c",
    "data": "cat:top:1", "message": {"message_id": 3, "date": 1,
    "chat": {"id": 5, "type": "private"}, "text": "Pick",
    "reply_markup": {"inline_keyboard": [[{"text": "Next", "callback_data": "cat:top:2"}]]}}}})
message = update.callback_query.message
markup = message.reply_markup
print(json.dumps({"type": type(message).__name__, "chat": message.chat.id,
    "button": markup.inline_keyboard[0][0].callback_data,
    "dump": InlineKeyboardMarkup.model_validate(markup.model_dump()).model_dump(
        exclude_none=True)}))
"""
    )
    assert probe == {
        "type": "Message",
        "chat": 5,
        "button": "cat:top:2",
        "dump": {"inline_keyboard": [[{"text": "Next", "callback_data": "cat:top:2"}]]},
    }


def test_importing_bot_alone_stays_light() -> None:
    probe = _child(
        "import bot, json, sys; print(json.dumps(sorted(m for m in ('aiogram', 'pydantic') if m in sys.modules)))"
    )
    assert probe == []


def test_outside_the_tested_versions_it_stands_aside(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(lazy_models.TESTED, "aiogram", ((3, 0), (3, 1)))
    reason = lazy_models.supported()
    assert reason is not None and "aiogram" in reason


def test_the_installed_versions_are_the_tested_ones() -> None:
    assert lazy_models.supported() is None
