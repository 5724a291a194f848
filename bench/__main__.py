"""``python -m bench [--quick] [--only steps|wismo|protocols|serve|store|intents|conversations|scale] [--profile steps|canned|wismo]``: csflow's figures.

A benchmark, not a test: it prints figures beside their baselines and targets, and the noise of
the machine, so that a reader can judge them. See bench/README.md.
"""

from __future__ import annotations

import argparse
import signal
import sys
from time import perf_counter
from typing import Any

from bench import noise


def _on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # unwinds like Ctrl+C, through the `with` that stops the Demo Shop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="short run (~30 s): 1 s per cell, one round"
    )
    parser.add_argument(
        "--only",
        choices=[
            "steps",
            "wismo",
            "protocols",
            "serve",
            "store",
            "intents",
            "conversations",
            "scale",
        ],
        help="run one part only (protocols: SOAP and GraphQL round trips; serve: the channels "
        "server beside a direct run; store: Project.run with no store, the old batch-after "
        "store, the durable group commit and PostgreSQL's, and a conversation's turn per store; "
        "intents: accuracy on held-out messages and the classifier's costs; conversations: a "
        "resumed turn beside a plain run, and the state a waiting conversation keeps; scale: "
        "conversations/s through one csflow serve and two behind haproxy, SQLite and "
        "PostgreSQL; these six only when asked)",
    )
    parser.add_argument(
        "--clients",
        help="wismo: comma-separated contenders "
        "(csflow,csflow_httpcore,shipped,httpx,aiohttp,httpx_aiohttp)",
    )
    parser.add_argument(
        "--loop",
        choices=["asyncio", "uvloop"],
        default="asyncio",
        help="wismo: the client's event loop (the Demo Shop always runs uvicorn's)",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="wismo: print every cell as it ends"
    )
    parser.add_argument(
        "--profile",
        choices=["steps", "canned", "wismo"],
        help="print a cProfile of csflow instead: the 100-step flow, wismo3 with its calls "
        "answered in process, or wismo3 over HTTP at c=10",
    )
    parser.add_argument("--client-core", type=int, default=0)
    parser.add_argument("--server-core", type=int, default=1)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)

    client_core, server_core = noise.pick_cores(args.client_core, args.server_core)
    if client_core is not None:
        noise.pin(client_core)  # before anything is measured, the calibration loop included
    started = perf_counter()
    mode = "quick" if args.quick else "full"
    head, sample = noise.header(mode, client_core, server_core)
    print("\n".join(head), flush=True)

    if args.profile in ("steps", "canned"):
        from bench import steps

        if args.profile == "steps":
            steps.profile()
        else:
            steps.profile_conversation()
        return 0

    if args.only in (None, "steps") and args.profile is None:
        from bench import steps

        print()
        print("\n".join(steps.report(steps.run(args.quick))), flush=True)
        print("\n".join(steps.report_conversation(steps.conversation(args.quick))), flush=True)

    if args.only in (None, "wismo") or args.profile == "wismo":
        from bench import wismo
        from bench.shop import TOKEN, ShopProcess

        where = (
            f"Demo Shop (python -m demo) in its own process on core {server_core}, client on core {client_core}"
            if client_core is not None
            else "Demo Shop in its own process; NOT pinned"
        )
        with ShopProcess(server_core) as shop:
            if args.profile == "wismo":
                wismo.profile(shop.rest_url, TOKEN)
                return 0
            print(flush=True)
            print(f"   (running: {where}, {shop.base_url})", flush=True)
            only = set(args.clients.split(",")) if args.clients else None
            progress = (lambda line: print(line, flush=True)) if args.verbose else None
            figures = wismo.run(
                shop.rest_url,
                TOKEN,
                args.quick,
                only,
                progress=progress,
                loop=args.loop,
                server_cpu=shop.cpu_seconds,
            )
            print("\n".join(wismo.report(figures, where)), flush=True)

    if args.only == "protocols":
        from bench import protocols
        from bench.shop import ShopProcess

        with ShopProcess(server_core) as shop:
            print(flush=True)
            progress = (lambda line: print(line, flush=True)) if args.verbose else None
            figures = protocols.run(shop.base_url, args.quick, progress)
            where = "Demo Shop in its own process" + (
                f" on core {server_core}, client on core {client_core}"
                if client_core is not None
                else ", NOT pinned"
            )
            print("\n".join(protocols.report(figures, where)), flush=True)

    if args.only == "serve":
        from bench import serve
        from bench.shop import TOKEN, ShopProcess

        with ShopProcess(server_core) as shop:
            figures = serve.main_hook(args.quick, client_core, server_core, shop.rest_url, TOKEN)
            print("\n" + "\n".join(figures), flush=True)

    if args.only == "conversations":
        from bench import conversations

        print(flush=True)
        print("\n".join(conversations.report(conversations.run(args.quick))), flush=True)

    if args.only == "intents":
        from bench import intents

        print(flush=True)
        print("\n".join(intents.report(intents.run(args.quick))), flush=True)

    if args.only == "store":
        from bench import store

        print(flush=True)
        print("\n".join(store.report(store.run(args.quick), args.quick)), flush=True)
        from bench import store_turns

        print(flush=True)
        turns = store_turns.run(args.quick)
        print("\n".join(store_turns.report(turns, args.quick)), flush=True)

    if args.only == "scale":
        from bench import scale

        print(flush=True)
        cores = (client_core, server_core)
        figures, stored = scale.run(args.quick, cores)
        print("\n".join(scale.report(figures, stored, args.quick, cores)), flush=True)

    print()
    print(noise.footer(sample))
    print(f"total {perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted (the Demo Shop was stopped)", file=sys.stderr)
        sys.exit(130)
