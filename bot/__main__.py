"""``python -m bot``: run the shop (long polling, or a webhook when configured).

``--sandbox`` starts the embedded GamesDrop sandbox instead of the real supplier and
marks every message and invoice as test mode.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys

from aiogram.exceptions import TelegramNetworkError, TelegramUnauthorizedError
from aiogram.utils.token import TokenValidationError, validate_token
from pydantic import SecretStr

from bot.app import create_shop
from bot.i18n import LocalesMissing
from bot.logs import setup_logging
from bot.settings import Settings
from sandboxes.gamesdrop import DEFAULT_TOKEN, GamesDropSandbox, SandboxConfig

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


async def run(settings: Settings, webhook: bool) -> None:
    if webhook:
        _stop_on_signals()
    sandbox: GamesDropSandbox | None = None
    if settings.sandbox:
        token = settings.gamesdrop.token.get_secret_value() or DEFAULT_TOKEN
        sandbox = GamesDropSandbox(SandboxConfig(tokens={token}))
        base_url = await sandbox.start()
        gamesdrop = settings.gamesdrop.model_copy(
            update={
                "base_url": base_url,
                "user_info_url": sandbox.user_info_url,
                "token": SecretStr(token),
            }
        )
        settings = settings.model_copy(update={"gamesdrop": gamesdrop})
        logger.warning("SANDBOX MODE: orders go to the embedded GamesDrop sandbox at %s", base_url)
    try:
        shop = await create_shop(settings)
    except LocalesMissing as exc:
        raise StartupError(str(exc)) from None
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
        if sandbox is not None:
            await sandbox.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Run the game shop bot.")
    parser.add_argument("--sandbox", action="store_true", help="use the embedded GamesDrop sandbox")
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
    if not settings.sandbox and not settings.gamesdrop.token.get_secret_value():
        sys.exit("GAMESDROP__TOKEN is not set: put the shop token in .env, or run with --sandbox")
    webhook = args.webhook or bool(settings.telegram.webhook_url)
    if webhook and not settings.telegram.webhook_url:
        sys.exit("--webhook needs TELEGRAM__WEBHOOK_URL")
    try:
        with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
            asyncio.run(run(settings, webhook))
    except StartupError as exc:
        sys.exit(f"cannot start: {exc}")
    logger.info("stopped")


if __name__ == "__main__":
    main()
