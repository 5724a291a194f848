"""`python -m demo --port 8765 [--host 127.0.0.1]`: a standalone Demo Shop."""

from __future__ import annotations

import argparse

from csflow.adapters.listen import ListenError
from csflow.demo.server import DEFAULT_PORT, serve
from csflow.demo.state import DemoConfig


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free port")
    defaults = DemoConfig()
    parser.add_argument("--token", default=defaults.token, help="REST bearer token")
    parser.add_argument("--erp-user", default=defaults.erp_user)
    parser.add_argument("--erp-password", default=defaults.erp_password)
    parser.add_argument("--graphql-key", default=defaults.graphql_key)
    args = parser.parse_args(argv)
    config = DemoConfig(args.token, args.erp_user, args.erp_password, args.graphql_key)
    try:
        serve(args.host, args.port, config)
    except ListenError as exc:  # a second Demo Shop on the same port: one line, exit 2
        parser.exit(2, f"{parser.prog}: error: {exc}\n")


if __name__ == "__main__":
    main()
