"""Broadcasts and promo Stars reward campaigns, as resumable background jobs.

Broadcasts copy one admin message to every customer with ``copyMessage``, paced under
Telegram's bulk limit; a 429 pauses the whole sender for its ``retry_after``; a 403 marks
the user as blocked. Each recipient row goes pending -> sending -> sent/failed/blocked in
the database, so after a crash the job resumes and nobody gets the message twice (a row
caught mid-send is not repeated).

Campaigns send Telegram Stars rewards through the supplier: one Stars pack order per
part, with a ``transactionId`` derived from (campaign, recipient line, part), so a rerun
or a crash can never pay a winner twice; supplier calls are paced under its 30/s limit.
Packs are ordered by :class:`services.stars.StarsPackSender` (loyalty payouts use it too).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from services.exports import csv_bytes
from services.flood import FloodBudget
from services.parsing import BadNumber, parse_int
from services.pricing import PricingService
from services.stars import (
    IN_FLIGHT_ERRORS,
    STARS_MAX,
    Pacer,
    PackOrder,
    RecipientResolver,
    StarsPackSender,
    parse_recipient,
    split_into_packs,
)
from services.suppliers.base import Capability, Supplier
from services.suppliers.errors import (
    SupplierAPIError,
    SupplierError,
)
from services.suppliers.models import OfferDetails, OfferRef, SupplierOrder
from services.suppliers.models import OrderStatus as SupplierStatus
from services.suppliers.registry import Suppliers, UnknownSupplier
from storage.catalogue import CatalogueRepository
from storage.mass_sending import Broadcast, Campaign, MassSendingRepository, Reward
from storage.users import UsersRepository

#: moved to services.stars; still imported from here
__all__ = ["BroadcastService", "CampaignService", "Pacer", "parse_reward_line", "split_into_packs"]

logger = logging.getLogger(__name__)


class ProgressReporter(Protocol):
    """Shows a job's progress to the admin who started it (implemented by the bot layer)."""

    async def broadcast_progress(
        self, broadcast: Broadcast, counts: dict[str, int], rate: float, final: bool
    ) -> None: ...

    async def campaign_progress(
        self, campaign: Campaign, counts: dict[str, int], final: bool, report: bytes | None
    ) -> None: ...

    async def reward_received(self, campaign: Campaign, user_id: int, stars: int) -> None: ...


