"""The scaling benchmark's bookkeeping (bench/workers.py): which worker handled how many
updates, and who holds the webhook's connections. No timing here: the benchmark itself
measures."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

from bench.workers import connections_per_pid, handled_per_pid

# a worker's metrics as bot.metrics writes them in multiprocess mode
_WORKER = textwrap.dedent(
    """
    import sys
    from bot.metrics import Metrics
    metrics = Metrics(ops=None)
    for _ in range(int(sys.argv[1])):
        metrics.updates.labels("callback_query", "ok").inc()
    metrics.updates.labels("message", "error").inc()
    """
)


def test_updates_are_counted_per_worker_from_the_metric_files(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    pids = []
    for handled in (5, 2):
        worker = subprocess.Popen([sys.executable, "-c", _WORKER, str(handled)], env=env)
        assert worker.wait(timeout=60) == 0
        pids.append(worker.pid)
    # every kind and outcome counts, each worker (pid) apart
    assert handled_per_pid(tmp_path) == {pids[0]: 6.0, pids[1]: 3.0}


def test_connections_to_the_webhook_port_are_counted_for_the_process_holding_them() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
        accepted = [server.accept()[0] for _ in clients]
        try:
            held = connections_per_pid(port, [os.getpid()])
        finally:
            for sock in clients + accepted:
                sock.close()
    # the accepted ends, whose local port is the server's (the clients' ends are not)
    assert held == {os.getpid(): 3}
