"""Admin-only: broadcasts (/broadcast) and promo Stars reward campaigns (/campaign).

Nothing is sent before the admin confirms a preview. The jobs run in the background
(services.mass_sending) with one progress message edited live and a Cancel button.
"""

from __future__ import annotations

import logging
import re
from html import escape

from aiogram import Bot, F, Router
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import ngettext
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.callbacks import Admin
from bot.handlers.admin.common import InPrivateChat, IsAdmin
from bot.ui import show
from services.mass_sending import BroadcastService, CampaignPreview, CampaignService
from services.parsing import BadNumber, parse_int
from services.stars import STARS_MAX
from services.suppliers.errors import SupplierError
from storage.mass_sending import MassSendingRepository

logger = logging.getLogger(__name__)
router = Router(name=__name__)
router.message.filter(InPrivateChat(), IsAdmin())
router.callback_query.filter(InPrivateChat(), IsAdmin())

BUTTON_LINE = re.compile(r"^(.{1,64}?)\s*\|\s*(https?://\S{3,200})$")
MAX_LINES = 10_000
MAX_LIST_BYTES = 1_000_000


class BroadcastInput(StatesGroup):
    message = State()
    button = State()
    confirm = State()


class CampaignInput(StatesGroup):
    name = State()
    promo = State()
    stars = State()
    recipients = State()


def _job_id(callback_data: Admin) -> int | None:
    """A broadcast or campaign id from a button, or ``None`` for crafted data."""
    try:
        return parse_int(callback_data.arg, low=1)
    except BadNumber:
        return None


def _yes_no(go: Admin, no_text: str | None = None) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=_("mass.confirm"), callback_data=go)
    builder.button(text=no_text or _("common.cancel"), callback_data=Admin(action="menu"))
    return builder.as_markup()


# -- broadcasts ------------------------------------------------------------------------


@router.message(Command("broadcast"))
@router.callback_query(Admin.filter(F.action == "broadcast"))
async def broadcast_start(event: Message | CallbackQuery, state: FSMContext) -> None:
    await state.set_state(BroadcastInput.message)
    await show(event, _("mass.broadcast_ask"))


@router.message(StateFilter(BroadcastInput.message), ~F.text.startswith("/"))
async def broadcast_message(message: Message, state: FSMContext) -> None:
    await state.update_data(chat_id=message.chat.id, message_id=message.message_id)
    await state.set_state(BroadcastInput.button)
    await message.answer(_("mass.button_ask"))


@router.message(StateFilter(BroadcastInput.button), F.text)
async def broadcast_button(
    message: Message, state: FSMContext, bot: Bot, mass_sending_repo: MassSendingRepository
) -> None:
    text = (message.text or "").strip()
    button: tuple[str, str] | None = None
    if text != "/skip":
        match = BUTTON_LINE.match(text)
        if match is None:
            await message.answer(_("mass.button_invalid"))
            return
        button = (match.group(1), match.group(2))
    await state.update_data(button=list(button) if button else None)
    await state.set_state(BroadcastInput.confirm)
    data = await state.get_data()
    markup = (
        InlineKeyboardMarkup(
            inline_keyboard=[[InlineKeyboardButton(text=button[0], url=button[1])]]
        )
        if button
        else None
    )
    await bot.copy_message(
        message.chat.id, data["chat_id"], data["message_id"], reply_markup=markup
    )
    audience = len(await mass_sending_repo.audience())
    await message.answer(
        ngettext("mass.broadcast_preview", "mass.broadcast_preview", audience).format(
            audience=audience
        ),
        reply_markup=_yes_no(Admin(action="bc_go")),
    )


@router.callback_query(StateFilter(BroadcastInput.confirm), Admin.filter(F.action == "bc_go"))
async def broadcast_go(
    callback: CallbackQuery,
    state: FSMContext,
    bot: Bot,
    mass_sending_repo: MassSendingRepository,
    broadcasts: BroadcastService,
) -> None:
    data = await state.get_data()
    await state.clear()
    button = data.get("button") or [None, None]
    recipients = await mass_sending_repo.audience()
    broadcast = await mass_sending_repo.create_broadcast(
        callback.from_user.id, data["chat_id"], data["message_id"], button[0], button[1], recipients
    )
    await callback.answer()
    progress = await bot.send_message(
        callback.from_user.id, _("mass.started").format(id=broadcast.id)
    )
    await mass_sending_repo.set_broadcast_progress_message(
        broadcast.id, progress.chat.id, progress.message_id
    )
    logger.info(
        "admin %s started broadcast %s to %d users",
        callback.from_user.id,
        broadcast.id,
        len(recipients),
    )
    await broadcasts.start(broadcast)


@router.callback_query(Admin.filter(F.action == "bc_cancel"))
async def broadcast_cancel(
    callback: CallbackQuery, callback_data: Admin, broadcasts: BroadcastService
) -> None:
    job_id = _job_id(callback_data)
    if job_id is not None:
        await broadcasts.cancel(job_id)
    await callback.answer(_("mass.canceled"), show_alert=True)


# -- campaigns -------------------------------------------------------------------------


@router.message(Command("campaign"))
@router.callback_query(Admin.filter(F.action == "campaign"))
async def campaign_start(event: Message | CallbackQuery, state: FSMContext) -> None:
    await state.set_state(CampaignInput.name)
    await show(event, _("mass.campaign_ask_name"))


@router.message(StateFilter(CampaignInput.name), F.text, ~F.text.startswith("/"))
async def campaign_name(message: Message, state: FSMContext) -> None:
    name = (message.text or "").strip()
    if len(name) > 64:
        await message.answer(_("common.text_too_long").format(max=64))
        return
    await state.update_data(name=name)
    await state.set_state(CampaignInput.promo)
    await message.answer(_("mass.campaign_ask_promo"))


