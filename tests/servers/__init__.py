"""Throwaway database servers for the test session: real processes on 127.0.0.1, in a
temporary directory, on a free port, stopped at the end (:mod:`tests.servers.postgres`, :mod:`tests.servers.redis`)."""

from __future__ import annotations

import socket


class ServerMissing(RuntimeError):
    """A server binary the suite needs is not installed; the message names the install
    command (``.ci/run`` installs it on a fresh Debian machine)."""


def free_port() -> int:
    """A TCP port nothing listens on at 127.0.0.1 right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
