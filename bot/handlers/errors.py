"""The last line: log every unhandled error with its update, tell the user what happens."""

from __future__ import annotations

import logging

from aiogram import Router
from aiogram.types import ErrorEvent
from aiogram.utils.i18n import gettext as _

logger = logging.getLogger(__name__)
router = Router(name=__name__)


@router.errors()
async def on_error(event: ErrorEvent) -> bool:
    update = event.update
    logger.error(
        "update %s failed: %s", update.update_id, event.exception, exc_info=event.exception
    )
    text = _("common.error")
    try:
        if update.callback_query is not None:
            await update.callback_query.answer(text, show_alert=True)
        elif update.message is not None and update.message.successful_payment is None:
            await update.message.answer(text)
        elif update.pre_checkout_query is not None:
            await update.pre_checkout_query.answer(ok=False, error_message=text)
    except Exception:
        logger.exception("could not tell the user about the failed update %s", update.update_id)
    return True
