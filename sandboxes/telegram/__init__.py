"""A fake Telegram Bot API server for the offline demo and the end-to-end tests."""

from sandboxes.telegram.server import (
    ApiError,
    Charge,
    FakeTelegram,
    FakeUser,
    TranscriptLine,
)

__all__ = ["ApiError", "Charge", "FakeTelegram", "FakeUser", "TranscriptLine"]
