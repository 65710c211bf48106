"""``python -m bot --workers N``: N webhook worker processes behind one port.

The parent binds one listening socket per worker on the webhook's port, each with
``SO_REUSEPORT``, and starts N workers (``python -m bot`` with ``--listen-fd``), each
serving on its own socket; the kernel spreads new connections over the sockets. Telegram
opens its webhook connections (up to ``max_connections``) in one burst and keeps them
alive: on one shared socket the worker that ran first accepted the whole burst and served
nearly everything (97 % of the updates on one worker, bench/workers.py). The parent keeps
every socket open:

- a worker that dies loses no connection: connections queued on its socket wait for the
  worker started in its place (the parent restarts it within a second or two);
- a port another program holds fails once, in the parent, before any worker starts;
- a worker's socket is made when the worker first starts, so no connection waits on a
  socket whose worker has not started yet (workers 1.. start after worker 0 serves).

``SO_REUSEPORT`` spreads connections on Linux (the deployment target); elsewhere the
workers still share the port, unevenly. It also lets another process of the same user
that asks for it join the port: a worker whose parent is gone stops on its own.

Worker 0 starts first; the others once it serves ``/healthz``, so one process applies
the database migrations, syncs an empty catalogue and sets the webhook.

The parent imports no aiogram and runs no event loop: it restarts a worker that dies
(after 1, 2, 4... up to 30 s while it keeps dying within :data:`QUICK_EXIT` seconds of its
start; it gives up and exits 1 after :data:`MAX_QUICK_EXITS` such deaths in a row, for the
container's restart policy), and on SIGTERM or SIGINT sends SIGTERM to every worker, waits
up to ``grace`` seconds for them to finish the updates in hand, then kills the rest.

Each worker writes its metrics to ``PROMETHEUS_MULTIPROC_DIR`` (a temporary directory
unless set; emptied at start) so that ``/metrics``, answered by any one worker, adds up all.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

logger = logging.getLogger("bot.supervisor")

#: A worker that exits within this many seconds of its start died starting up.
QUICK_EXIT = 30.0
#: So many such deaths in a row of one worker: the parent stops everything and exits 1.
MAX_QUICK_EXITS = 5
MAX_BACKOFF = 30.0


def listen(host: str, port: int, backlog: int = 1024, *, reuse_port: bool = False) -> socket.socket:
    """A listening TCP socket on ``host``:``port`` a worker inherits (``reuse_port``: one
    of several on the port, ``SO_REUSEPORT``). Raises ``OSError`` (port taken, address not
    here)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server(
        (host, port), family=family, backlog=backlog,
        reuse_port=reuse_port and hasattr(socket, "SO_REUSEPORT"),
    )  # fmt: skip
    sock.set_inheritable(True)
    return sock


@dataclass
class _Slot:
    index: int
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    quick_exits: int = 0
    restart_at: float | None = None


