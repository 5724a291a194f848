"""A user's mistakes on the command line: click's own form, exit 2, and nothing run or written.

Real ``python -m csflow`` processes, as a user runs them (issue 10, items 1, 3, 6 and 10).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from support import ROOT, csflow

from csflow import CsflowError, StepError, UsageError

CHANNEL_KEYS = {
    "CSFLOW_API_KEY": "k-api-1",
    "ZIPCHAT_API_KEY": "k-zip-1",
    "COFFIELD_SECRET": "k-cof-1",
    "ORDERS_API_KEY": "k-ord-1",
    "CONSOLE_OPS_PASSWORD": "k-console-1",
}


def assert_usage_error(proc: subprocess.CompletedProcess[str], command: str, words: str) -> None:
    """click's form: the usage line, the --help hint, then ``Error: ...``; exit 2."""
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(f"Usage: csflow {command} ")
    assert f"Try 'csflow {command} --help' for help." in proc.stderr
    assert words in proc.stderr.splitlines()[-1]
    assert proc.stderr.splitlines()[-1].startswith("Error: ")
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr


@pytest.fixture
def taken_port() -> Iterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def test_a_taken_port_is_one_line_for_demo_merchant_as_for_serve(taken_port: int) -> None:
    said = f"cannot listen on 127.0.0.1:{taken_port}: address already in use"
    merchant = csflow("demo-merchant", "--port", str(taken_port))
    assert_usage_error(merchant, "demo-merchant", said)
    standalone = csflow("--port", str(taken_port), module="csflow.demo")
    assert standalone.returncode == 2 and said in standalone.stderr
    assert "Traceback" not in standalone.stderr
    serve = csflow("serve", "-p", "flows", "--port", str(taken_port), env=CHANNEL_KEYS)
    assert serve.returncode == 2 and said in serve.stderr  # the same line, word for word


@pytest.mark.parametrize(
    ("args", "command", "words"),
    [
        (("run", "wismo", "-p", "flows", "-i", "email"), "run", "'--input': takes KEY=VALUE"),
        (("run", "wismo", "-p", "flows", "--inputs-json", "[1]"), "run", "a JSON object"),
        (("run", "wismo", "-p", "flows", "--inputs-json", "{"), "run", "not valid JSON"),
        (("run", "wsimo", "-p", "flows"), "run", "unknown flow 'wsimo' (did you mean 'wismo'?)"),
        (("run", "wismo", "-p", "flows", "--deadline", "soon"), "run", "'--deadline'"),
        (("run", "wismo", "-p", "flows", "--deadline", "0"), "run", "leaves no time"),
        (("inspect", "shop", "-p", "flows", "--get", "orders"), "inspect", "start it with /"),
        (("inspect", "shop", "-p", "flows", "--get", "/o", "-q", "x"), "inspect", "'--query'"),
        (("demo", "--json", "--serve"), "demo", "do not go together"),
    ],
)
def test_every_cli_mistake_is_a_click_usage_error(
    args: tuple[str, ...], command: str, words: str
) -> None:
    assert_usage_error(csflow(*args), command, words)


@pytest.mark.parametrize(
    ("raised", "code", "last"),
    [
        # a typed csflow error that is no usage mistake (a corrupt run store, say)
        (CsflowError("the run store x.sqlite3 is not a database"), 2, "Error: the run store x"),
        (UsageError("unknown flow 'x'"), 2, "Error: unknown flow 'x'"),
        (click.UsageError("name a kind"), 2, "Error: name a kind"),  # not "internal error"
        (StepError("connect", "connection refused"), 1, "Error: connect: connection refused"),
        (RuntimeError("a bug"), 3, "internal error: RuntimeError: a bug"),
    ],
)
def test_the_guard_gives_each_error_its_exit_code_and_one_clean_line(
    raised: Exception, code: int, last: str
) -> None:
    from click.testing import CliRunner

    from csflow.cli.guard import guarded

    @click.command()
    @guarded
    def failing() -> None:
        raise raised

    result = CliRunner().invoke(failing, [])
    assert result.exit_code == code, result.output
    assert result.output.splitlines()[-1].startswith(last)
    assert "Traceback" not in result.output


