from services.alerts import AlertService


async def test_a_storm_of_alerts_becomes_one_message_and_the_rest_are_counted() -> None:
    sent: list[tuple[str, int]] = []
    now = [0.0]

    async def send(text: str, folded: int) -> None:
        sent.append((text, folded))

    alerts = AlertService(send, min_interval=600, clock=lambda: now[0])
    assert await alerts.alert("order_failed", "first")
    for _ in range(4):
        assert not await alerts.alert("order_failed", "again")
    assert await alerts.alert("balance_low", "other kind goes through")
    now[0] = 601
    assert await alerts.alert("order_failed", "later")
    assert sent == [
        ("first", 0),
        ("other kind goes through", 0),
        ("later", 4),
    ]
