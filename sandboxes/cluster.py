"""Several real bot worker processes behind the fake Bot API's webhook, as in production.

The supplier sandboxes and the fake Telegram run in the calling process (as
:class:`bot.offline.OfflineShop` hosts them); each worker is a real ``python -m bot
--webhook`` process with its own webhook port on 127.0.0.1, configured only through
environment variables (as one container per worker would be), sharing one database
(``DATABASE_URL``, PostgreSQL) and, when given, one Redis (``REDIS_URL``). The fake
delivers every update to the workers' ports in turn, as a load balancer in front of them
would (``FakeTelegram.webhook_targets``)::

    cluster = Cluster("postgresql://...", folder=Path("/tmp/run"), workers=2)
    await cluster.start()
    alice = cluster.telegram.user(1001, "Alice")
    await alice.send("/start")
    cluster.kill(0)               # kill -9 a worker
    await cluster.restart(0)
    await cluster.stop()

Used by the end-to-end scale-out tests (``tests/e2e/test_scale_out.py``) and the scaling
benchmark. Linux only for :meth:`Cluster.worker_of_port` (it reads ``/proc``).

Order timings: the workers get ``ORDERS__FIRST_CHECK_SECONDS`` / ``ORDERS__MAX_CHECK_SECONDS``
as :func:`bot.offline.fast_timings` has them; the order worker's 1 s tick and the payment
grace (``create_order_timeout`` + 15 s) follow from settings as in production.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from bot.offline import ADMIN_ID, OfflineShop
from bot.settings import Settings
from sandboxes.serving import free_port

logger = logging.getLogger(__name__)

#: the checkout this module belongs to (what the workers import ``bot`` from)
SOURCE_ROOT = Path(__file__).resolve().parents[1]
WEBHOOK_PATH = "/telegram"
PUBLIC_URL = "https://shop.example/telegram"
WEBHOOK_SECRET = "cluster-webhook-secret"
#: aiogram's line for each update a worker finished (at INFO of the ``aiogram`` loggers)
_HANDLED = re.compile(r"Update id=(\d+) is (?:handled|not handled)")

#: environment for :func:`bot.offline.fast_timings`' order checks (tenths of a second)
FAST_TIMINGS_ENV = {"ORDERS__FIRST_CHECK_SECONDS": "0.2", "ORDERS__MAX_CHECK_SECONDS": "1.0"}


def _env_value(value: Any) -> str:
    if isinstance(value, (list, dict, tuple, set)):
        return json.dumps(list(value) if isinstance(value, (tuple, set)) else value, default=str)
    if isinstance(value, bool):
        return "true" if value else "false"
    if hasattr(value, "get_secret_value"):
        return str(value.get_secret_value())
    if isinstance(value, Decimal):
        return str(value)
    return str(value)


def settings_env(values: Mapping[str, Any]) -> dict[str, str]:
    """Settings values by field name (sections as dicts) as the environment variables
    :class:`bot.settings.Settings` reads: ``{"telegram": {"token": t}}`` ->
    ``{"TELEGRAM__TOKEN": t}``; lists and maps as JSON."""
    env: dict[str, str] = {}
    for key, value in values.items():
        if isinstance(value, Mapping) and key in Settings.model_fields:
            section = Settings.model_fields[key].annotation
            if isinstance(section, type) and hasattr(section, "model_fields"):
                for sub, sub_value in value.items():
                    env[f"{key}__{sub}".upper()] = _env_value(sub_value)
                continue
        env[key.upper()] = _env_value(value)
    return env


def _inherited_env() -> dict[str, str]:
    """This process's environment without anything the bot's settings would read (a
    stray ``TELEGRAM__TOKEN`` or ``DATABASE_URL`` of the developer's shell)."""
    names = {name.upper() for name in Settings.model_fields} | {"REDIS_URL"}
    return {
        key: value
        for key, value in os.environ.items()
        if key.upper() not in names and key.upper().split("__")[0] not in names
    }


@dataclass
class Worker:
    """One bot process: its webhook ``port``, environment and log file."""

    index: int
    port: int
    env: dict[str, str]
    log_path: Path
    cwd: Path
    process: subprocess.Popen[bytes] | None = None
    #: every pid this worker has had (restarts included)
    pids: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{WEBHOOK_PATH}"

    def start(self) -> None:
        """Start ``python -m bot --webhook`` (appending to the log file)."""
        log = open(self.log_path, "ab")
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot", "--webhook"],
                env=self.env, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        finally:
            log.close()
        self.pids.append(self.process.pid)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    async def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until the worker answers on its port: ``/readyz`` says 200, or (a worker
        without readiness endpoint) any HTTP answer at all. Raises ``RuntimeError`` when
        the process exits or is not ready within ``timeout`` s."""
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if not self.alive:
                    raise RuntimeError(f"worker {self.index} exited:\n{self.log_tail()}")
                try:
                    answer = await client.get(f"http://127.0.0.1:{self.port}/readyz")
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
                    continue
                if answer.status_code in (200, 404):
                    return
                await asyncio.sleep(0.1)
        raise RuntimeError(f"worker {self.index} not ready within {timeout} s:\n{self.log_tail()}")

    def kill(self) -> None:
        """``kill -9``: no cleanup, whatever was under way is lost."""
        if self.alive:
            assert self.process is not None
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()

    async def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (as ``docker stop``), SIGKILL after ``timeout`` s."""
        if not self.alive:
            return
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(self.process.wait, timeout)
        except subprocess.TimeoutExpired:
            logger.warning("worker %s did not stop within %s s: killed", self.index, timeout)
            self.kill()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, chars: int = 6000) -> str:
        return self.log()[-chars:]

    def handled_updates(self) -> set[int]:
        """Ids of the updates this worker finished, from aiogram's log lines (the
        workers log the ``aiogram`` loggers at INFO)."""
        return {int(found) for found in _HANDLED.findall(self.log())}


