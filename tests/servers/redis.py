"""A throwaway ``redis-server`` for tests: 127.0.0.1, a free port, no persistence, its
files in a temporary directory; :meth:`RedisServer.stop` kills it and removes them.

The binary is the one on ``PATH`` (Debian/Ubuntu package ``redis-server``); without it
:class:`~tests.servers.ServerMissing` says how to install it.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.servers import ServerMissing, free_port

INSTALL_HINT = "sudo apt-get install -y redis-server (or run .ci/run, which installs it)"


def redis_binary() -> str:
    """Path of ``redis-server``. Raises :class:`ServerMissing` when it is not on ``PATH``."""
    path = shutil.which("redis-server")
    if path is None:
        raise ServerMissing(f"redis-server is not on PATH; the tests need it: {INSTALL_HINT}")
    return path


def ping(port: int, timeout: float = 0.5) -> bool:
    """Whether a Redis server answers ``PING`` on 127.0.0.1:``port`` (raw RESP, no client)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One ``redis-server`` process. ``databases``: how many numbered databases it has
    (tests take a distinct one each, see ``tests/conftest.py``)."""

    def __init__(self, databases: int = 64, start_timeout: float = 10.0) -> None:
        self.databases = databases
        self.start_timeout = start_timeout
        self.port = 0
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>`` (append ``/<db>`` for a database)."""
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> RedisServer:
        """Start and wait until it answers ``PING``. Raises :class:`ServerMissing`, or
        ``RuntimeError`` (with the server's log) when it exits or does not answer in time."""
        binary = redis_binary()
        self._dir = tempfile.TemporaryDirectory(prefix="test-redis-")
        self.port = free_port()
        log = Path(self._dir.name) / "redis.log"
        self._process = subprocess.Popen(
            [
                binary, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", self._dir.name,
                "--save", "", "--appendonly", "no", "--daemonize", "no",
                "--databases", str(self.databases), "--logfile", str(log),
                "--protected-mode", "yes",
            ],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + self.start_timeout
        while not ping(self.port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                text = log.read_text(errors="replace") if log.exists() else ""
                self.stop()
                raise RuntimeError(f"redis-server did not start on port {self.port}:\n{text}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        """Kill the server (nothing to keep) and remove its directory."""
        if self._process is not None:
            if self._process.poll() is None:
                self._process.kill()
            self._process.wait(timeout=10)
            self._process = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None
