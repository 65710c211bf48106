"""``python -m sandboxes.codegames --port 8082 [--offers N] [--token T] [--legacy-envelope]``"""

from __future__ import annotations

import argparse

from sandboxes.codegames import DEFAULT_TOKEN, create_sandbox
from sandboxes.serving import run_command_line


async def _serve(args: argparse.Namespace) -> None:
    sandbox = create_sandbox(
        token=args.token,
        offers=args.offers,
        legacy_envelope=args.legacy_envelope,
        full_status=args.full_status,
        process_seconds=args.process_seconds,
    )
    await sandbox.serve_forever(
        args.host,
        args.port,
        lambda url: print(
            f"CodeGames sandbox on {url} with {len(sandbox.offers)} offers; token {args.token!r}"
        ),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the CodeGames sandbox server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8082)
    parser.add_argument("--offers", type=int, default=20, help="catalogue size (at least 4)")
    parser.add_argument("--token", default=DEFAULT_TOKEN, help="shop token the sandbox accepts")
    parser.add_argument(
        "--legacy-envelope", action="store_true", help='older {"status": "OK", "comment"} answers'
    )
    parser.add_argument(
        "--full-status", action="store_true", help="order-status answers the whole order"
    )
    parser.add_argument(
        "--process-seconds", type=float, default=3.0, help="time a PROCESSING order takes"
    )
    args = parser.parse_args()
    run_command_line(lambda: _serve(args))


if __name__ == "__main__":
    main()
