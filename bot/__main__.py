"""``python -m bot``: run the shop (long polling, or a webhook when configured).

``--sandbox`` starts the embedded sandbox of every supplier whose settings section is
enabled (every discovered supplier when none is; ``--vendors a,b`` chooses) instead of the
real suppliers, and marks every message and invoice as test mode.

``--workers N`` (webhook mode): N worker processes share the webhook's port under a parent
that supervises them (:mod:`bot.supervisor`); worker 0 sets the webhook and the commands.
``--workers 1`` (the default) is one process, as in one process per container.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any

from bot.logs import setup_logging
from bot.settings import Settings
from bot.supervisor import supervise
from services.memory import limit_malloc_arenas
from services.suppliers.registry import discover_vendors

# aiogram and the shop are imported in run(): the parent of --workers never loads them
# (about 40 MiB instead of 80 MiB resident for a process that only supervises)

logger = logging.getLogger("bot")

#: Seconds the parent of ``--workers`` gives its workers after SIGTERM (each gives the
#: updates in hand ``bot.app.STOP_GRACE`` = 20 s, then closes the shop).
WORKER_GRACE = 30.0

TOKEN_REJECTED = (
    "Telegram rejected TELEGRAM__TOKEN (401 Unauthorized): it is a placeholder, mistyped "
    "or revoked. Copy the bot's token from @BotFather into .env"
)


class StartupError(Exception):
    """Why the bot cannot start, in one line for the operator (no traceback)."""


def is_bot_token(token: str) -> bool:
    """``<digits>:<secret>`` without spaces: the rule of aiogram's ``validate_token``,
    here without importing aiogram (the parent of ``--workers`` never does)."""
    left, sep, right = token.partition(":")
    return bool(sep and left.isdigit() and right) and not any(c.isspace() for c in token)


def event_loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop for ``EVENT_LOOP`` (:class:`asyncio.Runner`'s ``loop_factory``;
    ``None`` is the standard library's). ``uvloop`` cost the bot 1.4-4 MiB more memory for
    about 8 % less CPU per catalogue press in the benchmark (``bench/README.md``), so it is
    the operator's choice, not the default. Raises :class:`StartupError` when ``uvloop``
    is asked for and not installed (Windows has none)."""
    if choice != "uvloop":
        return None
    try:
        import uvloop
    except ImportError as exc:
        raise StartupError("EVENT_LOOP=uvloop, but uvloop is not installed") from exc
    return uvloop.new_event_loop


def _stop_on_signals() -> None:
    """Webhook mode: SIGTERM (docker stop, or the parent of ``--workers``) and SIGINT
    cancel the main task once, so everything is closed; a second signal (Ctrl-C reaches
    the workers and their parent alike) does not cut that short. (Long polling has aiogram
    stop polling on the same signals.)"""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()

    def stop() -> None:
        if not task.cancelling():
            task.cancel()

    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):  # not on Windows
            loop.add_signal_handler(signum, stop)


async def _stop_with_parent(parent_pid: int, main: asyncio.Task[Any]) -> None:
    """A worker of ``--workers`` stops when its parent is gone (killed with -9: nobody
    would stop or restart it, and it would hold the port)."""
    while True:
        await asyncio.sleep(1.0)
        if os.getppid() != parent_pid:
            break
    logger.error("the parent process %d is gone: stopping", parent_pid)
    main.cancel()


def sandbox_vendors(settings: Settings, chosen: str | None) -> list[str]:
    """The vendors whose sandboxes ``--sandbox`` runs: ``chosen`` (``a,b``), else those
    whose section is enabled, else every discovered vendor. Raises ``StartupError`` for a
    name no supplier package has."""
    known = [spec.name for spec in discover_vendors()]
    if chosen:
        names = [name.strip() for name in chosen.split(",") if name.strip()]
        unknown = [name for name in names if name not in known]
        if unknown:
            raise StartupError(f"--vendors: unknown {unknown}; known: {known}")
        return names
    return settings.enabled_vendors() or known


