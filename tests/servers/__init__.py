"""Throwaway database servers for the test session: real processes on 127.0.0.1, in a
temporary directory, on a free port, stopped at the end (:mod:`tests.servers.postgres`, :mod:`tests.servers.redis`)."""

from __future__ import annotations

from sandboxes.serving import free_port

__all__ = ["ServerMissing", "free_port"]


class ServerMissing(RuntimeError):
    """A server binary the suite needs is not installed; the message names the install
    command (``.ci/run`` installs it on a fresh Debian machine)."""
