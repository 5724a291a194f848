"""Issue 10, item 28: the shipped project validates on a fresh machine, where none of its
channel keys is set, and ``csflow serve`` still refuses to serve the demo keys unasked."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHANNEL_KEYS = ("CSFLOW_API_KEY", "ZIPCHAT_API_KEY", "COFFIELD_SECRET", "ORDERS_API_KEY")


def fresh_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CHANNEL_KEYS}
    return {**env, **extra, "COLUMNS": "200"}


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "csflow", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )


def test_the_shipped_project_validates_with_no_channel_key_set():
    proc = run("validate", "-p", "flows", env=fresh_env())
    assert proc.returncode == 0, proc.stderr
    assert "ok" in proc.stdout and "4 channels" in proc.stdout
    note = proc.stderr.strip()
    assert note.startswith("note: demo keys") and "--demo-keys" in note
    assert all(name in note for name in CHANNEL_KEYS)


def test_no_note_when_every_key_is_set():
    keys = {name: f"k-{i}-123456" for i, name in enumerate(CHANNEL_KEYS)}
    proc = run("validate", "-p", "flows", env=fresh_env(**keys))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""


def test_every_channel_key_of_the_shipped_project_has_a_demo_default():
    channels = yaml.safe_load((ROOT / "flows" / "channels.yaml").read_text(encoding="utf-8"))
    refs = [
        ref
        for channel in channels.values()
        for key in ("api_key", "api_keys", "signing_secret")
        for ref in (channel.get(key) if key == "api_keys" else [channel.get(key)]) or []
        if ref is not None
    ]
    assert sorted(ref["env"] for ref in refs) == sorted(CHANNEL_KEYS)
    assert all(ref.get("default", "").startswith("demo-") for ref in refs)


def test_serve_refuses_demo_keys_and_names_the_missing_ones():
    proc = run(
        "serve", "-p", "flows", "--port", "0", "--no-store",
        env=fresh_env(ZIPCHAT_API_KEY="zk-production-1"),
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    missing = re.search(r"not set: ([A-Z_, ]+)\.", proc.stderr)
    assert missing, proc.stderr
    assert missing.group(1).split(", ") == ["CSFLOW_API_KEY", "COFFIELD_SECRET", "ORDERS_API_KEY"]
    assert "--demo-keys" in proc.stderr and "Traceback" not in proc.stderr


def test_serve_with_demo_keys_serves_them():
    args = ["serve", "-p", "flows", "--port", "0", "--no-store", "--demo-keys"]
    with subprocess.Popen(
        [sys.executable, "-m", "csflow", *args],
        cwd=ROOT,
        env=fresh_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ) as server:
        try:
            assert server.stderr is not None
            url = None
            for line in server.stderr:
                found = re.search(r'"url": ?"(http://[^"]+)"', line)
                if found:
                    url = found.group(1)
                    break
            assert url, "the server did not start"
            lookup = f"{url}/orders"
            refused = httpx.get(lookup, params={"email": "a@b.co"}, headers={"x-api-key": "no"})
            assert refused.status_code == 401
            taken = httpx.get(lookup, headers={"x-api-key": "demo-orders-key"})
            assert taken.status_code == 400  # past the key check: no lookup parameter given
        finally:
            server.terminate()
            server.wait(timeout=20)