@dataclass
class Supervisor:
    """Runs ``workers`` processes ``command(index)`` (argv lists), each inheriting the
    file descriptors ``pass_fds(index)``, with ``env``; :meth:`run` until a signal stops them.
    ``grace``: seconds the workers get after SIGTERM before they are killed; ``backoff``:
    the first restart delay of a worker that died starting up (doubling, up to 30 s).
    ``first_up``: when given, workers 1.. start only once it answers ``True`` (worker 0
    serves), or after ``stagger_timeout`` seconds: one worker migrates the database,
    syncs an empty catalogue and sets the webhook before the others start."""

    command: Callable[[int], list[str]]
    workers: int
    pass_fds: Callable[[int], tuple[int, ...]] = lambda index: ()
    env: Mapping[str, str] | None = None
    grace: float = 30.0
    poll: float = 0.1
    backoff: float = 1.0
    first_up: Callable[[], bool] | None = None
    stagger_timeout: float = 300.0
    slots: list[_Slot] = field(default_factory=list)
    _stopping: bool = False
    _staggered_until: float | None = None
    _next_probe: float = 0.0

    def _start(self, slot: _Slot) -> None:
        slot.process = subprocess.Popen(
            self.command(slot.index),
            pass_fds=self.pass_fds(slot.index),
            env=dict(self.env or os.environ),
        )
        slot.started = time.monotonic()
        slot.restart_at = None
        logger.info("worker %d started (pid %d)", slot.index, slot.process.pid)

    def _stop_signal(self, signum: int, frame: FrameType | None) -> None:
        if not self._stopping:
            logger.info("%s: stopping the workers", signal.Signals(signum).name)
        self._stopping = True

    def run(self) -> int:
        """Start the workers and keep them running; returns the exit code (0 after a
        signal, 1 after giving up on a worker that cannot start)."""
        previous = {
            signum: signal.signal(signum, self._stop_signal)
            for signum in (signal.SIGTERM, signal.SIGINT)
        }
        code = 0
        try:
            self.slots = [_Slot(index) for index in range(self.workers)]
            if self.first_up is not None and self.workers > 1:
                self._staggered_until = time.monotonic() + self.stagger_timeout
            for slot in self.slots:
                if slot.index == 0 or self._staggered_until is None:
                    self._start(slot)
            while not self._stopping:
                if not self._tend():
                    code = 1
                    break
                time.sleep(self.poll)
        finally:
            self._stop_all()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return code

    def _tend(self) -> bool:
        """Restart the workers that died; ``False`` when one keeps dying at start."""
        now = time.monotonic()
        if self._staggered_until is not None:
            if not self._first_worker_up(now):
                return self._tend_started(now)
            self._staggered_until = None
            for slot in self.slots:
                if slot.process is None:
                    self._start(slot)
        return self._tend_started(now)

    def _first_worker_up(self, now: float) -> bool:
        assert self.first_up is not None and self._staggered_until is not None
        if now >= self._staggered_until:
            logger.warning(
                "worker 0 not serving after %.0f s: starting the others", self.stagger_timeout
            )
            return True
        if now < self._next_probe:
            return False
        self._next_probe = now + 0.2
        return self.first_up()

    def _tend_started(self, now: float) -> bool:
        for slot in self.slots:
            if slot.process is None:
                continue  # waiting for worker 0
            if slot.restart_at is not None:
                if now >= slot.restart_at:
                    self._start(slot)
                continue
            assert slot.process is not None
            status = slot.process.poll()
            if status is None:
                continue
            lived = now - slot.started
            slot.quick_exits = slot.quick_exits + 1 if lived < QUICK_EXIT else 0
            if slot.quick_exits >= MAX_QUICK_EXITS:
                logger.error(
                    "worker %d died %d times within %.0f s of starting (exit %s): giving up",
                    slot.index, slot.quick_exits, QUICK_EXIT, status,
                )  # fmt: skip
                return False
            delay = 0.0
            if slot.quick_exits:
                delay = min(MAX_BACKOFF, self.backoff * 2.0 ** (slot.quick_exits - 1))
            logger.error(
                "worker %d (pid %d) died with exit %s after %.0f s: restarting in %.2g s",
                slot.index, slot.process.pid, status, lived, delay,
            )  # fmt: skip
            slot.restart_at = now + delay
        return True

    def _stop_all(self) -> None:
        alive = [s.process for s in self.slots if s.process and s.process.poll() is None]
        for process in alive:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        for process in alive:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.error(
                    "worker pid %d still running after %g s: killed", process.pid, self.grace
                )
                process.kill()
                process.wait()


def answers(url: str, timeout: float = 0.5) -> bool:
    """Whether ``url`` answers 200 within ``timeout`` seconds."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return bool(response.status == 200)
    except (OSError, ValueError):
        return False


def metrics_dir(environ: Mapping[str, str]) -> tuple[Path, bool]:
    """The directory for the workers' metric files: ``PROMETHEUS_MULTIPROC_DIR`` emptied of
    a previous run's files, else a new temporary one. Returns it and whether it is ours
    to delete at the end."""
    given = environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for old in path.glob("*.db"):
            old.unlink()
        return path, False
    return Path(tempfile.mkdtemp(prefix="shop-metrics-")), True


def supervise(host: str, port: int, workers: int, worker_args: list[str], grace: float) -> int:
    """Bind ``host``:``port`` and run ``workers`` webhook workers (``python -m bot
    *worker_args --listen-fd FD --worker-index I``, each its own ``SO_REUSEPORT`` socket)
    until SIGTERM/SIGINT. Returns the exit code. Raises ``OSError`` when the port cannot
    be bound."""
    sockets = {0: listen(host, port, reuse_port=True)}  # fails here when the port is taken

    def socket_of(index: int) -> socket.socket:
        if index not in sockets:  # made when the worker first starts, kept for restarts
            sockets[index] = listen(host, port, reuse_port=True)
        return sockets[index]

    directory, ours = metrics_dir(os.environ)
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    probe_host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "[::1]"}.get(host, host)
    if ":" in probe_host and not probe_host.startswith("["):
        probe_host = f"[{probe_host}]"
    healthz = f"http://{probe_host}:{port}/healthz"

    def command(index: int) -> list[str]:
        return [
            sys.executable, "-m", "bot", *worker_args, "--listen-fd",
            str(socket_of(index).fileno()), "--worker-index", str(index),
            "--parent-pid", str(os.getpid()),
        ]  # fmt: skip

    logger.info("%d webhook workers on %s:%s", workers, host, port)
    try:
        return Supervisor(
            command, workers, pass_fds=lambda index: (socket_of(index).fileno(),), env=env,
            grace=grace, first_up=lambda: answers(healthz),
        ).run()  # fmt: skip
    finally:
        for sock in sockets.values():
            sock.close()
        if ours:
            shutil.rmtree(directory, ignore_errors=True)
