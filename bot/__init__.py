"""The Telegram edge of the shop. Importing it first defers the build of aiogram's types
to their first use (:mod:`bot.lazy_models`: about 100 MiB less per process)."""

from bot.lazy_models import install

install()
