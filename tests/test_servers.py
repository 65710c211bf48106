"""The throwaway servers the suite starts for itself (tests/servers)."""

from __future__ import annotations

import pytest
import redis

from tests.servers import ServerMissing
from tests.servers.redis import RedisServer, ping, redis_binary


def test_a_missing_redis_server_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ServerMissing, match="apt-get install -y redis-server"):
        redis_binary()


def test_redis_server_keeps_nothing_on_disk_and_stops() -> None:
    server = RedisServer(databases=4).start()
    try:
        client = redis.Redis.from_url(f"{server.url}/3", socket_timeout=5)
        client.set("key", "value")
        assert client.get("key") == b"value"
        assert client.config_get("save") == {"save": ""}
        assert client.config_get("appendonly") == {"appendonly": "no"}
        client.close()
    finally:
        server.stop()
    assert not ping(server.port)


def test_each_test_gets_an_empty_database_of_its_own(clean_redis_url: str, redis_url: str) -> None:
    assert clean_redis_url.rsplit("/", 1)[0] == redis_url.rsplit("/", 1)[0]
    assert not clean_redis_url.endswith("/0")
    with redis.Redis.from_url(clean_redis_url, socket_timeout=5) as client:
        assert client.dbsize() == 0
        client.set("left", "behind")  # the next test's database is emptied anyway
