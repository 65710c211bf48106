"""Processes and figures shared by the benchmarks.

The bot under test runs as its own process (``python -m bot``, as deployed), polling the
fake Bot API, which runs in a process of its own (:mod:`bench.telegram_process`); the
GamesDrop sandbox runs in a third process and the simulated customers in the benchmark
process. Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from sandboxes.serving import free_port

ROOT = Path(__file__).resolve().parent.parent
BOT_TOKEN = "123456:BENCH-bot-token"
SUPPLIER_TOKEN = "bench-token"


@dataclass(frozen=True)
class Figure:
    """One printed figure; ``target`` is ``("<", bound)``, ``("<=", bound)`` or
    ``(">=", bound)`` when one applies."""

    name: str
    value: float
    unit: str
    target: tuple[str, float] | None = None

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        op, bound = self.target
        if op == "<":
            return self.value < bound
        return self.value <= bound if op == "<=" else self.value >= bound

    def line(self) -> str:
        value = (
            f"{self.value:.3f}"
            if isinstance(self.value, float) and abs(self.value) < 100
            else f"{self.value:.1f}"
        )
        suffix = (
            ""
            if self.target is None
            else f"  (target {self.target[0]} {self.target[1]:g}: {'met' if self.met else 'MISSED'})"
        )
        return f"{self.name} {value} {self.unit}{suffix}"


def percentile(values: Sequence[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def _spawn_sandbox(port: int, offers: int, topup_seconds: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "sandboxes.gamesdrop", "--port", str(port), "--offers", str(offers),
         "--token", SUPPLIER_TOKEN, "--postpaid", "--topup-seconds", str(topup_seconds)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


async def start_sandbox(
    offers: int, topup_seconds: float = 1.0
) -> tuple[subprocess.Popen[bytes], str]:
    """The GamesDrop sandbox in its own process; returns it with its base URL."""
    port = free_port()
    process = _spawn_sandbox(port, offers, topup_seconds)
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            try:
                await client.get(f"{url}/_sandbox/state", timeout=1)
                return process, url
            except httpx.TransportError:
                await asyncio.sleep(0.1)
    process.kill()
    raise RuntimeError("the GamesDrop sandbox did not start")


def bot_environment(
    telegram_url: str, sandbox_url: str, database: Path, **extra: str
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM__", "GAMESDROP__"))}
    env.update(
        {
            "TELEGRAM__TOKEN": BOT_TOKEN,
            "TELEGRAM__API_BASE": telegram_url,
            "GAMESDROP__TOKEN": SUPPLIER_TOKEN,
            "GAMESDROP__BASE_URL": sandbox_url,
            "GAMESDROP__USER_INFO_URL": f"{sandbox_url}/api/aggregator/a6/telegram/user-info",
            "GAMESDROP__SYNC_INTERVAL_MINUTES": "0",
            "DATABASE_PATH": str(database),
            "THROTTLE_RATE": "0",  # measured customers press faster than a person would
            "LOG_LEVEL": "INFO",  # as deployed
            "ADMIN_IDS": "[]",
        }
    )
    env.update(extra)
    return env


def start_process(
    module: str, env: dict[str, str], cwd: Path, log: Path | None = None
) -> subprocess.Popen[bytes]:
    """``python -m module``; its log (stderr) goes to ``log`` (appended), as a deployed
    bot's goes to its log driver, or nowhere. Never to an unread pipe: a full pipe would
    stall the bot at its next log line."""
    with open(log or os.devnull, "ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", module], cwd=cwd, env=env, stdout=sink, stderr=sink
        )


def memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MiB, from /proc."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_profiler(pid: int) -> subprocess.Popen[bytes] | None:
    """With ``BENCH_PROFILE=path`` set (and py-spy installed), sample ``pid`` into it."""
    target = os.environ.get("BENCH_PROFILE")
    if not target:
        return None
    return subprocess.Popen(
        ["py-spy", "record", "-p", str(pid), "-o", target, "--format", "raw", "-r", "200"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def stop_profiler(process: subprocess.Popen[bytes] | None) -> None:
    if process is not None:
        process.send_signal(2)  # py-spy writes its file on SIGINT
        process.wait()


def _spawn_telegram(
    port: int, webhook_targets: Sequence[str] = (), log: Path | None = None
) -> subprocess.Popen[bytes]:
    targets = [arg for url in webhook_targets for arg in ("--webhook-target", url)]
    with open(log or os.devnull, "ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "bench.telegram_process", "--port", str(port),
             "--token", BOT_TOKEN, *targets],
            cwd=ROOT, stdout=sink, stderr=sink,
        )  # fmt: skip


class TelegramProcess:
    """The fake Bot API in its own process, driven through its ``/_bench`` routes.

    The customers' requests go through aiohttp, not httpx: with 40-60 customers waiting
    at once httpx spent 2-7 ms of this process's CPU per request (aiohttp 0.1 ms), so the
    simulated customers took more of the two cores than the bot they measure."""

    def __init__(self, process: subprocess.Popen[bytes], url: str) -> None:
        self.process = process
        self.url = url
        self.client = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=200),
            timeout=aiohttp.ClientTimeout(total=120),
        )

    @classmethod
    async def start(
        cls, webhook_targets: Sequence[str] = (), log: Path | None = None
    ) -> TelegramProcess:
        """Start it; ``webhook_targets``: the bot's webhook URLs behind the public one
        (see :mod:`bench.telegram_process`); ``log``: where its output goes (appended),
        else nowhere. Raises ``RuntimeError`` if it does not start."""
        port = free_port()
        process = _spawn_telegram(port, webhook_targets, log)
        self = cls(process, f"http://127.0.0.1:{port}")
        for _ in range(300):
            try:
                async with self.client.get(
                    f"{self.url}/_bench/calls", timeout=aiohttp.ClientTimeout(total=1)
                ) as answer:
                    await answer.read()
                return self
            except (aiohttp.ClientError, TimeoutError):
                await asyncio.sleep(0.1)
        await self.client.close()
        process.kill()
        raise RuntimeError("the fake Bot API did not start")

    async def act(
        self, user: int, action: str, arg: str = "", wait: str = "any", timeout: float = 30
    ) -> dict[str, Any]:
        """Act as customer ``user`` and wait for the bot's answer: ``{"ms", "text",
        "buttons"}`` (``ms`` measured in the fake's process). Raises ``RuntimeError``."""
        async with self.client.post(
            f"{self.url}/_bench/act",
            json={"user": user, "action": action, "arg": arg, "wait": wait, "timeout": timeout},
            timeout=aiohttp.ClientTimeout(total=timeout + 30),
        ) as answer:
            body: dict[str, Any] = await answer.json()
            if answer.status != 200:
                raise RuntimeError(f"{action} {arg!r} as {user}: {body.get('error')}")
        return body

    async def calls(self) -> dict[str, int]:
        async with self.client.get(f"{self.url}/_bench/calls") as answer:
            return dict(await answer.json())

    async def stop(self) -> None:
        await self.client.close()
        stop(self.process)