@router.message(StateFilter(CampaignInput.promo), F.text, ~F.text.startswith("/"))
async def campaign_promo(message: Message, state: FSMContext) -> None:
    promo = (message.text or "").strip()
    if len(promo) > 1000:
        await message.answer(_("common.text_too_long").format(max=1000))
        return
    await state.update_data(promo=promo)
    await state.set_state(CampaignInput.stars)
    await message.answer(_("mass.campaign_ask_stars"))


@router.message(StateFilter(CampaignInput.stars), F.text)
async def campaign_stars(message: Message, state: FSMContext) -> None:
    try:
        stars = parse_int(message.text or "", low=1, high=STARS_MAX)
    except BadNumber:
        await message.answer(_("mass.campaign_bad_stars").format(max=STARS_MAX))
        return
    await state.update_data(stars=stars)
    await state.set_state(CampaignInput.recipients)
    await message.answer(_("mass.campaign_ask_recipients"))


async def _recipient_lines(message: Message, bot: Bot) -> list[str] | None:
    if message.document is not None:
        name = (message.document.file_name or "").lower()
        if (
            not name.endswith((".txt", ".csv"))
            or (message.document.file_size or 0) > MAX_LIST_BYTES
        ):
            return None
        data = await bot.download(message.document)
        if data is None:
            return None
        try:
            return data.read().decode("utf-8-sig").splitlines()
        except UnicodeDecodeError:
            return None
    return (message.text or "").splitlines()


def _preview_text(preview: CampaignPreview) -> str:
    problems = "\n".join(
        f"  {line}: {escape(raw)} ({escape(reason)})"
        for line, raw, reason in preview.unresolved[:20]
    )
    if len(preview.unresolved) > 20:
        problems += "\n  …"
    text = _("mass.campaign_preview").format(
        name=escape(preview.campaign.name), recipients=preview.recipients, stars=preview.total_stars,
        cost=preview.cost_usd, balance=preview.balance_usd, unresolved=len(preview.unresolved),
    )  # fmt: skip
    if problems:
        text += "\n" + _("mass.campaign_unresolved") + "\n" + problems
    if not preview.fits:
        text += "\n\n" + _("mass.campaign_over_balance")
    return text


@router.message(StateFilter(CampaignInput.recipients), F.text | F.document)
async def campaign_recipients(
    message: Message, state: FSMContext, bot: Bot, campaigns: CampaignService
) -> None:
    lines = await _recipient_lines(message, bot)
    if lines is None or not any(line.strip() for line in lines):
        await message.answer(_("mass.campaign_bad_list"))
        return
    if len(lines) > MAX_LINES:
        await message.answer(_("mass.campaign_too_many_lines").format(max=MAX_LINES))
        return
    data = await state.get_data()
    assert message.from_user is not None
    await message.answer(
        ngettext("mass.campaign_resolving", "mass.campaign_resolving", len(lines)).format(
            lines=len(lines)
        )
    )
    try:
        preview = await campaigns.prepare(
            message.from_user.id, data["name"], data["promo"], data["stars"], lines
        )
    except SupplierError as exc:
        await message.answer(_("admin.supplier_error").format(error=escape(str(exc))))
        return
    await state.clear()
    markup = (
        _yes_no(Admin(action="cp_go", arg=str(preview.campaign.id)))
        if preview.fits and preview.recipients
        else None
    )
    await message.answer(_preview_text(preview), reply_markup=markup)


@router.callback_query(Admin.filter(F.action == "cp_go"))
async def campaign_go(
    callback: CallbackQuery,
    callback_data: Admin,
    bot: Bot,
    campaigns: CampaignService,
    mass_sending_repo: MassSendingRepository,
) -> None:
    campaign_id = _job_id(callback_data)
    if campaign_id is None or await mass_sending_repo.campaign(campaign_id) is None:
        await callback.answer(_("mass.campaign_not_started"), show_alert=True)
        return
    progress = await bot.send_message(
        callback.from_user.id, _("mass.campaign_started").format(id=campaign_id)
    )
    await mass_sending_repo.set_campaign_progress_message(
        campaign_id, progress.chat.id, progress.message_id
    )
    if not await campaigns.start(campaign_id):
        await progress.edit_text(_("mass.campaign_not_started"))
    await callback.answer()


@router.callback_query(Admin.filter(F.action == "cp_cancel"))
async def campaign_cancel(
    callback: CallbackQuery, callback_data: Admin, campaigns: CampaignService
) -> None:
    job_id = _job_id(callback_data)
    if job_id is not None:
        await campaigns.cancel(job_id)
    await callback.answer(_("mass.canceled"), show_alert=True)


# -- what a wizard step answers to input it cannot use ---------------------------------

#: the hint each step repeats for a photo where a name is due, a command this bot does not
#: know, or text while buttons are awaited (known commands leave the step: see
#: :class:`bot.middlewares.StepCommandMiddleware`)
_STEP_HINTS = {
    BroadcastInput.message.state: "mass.broadcast_ask",
    BroadcastInput.button.state: "mass.button_invalid",
    BroadcastInput.confirm.state: "common.use_buttons",
    CampaignInput.name.state: "mass.campaign_ask_name",
    CampaignInput.promo.state: "mass.campaign_ask_promo",
    CampaignInput.stars.state: "mass.campaign_bad_stars",
    CampaignInput.recipients.state: "mass.campaign_bad_list",
}


@router.message(StateFilter(BroadcastInput, CampaignInput))
async def wizard_step_hint(message: Message, state: FSMContext) -> None:
    key = _STEP_HINTS.get(await state.get_state() or "", "mass.broadcast_ask")
    await message.answer(_(key).format(max=STARS_MAX))
