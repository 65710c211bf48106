"""Job leases: which worker process runs which background job (``job_leases``, issue 20).

Every statement is one atomic, portable SQL statement (SQLite >= 3.35 and PostgreSQL):

- :meth:`LeasesRepository.claim`: ``INSERT ... ON CONFLICT (job) DO UPDATE ... WHERE
  <expired, or already ours> RETURNING holder``. Two processes claiming at once: the
  database serialises the two upserts on the primary key, the second one sees the first
  one's unexpired row and its ``WHERE`` fails, so it gets no row back.
- :meth:`LeasesRepository.renew`: ``UPDATE ... WHERE job = ? AND holder = ? RETURNING``.
  Any other claim changes ``holder`` and a release deletes the row, so a renewal that
  still finds the row ours proves nobody else held the job in between, even when our
  lease had expired (a long pause) and nobody took it.
- :meth:`LeasesRepository.release`: ``DELETE ... WHERE job = ? AND holder = ?``.

Times are ISO-8601 UTC text from the application clock (``clock``, default
:func:`datetime.now`), formatted like :func:`storage.db.utcnow_iso`, so they compare as
text on both engines and tests can move the clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from storage.db import Database, first_row

Clock = Callable[[], datetime]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Lease:
    """One row of ``job_leases``: ``holder`` runs ``job`` until ``expires_at`` (ISO UTC)."""

    job: str
    holder: str
    node: str | None
    expires_at: str
    renewed_at: str
    claimed_at: str


class LeasesRepository:
    """Claims, renews and releases job leases. ``clock`` returns an aware ``datetime``."""

    def __init__(self, db: Database, clock: Clock = _now) -> None:
        self._db = db
        self._clock = clock

    async def claim(
        self,
        job: str,
        holder: str,
        ttl_seconds: float,
        *,
        node: str | None = None,
        take_from: str | None = None,
    ) -> bool:
        """Take ``job`` for ``ttl_seconds`` when nobody holds it, its lease has expired,
        ``holder`` already holds it (then it is extended), or its holder is ``take_from``
        (a holder known to be dead: the caller checked). Returns whether ``holder`` now
        holds it. One statement: never two holders at once."""
        now = self._clock()
        async with self._db.transaction() as conn:
            row = await first_row(
                conn,
                """INSERT INTO job_leases (job, holder, node, expires_at, renewed_at, claimed_at)
                   VALUES (?, ?, ?, ?, ?, ?)
                   ON CONFLICT (job) DO UPDATE SET
                       holder = excluded.holder, node = excluded.node,
                       expires_at = excluded.expires_at, renewed_at = excluded.renewed_at,
                       claimed_at = CASE WHEN job_leases.holder = excluded.holder
                                         THEN job_leases.claimed_at ELSE excluded.claimed_at END
                   WHERE job_leases.expires_at < excluded.renewed_at
                      OR job_leases.holder = excluded.holder
                      OR job_leases.holder = ?
                   RETURNING holder""",
                (
                    job,
                    holder,
                    node,
                    _iso(now + timedelta(seconds=ttl_seconds)),
                    _iso(now),
                    _iso(now),
                    take_from,
                ),
            )
        return row is not None and row[0] == holder

    async def renew(self, job: str, holder: str, ttl_seconds: float) -> bool:
        """Extend ``holder``'s lease on ``job`` by ``ttl_seconds`` from now. ``False``: the
        lease is no longer ours (taken over, or released): stop the job at once."""
        now = self._clock()
        async with self._db.transaction() as conn:
            row = await first_row(
                conn,
                """UPDATE job_leases SET expires_at = ?, renewed_at = ?
                   WHERE job = ? AND holder = ? RETURNING job""",
                (_iso(now + timedelta(seconds=ttl_seconds)), _iso(now), job, holder),
            )
        return row is not None

    async def release(self, job: str, holder: str) -> bool:
        """Give ``job`` up (clean stop): another process may claim it at once. ``False``
        when ``holder`` did not hold it (nothing changes then)."""
        return bool(
            await self._db.execute(
                "DELETE FROM job_leases WHERE job = ? AND holder = ?", (job, holder)
            )
        )

    async def get(self, job: str) -> Lease | None:
        """The lease row of ``job``, expired or not; ``None`` when nobody holds it."""
        row = await self._db.fetchone(
            """SELECT job, holder, node, expires_at, renewed_at, claimed_at
               FROM job_leases WHERE job = ?""",
            (job,),
        )
        return Lease(*row) if row is not None else None

    async def all(self) -> list[Lease]:
        """Every lease row, by job name (operators: who runs what, until when)."""
        rows = await self._db.fetchall(
            """SELECT job, holder, node, expires_at, renewed_at, claimed_at
               FROM job_leases ORDER BY job"""
        )
        return [Lease(*row) for row in rows]
