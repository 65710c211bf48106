"""``python -m sandboxes.gamesdrop --port 8081 [--offers 64000] [--token T]
[--balance-profile USDT] [--exact-price]``"""

from __future__ import annotations

import argparse
from decimal import Decimal

from sandboxes.gamesdrop.catalogue import COMPATIBLE_METHODS
from sandboxes.gamesdrop.server import DEFAULT_TOKEN, GamesDropSandbox, SandboxConfig
from sandboxes.serving import run_command_line


async def _serve(args: argparse.Namespace) -> None:
    config = SandboxConfig(
        tokens={args.token},
        offers=args.offers,
        topup_seconds=args.topup_seconds,
        balance=Decimal(args.balance),
        postpaid=args.postpaid,
        balance_profile=args.balance_profile,
        exact_price=args.exact_price,
    )
    sandbox = GamesDropSandbox(config)

    def announce(url: str) -> None:
        print(f"GamesDrop sandbox on {url} with {len(sandbox.offers)} offers; token {args.token!r}")
        print(f"Telegram user-info at {sandbox.user_info_url}")

    await sandbox.serve_forever(args.host, args.port, announce)


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the GamesDrop sandbox server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument(
        "--offers", type=int, default=300, help="catalogue size (64000 for benchmarks)"
    )
    parser.add_argument("--token", default=DEFAULT_TOKEN, help="shop token the sandbox accepts")
    parser.add_argument("--balance", default="500.00", help="opening USD balance")
    parser.add_argument(
        "--postpaid", action="store_true", help="postpaid account (no balance check)"
    )
    parser.add_argument(
        "--balance-profile",
        choices=sorted(COMPATIBLE_METHODS),
        default="MIXED",
        help="account balance profile: FIAT or USDT accounts see fewer offers",
    )
    parser.add_argument(
        "--exact-price",
        action="store_true",
        help="create-order wants the exact current price (default: one that covers it)",
    )
    parser.add_argument("--topup-seconds", type=float, default=6.0, help="time a top-up takes")
    args = parser.parse_args()
    run_command_line(lambda: _serve(args))


if __name__ == "__main__":
    main()
