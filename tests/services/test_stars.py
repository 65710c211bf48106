import pytest

from services.stars import RecipientInput, RecipientResolver, parse_recipient, stars_amount_allowed
from services.suppliers.gamesdrop.client import GamesDropClient


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("@durov", RecipientInput(username="durov")),
        ("durov", RecipientInput(username="durov")),
        ("t.me/durov", RecipientInput(username="durov")),
        ("https://t.me/durov/", RecipientInput(username="durov")),
        ("http://telegram.me/@durov", RecipientInput(username="durov")),
        ("143594291", RecipientInput(user_id=143594291)),
        ("  @alice_gamer ", RecipientInput(username="alice_gamer")),
    ],
)
def test_every_recipient_format_is_understood(text: str, expected: RecipientInput) -> None:
    assert parse_recipient(text) == expected


@pytest.mark.parametrize(
    "text", ["", "@ab", "1234", "hello world", "t.me/+invite", "@1abc", "<b>x</b>"]
)
def test_anything_else_is_refused(text: str) -> None:
    assert parse_recipient(text) is None


def test_stars_limits_from_the_guide() -> None:
    assert stars_amount_allowed(1) and stars_amount_allowed(2500)
    assert not stars_amount_allowed(0) and not stars_amount_allowed(2501)


async def test_resolved_usernames_are_cached_for_a_while_only(
    client: GamesDropClient, sandbox
) -> None:
    now = [0.0]
    resolver = RecipientResolver(client, ttl_seconds=60, clock=lambda: now[0])
    first = await resolver.resolve("igoryan34")
    sandbox.config.telegram_accounts[5].user_id = 777  # igoryan34 changes id at the supplier
    cached = await resolver.resolve("@IGORYAN34")
    now[0] = 61.0
    fresh = await resolver.resolve("igoryan34")
    assert (first.user_id, cached.user_id, fresh.user_id) == (143594291, 143594291, 777)
    assert first.display == "Igor (@igoryan34)"


async def test_a_username_without_id_is_not_cached(client: GamesDropClient, sandbox) -> None:
    resolver = RecipientResolver(client, ttl_seconds=3600)
    assert (await resolver.resolve("shy_sam")).user_id is None
    sandbox.config.telegram_accounts[6].user_id = 555  # shy_sam starts @gamesdrop_api_bot
    assert (await resolver.resolve("shy_sam")).user_id == 555
