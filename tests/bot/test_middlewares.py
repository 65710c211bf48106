from bot.middlewares import PRUNE_EVERY, ThrottlingMiddleware


def test_throttling_allows_a_burst_then_the_rate_and_forgets_idle_users() -> None:
    throttle = ThrottlingMiddleware(rate=2, burst=3)
    assert [throttle.allow(1, 0.0) for _ in range(4)] == [True, True, True, False]
    assert throttle.allow(1, 0.5)  # one token back after 0.5 s at 2/s
    assert not throttle.allow(1, 0.5)
    for user_id in range(100, 100 + PRUNE_EVERY):
        throttle.allow(user_id, 1000.0)  # long after user 1 went quiet
    assert 1 not in throttle._buckets
    assert throttle.allow(1, 1000.0)  # a forgotten user starts with a full bucket
