"""The Docker health check: cheap to start, and it reads the heartbeat where the bot
writes it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot import healthcheck
from bot.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("aiogram", "pydantic", "pydantic_settings", "aiohttp", "httpx", "aiosqlite", "babel")


def _run(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k.upper() != "DATABASE_PATH"}
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env={**base, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_health_check_imports_no_heavy_library(tmp_path: Path) -> None:
    code = (
        "import sys, bot.healthcheck\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))"
    )
    result = _run("-c", code, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_fresh_heartbeat_is_healthy_and_a_stale_one_is_not(tmp_path: Path) -> None:
    database = tmp_path / "data" / "shop.sqlite3"
    database.parent.mkdir()
    heartbeat = database.with_name("heartbeat")
    heartbeat.write_text(str(time.time()))
    ok = _run("-m", "bot.healthcheck", cwd=tmp_path, DATABASE_PATH=str(database))
    assert ok.returncode == 0, ok.stderr
    heartbeat.write_text(str(time.time() - 10 * healthcheck.HEARTBEAT_SECONDS))
    stale = _run("-m", "bot.healthcheck", cwd=tmp_path, DATABASE_PATH=str(database))
    assert stale.returncode != 0 and "unhealthy" in stale.stderr
    heartbeat.unlink()
    missing = _run("-m", "bot.healthcheck", cwd=tmp_path, DATABASE_PATH=str(database))
    assert missing.returncode != 0 and "unhealthy" in missing.stderr


@pytest.mark.parametrize("source", ["default", "environment", "env_file", "env_file_quoted"])
def test_the_health_check_finds_the_database_the_bot_uses(
    source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in [k for k in os.environ if k.upper() == "DATABASE_PATH"]:
        monkeypatch.delenv(name)
    if source == "environment":
        monkeypatch.setenv("DATABASE_PATH", "/data/from-env.sqlite3")
    elif source == "env_file":
        (tmp_path / ".env").write_text("# comment\nSHOP_NAME=x\nDATABASE_PATH=var/db.sqlite3\n")
    elif source == "env_file_quoted":
        (tmp_path / ".env").write_text('DATABASE_PATH = "/srv/shop db.sqlite3"  \n')
    expected = Settings().database_path
    assert healthcheck.heartbeat_file(healthcheck.database_path()) == expected.with_name(
        "heartbeat"
    )
