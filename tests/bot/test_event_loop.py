"""EVENT_LOOP: the event loop ``python -m bot`` runs on (bot.__main__.event_loop_factory)."""

from __future__ import annotations

import asyncio

import pytest
import uvloop
from pydantic import ValidationError

from bot.__main__ import event_loop_factory
from bot.settings import Settings


def test_uvloop_when_asked_for_else_the_standard_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVENT_LOOP", raising=False)
    assert Settings(_env_file=None).event_loop == "asyncio"  # type: ignore[call-arg]
    factory = event_loop_factory("uvloop")
    assert factory is not None
    loop = factory()
    try:
        assert isinstance(loop, uvloop.Loop)
    finally:
        loop.close()
    with asyncio.Runner(loop_factory=event_loop_factory("asyncio")) as runner:
        assert not isinstance(runner.get_loop(), uvloop.Loop)


def test_an_unknown_event_loop_is_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENT_LOOP", "auto")
    with pytest.raises(ValidationError, match="event_loop"):
        Settings(_env_file=None)  # type: ignore[call-arg]
