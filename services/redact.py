"""Names for secrets in logs: a charge id or a key is never logged, only its fingerprint."""

from __future__ import annotations

import hashlib


def fingerprint(secret: str) -> str:
    """A short, non-reversible tag for ``secret`` (``#`` + 8 hex digits of its SHA-256):
    the same charge id always gives the same tag, so log lines can be matched to each
    other and to a charge id an admin already has, without the log revealing it."""
    return "#" + hashlib.sha256(secret.encode()).hexdigest()[:8]