class BackgroundJobs:
    """Keeps references to running jobs (by id), logs the ones that die, stops them all."""

    def __init__(self, kind: str) -> None:
        self._kind = kind
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self.canceled: set[int] = set()

    def spawn(self, job_id: int, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine, name=f"{self._kind} {job_id}")
        self._tasks[job_id] = task
        task.add_done_callback(lambda done: self._finished(job_id, done))

    def _finished(self, job_id: int, task: asyncio.Task[None]) -> None:
        self._tasks.pop(job_id, None)
        if not task.cancelled() and task.exception() is not None:
            logger.error("%s %s died", self._kind, job_id, exc_info=task.exception())

    def running(self, job_id: int) -> bool:
        """Whether job ``job_id`` runs in this process now."""
        return job_id in self._tasks

    async def wait(self, job_id: int) -> None:
        """Until the job (if it runs in this process) has finished."""
        task = self._tasks.get(job_id)
        if task is not None:
            await asyncio.shield(task)

    async def supervise(
        self,
        name: str,
        running: Callable[[], Awaitable[list[int]]],
        resume: Callable[[int], Awaitable[None]],
        wake: asyncio.Event,
        scan_every: float,
    ) -> None:
        """Forever: resume every job the database says is running and this process does
        not run (a new one, or one a dead worker left), then sleep ``scan_every`` seconds
        or until woken. Stopped (a lost lease, shutdown): stops the jobs too."""
        try:
            while True:
                wake.clear()
                try:
                    for job_id in await running():
                        if not self.running(job_id):
                            await resume(job_id)
                except Exception:
                    logger.exception("%s: looking for %ss to run failed", name, self._kind)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(scan_every):
                        await wake.wait()
        finally:
            await self.stop()

    async def follow_cancel(
        self, job_id: int, status: Callable[[], Awaitable[str | None]], every: float
    ) -> None:
        """Every ``every`` seconds until the job ends: a job the database no longer says is
        running (canceled by an admin whose update another worker handled) is canceled."""
        while job_id not in self.canceled:
            await asyncio.sleep(every)
            try:
                if await status() != "running":
                    self.canceled.add(job_id)
            except Exception:
                logger.exception("%s %s: reading its status failed", self._kind, job_id)

    async def stop(self) -> None:
        """Stop every job (shutdown); their state stays in the database for a resume."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


@dataclass
class JobStats:
    retry_after: int = 0
    started: float = field(default_factory=time.monotonic)
    done: int = 0

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0


class BroadcastService:
    """Runs broadcasts in the background. ``rate``: messages per second in all (Telegram
    allows about 30); ``max_in_flight``: requests under way at once."""

    def __init__(
        self,
        bot: Bot,
        repo: MassSendingRepository,
        users: UsersRepository,
        progress: ProgressReporter,
        *,
        rate: float = 25.0,
        max_in_flight: int = 8,
        progress_every: float = 2.0,
        flood: FloodBudget | None = None,
    ) -> None:
        self._bot = bot
        self._repo = repo
        self._users = users
        self._progress = progress
        self._rate = rate
        self._flood = flood or FloodBudget()
        self._max_in_flight = max_in_flight
        self._progress_every = progress_every
        self._jobs = BackgroundJobs("broadcast")
        self.stats: dict[int, JobStats] = {}
        #: set by :meth:`run_worker`'s caller: broadcasts run only in the worker process
        #: holding the ``broadcasts`` lease, which finds them in the database
        self.leased = False
        self._wake = asyncio.Event()

    async def start(self, broadcast: Broadcast) -> None:
        """Send ``broadcast`` (a row just created as running): here and now, or, when
        :attr:`leased`, by whichever worker runs :meth:`run_worker` (woken if it is us)."""
        if self.leased:
            self._wake.set()
        else:
            self._jobs.spawn(broadcast.id, self.run(broadcast.id))

    async def resume_all(self) -> int:
        """Restart every broadcast still marked running (after a restart)."""
        running = await self._repo.running_broadcasts()
        for broadcast in running:
            await self._resume(broadcast.id)
        return len(running)

    async def _resume(self, broadcast_id: int) -> None:
        """Run a broadcast this process did not start, or that a dead worker left: rows
        left ``sending`` may have reached the user and are never sent again."""
        abandoned = await self._repo.abandon_in_flight(broadcast_id)
        if abandoned:
            logger.warning(
                "resuming broadcast %s (%d interrupted mid-send, not repeated)",
                broadcast_id,
                abandoned,
            )
        self._jobs.spawn(broadcast_id, self.run(broadcast_id))

    async def run_worker(self, scan_every: float = 2.0) -> None:
        """Forever (under the ``broadcasts`` lease): run every broadcast marked running,
        looking again every ``scan_every`` seconds or when :meth:`start` wakes it.
        Cancelled (lease lost, shutdown): the broadcasts stop and resume in the next holder."""

        async def running() -> list[int]:
            return [b.id for b in await self._repo.running_broadcasts()]

        await self._jobs.supervise("broadcasts", running, self._resume, self._wake, scan_every)

    async def wait(self, broadcast_id: int) -> None:
        """Until the broadcast has finished (sent here, or by another worker)."""
        while True:
            if self._jobs.running(broadcast_id):
                await self._jobs.wait(broadcast_id)
                return
            if not self.leased:
                return
            broadcast = await self._repo.broadcast(broadcast_id)
            if broadcast is None or broadcast.status != "running":
                return
            await asyncio.sleep(0.1)

    async def cancel(self, broadcast_id: int) -> None:
        self._jobs.canceled.add(broadcast_id)
        await self._repo.finish_broadcast(broadcast_id, "canceled")

    async def stop(self) -> None:
        await self._jobs.stop()

    def _markup(self, broadcast: Broadcast) -> InlineKeyboardMarkup | None:
        if not broadcast.button_text or not broadcast.button_url:
            return None
        return InlineKeyboardMarkup(
            inline_keyboard=[
                [InlineKeyboardButton(text=broadcast.button_text, url=broadcast.button_url)]
            ]
        )

    async def run(self, broadcast_id: int) -> None:
        """Send to every pending recipient, then report. Safe to call again after a crash."""
        broadcast = await self._repo.broadcast(broadcast_id)
        if broadcast is None or broadcast.status != "running":
            return
        pacer = Pacer(self._rate)
        stats = self.stats.setdefault(broadcast_id, JobStats())
        markup = self._markup(broadcast)
        slots = asyncio.Semaphore(self._max_in_flight)
        in_flight: set[asyncio.Task[None]] = set()
        reporter = asyncio.create_task(self._report_loop(broadcast, stats))
        try:
            while broadcast_id not in self._jobs.canceled:
                batch = await self._repo.pending_recipients(broadcast_id)
                if not batch and not in_flight:
                    break
                if not batch:
                    await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                    continue
                for user_id in batch:
                    if broadcast_id in self._jobs.canceled:
                        break
                    await slots.acquire()
                    await pacer.wait()
                    await self._flood.bulk_turn()  # customer deliveries go first
                    if broadcast_id in self._jobs.canceled:  # canceled during the wait
                        slots.release()
                        break
                    # pending -> sending in one conditional UPDATE: a row another
                    # sender took (a worker that lost the lease) is never sent twice
                    if not await self._repo.claim_recipient(broadcast_id, user_id):
                        slots.release()
                        continue
                    task = asyncio.create_task(
                        self._send_one(broadcast, user_id, markup, pacer, stats)
                    )
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
                    task.add_done_callback(lambda _: slots.release())
            if in_flight:
                await asyncio.gather(*in_flight)
            await self._repo.finish_broadcast(
                broadcast_id, "canceled" if broadcast_id in self._jobs.canceled else "done"
            )
        except asyncio.CancelledError:
            # stopped (shutdown, lease lost): sends under way settle their rows first, for
            # a few seconds at most; rows left 'sending' are never sent again
            if in_flight:
                _, unfinished = await asyncio.wait(in_flight, timeout=5.0)
                for task in unfinished:
                    task.cancel()
            raise
        finally:
            reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reporter
        final = await self._repo.broadcast(broadcast_id)
        assert final is not None
        await self._report(final, stats, final=True)

    async def _send_one(
        self,
        broadcast: Broadcast,
        user_id: int,
        markup: InlineKeyboardMarkup | None,
        pacer: Pacer,
        stats: JobStats,
    ) -> None:
        try:
            await self._bot.copy_message(
                chat_id=user_id, from_chat_id=broadcast.source_chat_id,
                message_id=broadcast.source_message_id, reply_markup=markup,
            )  # fmt: skip
        except TelegramRetryAfter as exc:
            stats.retry_after += 1
            pacer.pause(float(exc.retry_after))
            self._flood.pause(float(exc.retry_after))
            logger.warning("broadcast %s: 429, everyone waits %s s", broadcast.id, exc.retry_after)
            await self._repo.mark_recipient(broadcast.id, user_id, "pending")  # not sent: try again
            return
        except TelegramForbiddenError:
            await self._repo.mark_recipient(
                broadcast.id, user_id, "blocked", "bot blocked by the user"
            )
            await self._users.set_blocked(user_id, True)
        except TelegramServerError as exc:
            await self._repo.mark_recipient(
                broadcast.id, user_id, "pending", str(exc)
            )  # Telegram did not send it
            pacer.pause(1.0)
            return
        except (
            TelegramBadRequest,
            Exception,
        ) as exc:  # network errors included: it may have arrived
            logger.warning("broadcast %s to %s failed: %s", broadcast.id, user_id, exc)
            await self._repo.mark_recipient(broadcast.id, user_id, "failed", str(exc)[:300])
        else:
            await self._repo.mark_recipient(broadcast.id, user_id, "sent")
        stats.done += 1

    async def _report_loop(self, broadcast: Broadcast, stats: JobStats) -> None:
        """Progress every ``progress_every`` seconds; a broadcast the database says is no
        longer running (canceled from another worker) is canceled here too."""
        while True:
            await asyncio.sleep(self._progress_every)
            await self._report(broadcast, stats, final=False)
            try:
                current = await self._repo.broadcast(broadcast.id)
                if current is None or current.status != "running":
                    self._jobs.canceled.add(broadcast.id)
            except Exception:
                logger.exception("broadcast %s: reading its status failed", broadcast.id)

    async def _report(self, broadcast: Broadcast, stats: JobStats, final: bool) -> None:
        try:
            counts = await self._repo.broadcast_counts(broadcast.id)
            await self._progress.broadcast_progress(broadcast, counts, stats.rate, final)
        except Exception:
            logger.exception("broadcast %s: progress report failed", broadcast.id)


# -- campaigns -------------------------------------------------------------------------

_AMOUNT_SPLIT = re.compile(r"[\s,;]+")


def parse_reward_line(line: str, default_stars: int) -> tuple[str, int] | None:
    """``@user``, ``12345``, optionally followed by an amount (``@user 100``, ``@user,100``).
    Returns ``(recipient text, Stars)`` or ``None`` for a line that says nothing usable
    (an amount in other than the ASCII digits 0-9 included)."""
    parts = [p for p in _AMOUNT_SPLIT.split(line.strip()) if p]
    if not parts:
        return None
    amount = default_stars
    if len(parts) >= 2 and parts[-1][:1].isdigit():  # meant as an amount, ASCII or not
        try:
            amount = parse_int(parts[-1], high=STARS_MAX * 1000)
        except BadNumber:
            return None
        parts = parts[:-1]
    if len(parts) != 1:
        return None
    return parts[0], amount


@dataclass(frozen=True, slots=True)
class CampaignPreview:
    campaign: Campaign
    recipients: int
    unresolved: list[tuple[int, str, str]]  # (line number, line, reason)
    total_stars: int
    cost_usd: Decimal
    balance_usd: Decimal | None
    postpaid: bool

    @property
    def fits(self) -> bool:
        return self.postpaid or (self.balance_usd is not None and self.balance_usd >= self.cost_usd)


class CampaignService:
    """Prepares (resolve, price, preview) and runs promo Stars reward campaigns."""

    def __init__(
        self,
        suppliers: Suppliers | Supplier,
        repo: MassSendingRepository,
        catalogue: CatalogueRepository,
        pricing: PricingService,
        resolver: RecipientResolver,
        progress: ProgressReporter,
        *,
        transaction_prefix: str = "shop",
        supplier_rate: float = 25.0,
        settle_attempts: int = 20,
        settle_delay: float = 3.0,
    ) -> None:
        self._suppliers = suppliers if isinstance(suppliers, Suppliers) else Suppliers([suppliers])
        self._repo = repo
        self._catalogue = catalogue
        self._pricing = pricing
        self._resolver = resolver
        self._progress = progress
        self._prefix = transaction_prefix
        self._rate = supplier_rate
        self._settle_attempts = settle_attempts
        self._settle_delay = settle_delay
        self._jobs = BackgroundJobs("campaign")
        self._sender = StarsPackSender(self._suppliers, catalogue)
        #: set by :meth:`run_worker`'s caller: campaigns run only in the worker process
        #: holding the ``campaigns`` lease, which finds them in the database
        self.leased = False
        self._wake = asyncio.Event()
        #: seconds between looks at a running campaign's status (canceled elsewhere?)
        self.status_every = 2.0

    async def _packs(self) -> dict[int, OfferRef]:
        """Stars amount -> the Stars pack offer in the catalogue (:meth:`StarsPackSender.packs`)."""
        return await self._sender.packs()

    async def prepare(
        self, admin_id: int, name: str, promo_text: str, default_stars: int, lines: list[str]
    ) -> CampaignPreview:
        """Resolve every line, split amounts into packs, price them, and save a draft."""
        packs = await self._packs()
        pacer = Pacer(self._rate)
        rows: list[tuple] = []  # type: ignore[type-arg]
        unresolved: list[tuple[int, str, str]] = []
        seen: set[int] = set()
        for line_no, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            problem, user_id, display, amounts = await self._resolve_line(
                line, default_stars, packs, pacer
            )
            if problem is None and user_id in seen:
                problem = "duplicate recipient"
            if problem is not None or user_id is None or amounts is None:
                unresolved.append((line_no, line.strip()[:64], problem or "unresolved"))
                rows.append(
                    (
                        line_no,
                        0,
                        line.strip()[:200],
                        None,
                        None,
                        0,
                        None,
                        None,
                        "unresolved",
                        problem,
                    )
                )
                continue
            seen.add(user_id)
            for part, amount in enumerate(amounts):
                rows.append(
                    (
                        line_no,
                        part,
                        line.strip()[:200],
                        user_id,
                        display,
                        amount,
                        packs[amount].supplier,
                        packs[amount].offer_id,
                        "pending",
                        None,
                    )
                )
        campaign = await self._repo.create_campaign(admin_id, name, promo_text, rows, self._prefix)
        return await self.preview(campaign.id, unresolved)

    async def _resolve_line(
        self, line: str, default_stars: int, packs: dict[int, OfferRef], pacer: Pacer
    ) -> tuple[str | None, int | None, str | None, list[int] | None]:
        parsed = parse_reward_line(line, default_stars)
        recipient = parse_recipient(parsed[0]) if parsed else None
        if parsed is None or recipient is None:
            return "not a @username or numeric id", None, None, None
        amount = parsed[1]
        if not 1 <= amount <= STARS_MAX:
            return f"{amount} Stars is outside 1..{STARS_MAX}", None, None, None
        amounts = split_into_packs(amount, sorted(packs))
        if amounts is None:
            return f"{amount} Stars cannot be made from the packs on sale", None, None, None
        if recipient.user_id is not None:
            return None, recipient.user_id, str(recipient.user_id), amounts
        assert recipient.username is not None
        await pacer.wait()
        try:
            resolved = await self._resolver.resolve(recipient.username)
        except SupplierError as exc:
            return f"lookup failed: {exc}", None, None, None
        if resolved.user_id is None:
            helper = self._resolver.helper_bot or "the supplier's helper bot"
            return f"no Telegram id yet (must start {helper})", None, None, None
        return None, resolved.user_id, resolved.display, amounts

    async def preview(
        self, campaign_id: int, unresolved: list[tuple[int, str, str]] | None = None
    ) -> CampaignPreview:
        """Totals of a campaign: Stars, supplier cost in USD at current prices, balance."""
        campaign = await self._repo.campaign(campaign_id)
        assert campaign is not None
        rewards = await self._repo.rewards(campaign_id)
        sendable = [r for r in rewards if r.status != "unresolved"]
        if unresolved is None:
            unresolved = [
                (r.line_no, r.raw[:64], r.reason or "") for r in rewards if r.status == "unresolved"
            ]
        prices: dict[OfferRef, OfferDetails] = {}
        cost = Decimal(0)
        for reward in sendable:
            ref = self._ref(reward)
            if ref not in prices:
                prices[ref] = await self._suppliers.get(ref.supplier).find_offer(ref.offer_id)
            details = prices[ref]
            cost += self._pricing.book.usd(details.price, details.currency)
        balance_usd: Decimal | None = Decimal(0)
        postpaid = True
        for name in sorted({self._ref(r).supplier for r in sendable}):
            supplier = self._suppliers.get(name)
            if Capability.BALANCE not in supplier.capabilities:
                continue  # no balance to check: the orders themselves will tell
            balance = await supplier.get_balance()
            if not balance.is_postpaid:
                postpaid = False
                balance_usd = (balance_usd or Decimal(0)) + balance.balance
        return CampaignPreview(
            campaign, len({r.line_no for r in sendable}), unresolved, sum(r.stars for r in sendable),
            cost.quantize(Decimal("0.01")), balance_usd, postpaid,
        )  # fmt: skip

    @staticmethod
    def _ref(reward: Reward) -> OfferRef:
        assert reward.supplier is not None and reward.offer_id is not None
        return OfferRef(reward.supplier, reward.offer_id)

    async def start(self, campaign_id: int) -> bool:
        """Start a draft campaign; ``False`` if it is not a draft or does not fit the balance."""
        preview = await self.preview(campaign_id)
        if not preview.fits:
            return False
        if not await self._repo.set_campaign_status(campaign_id, "running", expect="draft"):
            return False
        if self.leased:
            self._wake.set()  # the worker holding the campaigns lease runs it
        else:
            self._jobs.spawn(campaign_id, self.run(campaign_id))
        return True

    async def resume_all(self) -> int:
        running = await self._repo.running_campaigns()
        for campaign in running:
            await self._resume(campaign.id)
        return len(running)

    async def _resume(self, campaign_id: int) -> None:
        logger.info("campaign %s runs here (new, or resumed after a stop)", campaign_id)
        self._jobs.spawn(campaign_id, self.run(campaign_id))

    async def run_worker(self, scan_every: float = 2.0) -> None:
        """Forever (under the ``campaigns`` lease): run every campaign marked running,
        looking again every ``scan_every`` seconds or when :meth:`start` wakes it. A
        campaign taken over settles rows left ``sending`` by their transactionId first."""

        async def running() -> list[int]:
            return [c.id for c in await self._repo.running_campaigns()]

        await self._jobs.supervise("campaigns", running, self._resume, self._wake, scan_every)

    async def cancel(self, campaign_id: int) -> None:
        self._jobs.canceled.add(campaign_id)
        await self._repo.set_campaign_status(campaign_id, "canceled", expect="running")

    async def stop(self) -> None:
        await self._jobs.stop()

    async def run(self, campaign_id: int) -> None:
        """Pay every reward once. Rows left 'sending' by a crash are settled by asking the
        supplier with their transactionId before anything is ordered."""
        campaign = await self._repo.campaign(campaign_id)
        if campaign is None or campaign.status != "running":
            return
        pacer = Pacer(self._rate)
        prices: dict[OfferRef, OfferDetails] = {}
        follower = asyncio.create_task(self._follow_cancel(campaign_id))
        try:
            await self._pay_all(campaign, pacer, prices)
        finally:
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follower
        await self._notify_winners(campaign)
        if campaign_id not in self._jobs.canceled:
            await self._repo.set_campaign_status(campaign_id, "done", expect="running")
        final = await self._repo.campaign(campaign_id)
        assert final is not None
        await self._report(final, final=True)

    async def _follow_cancel(self, campaign_id: int) -> None:
        async def status() -> str | None:
            campaign = await self._repo.campaign(campaign_id)
            return campaign.status if campaign else None

        await self._jobs.follow_cancel(campaign_id, status, self.status_every)

    async def _pay_all(
        self, campaign: Campaign, pacer: Pacer, prices: dict[OfferRef, OfferDetails]
    ) -> None:
        """Passes over the open rewards until none is left (or the attempts run out)."""
        campaign_id = campaign.id
        for attempt in range(self._settle_attempts):
            open_rewards = await self._repo.rewards(campaign_id, ("pending", "sending"))
            if not open_rewards or campaign_id in self._jobs.canceled:
                break
            if attempt:
                await asyncio.sleep(self._settle_delay)
            for reward in open_rewards:
                if campaign_id in self._jobs.canceled:
                    break
                try:
                    await self._pay(campaign, reward, pacer, prices)
                except Exception:  # one reward's trouble never stops the others
                    logger.exception(
                        "campaign %s: reward %s failed unexpectedly; tried again next pass",
                        campaign_id, reward.transaction_id,
                    )  # fmt: skip
            await self._report(campaign, final=False)

    async def _pay(
        self, campaign: Campaign, reward: Reward, pacer: Pacer, prices: dict[OfferRef, OfferDetails]
    ) -> None:
        assert reward.offer_id is not None and reward.user_id is not None
        order = PackOrder(
            self._ref(reward), reward.user_id, reward.transaction_id, reward.status == "sending"
        )
        try:
            result = await self._sender.send(
                order, lambda: self._repo.mark_reward(reward, "sending"), pacer, prices
            )
        except UnknownSupplier as exc:
            await self._repo.mark_reward(reward, "failed", reason=str(exc))
            return
        except IN_FLIGHT_ERRORS as exc:
            await self._repo.mark_reward(
                reward, "sending", reason=str(exc)[:300]
            )  # settled on the next pass
            return
        except SupplierAPIError as exc:
            await self._repo.mark_reward(reward, "failed", reason=exc.supplier_message or str(exc))
            return
        await self._apply(reward, result)

    async def _apply(self, reward: Reward, result: SupplierOrder) -> None:
        if result.status is SupplierStatus.COMPLETED:
            await self._repo.mark_reward(reward, "completed", supplier_order_id=result.order_id)
        elif result.status.is_failure:
            await self._repo.mark_reward(
                reward,
                "failed",
                supplier_order_id=result.order_id,
                reason=result.message or result.status.value,
            )
        else:
            await self._repo.mark_reward(
                reward, "sending", supplier_order_id=result.order_id, reason=result.status.value
            )

    async def _notify_winners(self, campaign: Campaign) -> None:
        """Winners who use the bot get the promo text with their reward (once)."""
        by_line: dict[int, list[Reward]] = {}
        for reward in await self._repo.rewards(campaign.id):
            by_line.setdefault(reward.line_no, []).append(reward)
        for line_no, parts in by_line.items():
            user_id = parts[0].user_id
            if (
                user_id is None
                or any(p.notified for p in parts)
                or any(p.status != "completed" for p in parts)
                or not await self._repo.is_known_user(user_id)
            ):
                continue
            try:
                await self._progress.reward_received(campaign, user_id, sum(p.stars for p in parts))
            except Exception:
                logger.exception(
                    "campaign %s: could not tell user %s about the reward", campaign.id, user_id
                )
                continue
            await self._repo.mark_notified(campaign.id, line_no)

    async def report_csv(self, campaign_id: int) -> bytes:
        """line, recipient, resolved id, Stars, status, supplier order id, transaction id,
        reason: one row per order, as CSV for a spreadsheet (UTF-8 with a BOM, winner lines
        that look like formulas neutralised: :func:`services.exports.csv_bytes`)."""
        header = (
            "line", "recipient", "resolved_id", "stars", "status", "supplier_order_id",
            "transaction_id", "reason",
        )  # fmt: skip
        rows = [
            (r.line_no, r.raw, r.user_id, r.stars, r.status, r.supplier_order_id,
             r.transaction_id, r.reason)
            for r in await self._repo.rewards(campaign_id)
        ]  # fmt: skip
        return csv_bytes(header, rows)

    async def _report(self, campaign: Campaign, final: bool) -> None:
        try:
            counts = await self._repo.reward_counts(campaign.id)
            report = await self.report_csv(campaign.id) if final else None
            await self._progress.campaign_progress(campaign, counts, final, report)
        except Exception:
            logger.exception("campaign %s: progress report failed", campaign.id)
