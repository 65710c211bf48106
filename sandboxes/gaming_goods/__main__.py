"""``python -m sandboxes.gaming_goods --port 8083 [--offers N] [--order-api catalog]
[--seller-key KEY] [--moderation-seconds S]``"""

from __future__ import annotations

import argparse

from sandboxes.gaming_goods.seller import DEFAULT_SELLER_KEY
from sandboxes.gaming_goods.server import (
    DEFAULT_API_KEY,
    DEFAULT_JWT,
    GamingGoodsSandbox,
    SandboxConfig,
)
from sandboxes.serving import run_command_line


async def _serve(args: argparse.Namespace) -> None:
    sandbox = GamingGoodsSandbox(
        SandboxConfig(
            offers=args.offers, jwts={args.jwt}, api_keys={args.api_key},
            order_api=args.order_api, fulfil_seconds=args.fulfil_seconds,
            rate_limit=args.rate_limit, seller_keys=[args.seller_key],
            moderation_seconds=args.moderation_seconds,
        )
    )  # fmt: skip

    def announce(url: str) -> None:
        print(f"Gaming Goods sandbox on {url} with {len(sandbox.products)} products")
        print(f"Catalog API {sandbox.catalog_url} (Bearer {args.jwt!r})")
        print(f"Partner API {sandbox.partner_url} (X-API-Key {args.api_key!r})")
        print(f"Seller API {sandbox.partner_url}/seller (X-API-Key {args.seller_key!r})")

    await sandbox.serve_forever(args.host, args.port, announce)


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the Gaming Goods sandbox server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8083)
    parser.add_argument("--offers", type=int, default=60, help="catalogue size")
    parser.add_argument("--jwt", default=DEFAULT_JWT, help="Bearer token for /api/v1/orders")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY, help="partner X-API-Key")
    parser.add_argument("--order-api", choices=["partner", "catalog"], default="partner")
    parser.add_argument("--fulfil-seconds", type=float, default=2.0, help="time to completed")
    parser.add_argument("--rate-limit", type=int, default=100, help="requests per minute per IP")
    parser.add_argument("--seller-key", default=DEFAULT_SELLER_KEY, help="Seller API X-API-Key")
    parser.add_argument(
        "--moderation-seconds", type=float, default=5.0, help="time a listing stays pending"
    )
    args = parser.parse_args()
    run_command_line(lambda: _serve(args))


if __name__ == "__main__":
    main()
