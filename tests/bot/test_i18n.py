"""Every message the code uses exists in every locale, with the same placeholders."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from bot.i18n import LANGUAGES, LOCALES_DIR, create_i18n
from services.loyalty import PayoutRefusal, PromoProblem, ReferralOutcome
from services.orders import PreCheckoutRefusal
from storage.orders import OrderStatus

ROOT = Path(__file__).resolve().parents[2]
# a translated literal: _("menu.title") or gettext("...")
_TRANSLATED = re.compile(r"""(?:\b_|gettext)\(\s*["']([a-z_]+\.[a-z_.0-9]+)["']""")
# any literal in a message namespace, such as keys kept in tuples and dicts ("reason.out_of_stock")
_KEY_LIKE = re.compile(r"""["']([a-z]+\.[a-z_][a-z_.0-9]*)["']""")


def _read(language: str) -> Catalog:
    with (LOCALES_DIR / language / "LC_MESSAGES" / "messages.po").open("rb") as po:
        return read_po(po, locale=language)


def _catalog(language: str) -> dict[str, str]:
    """Singular messages by key; a plural entry (``msgid_plural``) under its singular key,
    its forms joined, so that a missing form or placeholder still shows."""
    return {
        (m.id[0] if m.pluralizable else m.id): (
            "\n".join(m.string) if m.pluralizable and all(m.string) else
            "" if m.pluralizable else m.string
        )
        for m in _read(language)
        if m.id
    }  # fmt: skip


def _plurals(language: str) -> dict[str, tuple[str, ...]]:
    """Plural entries by singular key: their forms, in the order of ``Plural-Forms``."""
    return {m.id[0]: tuple(m.string) for m in _read(language) if m.id and m.pluralizable}


_NAMESPACES = {"admin", "market", "mass", "catalogue", "category", "cmd", "common", "confirm", "delivery", "inline",
               "invoice", "language", "menu", "offer", "orders", "player", "precheckout", "reason",
               "search", "start", "stars", "status", "support", "paysupport", "terms", "rewards",
               "promo", "referral", "loyalty"}  # fmt: skip


def _used_keys() -> set[str]:
    keys: set[str] = set()
    for path in (ROOT / "bot").rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        keys |= set(_TRANSLATED.findall(source))
        keys |= {key for key in _KEY_LIKE.findall(source) if key.split(".")[0] in _NAMESPACES}
    keys |= {f"status.{s.value}" for s in OrderStatus}
    keys |= {f"precheckout.{r.value}" for r in PreCheckoutRefusal}
    keys |= {f"promo.refused.{p.value}" for p in PromoProblem}
    keys |= {f"referral.{o.value}" for o in ReferralOutcome}
    keys |= {f"loyalty.payout_refused.{r.value}" for r in PayoutRefusal}
    keys |= {f"admin.promos.status.{s}" for s in ("active", "paused", "deleted")}
    keys |= {f"admin.promos.done.{a}" for a in ("pause", "resume", "delete")}
    keys |= {f"admin.promos.bad.{p}" for p in ("format", "code", "value", "option")}
    from bot.app import ADMIN_COMMANDS, COMMANDS
    from services.admin import RefundRefusal

    keys |= {f"cmd.{name}" for name in (*COMMANDS, *ADMIN_COMMANDS)}
    keys |= {f"admin.refund_refused.{r.value}" for r in RefundRefusal}
    keys |= {f"admin.period_{days}" for days in (1, 7, 30)}
    keys |= {
        "menu.catalogue",
        "menu.gift_stars",
        "menu.language",
        "menu.support",
        "common.too_fast",
    }
    return keys


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_every_message_used_by_the_code_is_translated(language: str) -> None:
    catalog = _catalog(language)
    missing = sorted(key for key in _used_keys() if not catalog.get(key))
    assert not missing, f"{language} lacks {missing}"


def test_locales_have_the_same_messages_and_placeholders() -> None:
    english, russian = _catalog("en"), _catalog("ru")
    assert english.keys() == russian.keys()
    differing = [k for k in english if _placeholders(english[k]) != _placeholders(russian[k])]
    assert not differing


def test_a_missing_message_is_detected(tmp_path: Path) -> None:
    """The check above can fail: a key the code uses and a catalogue lacks is reported."""
    assert "menu.catalogue" in _used_keys()
    catalog = _catalog("en")
    del catalog["menu.catalogue"]
    assert [key for key in _used_keys() if not catalog.get(key)] == ["menu.catalogue"]


#: messages that put a count next to a noun: plural entries, used through ``ngettext``
COUNTED = (
    "admin.export_caption", "admin.sync_done", "admin.sync_held", "admin.catalogue_held",
    "admin.sync_applied", "mass.broadcast_preview", "mass.campaign_resolving",
)  # fmt: skip


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_counted_messages_have_every_plural_form_of_their_language(language: str) -> None:
    catalog = _read(language)
    plurals = _plurals(language)
    assert catalog.num_plurals == {"en": 2, "ru": 3}[language]
    assert "Plural-Forms" in dict(catalog.mime_headers)
    assert set(COUNTED) <= plurals.keys()
    for key, forms in plurals.items():
        assert len(forms) == catalog.num_plurals and all(forms), key
        english = _plurals("en")[key][0]
        assert all(_placeholders(form) == _placeholders(english) for form in forms), key


@pytest.mark.parametrize(
    ("language", "n", "expected"),
    [
        ("ru", 1, "1 предложение"), ("ru", 301, "301 предложение"), ("ru", 2, "2 предложения"),
        ("ru", 24, "24 предложения"), ("ru", 5, "5 предложений"), ("ru", 11, "11 предложений"),
        ("ru", 112, "112 предложений"), ("en", 1, "1 offer "), ("en", 301, "301 offers"),
    ],
)  # fmt: skip
def test_counts_read_as_people_say_them(language: str, n: int, expected: str) -> None:
    i18n = create_i18n()
    text = i18n.gettext("admin.sync_done", "admin.sync_done", n, locale=language)
    assert expected in text.format(offers=n, seconds="1.0")
