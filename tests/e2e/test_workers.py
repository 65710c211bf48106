"""``python -m bot --workers 2``: two real worker processes on one webhook port, under a
parent that restarts a worker killed with -9 and stops them all on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import sys
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bot.offline import BOT_TOKEN, OfflineShop
from sandboxes.serving import free_port

ROOT = Path(__file__).resolve().parents[2]
SECRET = "w0rkers-secret"


def worker_env(
    offline: OfflineShop, tmp_path: Path, port: int, redis_url: str = ""
) -> dict[str, str]:
    """The environment of a real ``python -m bot`` against the fake Bot API and the
    sandboxes ``offline`` hosts (not in sandbox mode: the workers share one sandbox)."""
    env = {k: v for k, v in os.environ.items() if "__" not in k and k != "DATABASE_PATH"}
    env.update(
        PYTHONPATH=str(ROOT),
        TELEGRAM__TOKEN=BOT_TOKEN,
        TELEGRAM__API_BASE=offline.telegram.base_url,
        TELEGRAM__WEBHOOK_URL="https://shop.example/telegram",
        TELEGRAM__WEBHOOK_SECRET=SECRET,
        TELEGRAM__WEBHOOK_HOST="127.0.0.1",
        TELEGRAM__WEBHOOK_PORT=str(port),
        DATABASE_PATH=str(tmp_path / "shop.sqlite3"),
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
    )
    if redis_url:
        env["REDIS_URL"] = redis_url
    for name, sandbox in offline.sandboxes.items():
        for field, value in sandbox.supplier_settings().items():
            env[f"{name.upper()}__{field.upper()}"] = str(value)
    return env


def start_update(update_id: int, user_id: int) -> dict[str, Any]:
    return {"update_id": update_id, "message": {
        "message_id": update_id, "date": 0, "text": "/start",
        "chat": {"id": user_id, "type": "private", "first_name": f"U{user_id}"},
        "from": {"id": user_id, "is_bot": False, "first_name": f"U{user_id}"},
        "entities": [{"type": "bot_command", "offset": 0, "length": 6}]}}  # fmt: skip


def handled_messages(metrics: str) -> float:
    """``shop_updates_total{kind="message",outcome="ok"}`` in a ``/metrics`` answer."""
    for family in text_string_to_metric_families(metrics):
        for sample in family.samples:
            if sample.name == "shop_updates_total" and sample.labels == {
                "kind": "message",
                "outcome": "ok",
            }:
                return sample.value
    return 0.0


async def wait_healthy(base: str, timeout: float = 60.0) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(int(timeout * 10)):
            try:
                if (await client.get(f"{base}/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise TimeoutError(f"{base}/healthz never answered")


async def connections_by_pid(
    base: str, want: int, tries: int = 600
) -> dict[int, httpx.AsyncClient]:
    """One kept-alive connection per worker pid (new connections until ``want`` pids
    answered: the kernel gives each to whichever worker accepts first, and a worker
    still starting accepts none)."""
    found: dict[int, httpx.AsyncClient] = {}
    for _ in range(tries):
        await asyncio.sleep(0.05)
        client = httpx.AsyncClient(limits=httpx.Limits(max_connections=1))
        try:
            pid = (await client.get(f"{base}/healthz")).json()["pid"]
        except httpx.TransportError:
            pid = None  # a worker on its way out
        if pid is None or pid in found:
            await client.aclose()
        else:
            found[pid] = client
        if len(found) >= want:
            return found
    for client in found.values():
        await client.aclose()
    raise AssertionError(f"only workers {sorted(found)} accepted {tries} connections")


@dataclass
class Supervised:
    """``python -m bot --workers 2`` serving ``base`` against ``offline``'s fake Bot API
    and sandboxes; ``log`` is the parent's and workers' log once it has stopped."""

    offline: OfflineShop
    port: int
    base: str
    parent: asyncio.subprocess.Process
    log: str = ""


@contextlib.asynccontextmanager
async def two_workers(tmp_path: Path, redis_url: str) -> AsyncIterator[Supervised]:
    """Start the sandboxes, the fake and ``--workers 2``; at the end SIGTERM the parent,
    collect and print its log (shown when the test fails) and stop the rest."""
    offline = OfflineShop(tmp_path / "unused.sqlite3")
    for sandbox in offline.sandboxes.values():
        await sandbox.start()
    await offline.telegram.start()
    port = free_port()
    parent = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "--workers", "2", cwd=tmp_path,
        env=worker_env(offline, tmp_path, port, redis_url),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    running = Supervised(offline, port, f"http://127.0.0.1:{port}", parent)
    try:
        yield running
    finally:
        if parent.returncode is None:
            parent.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(parent.communicate(), 60)
        running.log = stderr.decode()
        print(running.log)
        await offline.telegram.stop()
        for sandbox in offline.sandboxes.values():
            await sandbox.stop()


async def test_two_workers_share_one_port_serve_updates_and_are_supervised(
    tmp_path: Path, clean_redis_url: str
) -> None:
    clients: dict[int, httpx.AsyncClient] = {}
    async with two_workers(tmp_path, clean_redis_url) as running:
        offline, base = running.offline, running.base
        try:
            await wait_healthy(base)
            await offline.telegram.wait_until(lambda: offline.telegram.webhook_url, timeout=30)
            clients = await connections_by_pid(base, 2)
            # each worker handles an update that came in on its own connection
            for n, (pid, client) in enumerate(sorted(clients.items())):
                user = offline.telegram.user(7000 + n, f"U{7000 + n}")
                accepted = await client.post(
                    f"{base}/telegram", json=start_update(n + 1, 7000 + n),
                    headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
                )  # fmt: skip
                assert accepted.status_code == 200, (pid, accepted.text)
                assert (await client.get(f"{base}/healthz")).json()["pid"] == pid
                await user.wait_for_text("Welcome", timeout=20)
            # either worker's /metrics counts both workers' updates (multiprocess mode)
            for pid, client in clients.items():
                for _ in range(100):
                    text = (await client.get(f"{base}/metrics")).text
                    if handled_messages(text) == 2:
                        break
                    await asyncio.sleep(0.05)
                assert handled_messages(text) == 2, (pid, text)
            # a worker killed with -9 is replaced; the other serves meanwhile
            victim, survivor = sorted(clients)
            os.kill(victim, signal.SIGKILL)
            assert (await clients[survivor].get(f"{base}/readyz")).status_code == 200
            for client in clients.values():
                await client.aclose()
            clients = {}
            for _ in range(300):
                clients = await connections_by_pid(base, 2)
                if victim not in clients:
                    break
                for client in clients.values():
                    await client.aclose()
                await asyncio.sleep(0.1)
            assert victim not in clients and survivor in clients
        finally:
            for client in clients.values():
                await client.aclose()
    log = running.log
    assert running.parent.returncode == 0, log
    assert "died with exit -9" in log, log
    assert "Traceback" not in log, log


async def test_several_workers_need_webhook_mode(tmp_path: Path) -> None:
    offline = OfflineShop(tmp_path / "unused.sqlite3")
    env = worker_env(offline, tmp_path, 1)
    del env["TELEGRAM__WEBHOOK_URL"]
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "--workers", "3", cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode != 0
    text = stderr.decode()
    assert "--workers 3 needs webhook mode" in text and "TELEGRAM__WEBHOOK_URL" in text, text
    assert "Traceback" not in text, text


async def test_several_workers_need_redis(tmp_path: Path) -> None:
    """Without Redis each worker would keep its own conversation locks, flood budget and
    caches: two workers would send broadcasts at twice the limit. Refused, in one line."""
    offline = OfflineShop(tmp_path / "unused.sqlite3")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "--workers", "2", cwd=tmp_path,
        env=worker_env(offline, tmp_path, free_port()),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode != 0
    text = stderr.decode()
    assert "--workers 2 needs REDIS_URL" in text, text
    assert "Traceback" not in text, text


def healthz_pid(connection: socket.socket) -> int:
    """``GET /healthz`` over an open connection: the pid of the worker that accepted it."""
    connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: shop\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        data += connection.recv(4096)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"Content-Length: (\d+)", head, re.IGNORECASE)[1])
    while len(body) < length:
        body += connection.recv(4096)
    return int(json.loads(body)["pid"])


async def test_a_burst_of_kept_alive_connections_is_spread_over_the_workers(
    tmp_path: Path, clean_redis_url: str
) -> None:
    """Telegram opens its webhook connections (up to ``max_connections``) at once and keeps
    them: on one shared socket the worker awake first accepted the whole burst and served
    everything (the scaling benchmark: 97 % of updates on one worker). Each worker has a
    socket of its own on the port, and the kernel spreads new connections over them."""
    burst: list[socket.socket] = []
    async with two_workers(tmp_path, clean_redis_url) as running:
        try:
            await wait_healthy(running.base)
            for ready in (await connections_by_pid(running.base, 2)).values():  # both serve
                await ready.aclose()
            # the burst: all connected (by the kernel) within microseconds, before a worker
            # has run to accept any, as Telegram opens its webhook connections
            address = ("127.0.0.1", running.port)
            burst = await asyncio.to_thread(
                lambda: [socket.create_connection(address, timeout=10) for _ in range(32)]
            )
            counts = Counter(await asyncio.to_thread(lambda: [healthz_pid(c) for c in burst]))
            assert len(counts) == 2 and min(counts.values()) >= 4, counts
        finally:
            for connection in burst:
                connection.close()
