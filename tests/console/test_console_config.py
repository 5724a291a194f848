"""The ``console`` entry of channels.yaml: what loads, and each mistake at its place (§13)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from csflow.serve import load_channels
from csflow.serve.console.auth import KEY_ENV
from csflow.serve.console.channel import GENERATED_KEY_WARNING, ConsoleMount

FLOW = """
    name: hello
    steps:
      - reply: "hello"
"""
CONSOLE = """
    console:
      type: console
      path: /console
      users: {ops: {env: OPS_PASSWORD}}
"""
ENV = {"OPS_PASSWORD": "a-password-1", KEY_ENV: "k" * 40}


def project(root: Path, channels: str) -> Path:
    (root / "flows").mkdir(parents=True, exist_ok=True)
    (root / "flows" / "hello.yaml").write_text(textwrap.dedent(FLOW).lstrip())
    (root / "channels.yaml").write_text(textwrap.dedent(channels).lstrip())
    return root


def messages(root: Path, channels: str, env: dict[str, str] = ENV) -> list[str]:
    _, problems = load_channels(project(root, channels), env)
    return [f"{p.line}:{p.column}: {p.message}" for p in problems]


def test_the_spec_example_loads_as_a_mount_not_an_endpoint(tmp_path):
    channels, problems = load_channels(project(tmp_path, CONSOLE), ENV)
    assert problems == []
    assert channels.endpoints == {}
    mount = channels.mounts["console"]
    assert isinstance(mount, ConsoleMount) and mount.path == "/console"
    assert mount.warnings == ()
    assert mount.owns("/console") and mount.owns("/console/runs")
    assert not mount.owns("/consoles")
    assert "a-password-1" in channels.secrets  # redacted from every log line


def test_without_a_signing_key_one_is_made_and_the_server_is_warned(tmp_path):
    channels, problems = load_channels(project(tmp_path, CONSOLE), {"OPS_PASSWORD": "pw-123456"})
    assert problems == []
    assert channels.mounts["console"].warnings == (GENERATED_KEY_WARNING,)
    assert KEY_ENV in GENERATED_KEY_WARNING and "restart" in GENERATED_KEY_WARNING


@pytest.mark.parametrize(
    ("channels", "env", "expected"),
    [
        (CONSOLE.replace("type: console", "type: consle"), ENV,
         "2:9: unknown channel type 'consle' (did you mean 'console'?)"),
        (CONSOLE.replace("  users: {ops: {env: OPS_PASSWORD}}\n", ""), ENV, "1:1: missing key 'users'"),
        (CONSOLE.replace("{env: OPS_PASSWORD}", "hunter22"), ENV, "never the value"),
        (CONSOLE.replace("{ops:", "{Ops:"), ENV, "4:16: Ops: string should match pattern"),
        (CONSOLE, {KEY_ENV: "k" * 40}, "4:16: environment variable 'OPS_PASSWORD' is not set"),
        (CONSOLE, {**ENV, KEY_ENV: "short"}, f"'{KEY_ENV}' (the console's signing key) has 5 characters"),
        (CONSOLE.replace("path: /console", "path: /"), ENV, "a path of its own"),
        (CONSOLE.replace("path: /console", "path: /console\n      timeout: 5s"), ENV, "timeout:"),
    ],
    ids=["type", "users", "literal", "user-name", "unset", "short-key", "root", "timeout"],
)  # fmt: skip
def test_each_mistake_is_one_problem_at_its_place(tmp_path, channels, env, expected):
    found = messages(tmp_path, channels, env)
    assert len(found) == 1 and expected in found[0], found


def test_no_channel_may_sit_under_the_console_path(tmp_path):
    channels = (
        CONSOLE
        + """
    api:
      type: generic
      path: /console/api
      api_keys: [{env: OPS_PASSWORD}]
    """
    )
    found = messages(tmp_path, channels)
    assert any("path /console/api is under /console, which 'console' serves" in m for m in found)
