"""``python -m lab.fake_provider --host 127.0.0.1 --port N``: serve the fake provider with uvicorn.

Loopback only, by construction: drills send heavy, deliberately abusive traffic, and this
server must never be reachable from (or mistaken for) anything outside the machine.
"""

from __future__ import annotations

import argparse
import sys

import uvicorn

from lab.fake_provider.app import create_app
from lab.fake_provider.logs import log_config
from lab.fake_provider.state import ProviderConfig
from lab.fake_provider.stats import DEFAULT_LOG_SIZE

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1"})


def loopback_host(value: str) -> str:
    host = value.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host not in LOOPBACK_HOSTS:
        raise argparse.ArgumentTypeError(
            f"refusing to listen on {value!r}: the fake provider serves loopback only (127.0.0.1 or ::1)"
        )
    return host


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m lab.fake_provider", description=__doc__.splitlines()[0])
    parser.add_argument("--host", type=loopback_host, default="127.0.0.1", help="127.0.0.1 or ::1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--public-url", default=None, help="base of absolute URLs (default: the request's own)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.add_argument("--access-log", action="store_true", help="log every request (slow under load)")
    parser.add_argument("--image-cache-entries", type=int, default=4096)
    parser.add_argument("--request-log-size", type=int, default=DEFAULT_LOG_SIZE)
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        parser.error(f"--port must be 1..65535, got {args.port}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    app = create_app(
        ProviderConfig(
            public_url=args.public_url,
            image_cache_entries=args.image_cache_entries,
            request_log_size=args.request_log_size,
        )
    )
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_config=log_config(args.log_level),
        access_log=args.access_log,
        backlog=4096,
        timeout_keep_alive=30,
        timeout_graceful_shutdown=5,
        server_header=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