class Cluster:
    """The sandboxes and the fake Bot API in this process, ``workers`` bot processes.

    ``database_url``: the shared database (a fresh one: the workers migrate it);
    ``redis_url``: the shared Redis, or ``None``; ``settings``: more settings values
    (sections as dicts, e.g. ``{"broadcast_rate": 100}``); ``env``: raw variables on top.
    ``vendors``, ``sandbox_options``, ``telegram_options``: as :class:`OfflineShop`.
    ``folder`` holds each worker's log (``worker-<i>.log``) and working directory.
    """

    def __init__(
        self,
        database_url: str,
        *,
        folder: Path,
        workers: int = 2,
        redis_url: str | None = None,
        vendors: tuple[str, ...] = ("gamesdrop",),
        sandbox_options: dict[str, dict[str, Any]] | None = None,
        telegram_options: dict[str, Any] | None = None,
        settings: dict[str, Any] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.database_url = database_url
        self.redis_url = redis_url
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.offline = OfflineShop(
            folder / "unused.sqlite3",
            vendors=vendors,
            sandbox_options=sandbox_options,
            telegram_options=telegram_options,
            settings_overrides=settings,
        )
        self.telegram = self.offline.telegram
        self.sandboxes = self.offline.sandboxes
        self.sandbox: Any = self.offline.sandbox
        self.extra_env = dict(env or {})
        self.workers: list[Worker] = []
        for index in range(workers):
            cwd = folder / f"worker-{index}"
            cwd.mkdir(exist_ok=True)
            self.workers.append(Worker(index, free_port(), {}, folder / f"worker-{index}.log", cwd))

    def worker_env(self, worker: Worker) -> dict[str, str]:
        """The whole environment of ``worker``: what :meth:`OfflineShop.settings` would
        give an in-process bot, but real (not embedded) suppliers at the sandboxes' URLs,
        webhook mode on the worker's port, the shared database and Redis."""
        values = self.offline.settings_values()
        values["sandbox"] = False  # the sandboxes are this process's, not each worker's
        values["database_path"] = worker.cwd / "shop.sqlite3"  # only its heartbeat lands there
        values["telegram"] = {
            **values["telegram"],
            "webhook_url": PUBLIC_URL, "webhook_secret": WEBHOOK_SECRET,
            "webhook_host": "127.0.0.1", "webhook_port": worker.port,
            "webhook_path": WEBHOOK_PATH,
        }  # fmt: skip
        inherited = _inherited_env()
        # the workers run this source tree, whatever else is installed
        path = [str(SOURCE_ROOT), *filter(None, [inherited.get("PYTHONPATH")])]
        env = {
            **inherited,
            "PYTHONPATH": os.pathsep.join(path),
            **settings_env(values),
            **FAST_TIMINGS_ENV,
            "DATABASE_URL": self.database_url,
            "LOG_LEVEL": "INFO",
            "LOG_LEVEL_LIBRARIES": "INFO",  # aiogram's "Update id=... is handled" lines
            "PYTHONUNBUFFERED": "1",
        }
        if self.redis_url:
            env["REDIS_URL"] = self.redis_url
        env.update(self.extra_env)
        return env

    async def start(self) -> None:
        """Start the sandboxes and the fake, then the workers: the first alone (it migrates
        the database and syncs the catalogue), the others together; returns when every
        one answers. Raises ``RuntimeError`` (with the worker's log) when one does not."""
        for sandbox in self.sandboxes.values():
            await sandbox.start()
        await self.telegram.start()
        self.telegram.user(ADMIN_ID, "Owner")  # the admin has opened a chat with the bot
        self.telegram.webhook_targets = [worker.url for worker in self.workers]
        for worker in self.workers:
            worker.env = self.worker_env(worker)
        first, *others = self.workers
        first.start()
        await first.wait_ready()
        for worker in others:
            worker.start()
        for worker in others:
            await worker.wait_ready()
        await self.telegram.wait_until(lambda: self.telegram.webhook_url == PUBLIC_URL)

    def kill(self, index: int) -> None:
        """``kill -9`` worker ``index``."""
        self.workers[index].kill()

    async def restart(self, index: int) -> None:
        """Start worker ``index`` again (after :meth:`kill`) and wait until it answers."""
        worker = self.workers[index]
        if worker.alive:
            await worker.stop()
        worker.start()
        await worker.wait_ready()

    async def stop(self) -> None:
        """Stop every worker (SIGTERM), then the fake and the sandboxes."""
        await asyncio.gather(*(worker.stop() for worker in self.workers))
        await self.telegram.stop()
        for sandbox in self.sandboxes.values():
            await sandbox.stop()

    def logs(self, chars: int = 6000) -> str:
        """The end of every worker's log, for a failing test's report."""
        return "\n".join(
            f"----- worker {w.index} (port {w.port}, pids {w.pids}) -----\n{w.log_tail(chars)}"
            for w in self.workers
        )

    def worker_of_port(self, port: int | None) -> int | None:
        """The worker whose process owns the local TCP ``port`` (the source port of a Bot
        API call the fake recorded), from ``/proc``; ``None`` when none does (any more)."""
        if port is None:
            return None
        inodes: set[str] = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                lines = Path(table).read_text().splitlines()[1:]
            except OSError:
                continue
            for line in lines:
                parts = line.split()
                if int(parts[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(parts[9])
        for worker in self.workers:
            if not worker.alive:
                continue
            assert worker.process is not None
            fds = Path(f"/proc/{worker.process.pid}/fd")
            try:
                links = {os.readlink(fd) for fd in fds.iterdir()}
            except OSError:
                continue
            if any(f"socket:[{inode}]" in links for inode in inodes):
                return worker.index
        return None
