"""A throwaway PostgreSQL server on 127.0.0.1 for the test session (and the benchmarks).

``initdb`` into a temporary folder, ``postgres`` on a free port with fsync off (nothing
outlives the session), stopped and deleted at the end. The binaries come from the PATH or
Debian's ``/usr/lib/postgresql/<version>/bin`` (``apt-get install postgresql``; ``.ci/run``
installs it on a fresh machine). PostgreSQL refuses to run as root, so under root the
server runs as the ``postgres`` user the Debian package creates.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.servers import ServerMissing, free_port

INSTALL_HINT = "apt-get install postgresql (Debian/Ubuntu); .ci/run does it on a fresh machine"


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    if candidates:
        return candidates[0]
    raise ServerMissing(f"PostgreSQL's {name} was not found: {INSTALL_HINT}")


class PostgresServer:
    """One throwaway cluster. :meth:`start` returns once it accepts connections; ``url``
    is the superuser's URL of database ``postgres`` (trust authentication on 127.0.0.1)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.user = "shop"
        self._folder = Path(tempfile.mkdtemp(prefix="shop-postgres-"))
        self._data = self._folder / "data"
        self._process: subprocess.Popen[bytes] | None = None
        self._run_as: pwd.struct_passwd | None = None

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/postgres"

    def url_of(self, database: str) -> str:
        """The URL of another database on this server."""
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def _demote(self) -> None:  # runs in the child before exec
        if self._run_as is not None:
            os.setgid(self._run_as.pw_gid)
            os.setuid(self._run_as.pw_uid)

    def start(self, timeout: float = 30.0) -> None:
        """Create the cluster and start the server; raises :class:`ServerMissing` without
        the binaries, ``RuntimeError`` when it does not come up within ``timeout`` s."""
        initdb, postgres = _binary("initdb"), _binary("postgres")
        if os.geteuid() == 0:
            self._run_as = pwd.getpwnam("postgres")
            os.chown(self._folder, self._run_as.pw_uid, self._run_as.pw_gid)
        subprocess.run(
            [initdb, "-D", str(self._data), "-U", self.user, "-A", "trust", "-E", "UTF8",
             "--locale=C.UTF-8", "--no-sync"],
            check=True, capture_output=True, preexec_fn=self._demote,
        )  # fmt: skip
        log = open(self._folder / "server.log", "wb")
        self._process = subprocess.Popen(
            [postgres, "-D", str(self._data), "-p", str(self.port), "-h", "127.0.0.1",
             "-k", str(self._folder), "-c", "fsync=off", "-c", "synchronous_commit=off",
             "-c", "full_page_writes=off", "-c", "max_connections=300"],
            stdout=log, stderr=subprocess.STDOUT, preexec_fn=self._demote,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"PostgreSQL exited at start: {self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    pass
            except OSError:
                time.sleep(0.05)
                continue
            if self._ready():
                return
            time.sleep(0.05)
        raise RuntimeError(f"PostgreSQL did not start within {timeout} s: {self.log_tail()}")

    def _ready(self) -> bool:
        ready = subprocess.run(
            [_binary("pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user],
            capture_output=True,
        )
        return ready.returncode == 0

    def log_tail(self) -> str:
        try:
            return (self._folder / "server.log").read_text(errors="replace")[-2000:]
        except OSError:
            return "(no server log)"

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete its folder."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)  # "fast" shutdown: clients cut off
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        shutil.rmtree(self._folder, ignore_errors=True)
