"""Settings as the shop reads them at start: from the environment and ``.env``, in the
forms ``.env.example`` shows."""

from __future__ import annotations

import pytest

from bot.settings import Settings


@pytest.mark.parametrize(
    "value", ["2061,2062,2071", "2061", '["2061", "2062", "2071"]', "2061, 2062;2071"]
)
def test_codegames_offer_ids_load_in_every_documented_form(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("CODEGAMES__TOKEN", "token")
    monkeypatch.setenv("CODEGAMES__OFFER_IDS", value)

    settings = Settings(_env_file=None)  # type: ignore[call-arg]

    expected = ["2061"] if value == "2061" else ["2061", "2062", "2071"]
    assert settings.vendor_sections()["codegames"].offer_ids == expected  # type: ignore[attr-defined]


def test_a_long_offer_list_loads_without_quadratic_work(monkeypatch: pytest.MonkeyPatch) -> None:
    ids = [str(3000 + n) for n in range(64_000)] + ["3000"]  # one repeated
    monkeypatch.setenv("CODEGAMES__TOKEN", "token")
    monkeypatch.setenv("CODEGAMES__OFFER_IDS", ",".join(ids))

    section = Settings(_env_file=None).vendor_sections()["codegames"]  # type: ignore[call-arg]

    assert section.offer_ids == ids[:-1]  # type: ignore[attr-defined]


def test_a_bad_offer_id_stops_the_start_with_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEGAMES__TOKEN", "token")
    monkeypatch.setenv("CODEGAMES__OFFER_IDS", "2061,abc")
    with pytest.raises(ValueError, match="CodeGames offer ids are numbers"):
        Settings(_env_file=None)  # type: ignore[call-arg]
