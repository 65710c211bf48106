"""Conversations that wait for typed input. ``/cancel`` leaves any of them."""

from aiogram.fsm.state import State, StatesGroup


class Checkout(StatesGroup):
    player_id = State()  # waiting for the player ID
    server = State()  # waiting for a server button
    confirm = State()  # player checked, waiting for "Pay"


class SearchInput(StatesGroup):
    query = State()


class GiftStars(StatesGroup):
    recipient = State()  # waiting for @username, id, link, forward or shared contact
    confirm = State()  # recipient resolved, waiting for "Pay"


class PromoInput(StatesGroup):
    code = State()  # waiting for a promo code typed on the Rewards screen
