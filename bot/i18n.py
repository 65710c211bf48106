"""Translations: aiogram's gettext ``I18n`` over ``bot/locales/<lang>/LC_MESSAGES/messages.po``.

Message ids are keys (``menu.catalogue``); every locale, English included, gives the text.
The ``.po`` files are compiled in memory with Babel at start, so no binary ``.mo`` file
is kept in the repository. Placeholders are ``str.format`` names: ``{order}``.

The catalogues are package data of ``bot`` (pyproject ``package-data``), so an installed
bot finds them wherever it runs; :func:`create_i18n` refuses to start without one.
"""

from __future__ import annotations

import gettext
from collections.abc import Generator
from contextlib import contextmanager
from io import BytesIO
from pathlib import Path
from typing import Any

from aiogram.types import TelegramObject, User
from aiogram.utils.i18n import I18n, I18nMiddleware
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALES_DIR = Path(__file__).resolve().parent / "locales"
DOMAIN = "messages"
LANGUAGES = {"en": "English", "ru": "Русский"}


class PoI18n(I18n):
    """``I18n`` that reads ``.po`` files directly."""

    @contextmanager
    def context(self) -> Generator[I18n, None, None]:
        # aiogram keeps one context variable per class; ``gettext`` reads I18n's own
        token = I18n.set_current(self)
        try:
            yield self
        finally:
            I18n.reset_current(token)

    @contextmanager
    def for_locale(self, locale: str) -> Generator[I18n, None, None]:
        """Translate outside a handler (background messages): context plus locale."""
        with self.context(), self.use_locale(locale):
            yield self

    def find_locales(self) -> dict[str, gettext.GNUTranslations]:
        translations: dict[str, gettext.GNUTranslations] = {}
        for po_path in sorted(Path(self.path).glob(f"*/LC_MESSAGES/{self.domain}.po")):
            with po_path.open("rb") as po_file:
                catalog = read_po(po_file, locale=po_path.parent.parent.name)
            buffer = BytesIO()
            write_mo(buffer, catalog)
            buffer.seek(0)
            translations[po_path.parent.parent.name] = gettext.GNUTranslations(buffer)
        return translations


class LocalesMissing(RuntimeError):
    """A language of :data:`LANGUAGES` has no catalogue: the bot would send raw keys."""


def create_i18n(default_locale: str = "en", path: Path = LOCALES_DIR) -> PoI18n:
    """Every catalogue of :data:`LANGUAGES` under ``path``, compiled. Raises
    :class:`LocalesMissing` naming the languages whose ``.po`` file is missing."""
    missing = [
        language
        for language in LANGUAGES
        if not (path / language / "LC_MESSAGES" / f"{DOMAIN}.po").is_file()
    ]
    if missing:
        raise LocalesMissing(
            f"no translations for {', '.join(missing)} under {path}: "
            "the package was installed without its locales"
        )
    return PoI18n(path=path, default_locale=default_locale, domain=DOMAIN)


def pick_locale(i18n: I18n, chosen: str | None, telegram_language: str | None) -> str:
    """The user's choice, else their Telegram language (``ru-RU`` -> ``ru``), else default."""
    for candidate in (chosen, telegram_language):
        if candidate:
            code = candidate.split("-")[0].lower()
            if code in i18n.available_locales:
                return code
    return i18n.default_locale


class UserLocaleMiddleware(I18nMiddleware):
    """Locale from the stored user (set by :class:`bot.middlewares.UserMiddleware`)."""

    async def get_locale(self, event: TelegramObject, data: dict[str, Any]) -> str:
        record = data.get("user_record")
        telegram_user: User | None = data.get("event_from_user")
        return pick_locale(
            self.i18n,
            record.language if record else None,
            telegram_user.language_code if telegram_user else None,
        )
