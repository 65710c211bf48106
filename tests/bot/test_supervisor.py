"""The parent of ``--workers``: it gives up on a worker that cannot start (so the
container's restart policy takes over instead of a silent crash loop), and a worker that
ignores SIGTERM does not hang the stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _parent(script: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_worker_that_keeps_dying_at_start_makes_the_parent_exit_1() -> None:
    script = (
        "import logging, sys\n"
        "from bot.supervisor import MAX_QUICK_EXITS, Supervisor\n"
        "logging.basicConfig(level=logging.INFO)\n"
        "code = Supervisor(lambda i: [sys.executable, '-c', 'raise SystemExit(3)'], 2,\n"
        "                  backoff=0.01, poll=0.01).run()\n"
        "print('exit', code)\n"
    )
    started = time.monotonic()
    parent = _parent(script)
    out, err = parent.communicate(timeout=60)
    assert out.strip() == "exit 1", err
    assert "died 5 times within 30 s of starting (exit 3): giving up" in err
    assert err.count("started (pid") >= 5  # restarted, not given up at the first death
    assert time.monotonic() - started < 30


def test_sigterm_stops_the_workers_and_kills_one_that_does_not_stop(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    stubborn = (
        "import signal, time, pathlib, sys\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        f"pathlib.Path({str(ready)!r} + sys.argv[1]).touch()\n"
        "time.sleep(600)\n"
    )
    script = (
        "import logging, sys\n"
        "from bot.supervisor import Supervisor\n"
        "logging.basicConfig(level=logging.INFO)\n"
        f"worker = {stubborn!r}\n"
        "code = Supervisor(lambda i: [sys.executable, '-c', worker, str(i)], 2, grace=0.5,\n"
        "                  poll=0.01).run()\n"
        "print('exit', code)\n"
    )
    parent = _parent(script)
    deadline = time.monotonic() + 30
    while not all((tmp_path / f"ready{i}").exists() for i in range(2)):
        assert time.monotonic() < deadline and parent.poll() is None
        time.sleep(0.05)
    parent.send_signal(signal.SIGTERM)
    out, err = parent.communicate(timeout=30)
    assert out.strip() == "exit 0", err
    assert err.count("still running after 0.5 s: killed") == 2, err


def test_the_parent_of_the_workers_loads_neither_aiogram_nor_the_shop() -> None:
    """It only supervises: ~40 MiB resident instead of ~80 MiB with the shop imported."""
    code = (
        "import sys, bot.__main__\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'aiogram', 'aiohttp', 'aiosqlite', 'prometheus_client'}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
