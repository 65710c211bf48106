"""Broadcast and campaign state: one row per recipient, moved pending -> sending -> final."""

from __future__ import annotations

from dataclasses import dataclass

from storage.db import Database, Row, first_row, utcnow_iso

FINAL_BROADCAST = ("sent", "failed", "blocked")


@dataclass(frozen=True, slots=True)
class Broadcast:
    id: int
    admin_id: int
    source_chat_id: int
    source_message_id: int
    button_text: str | None
    button_url: str | None
    status: str
    progress_chat_id: int | None
    progress_message_id: int | None


@dataclass(frozen=True, slots=True)
class Reward:
    campaign_id: int
    line_no: int
    part: int
    raw: str
    user_id: int | None
    display: str | None
    stars: int
    supplier: str | None
    offer_id: str | None
    transaction_id: str
    status: str
    supplier_order_id: str | None
    reason: str | None
    notified: bool


@dataclass(frozen=True, slots=True)
class Campaign:
    id: int
    admin_id: int
    name: str
    promo_text: str
    status: str
    progress_chat_id: int | None
    progress_message_id: int | None


def _row(cls: type, row: Row):  # type: ignore[no-untyped-def]
    return cls(**{name: row[name] for name in cls.__dataclass_fields__})


class MassSendingRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    # -- broadcasts ------------------------------------------------------------------

    async def audience(self) -> list[int]:
        """Users who can receive a broadcast: not banned, not known to have blocked the bot."""
        rows = await self._db.fetchall(
            "SELECT id FROM users WHERE is_banned = 0 AND is_blocked = 0 ORDER BY id"
        )
        return [row["id"] for row in rows]

    async def create_broadcast(
        self,
        admin_id: int,
        source_chat_id: int,
        source_message_id: int,
        button_text: str | None,
        button_url: str | None,
        recipients: list[int],
    ) -> Broadcast:
        """The broadcast and all its recipient rows, in one transaction."""
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                """INSERT INTO broadcasts (admin_id, source_chat_id, source_message_id, button_text,
                       button_url, status, created_at) VALUES (?, ?, ?, ?, ?, 'running', ?)
                   RETURNING id""",
                (
                    admin_id,
                    source_chat_id,
                    source_message_id,
                    button_text,
                    button_url,
                    utcnow_iso(),
                ),
            )
            broadcast_id = int((await cursor.fetchone())[0])
            await conn.executemany(
                "INSERT INTO broadcast_recipients (broadcast_id, user_id) VALUES (?, ?)",
                [(broadcast_id, user_id) for user_id in recipients],
            )
        broadcast = await self.broadcast(broadcast_id)
        assert broadcast is not None
        return broadcast

    async def broadcast(self, broadcast_id: int) -> Broadcast | None:
        row = await self._db.fetchone("SELECT * FROM broadcasts WHERE id = ?", (broadcast_id,))
        return _row(Broadcast, row) if row else None

    async def running_broadcasts(self) -> list[Broadcast]:
        rows = await self._db.fetchall(
            "SELECT * FROM broadcasts WHERE status = 'running' ORDER BY id"
        )
        return [_row(Broadcast, row) for row in rows]

    async def set_broadcast_progress_message(
        self, broadcast_id: int, chat_id: int, message_id: int
    ) -> None:
        await self._db.execute(
            "UPDATE broadcasts SET progress_chat_id = ?, progress_message_id = ? WHERE id = ?",
            (chat_id, message_id, broadcast_id),
        )

    async def finish_broadcast(self, broadcast_id: int, status: str) -> None:
        await self._db.execute(
            "UPDATE broadcasts SET status = ?, finished_at = ? WHERE id = ? AND status = 'running'",
            (status, utcnow_iso(), broadcast_id),
        )

    async def pending_recipients(self, broadcast_id: int, limit: int = 500) -> list[int]:
        rows = await self._db.fetchall(
            "SELECT user_id FROM broadcast_recipients WHERE broadcast_id = ? AND status = 'pending' ORDER BY user_id LIMIT ?",
            (broadcast_id, limit),
        )
        return [row["user_id"] for row in rows]

    async def abandon_in_flight(self, broadcast_id: int) -> int:
        """After a crash: rows left 'sending' may or may not have been delivered. They are
        not sent again (never twice); they count as failed with that reason."""
        return await self._db.execute(
            """UPDATE broadcast_recipients SET status = 'failed', error = 'interrupted while sending'
               WHERE broadcast_id = ? AND status = 'sending'""",
            (broadcast_id,),
        )

    async def claim_recipient(self, broadcast_id: int, user_id: int) -> bool:
        """pending -> sending, only while pending (one conditional ``UPDATE``): ``True``
        when this sender may send to ``user_id``; ``False`` when another has it or it is
        settled. The row is marked before the message goes out, so a sender killed
        mid-send leaves it ``sending`` (see :meth:`abandon_in_flight`): never sent twice."""
        async with self._db.transaction() as conn:
            row = await first_row(
                conn,
                """UPDATE broadcast_recipients SET status = 'sending', error = NULL
                   WHERE broadcast_id = ? AND user_id = ? AND status = 'pending'
                   RETURNING user_id""",
                (broadcast_id, user_id),
            )
        return row is not None

    async def mark_recipient(
        self, broadcast_id: int, user_id: int, status: str, error: str | None = None
    ) -> None:
        await self._db.execute(
            """UPDATE broadcast_recipients SET status = ?, error = ?, sent_at = ?
               WHERE broadcast_id = ? AND user_id = ?""",
            (status, error, utcnow_iso() if status == "sent" else None, broadcast_id, user_id),
        )

    async def broadcast_counts(self, broadcast_id: int) -> dict[str, int]:
        rows = await self._db.fetchall(
            "SELECT status, count(*) AS n FROM broadcast_recipients WHERE broadcast_id = ? GROUP BY status",
            (broadcast_id,),
        )
        return {row["status"]: row["n"] for row in rows}

    # -- campaigns -------------------------------------------------------------------

    async def create_campaign(
        self,
        admin_id: int,
        name: str,
        promo_text: str,
        rewards: list[tuple],
        transaction_prefix: str,  # type: ignore[type-arg]
    ) -> Campaign:
        """A draft campaign with its reward rows ``(line_no, part, raw, user_id, display,
        stars, supplier, offer_id, status, reason)``, in one transaction. Each part's supplier
        ``transactionId`` is ``<prefix>-c<campaign>-l<line>-p<part>``: a rerun can never
        pay one winner twice."""
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                """INSERT INTO campaigns (admin_id, name, promo_text, status, created_at)
                   VALUES (?, ?, ?, 'draft', ?) RETURNING id""",
                (admin_id, name, promo_text, utcnow_iso()),
            )
            campaign_id = int((await cursor.fetchone())[0])
            await conn.executemany(
                """INSERT INTO campaign_rewards (campaign_id, line_no, part, raw, user_id, display, stars,
                       supplier, offer_id, status, reason, transaction_id)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                [
                    (
                        campaign_id,
                        *reward,
                        f"{transaction_prefix}-c{campaign_id}-l{reward[0]}-p{reward[1]}",
                    )
                    for reward in rewards
                ],
            )
        campaign = await self.campaign(campaign_id)
        assert campaign is not None
        return campaign

    async def campaign(self, campaign_id: int) -> Campaign | None:
        row = await self._db.fetchone("SELECT * FROM campaigns WHERE id = ?", (campaign_id,))
        return _row(Campaign, row) if row else None

    async def running_campaigns(self) -> list[Campaign]:
        rows = await self._db.fetchall(
            "SELECT * FROM campaigns WHERE status = 'running' ORDER BY id"
        )
        return [_row(Campaign, row) for row in rows]

    async def set_campaign_status(
        self, campaign_id: int, status: str, *, expect: str | None = None
    ) -> bool:
        finished = utcnow_iso() if status in ("done", "canceled") else None
        if expect is None:
            changed = await self._db.execute(
                "UPDATE campaigns SET status = ?, finished_at = coalesce(?, finished_at) WHERE id = ?",
                (status, finished, campaign_id),
            )
        else:
            changed = await self._db.execute(
                "UPDATE campaigns SET status = ?, finished_at = coalesce(?, finished_at) WHERE id = ? AND status = ?",
                (status, finished, campaign_id, expect),
            )
        return changed > 0

    async def set_campaign_progress_message(
        self, campaign_id: int, chat_id: int, message_id: int
    ) -> None:
        await self._db.execute(
            "UPDATE campaigns SET progress_chat_id = ?, progress_message_id = ? WHERE id = ?",
            (chat_id, message_id, campaign_id),
        )

    async def rewards(
        self, campaign_id: int, statuses: tuple[str, ...] | None = None
    ) -> list[Reward]:
        if statuses:
            marks = ",".join("?" * len(statuses))
            rows = await self._db.fetchall(
                f"SELECT * FROM campaign_rewards WHERE campaign_id = ? AND status IN ({marks}) ORDER BY line_no, part",
                (campaign_id, *statuses),
            )
        else:
            rows = await self._db.fetchall(
                "SELECT * FROM campaign_rewards WHERE campaign_id = ? ORDER BY line_no, part",
                (campaign_id,),
            )
        return [_row(Reward, row) for row in rows]

    async def mark_reward(
        self,
        reward: Reward,
        status: str,
        *,
        supplier_order_id: str | None = None,
        reason: str | None = None,
    ) -> None:
        await self._db.execute(
            """UPDATE campaign_rewards SET status = ?, supplier_order_id = coalesce(?, supplier_order_id),
                   reason = ? WHERE campaign_id = ? AND line_no = ? AND part = ?""",
            (status, supplier_order_id, reason, reward.campaign_id, reward.line_no, reward.part),
        )

    async def mark_notified(self, campaign_id: int, line_no: int) -> None:
        await self._db.execute(
            "UPDATE campaign_rewards SET notified = 1 WHERE campaign_id = ? AND line_no = ?",
            (campaign_id, line_no),
        )

    async def reward_counts(self, campaign_id: int) -> dict[str, int]:
        rows = await self._db.fetchall(
            "SELECT status, count(*) AS n FROM campaign_rewards WHERE campaign_id = ? GROUP BY status",
            (campaign_id,),
        )
        return {row["status"]: row["n"] for row in rows}

    async def is_known_user(self, user_id: int) -> bool:
        return (
            await self._db.fetchval(
                "SELECT 1 FROM users WHERE id = ? AND is_blocked = 0", (user_id,)
            )
            is not None
        )
