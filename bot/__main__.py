"""``python -m bot``: run the shop (long polling, or a webhook when configured).

``--sandbox`` starts the embedded sandbox of every supplier whose settings section is
enabled (every discovered supplier when none is; ``--vendors a,b`` chooses) instead of the
real suppliers, and marks every message and invoice as test mode.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from typing import Any

from aiogram.exceptions import TelegramNetworkError, TelegramUnauthorizedError
from aiogram.utils.token import TokenValidationError, validate_token

from bot.app import create_shop
from bot.i18n import LocalesMissing
from bot.logs import setup_logging
from bot.offline import create_vendor_sandbox
from bot.settings import Settings
from services.suppliers.registry import discover_vendors

logger = logging.getLogger("bot")

TOKEN_REJECTED = (
    "Telegram rejected TELEGRAM__TOKEN (401 Unauthorized): it is a placeholder, mistyped "
    "or revoked. Copy the bot's token from @BotFather into .env"
)


class StartupError(Exception):
    """Why the bot cannot start, in one line for the operator (no traceback)."""


def _stop_on_signals() -> None:
    """Webhook mode: SIGTERM (docker stop) and SIGINT cancel the main task, so everything
    is closed. (Long polling has aiogram stop polling on the same signals.)"""
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):  # not on Windows
            loop.add_signal_handler(signum, task.cancel)  # type: ignore[union-attr]


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


async def run(settings: Settings, webhook: bool, vendors: str | None = None) -> None:
    if webhook:
        _stop_on_signals()
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
        await shop.register_commands()
        await shop.start_background()
        if webhook:
            await shop.run_webhook()
        else:
            await shop.run_polling(handle_signals=True)
    finally:
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
    args = parser.parse_args()
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
    try:
        validate_token(token)
    except TokenValidationError:
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
    try:
        with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
            asyncio.run(run(settings, webhook, args.vendors))
    except StartupError as exc:
        sys.exit(f"cannot start: {exc}")
    logger.info("stopped")


if __name__ == "__main__":
    main()
