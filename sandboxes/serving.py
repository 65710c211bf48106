"""Serving a sandbox's aiohttp application on this machine: the one piece every sandbox
(the supplier twins and the fake Bot API) shares."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Coroutine
from typing import Any

from aiohttp import web

logger = logging.getLogger(__name__)


def free_port() -> int:
    """A TCP port nothing listens on at 127.0.0.1 right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LocalServer:
    """Serves ``self.app`` with :meth:`start` / :meth:`stop`. Subclasses build ``app`` in
    their ``__init__``; ``label`` names them in the log; ``handler_cancellation``: cancel
    a handler whose client went away (long polling)."""

    label = "sandbox"
    handler_cancellation = False
    app: web.Application
    base_url: str = ""
    _runner: web.AppRunner | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on ``host:port`` (0 picks a free port); returns the base URL."""
        self._runner = web.AppRunner(
            self.app, access_log=None, handler_cancellation=self.handler_cancellation
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        sockets = site._server.sockets if site._server else []  # type: ignore[union-attr]
        bound = sockets[0].getsockname()[1] if sockets else port
        self.base_url = f"http://{host}:{bound}"
        logger.info("%s listening on %s", self.label, self.base_url)
        return self.base_url

    async def stop(self) -> None:
        """Stop serving (safe to call twice)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def serve_forever(
        self, host: str, port: int, announce: Callable[[str], None] | None = None
    ) -> None:
        """Serve until cancelled (Ctrl-C on the command line); ``announce(base_url)``
        tells the person who started it where it listens."""
        url = await self.start(host, port)
        if announce is not None:
            announce(url)
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()


def run_command_line(serve: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """``python -m sandboxes.<name>``: INFO logging to stderr, then ``serve()`` until Ctrl-C."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass
