"""Sandboxes: twins of the suppliers' APIs and a fake Telegram Bot API, written field by
field from the vendor documents. They are products (the offline demo, trying the shop
without accounts, the end-to-end tests), not runtime services: the shop never imports
them outside ``--sandbox`` mode. Each runs alone too, e.g. ``python -m sandboxes.gamesdrop``.
"""
