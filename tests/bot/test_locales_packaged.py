"""Translations ship inside the package: an installed bot run from any directory speaks
its languages, and a missing catalogue stops it at start instead of sending raw keys."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import bot
from bot.i18n import LANGUAGES, LOCALES_DIR, LocalesMissing, create_i18n

ROOT = Path(__file__).resolve().parents[2]


def test_every_catalogue_is_package_data_of_the_bot_package() -> None:
    package = Path(bot.__file__).resolve().parent
    assert LOCALES_DIR.resolve().is_relative_to(package)
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    globs = pyproject["tool"]["setuptools"]["package-data"]["bot"]
    shipped = {p.resolve() for pattern in globs for p in package.glob(pattern)}
    for language in LANGUAGES:
        assert (LOCALES_DIR / language / "LC_MESSAGES" / "messages.po").resolve() in shipped


def test_translations_load_from_another_working_directory(tmp_path: Path) -> None:
    code = (
        "from bot.i18n import create_i18n\n"
        "i18n = create_i18n()\n"
        "with i18n.for_locale('ru'):\n"
        "    print(i18n.gettext('common.cancelled'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() not in ("", "common.cancelled")


def test_a_missing_catalogue_stops_the_start(tmp_path: Path) -> None:
    english = tmp_path / "en" / "LC_MESSAGES"
    english.mkdir(parents=True)
    (english / "messages.po").write_bytes((LOCALES_DIR / "en/LC_MESSAGES/messages.po").read_bytes())
    with pytest.raises(LocalesMissing, match="ru"):
        create_i18n(path=tmp_path)