async def run(
    settings: Settings,
    webhook: bool,
    vendors: str | None = None,
    *,
    sock: socket.socket | None = None,
    worker_index: int | None = None,
    parent_pid: int | None = None,
) -> None:
    """Run the shop until stopped. ``sock``, ``worker_index``, ``parent_pid``: a worker
    of ``--workers`` (its inherited listening socket; only worker 0 sets the webhook and
    the commands)."""
    from aiogram.exceptions import TelegramNetworkError, TelegramUnauthorizedError

    from bot.app import create_shop
    from bot.health import HealthServerError
    from bot.i18n import LocalesMissing
    from bot.offline import create_vendor_sandbox

    loop = asyncio.get_running_loop()
    logger.info("event loop: %s.%s", type(loop).__module__, type(loop).__name__)
    if webhook:
        _stop_on_signals()
    watch = None
    if parent_pid is not None:
        main_task = asyncio.current_task()
        assert main_task is not None
        watch = asyncio.create_task(_stop_with_parent(parent_pid, main_task))
    first = worker_index in (None, 0)
    sandboxes: list[Any] = []
    if settings.sandbox:
        sections = settings.vendor_sections()
        update: dict[str, Any] = {}
        for name in sandbox_vendors(settings, vendors):
            sandbox = create_vendor_sandbox(name)
            base_url = await sandbox.start()
            sandboxes.append(sandbox)
            section = sections[name]
            update[name] = type(section).model_validate(
                {**section.model_dump(), **sandbox.supplier_settings()}
            )
            logger.warning(
                "SANDBOX MODE: %s orders go to its embedded sandbox at %s", name, base_url
            )
        for name, section in sections.items():
            if name not in update and section.enabled():
                update[name] = type(section)()  # never a real supplier in sandbox mode
        settings = settings.model_copy(update=update)
    try:
        shop = await create_shop(settings)
    except LocalesMissing as exc:
        raise StartupError(str(exc)) from None
    # the embedded sandboxes live in this process, so their syncs do too
    shop.sync_in_child = not settings.sandbox
    try:
        try:
            me = await shop.bot.get_me()
        except TelegramUnauthorizedError:
            raise StartupError(TOKEN_REJECTED) from None
        except TelegramNetworkError as exc:
            raise StartupError(
                f"cannot reach the Bot API at {settings.telegram.api_base}: {exc.message}"
            ) from None
        logger.info("running as @%s", me.username)
        if first:
            await shop.register_commands()
        await shop.start_background()
        if webhook:
            await shop.run_webhook(sock=sock, set_webhook=first)
        else:
            try:
                await shop.run_polling(handle_signals=True)
            except HealthServerError as exc:
                raise StartupError(str(exc)) from None
    finally:
        if watch is not None:
            watch.cancel()
        await shop.close()
        for sandbox in sandboxes:
            await sandbox.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Run the game shop bot.")
    parser.add_argument(
        "--sandbox", action="store_true", help="use the embedded supplier sandboxes"
    )
    parser.add_argument(
        "--vendors", default=None, help="with --sandbox: the suppliers to run (a,b)"
    )
    parser.add_argument(
        "--webhook", action="store_true", help="webhook mode (needs TELEGRAM__WEBHOOK_URL)"
    )
    parser.add_argument(
        "--workers", type=int, default=1, metavar="N",
        help="webhook mode: N worker processes on the webhook's port (default 1)",
    )  # fmt: skip
    # a worker of --workers: the inherited listening socket, its number, its parent
    parser.add_argument("--listen-fd", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--worker-index", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--parent-pid", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    limit_malloc_arenas()  # before any thread starts (services.memory)
    if args.workers < 1:
        parser.error("--workers must be 1 or more")
    settings = Settings()
    if args.sandbox:
        settings = settings.model_copy(update={"sandbox": True})
    try:
        setup_logging(settings.log_level, settings.log_level_libraries)
    except ValueError as exc:
        sys.exit(f"LOG_LEVEL / LOG_LEVEL_LIBRARIES: {exc}")
    token = settings.telegram.token.get_secret_value()
    if not token:
        sys.exit("TELEGRAM__TOKEN is not set: put the BotFather token in .env (see .env.example)")
    if not is_bot_token(token):
        sys.exit("TELEGRAM__TOKEN is not a bot token (<digits>:<secret>): copy it from @BotFather")
    if not settings.sandbox and not settings.enabled_vendors():
        sections = ", ".join(f"{name.upper()}__..." for name in settings.vendor_sections())
        sys.exit(
            f"no supplier is enabled: set one supplier's section in .env ({sections}), "
            "or run with --sandbox"
        )
    webhook = args.webhook or bool(settings.telegram.webhook_url)
    if webhook and not settings.telegram.webhook_url:
        sys.exit("--webhook needs TELEGRAM__WEBHOOK_URL")
    if args.workers > 1:
        sys.exit(_supervise(settings, args, webhook))
    sock = None if args.listen_fd is None else socket.socket(fileno=args.listen_fd)
    try:
        with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
            worker = {"worker_index": args.worker_index, "parent_pid": args.parent_pid}
            with asyncio.Runner(loop_factory=event_loop_factory(settings.event_loop)) as runner:
                runner.run(run(settings, webhook, args.vendors, sock=sock, **worker))
    except StartupError as exc:
        sys.exit(f"cannot start: {exc}")
    except Exception:
        # a shop that failed half-built can leave threads behind (an open database's
        # connection thread) that would keep this process alive: end it, so the parent
        # of --workers or the container's restart policy starts a new one
        logger.exception("the bot crashed")
        logging.shutdown()
        os._exit(1)
    logger.info("stopped")


def _supervise(settings: Settings, args: argparse.Namespace, webhook: bool) -> int | str:
    """``--workers N`` with N > 1: the parent. Returns the exit code or the message."""
    if not webhook:
        return (
            f"--workers {args.workers} needs webhook mode: set TELEGRAM__WEBHOOK_URL (long "
            "polling is one process: Telegram hands updates to one getUpdates caller only)"
        )
    if settings.redis_url is None:
        return (
            f"--workers {args.workers} needs REDIS_URL: the workers share conversation "
            "locks, one flood budget, wake-ups and cache invalidation through Redis "
            "(README: Running several workers)"
        )
    if settings.sandbox:
        return (
            "--workers with --sandbox (SANDBOX=true) would give each worker a sandbox of its "
            "own: run one sandbox and point the supplier's section (BASE_URL) at it instead"
        )
    telegram = settings.telegram
    worker_args = ["--webhook"] + (["--vendors", args.vendors] if args.vendors else [])
    try:
        return supervise(
            telegram.webhook_host, telegram.webhook_port, args.workers, worker_args,
            grace=WORKER_GRACE,
        )  # fmt: skip
    except OSError as exc:
        return f"cannot listen on {telegram.webhook_host}:{telegram.webhook_port}: {exc}"


if __name__ == "__main__":
    main()
