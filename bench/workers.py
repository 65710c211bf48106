"""``python -m bench.workers [--repeats N] [--mode socket ports] [--customers N] [--steps N]
[--offers N]``: how the bot scales from one webhook worker to two (issue 20).

Everything on 127.0.0.1, each in a process of its own: a throwaway PostgreSQL and Redis
(:mod:`tests.servers`), the GamesDrop sandbox with a modest catalogue (``--offers``, 4,000:
the start-up sync takes a second), the fake Bot API (:mod:`bench.telegram_process`)
delivering webhooks as Telegram does (secret header, one update at a time per chat, at
most ``max_connections`` at once), the bot under test, and the customers in this process.
The fake measures each latency on its own clock, from the update being queued for
delivery to the Bot API call that answers it.

Modes (``--mode``, both by default):

- ``socket``: ``python -m bot --workers N``, the recommended deployment: N workers accept
  from one listening socket the parent holds; the fake posts to its one URL.
- ``ports``: N separate ``python -m bot --webhook`` processes on ports of their own (one
  per container); the fake posts to them in turn, as a round-robin load balancer.

A round starts the bot on the shared PostgreSQL database and Redis, waits for its start-up
sync, brings ``--customers`` customers to the catalogue, then lets each make ``--steps``
presses in a closed loop (the next as soon as the last is answered): a catalogue page,
then a product card from it, and so on, the storefront's commonest updates. Rounds with one
and with two workers alternate (1, 2, 1, 2, ... per mode), the same load each.

Printed, one ``name value unit`` line per figure (``<mode>_w<N>_...``), medians over the
repeats (latencies pooled): updates/s, p50 and p95, bot CPU per update (all its worker
processes) and in % of a core, the CPU seconds each process group spent per 1,000 updates
(bot, fake Bot API, customers, PostgreSQL, Redis, the machine's other processes), how the
updates spread over the workers (their shares, from each worker's metric files), and
``<mode>_scaling`` (two-worker updates/s / one-worker updates/s, the median of each
two-worker round against the one-worker round before it), and
``<mode>_scaling_cpu_ceiling``: the same ratio as the machine's cores would allow at the
CPU per update measured (:func:`cpu_ceiling`), to tell a bot that does not scale from a
machine that has no core left to give the second worker.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from bench.harness import (
    ROOT,
    Figure,
    TelegramProcess,
    bot_environment,
    cpu_seconds,
    free_port,
    median,
    percentile,
    start_sandbox,
    stop,
)
from tests.servers.postgres import PostgresServer
from tests.servers.redis import RedisServer

OFFERS = 4_000
CUSTOMERS = 60
STEPS = 20  # presses per customer per round: pages and product cards, alternately
WEBHOOK_PATH = "/telegram"
PUBLIC_URL = "https://shop.example/telegram"  # the fake maps it to the workers' URLs
WEBHOOK_SECRET = "bench-webhook-secret"
MODES = ("socket", "ports")
#: the supervisor's line for each worker it starts (bot.supervisor)
_STARTED = re.compile(r"worker (\d+) started \(pid (\d+)\)")
#: process groups whose CPU is reported, in print order
GROUPS = ("bot", "supervisor", "fake_telegram", "customers", "postgres", "redis", "sandbox")


@dataclass
class Servers:
    """What every round shares: the database server, Redis, the sandbox."""

    postgres: PostgresServer
    redis: RedisServer
    sandbox: subprocess.Popen[bytes]
    sandbox_url: str
    database_url: str = ""


@dataclass
class Round:
    """What one round measured."""

    mode: str
    workers: int
    rate: float = 0.0  # updates answered per second
    latencies: list[float] = field(default_factory=list)  # ms, from the fake's clock
    cpu: dict[str, float] = field(default_factory=dict)  # CPU s per group during the load
    machine: float = 0.0  # CPU s of the whole machine (every core) during the load
    elapsed: float = 0.0  # s
    per_worker: list[float] = field(default_factory=list)  # updates each worker handled
    connections: list[int] = field(default_factory=list)  # the fake's, held by each worker

    @property
    def updates(self) -> int:
        return len(self.latencies)


# -- processes and their CPU --------------------------------------------------------------


def children(pid: int) -> list[int]:
    """The pids whose parent is ``pid`` (from /proc; Linux)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def machine_cpu_seconds() -> float:
    """CPU seconds every core has spent busy since boot (/proc/stat: all but idle and
    iowait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    busy = sum(fields[:8]) - fields[3] - fields[4]
    return busy / os.sysconf("SC_CLK_TCK")


def _cpu_of(pids: Iterable[int]) -> dict[int, float]:
    taken = {}
    for pid in pids:
        try:
            taken[pid] = cpu_seconds(pid)
        except OSError:
            continue  # exited
    return taken


class CpuMeter:
    """CPU seconds per process group between :meth:`start` and :meth:`stop`; a process
    that exits meanwhile counts for nothing (none should during the load)."""

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self.groups = groups
        self._before: dict[int, float] = {}
        self._machine = 0.0

    def start(self) -> None:
        self._before = _cpu_of(pid for pids in self.groups.values() for pid in pids)
        self._machine = machine_cpu_seconds()

    def stop(self) -> tuple[dict[str, float], float]:
        after = _cpu_of(self._before)
        spent = {
            group: sum(after[p] - self._before[p] for p in pids if p in after)
            for group, pids in self.groups.items()
        }
        return spent, machine_cpu_seconds() - self._machine


def connections_per_pid(port: int, pids: list[int]) -> dict[int, int]:
    """How many established TCP connections to local ``port`` each of ``pids`` holds
    (/proc/net/tcp: the sockets' inodes; /proc/<pid>/fd: whose they are)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        parts = line.split()
        if int(parts[1].rsplit(":", 1)[1], 16) == port and parts[3] == "01":  # ESTABLISHED
            inodes.add(f"socket:[{parts[9]}]")
    held = {}
    for pid in pids:
        links = set()
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            fds = []  # exited
        for fd in fds:
            try:
                links.add(os.readlink(fd))
            except OSError:
                continue  # closed meanwhile
        held[pid] = len(links & inodes)
    return held


# -- updates handled per worker, from the metric files -------------------------------------


def handled_per_pid(directory: Path) -> dict[int, float]:
    """Telegram updates handled so far by each process writing metrics to ``directory``
    (``PROMETHEUS_MULTIPROC_DIR``: one ``counter_<pid>.db`` per process; the
    ``shop_updates`` counter of :mod:`bot.metrics`, every kind and outcome)."""
    from prometheus_client.mmap_dict import MmapedDict

    counts: dict[int, float] = {}
    for path in directory.glob("counter_*.db"):
        pid = int(path.stem.rsplit("_", 1)[1])
        total = 0.0
        for key, value, *_ in MmapedDict.read_all_values_from_file(str(path)):
            if json.loads(key)[0] == "shop_updates":
                total += value
        counts[pid] = total
    return counts


# -- the bot under test -------------------------------------------------------------------


class Bot:
    """The bot processes of one round: ``python -m bot --workers N`` (``socket``) or N
    ``python -m bot --webhook`` (``ports``), each with its log in ``folder``."""

    def __init__(self, mode: str, workers: int, folder: Path) -> None:
        self.mode = mode
        self.workers = workers
        self.folder = folder
        self.ports = [free_port() for _ in range(1 if mode == "socket" else workers)]
        self.metrics = folder / "metrics"
        self.metrics.mkdir(parents=True)
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def supervised(self) -> bool:
        """Whether a parent supervises the workers (``--workers`` above 1)."""
        return self.mode == "socket" and self.workers > 1

    @property
    def targets(self) -> list[str]:
        return [f"http://127.0.0.1:{port}{WEBHOOK_PATH}" for port in self.ports]

    def _env(self, servers: Servers, telegram_url: str, port: int) -> dict[str, str]:
        return bot_environment(
            telegram_url, servers.sandbox_url, self.folder / "unused.sqlite3",
            DATABASE_URL=servers.database_url, REDIS_URL=servers.redis.url,
            TELEGRAM__WEBHOOK_URL=PUBLIC_URL, TELEGRAM__WEBHOOK_SECRET=WEBHOOK_SECRET,
            TELEGRAM__WEBHOOK_HOST="127.0.0.1", TELEGRAM__WEBHOOK_PORT=str(port),
            TELEGRAM__WEBHOOK_PATH=WEBHOOK_PATH, PROMETHEUS_MULTIPROC_DIR=str(self.metrics),
        )  # fmt: skip

    async def start(self, servers: Servers, telegram_url: str) -> None:
        """Start the processes and return once every worker serves; raises
        ``RuntimeError`` with the log's end when one does not within 120 s."""
        log = self.folder / "bot.log"
        if self.mode == "socket":
            env = self._env(servers, telegram_url, self.ports[0])
            self.processes = [_start_bot(["--workers", str(self.workers)], env, log)]
        else:
            for index, port in enumerate(self.ports):
                env = self._env(servers, telegram_url, port)
                self.processes.append(_start_bot(["--webhook"], env, log))
                if index == 0:  # it migrates, syncs an empty catalogue and sets the webhook
                    await self._wait_listening(1)
        await self._wait_listening(self.workers)

    async def _wait_listening(self, workers: int) -> None:
        """Until ``workers`` workers logged that they serve the webhook (all the
        processes of a round log to one file)."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self.processes):
                raise RuntimeError(f"the bot exited:\n{self.log_tail()}")
            text = (self.folder / "bot.log").read_text(errors="replace")
            if text.count("webhook listening on") >= workers:
                return
            await asyncio.sleep(0.1)
        raise RuntimeError(f"the bot did not serve within 120 s:\n{self.log_tail()}")

    def worker_pids(self) -> list[int]:
        """The processes that handle updates, worker 0 first: the parent's children
        (``socket`` with 2 or more: ``--workers 1`` is one process, no parent), in the
        order its log says it started them, else the processes themselves."""
        if self.supervised:
            text = (self.folder / "bot.log").read_text(errors="replace")
            started = {int(pid): int(i) for i, pid in _STARTED.findall(text)}
            return sorted(children(self.processes[0].pid), key=lambda pid: started.get(pid, 99))
        return [p.pid for p in self.processes]

    def log_tail(self, lines: int = 40) -> str:
        path = self.folder / "bot.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(f"# bot.log: {line}" for line in text.splitlines()[-lines:])

    def stop(self, grace: float = 3.0) -> None:
        """SIGTERM, then after ``grace`` seconds SIGKILL to every process and worker still
        running (shutdown is not measured here). A worker on PostgreSQL + Redis took over
        30 s to stop on SIGTERM, and killing only the parent of ``--workers`` left its
        workers running for good: so the workers are killed too, by pid."""
        workers = self.worker_pids() if self.supervised else []
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + grace
        for process in self.processes:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()  # the parent first: it would restart a killed worker
                process.wait()
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _start_bot(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "bot", *args], cwd=ROOT, env=env, stdout=sink, stderr=sink
        )


async def _last_sync(database_url: str) -> tuple[int, bool]:
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow("SELECT id, finished_at FROM sync_runs ORDER BY id DESC LIMIT 1")
    except asyncpg.UndefinedTableError:
        return 0, False  # not migrated yet: the first round's bot creates it
    finally:
        await conn.close()
    return (int(row["id"]), row["finished_at"] is not None) if row else (0, False)


async def _wait_sync_after(database_url: str, run_id: int, timeout: float = 120) -> None:
    """Wait for a sync run newer than ``run_id`` to finish (every start-up syncs; the load
    is measured after it). Raises ``RuntimeError`` on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        newest, finished = await _last_sync(database_url)
        if newest > run_id and finished:
            return
        await asyncio.sleep(0.2)
    raise RuntimeError("the start-up sync did not finish")


# -- one round ------------------------------------------------------------------------------


def _products(buttons: list[list[str]]) -> list[str]:
    return [data for _, data in buttons if data.startswith("prd:")]


async def _customers_load(
    tg: TelegramProcess, users: list[int], steps: int
) -> tuple[list[float], float]:
    """Each customer presses ``steps`` times, each as soon as the last was answered: a
    page of the top category, then a product card from it, alternately. Returns (latencies
    in ms, seconds it took)."""
    latencies: list[float] = []

    async def loop(user: int, offset: int) -> None:
        products: list[str] = []
        for step in range(steps):
            if step % 2 == 0 or not products:
                answer = await tg.act(user, "press_data", f"cat:top:{(offset + step // 2) % 5}")
                products = _products(answer["buttons"]) or products
            else:
                answer = await tg.act(user, "press_data", random.choice(products))
            latencies.append(answer["ms"])

    started = time.perf_counter()
    await asyncio.gather(*(loop(user, i) for i, user in enumerate(users)))
    return latencies, time.perf_counter() - started


async def run_round(
    servers: Servers, mode: str, workers: int, folder: Path, customers: int, steps: int
) -> Round:
    """Start the bot, bring the customers to the catalogue, measure their presses."""
    bot = Bot(mode, workers, folder)  # creates the folder
    tg = await TelegramProcess.start(bot.targets, folder / "telegram.log")
    run_before, _ = await _last_sync(servers.database_url)
    try:
        await bot.start(servers, tg.url)
        await _wait_sync_after(servers.database_url, run_before)
        base = 7_000_000 + random.randrange(10**6) * 1000  # fresh chats every round
        users = [base + i for i in range(customers)]
        await asyncio.gather(*(tg.act(u, "send", "/start", "text:Welcome") for u in users))
        await asyncio.gather(*(tg.act(u, "press", "Catalogue", "text:Choose") for u in users))
        worker_pids = bot.worker_pids()
        assert len(worker_pids) == workers, worker_pids
        postmaster = servers.postgres._process
        redis = servers.redis._process
        assert postmaster is not None and redis is not None
        meter = CpuMeter(
            {
                "bot": worker_pids,
                "supervisor": [bot.processes[0].pid] if bot.supervised else [],
                "fake_telegram": [tg.process.pid],
                "customers": [os.getpid()],
                "postgres": [postmaster.pid, *children(postmaster.pid)],
                "redis": [redis.pid],
                "sandbox": [servers.sandbox.pid],
            }
        )
        handled = handled_per_pid(bot.metrics)
        meter.start()
        latencies, elapsed = await _customers_load(tg, users, steps)
        cpu, machine = meter.stop()
        after = handled_per_pid(bot.metrics)
        held: dict[int, int] = {}
        for port in bot.ports:
            for pid, count in connections_per_pid(port, worker_pids).items():
                held[pid] = held.get(pid, 0) + count
        result = Round(mode, workers, len(latencies) / elapsed, latencies, cpu, machine, elapsed)
        result.per_worker = [after.get(p, 0.0) - handled.get(p, 0.0) for p in worker_pids]
        result.connections = [held[p] for p in worker_pids]
        print(
            f"# {mode} w{workers}: {result.rate:.0f} updates/s, p95 "
            f"{percentile(latencies, 95):.0f} ms, updates per worker (0, 1, ...) "
            f"{[int(n) for n in result.per_worker]}, connections {result.connections}, "
            "CPU s: " + ", ".join(f"{k} {v:.2f}" for k, v in cpu.items() if v)
            + f", machine {machine:.2f} of {(os.cpu_count() or 1) * elapsed:.2f}; "
            f"load {os.getloadavg()[0]:.2f}",
            flush=True,
        )  # fmt: skip
        return result
    except Exception:
        print(bot.log_tail(), file=sys.stderr, flush=True)
        tail = (folder / "telegram.log").read_text(errors="replace").splitlines()[-30:]
        print("\n".join(f"# telegram.log: {line}" for line in tail), file=sys.stderr)
        raise
    finally:
        bot.stop()
        await tg.stop()


# -- figures --------------------------------------------------------------------------------


def figures(rounds: list[Round], mode: str) -> list[Figure]:
    """The printed figures of ``mode`` from its rounds (medians; latencies pooled)."""
    out: list[Figure] = []
    by_workers: dict[int, list[Round]] = {}
    for r in rounds:
        if r.mode == mode:
            by_workers.setdefault(r.workers, []).append(r)
    for workers, group in sorted(by_workers.items()):
        name = f"{mode}_w{workers}"
        pooled = [ms for r in group for ms in r.latencies]
        out.append(Figure(f"{name}_updates_s", median([r.rate for r in group]), "updates/s"))
        out.append(Figure(f"{name}_p50", percentile(pooled, 50), "ms"))
        out.append(Figure(f"{name}_p95", percentile(pooled, 95), "ms"))
        out.append(
            Figure(
                f"{name}_bot_cpu_per_update",
                median([1000 * r.cpu["bot"] / r.updates for r in group]),
                "ms",
            )
        )
        out.append(
            Figure(
                f"{name}_bot_cpu",
                median([100 * r.cpu["bot"] / r.elapsed for r in group]),
                "% of a core",
            )
        )
        for each in GROUPS[1:]:
            if any(r.cpu.get(each) for r in group):
                out.append(
                    Figure(
                        f"{name}_cpu_{each}_per_1000_updates",
                        median([1000 * r.cpu[each] / r.updates for r in group]),
                        "s",
                    )
                )
        out.append(
            Figure(
                f"{name}_cpu_other_processes_per_1000_updates",
                median([1000 * (r.machine - sum(r.cpu.values())) / r.updates for r in group]),
                "s",
            )
        )
        out.append(
            Figure(
                f"{name}_machine_busy",
                median([100 * r.machine / (r.elapsed * (os.cpu_count() or 1)) for r in group]),
                "% of all cores",
            )
        )
        if workers > 1:
            out.append(
                Figure(
                    f"{name}_busiest_worker_share",
                    median([100 * max(r.per_worker) / max(1.0, sum(r.per_worker)) for r in group]),
                    "%",
                )
            )
    ones = [r for r in rounds if r.mode == mode and r.workers == 1]
    twos = [r for r in rounds if r.mode == mode and r.workers == 2]
    if ones and twos:
        out.append(Figure(f"{mode}_scaling", median(scaling_ratios(ones, twos)), "x"))
        out.append(
            Figure(
                f"{mode}_scaling_cpu_ceiling",
                median([cpu_ceiling(b) / cpu_ceiling(a) for a, b in zip(ones, twos, strict=True)]),
                "x",
            )
        )
    return out


def cpu_ceiling(r: Round, cores: int | None = None) -> float:
    """The updates/s the machine's cores would allow at the CPU per update ``r`` measured,
    were nothing else running: each worker process can use one core, and the bot, the
    fake Bot API, the customers, PostgreSQL and Redis together all ``cores``."""
    cores = cores or os.cpu_count() or 1
    bot = r.cpu["bot"] / r.updates
    everything = sum(r.cpu.values()) / r.updates
    return min(r.workers / bot, cores / everything)


def scaling_ratios(ones: list[Round], twos: list[Round]) -> list[float]:
    """Each two-worker round's updates/s over the one-worker round measured just before it
    (rounds alternate, so each pair saw the same machine)."""
    return [two.rate / one.rate for one, two in zip(ones, twos, strict=True)]


async def _create_database(servers: Servers, name: str) -> str:
    admin = await asyncpg.connect(servers.postgres.url)
    try:
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    return servers.postgres.url_of(name)


async def run(
    repeats: int,
    modes: Iterable[str] = MODES,
    customers: int = CUSTOMERS,
    steps: int = STEPS,
    offers: int = OFFERS,
) -> list[Figure]:
    """Start the servers, run the rounds (progress lines printed), return the figures.
    Raises :class:`tests.servers.ServerMissing` without PostgreSQL or Redis installed."""
    modes = list(modes)
    postgres = PostgresServer()
    redis = RedisServer(databases=16)
    rounds: list[Round] = []
    print(
        f"# {time.strftime('%Y-%m-%d %H:%M')} · {offers} offers · {customers} customers x "
        f"{steps} presses · {repeats} repeats · load {os.getloadavg()[0]:.2f} "
        f"({os.cpu_count()} cores)",
        flush=True,
    )
    try:
        postgres.start()
        redis.start()
        sandbox, sandbox_url = await start_sandbox(offers)
        try:
            servers = Servers(postgres, redis, sandbox, sandbox_url)
            servers.database_url = await _create_database(servers, "shop")
            with tempfile.TemporaryDirectory() as folder:
                for repeat in range(repeats):
                    for mode in modes:
                        for workers in (1, 2):  # alternate: each pair sees the same machine
                            place = Path(folder) / f"{repeat}-{mode}-{workers}"
                            rounds.append(
                                await run_round(servers, mode, workers, place, customers, steps)
                            )
        finally:
            stop(sandbox)
    finally:
        redis.stop()
        postgres.stop()
    print(f"# load after: {os.getloadavg()[0]:.2f}", flush=True)
    return [figure for mode in modes for figure in figures(rounds, mode)]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.workers")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--mode", nargs="*", choices=MODES, default=list(MODES))
    parser.add_argument("--customers", type=int, default=CUSTOMERS)
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--offers", type=int, default=OFFERS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    for figure in asyncio.run(
        run(args.repeats, args.mode, args.customers, args.steps, args.offers)
    ):
        print(figure.line(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
