"""Issue 10, item 28: the shipped project validates on a fresh machine, where none of its
channel keys is set, and ``csflow serve`` still refuses to serve the demo keys unasked."""

from __future__ import annotations

import re
import subprocess

import httpx
import yaml
from support import ROOT, csflow, csflow_running

CHANNEL_KEYS = (
    "CSFLOW_API_KEY",
    "ZIPCHAT_API_KEY",
    "COFFIELD_SECRET",
    "ORDERS_API_KEY",
    "CONSOLE_OPS_PASSWORD",  # the console's user ops (§13)
)


def run(*args: str, **keys: str) -> subprocess.CompletedProcess[str]:
    """``python -m csflow ARGS`` on a fresh machine: no channel key set but ``keys``."""
    return csflow(*args, env=keys, unset=CHANNEL_KEYS, columns=200)


def test_the_shipped_project_validates_with_no_channel_key_set():
    proc = run("validate", "-p", "flows")
    assert proc.returncode == 0, proc.stderr
    assert "ok" in proc.stdout and "6 channels" in proc.stdout
    note = proc.stderr.strip()
    assert note.startswith("note: demo keys") and "--demo-keys" in note
    assert all(name in note for name in CHANNEL_KEYS)


def test_no_note_when_every_key_is_set():
    keys = {name: f"k-{i}-123456" for i, name in enumerate(CHANNEL_KEYS)}
    proc = run("validate", "-p", "flows", **keys)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""


def test_every_channel_key_of_the_shipped_project_has_a_demo_default():
    channels = yaml.safe_load((ROOT / "flows" / "channels.yaml").read_text(encoding="utf-8"))
    refs = [
        ref
        for channel in channels.values()
        for key in ("api_key", "api_keys", "signing_secret", "users")
        for ref in (
            channel.get(key)
            if key == "api_keys"
            else (channel.get(key) or {}).values()
            if key == "users"
            else [channel.get(key)]
        )
        or []
        if ref is not None
    ]
    assert {ref["env"] for ref in refs} == set(CHANNEL_KEYS)  # the chat and run APIs share one
    assert all(ref.get("default", "").startswith("demo-") for ref in refs)


def test_serve_refuses_demo_keys_and_names_the_missing_ones():
    proc = run(
        "serve", "-p", "flows", "--port", "0", "--no-store",
        ZIPCHAT_API_KEY="zk-production-1",
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    missing = re.search(r"not set: ([A-Z_, ]+)\.", proc.stderr)
    assert missing, proc.stderr
    assert missing.group(1).split(", ") == [
        "CSFLOW_API_KEY", "COFFIELD_SECRET", "ORDERS_API_KEY", "CONSOLE_OPS_PASSWORD",
    ]  # fmt: skip
    assert "--demo-keys" in proc.stderr and "Traceback" not in proc.stderr


def test_serve_with_demo_keys_serves_them():
    args = ["serve", "-p", "flows", "--port", "0", "--no-store", "--demo-keys"]
    with csflow_running(*args, unset=CHANNEL_KEYS) as server:
        url = server.wait_for(r'"url": ?"(http://[^"]+)"').group(1)
        lookup = f"{url}/orders"
        refused = httpx.get(lookup, params={"email": "a@b.co"}, headers={"x-api-key": "no"})
        assert refused.status_code == 401
        taken = httpx.get(lookup, headers={"x-api-key": "demo-orders-key"})
        assert taken.status_code == 400  # past the key check: no lookup parameter given
        server.stop()
