"""Loading a project: one ProjectError with every problem, sorted, and never a traceback."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from unit_support import ProjectFiles

import csflow
from csflow import Problem, ProjectError, UsageError

CASES = Path(__file__).parent / "projects" / "invalid"
GOOD_FLOW = """
name: a
steps:
  - set: {x: 1}
"""


def test_every_problem_comes_in_one_error_sorted_by_place() -> None:
    with pytest.raises(ProjectError) as info:
        csflow.Project.load(CASES / "several_mistakes", environ={})
    problems = info.value.problems
    assert all(isinstance(p, Problem) for p in problems)
    assert len({p.path for p in problems}) == 3  # two flows and connections.yaml
    assert problems == sorted(problems, key=lambda p: (p.path, p.line, p.column, p.message))
    lines = str(info.value).splitlines()
    assert lines == [f"{p.path}:{p.line}:{p.column}: {p.message}" for p in problems]
    assert all(re.match(r"^\S+:\d+:\d+: \S", line) for line in lines)


def test_a_valid_project_loads_and_names_its_flows(proj: ProjectFiles) -> None:
    proj.write(flows={"a": GOOD_FLOW, "b": GOOD_FLOW.replace("name: a", "name: b")})
    project = proj.load(environ={})
    assert sorted(project.flows) == ["a", "b"]


def test_a_flow_name_used_twice_names_the_first_file(proj: ProjectFiles) -> None:
    proj.write(flows={"a": GOOD_FLOW, "z": GOOD_FLOW})
    problem = proj.problem("already used")
    assert proj.place(problem) == proj.at("flows/z.yaml", "name: a", shift=len("name: "))
    assert "a.yaml" in problem.message


def test_an_action_defined_twice_names_both_places(proj: ProjectFiles) -> None:
    body = """
    from csflow import action


    @action("loyalty.points")
    def points() -> dict:
        return {}
    """
    proj.write(flows={"a": GOOD_FLOW}, actions={"one": body, "two": body})
    problem = proj.problem("defined twice")
    assert "one.py" in problem.message and "two.py" in problem.message


def test_an_action_file_that_does_not_import_is_a_located_problem(proj: ProjectFiles) -> None:
    proj.write(
        flows={"a": GOOD_FLOW},
        actions={"broken": "from csflow import action\n\ndef f(:\n    pass\n"},
    )
    problem = proj.problem("syntax error")
    assert problem.path.endswith("actions/broken.py")
    assert problem.line == 3


def test_an_unknown_flow_is_a_usage_error_with_did_you_mean(proj: ProjectFiles) -> None:
    proj.write(flows={"find_order": GOOD_FLOW.replace("name: a", "name: find_order")})
    project = proj.load(environ={})
    with pytest.raises(UsageError, match=r"fnd_order.*did you mean 'find_order'"):
        project.run_sync("fnd_order")


GARBAGE_FLOWS: dict[str, bytes] = {
    "empty": b"",
    "only a comment": b"# nothing here\n",
    "null document": b"~\n",
    "a list": b"- name: a\n- steps: []\n",
    "a scalar": b"hello world\n",
    "binary junk": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\xfd\x00\x01",
    "latin-1 text": "name: caf\xe9\n".encode("latin-1"),
    "a NUL byte": b"name: a\x00\nsteps: []\n",
    "a python tag": b"name: !!python/object/apply:os.system [id]\nsteps: [{set: {x: 1}}]\n",
    "an alias bomb": b"a: &a [x, x, x, x, x, x, x, x, x]\n"
    + b"b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
    + b"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
    + b"d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
    + b"e: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n",
    "a complex key": b"? [a, b]\n: 1\nname: a\nsteps: [{set: {x: 1}}]\n",
    "steps is a number": b"name: a\nsteps: 5\n",
    "steps of scalars": b"name: a\nsteps: [1, x, null, [1]]\n",
    "no steps": b"name: a\nsteps: []\n",
    "verbs of the wrong shape": b"name: a\nsteps:\n  - set: 5\n  - switch: {a: 1}\n  - extract: 5\n  - call: 5\n"
    + b"  - flow: [x]\n  - with: 3\n    call: http\n  - return: [1]\n",
    "inputs of the wrong shape": b"name: a\ninputs: [a, b]\noutputs: 5\nsteps:\n  - set: {x: '{{ a }}'}\n",
    "a huge number": b"name: a\nsteps:\n  - call: x\n    timeout: 1e400\n",
    "switch of junk": b"name: a\nsteps:\n  - switch: [1, {if: 5, next: 3}, {}]\n",
}


@pytest.mark.parametrize("content", GARBAGE_FLOWS.values(), ids=GARBAGE_FLOWS.keys())
def test_a_garbage_flow_file_is_a_located_problem_not_a_traceback(
    proj: ProjectFiles, content: bytes
) -> None:
    proj.write(files={"flows/bad.yaml": content})
    problems = proj.problems()
    assert problems
    assert all(
        p.path == "flows/bad.yaml" and p.line >= 1 and p.column >= 1 and p.message for p in problems
    )


GARBAGE_CONNECTIONS: dict[str, bytes] = {
    "a list": b"- shop\n",
    "a scalar": b"shop\n",
    "binary junk": b"\xff\xfe\x00\x01\x02binary",
    "settings of the wrong shape": b"shop: 5\nother: {type: rest}\nthird: {type: rest, base_url: [1]}\n"
    + b"fourth: {type: ftp, base_url: x}\nfifth: {type: rest, base_url: 'not a url'}\n",
    "auth of the wrong shape": b"shop: {type: rest, base_url: 'https://a.example', auth: 5}\n"
    + b"b: {type: rest, base_url: 'https://b.example', auth: {type: magic}}\n"
    + b"c: {type: rest, base_url: 'https://c.example', auth: {type: bearer, token: {file: 7}}}\n",
    "an env reference of the wrong shape": b"shop: {type: rest, base_url: {env: [1]}}\n"
    + b"b: {type: rest, base_url: 'https://b.example', auth: {type: bearer, token: {env: {x: 1}}}}\n",
}


@pytest.mark.parametrize("content", GARBAGE_CONNECTIONS.values(), ids=GARBAGE_CONNECTIONS.keys())
def test_a_garbage_connections_file_is_a_located_problem(
    proj: ProjectFiles, content: bytes
) -> None:
    proj.write(flows={"a": GOOD_FLOW}, files={"connections.yaml": content})
    problems = proj.problems()
    assert problems
    assert all(p.path == "connections.yaml" and p.line >= 1 and p.column >= 1 for p in problems)


def test_a_missing_project_folder_is_a_project_error(tmp_path: Path) -> None:
    with pytest.raises(ProjectError):
        csflow.Project.load(tmp_path / "nowhere")


def test_a_project_with_only_warnings_loads_and_keeps_them() -> None:
    project = csflow.Project.load(Path(__file__).parent / "projects" / "warnings_only")
    assert [(w.line, w.warning) for w in project.warnings] == [(10, True)]
    assert "'next' under 'extract' looks mis-indented" in str(project.warnings[0])
    assert str(project.warnings[0]).split(": ", 1)[1].startswith("warning: ")
    assert project.run_sync("a").reply == "ok"


def test_validate_prints_warnings_and_still_passes(cli: Any) -> None:
    from click.testing import CliRunner

    root = Path(__file__).parent / "projects" / "warnings_only"
    out = CliRunner().invoke(cli, ["validate", "-p", str(root)])
    assert out.exit_code == 0, out.output
    assert "flows/a.yaml:10:9: warning: 'next' under 'extract' looks mis-indented" in out.stderr