# -- a folder that is not a project (item 6) ---------------------------------------------------

COMMANDS_WITH_PROJECT = [
    ("validate",),
    ("run", "wismo"),
    ("graph", "wismo"),
    ("test",),
    ("inspect", "shop"),
    ("serve", "--port", "0"),
    ("runs",),
    ("runs", "show", "abc"),
]


@pytest.mark.parametrize("args", COMMANDS_WITH_PROJECT, ids=" ".join)
def test_the_repository_root_is_no_project_and_flows_is_named(args: tuple[str, ...]) -> None:
    # no CSFLOW_STORE: `csflow runs` reads ./.csflow
    proc = csflow(*args, env=CHANNEL_KEYS, unset=["CSFLOW_STORE"], columns=None)
    assert proc.returncode == 2, proc.stderr
    last = proc.stderr.splitlines()[-1]
    assert "'.' is not a csflow project, but 'flows' is: try --project flows" in last
    assert len(proc.stderr.splitlines()) <= 4  # usage, hint, blank, the one line
    assert "defined twice" not in proc.stderr and "missing key" not in proc.stderr


@pytest.mark.parametrize(
    "args", [*(a for a in COMMANDS_WITH_PROJECT if a[0] != "runs"), ("demo",)], ids=" ".join
)
def test_an_empty_folder_is_no_project(tmp_path: Path, args: tuple[str, ...]) -> None:
    # (`csflow runs` in a folder with no store says "no runs recorded": true, project or not)
    if args == ("demo",):
        args = ("demo", "-p", str(tmp_path))
    proc = csflow(*args, cwd=tmp_path, env=CHANNEL_KEYS, unset=["CSFLOW_STORE"], columns=None)
    assert proc.returncode == 2, proc.stderr
    assert "is not a csflow project: it has no flows/*.yaml" in proc.stderr.splitlines()[-1]


def test_a_project_of_flows_alone_or_of_connections_alone_is_one(tmp_path: Path) -> None:
    from csflow.cli.options import project_problem

    (tmp_path / "a" / "flows").mkdir(parents=True)
    (tmp_path / "a" / "flows" / "n.yaml").write_text("name: n\nsteps:\n  - return: {}\n")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "connections.yaml").write_text("{}\n")
    assert project_problem(tmp_path / "a") is None
    assert project_problem(tmp_path / "b") is None
    assert project_problem(ROOT / "flows") is None
    assert "does not exist" in (project_problem(tmp_path / "c") or "")


# -- output files are checked before the run (item 3) -------------------------------------------


def test_record_to_a_missing_folder_is_refused_before_the_run(tmp_path: Path) -> None:
    store = tmp_path / "runs.sqlite3"
    proc = csflow(
        "run", "wismo", "-p", "flows", "-i", "email=shipped@demo.shop",
        "--store", str(store), "--record", str(tmp_path / "no" / "dir" / "x.yaml"),
    )  # fmt: skip
    assert_usage_error(proc, "run", "'--record': the folder")
    assert "does not exist" in proc.stderr
    assert not store.exists()  # the project was not even loaded: nothing ran, nothing was sent


def test_record_to_a_folder_is_refused(tmp_path: Path) -> None:
    proc = csflow("run", "wismo", "-p", "flows", "--record", str(tmp_path))
    assert proc.returncode == 2 and "is a directory" in proc.stderr


# -- a reader that leaves early (item 10) --------------------------------------------------------


def test_a_closed_pipe_after_a_completed_run_exits_with_the_runs_code(
    shop_env: dict[str, str],
) -> None:
    read, write = os.pipe()
    os.close(read)  # `| head` that has already gone: every write to stdout is EPIPE
    args = ["run", "wismo", "-p", "flows", "-i", "email=shipped@demo.shop"]
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "csflow", *args],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=shop_env,
            timeout=60,
        )
    finally:
        os.close(write)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # no "internal error", no "Exception ignored ... BrokenPipeError"
