"""The actions every flow of ``test_runner`` may call: stand-ins with no network."""

import asyncio
import time
from pathlib import Path

from csflow import action


@action("lookup")
async def lookup(email: str) -> dict:
    return {"found": email.endswith("@example.com"), "orders": [{"id": "ORD-1", "status": "SHP"}]}


@action("boom")
def boom(reason: str = "no reason") -> dict:
    raise RuntimeError(f"boom: {reason}")


@action("nap")
async def nap(seconds: float = 30) -> dict:
    await asyncio.sleep(seconds)  # an action that naps to overrun a deadline or timeout
    return {"slept": seconds}


@action("nap_sync")
def nap_sync(seconds: float = 30) -> dict:
    time.sleep(seconds)  # the same, blocking its thread
    return {"slept": seconds}


@action("echo")
def echo(n: int = 0, flag: bool = False, value=None, *, ctx) -> dict:
    return {"n": n, "n_type": type(n).__name__, "flag": flag, "value": value, "run_id": ctx.run_id}


@action("touch")
def touch(path: str) -> dict:
    Path(path).write_text("ran")
    return {}
