from services.alerts import AlertService


async def test_a_storm_of_alerts_becomes_one_message_and_the_rest_are_counted() -> None:
    sent: list[str] = []
    now = [0.0]

    async def send(text: str) -> None:
        sent.append(text)

    alerts = AlertService(send, min_interval=600, clock=lambda: now[0])
    assert await alerts.alert("order_failed", "first")
    for _ in range(4):
        assert not await alerts.alert("order_failed", "again")
    assert await alerts.alert("balance_low", "other kind goes through")
    now[0] = 601
    assert await alerts.alert("order_failed", "later")
    assert sent == [
        "first",
        "other kind goes through",
        "later\n(+4 more like this since the last alert)",
    ]
