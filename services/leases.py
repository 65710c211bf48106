"""Background jobs run once across every worker process, taken over when one dies.

:class:`LeaseService` runs a job's body only while this process holds the job's lease
(:class:`storage.leases.LeasesRepository`, table ``job_leases``): it claims the lease, renews
it every ``ttl / 3`` seconds, and cancels the body as soon as a renewal says the lease is
no longer ours (or renewals have failed for ``2 * ttl / 3``, before anyone else could take
it). A process that cannot claim a job tries again every ``retry`` seconds; the lease of a
process that died (kill -9) expires ``ttl`` seconds after its last renewal and the next
claim takes the job over. A clean stop releases the lease, so another process takes it at
its next try. One process alone (the embedded default) claims every job at once.

A holder killed on this machine is recognised without waiting out its lease: the
holder id is ``<hostname>:<pid>:<random>`` and the row keeps the holder's ``node``
(hostname, boot id, pid namespace); a holder of the same node whose pid no longer runs
is dead, so a restarted shop takes its jobs at once.

Worker clocks must agree to well within ``ttl / 3`` (NTP): expiry times are written from
each process's own clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from storage.leases import LeasesRepository

logger = logging.getLogger(__name__)

Body = Callable[[], Awaitable[object]]

#: worker ids of the lease services alive in this process: a holder with this process's
#: pid and another id is a stopped service (a shop restarted in-process, as tests do)
_ALIVE_HERE: set[str] = set()


def worker_identity() -> str:
    """``<hostname>:<pid>:<8 hex digits>``: unique per process start, readable in the table."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def local_node() -> str | None:
    """Where a pid names one process: hostname, boot id and pid namespace (Linux);
    ``None`` where they cannot be read (then dead holders are only taken over on expiry)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return None
    return f"{socket.gethostname()}/{boot}/{namespace}"


def _pid_of(holder: str) -> int | None:
    parts = holder.rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    return int(parts[1])


def _running(holder: str, pid: int) -> bool:
    if pid == os.getpid():
        return holder in _ALIVE_HERE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # somebody else's process: alive
        return True
    return True


class LeaseLost(Exception):
    """The lease of a running job went to another process (or could not be renewed)."""


class LeaseService:
    """Runs job bodies under leases. ``ttl``: seconds a lease lasts without renewal;
    ``retry``: seconds between claims of a job another process holds (default ``ttl/3``);
    ``worker_id`` and ``node``: this process (defaults: :func:`worker_identity`,
    :func:`local_node`)."""

    def __init__(
        self,
        repo: LeasesRepository,
        *,
        ttl: float = 15.0,
        retry: float | None = None,
        worker_id: str | None = None,
        node: str | None = None,
    ) -> None:
        if ttl <= 0:
            raise ValueError(f"lease ttl must be positive, not {ttl}")
        self.repo = repo
        self.ttl = ttl
        self.retry = retry if retry is not None else ttl / 3
        self.worker_id = worker_id or worker_identity()
        self.node = node if node is not None else local_node()
        #: jobs whose lease this process holds now
        self.held: set[str] = set()
        #: the renewal task of each held job (a test cancels one to play a dead process)
        self.renewers: dict[str, asyncio.Task[None]] = {}
        self._runs: set[asyncio.Task[object]] = set()
        self._dead = False
        _ALIVE_HERE.add(self.worker_id)

    async def claim(self, job: str) -> bool:
        """One attempt at ``job``'s lease (taking it from a dead holder on this machine).
        Database errors propagate."""
        if await self.repo.claim(job, self.worker_id, self.ttl, node=self.node):
            return True
        lease = await self.repo.get(job)
        if lease is None or self.node is None or lease.node != self.node:
            return False
        pid = _pid_of(lease.holder)
        if pid is None or lease.holder == self.worker_id or _running(lease.holder, pid):
            return False
        taken = await self.repo.claim(
            job, self.worker_id, self.ttl, node=self.node, take_from=lease.holder
        )
        if taken:
            logger.warning(
                "job %s: holder %s is no longer running on this machine; taken over by %s",
                job, lease.holder, self.worker_id,
            )  # fmt: skip
        return taken

    async def run_leased(self, job: str, body: Body) -> None:
        """Run ``body()`` under ``job``'s lease until it returns: wait for the lease
        (claiming every :attr:`retry` seconds), run the body while renewing; when the
        lease is lost, cancel the body and wait for the lease again (then run the body
        afresh: it must resume from the database). Returns after the body returned (the
        lease is released); an exception of the body is raised after the release.
        Cancelling this (a clean stop) cancels the body and releases the lease."""
        me = asyncio.current_task()
        if me is not None:
            self._runs.add(me)
        try:
            waiting_logged = False
            while True:
                try:
                    claimed = await self.claim(job)
                except Exception:
                    logger.exception("job %s: claiming its lease failed; trying again", job)
                    claimed = False
                if claimed:
                    waiting_logged = False
                    try:
                        await self._hold(job, body)
                        return
                    except LeaseLost:
                        pass  # logged by _hold; claim again
                elif not waiting_logged:
                    logger.info("job %s runs in another worker; standing by", job)
                    waiting_logged = True
                await asyncio.sleep(self.retry)
        finally:
            if me is not None:
                self._runs.discard(me)

    async def run_once(self, job: str, body: Body) -> bool:
        """Run ``body()`` under ``job``'s lease if it is free now; ``False`` (body not
        run) when another process holds it or the lease was lost midway."""
        if not await self.claim(job):
            return False
        try:
            await self._hold(job, body)
        except LeaseLost:
            return False
        return True

    async def _hold(self, job: str, body: Body) -> None:
        """Run the body of a job just claimed while renewing its lease. Raises
        :class:`LeaseLost` (body cancelled) when the lease is lost."""
        self.held.add(job)
        logger.info("job %s: lease taken by %s", job, self.worker_id)
        work: asyncio.Task[object] = asyncio.ensure_future(body())
        stop_renewing = asyncio.Event()
        renewer = asyncio.create_task(self._renew(job, stop_renewing), name=f"lease renewal {job}")
        self.renewers[job] = renewer
        try:
            await asyncio.wait({work, renewer}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            await self._stop(work)
            await self._end_renewals(renewer, stop_renewing)
            await self._let_go(job)
            raise
        if work.done():
            await self._end_renewals(renewer, stop_renewing)
            await self._let_go(job)
            work.result()  # the body's exception, if any
            return
        await self._stop(work)
        self.held.discard(job)
        self.renewers.pop(job, None)
        logger.warning("job %s: lease lost by %s; the job was stopped here", job, self.worker_id)
        raise LeaseLost(job)

    async def _end_renewals(self, renewer: asyncio.Task[None], stop: asyncio.Event) -> None:
        """Stop renewing between two renewals: a renewal cancelled inside its transaction
        could leave the connection in it (storage.db), and the release must follow."""
        stop.set()
        _, pending = await asyncio.wait({renewer}, timeout=self.ttl)
        if pending:
            await self._stop(renewer)

    async def _renew(self, job: str, stop: asyncio.Event) -> None:
        """Renew every ``ttl / 3``; return when the lease is lost, or when renewals have
        failed for ``2 * ttl / 3`` (nobody else can have it before ``ttl``), or once
        ``stop`` is set."""
        every = self.ttl / 3
        confirmed = time.monotonic()
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, confirmed + every - time.monotonic())):
                    await stop.wait()
            if stop.is_set():
                return
            try:
                if not await self.repo.renew(job, self.worker_id, self.ttl):
                    logger.warning(
                        "job %s: lease of %s taken by another worker", job, self.worker_id
                    )
                    return
                confirmed = time.monotonic()
            except Exception:
                logger.exception("job %s: renewing the lease of %s failed", job, self.worker_id)
                if time.monotonic() - confirmed >= 2 * self.ttl / 3:
                    logger.error(
                        "job %s: lease not renewed for %.1f s; stopping the job",
                        job,
                        2 * self.ttl / 3,
                    )
                    return
                await asyncio.sleep(min(every / 4, 0.5))

    @staticmethod
    async def _stop(*tasks: asyncio.Future[object]) -> None:
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:
                logger.exception("a leased job failed while being stopped")

    async def _let_go(self, job: str) -> None:
        self.held.discard(job)
        self.renewers.pop(job, None)
        if self._dead:
            return  # a killed process releases nothing
        try:
            await self.repo.release(job, self.worker_id)
        except Exception:
            logger.exception(
                "job %s: releasing the lease of %s failed; it expires in %.0f s",
                job, self.worker_id, self.ttl,
            )  # fmt: skip

    async def stop(self) -> None:
        """Cancel every :meth:`run_leased` of this service, releasing their leases. A
        lease whose release fails is taken over once it expires, or at once by a service
        started later on this machine (the holder no longer runs)."""
        await self._cancel_runs()
        _ALIVE_HERE.discard(self.worker_id)

    async def kill(self) -> None:
        """Stop every job as a killed process would: nothing is released, the leases
        expire after ``ttl`` (tests; :class:`bot.offline.OfflineShop` crashes)."""
        self._dead = True
        await self._cancel_runs()
        _ALIVE_HERE.discard(self.worker_id)

    async def _cancel_runs(self) -> None:
        runs = [task for task in self._runs if task is not asyncio.current_task()]
        for task in runs:
            task.cancel()
        for task in runs:
            with contextlib.suppress(asyncio.CancelledError):
                await task
