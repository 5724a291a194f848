"""Load-time problems as data: each folder of ``projects/invalid/`` is a project that must not load.

The files say what they expect, in comments under the line at fault::

    steps:
      - set: {x: 1}
        nxet: done
    #   ^ unknown key 'nxet' (did you mean 'next'?)

The caret stands under the column the problem must point at, and the text after it is part
of the message (``#<`` stands for column 1, where a caret cannot go; ``warning:`` starts the
text of a warning). The project must report
exactly the annotated problems: each at its line and column, and no others.
An optional ``environ.yaml`` is the environment the project is loaded with.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from unit_support import relative

import csflow
from csflow import ProjectError

CASES = Path(__file__).parent / "projects" / "invalid"
_MARK = re.compile(r"^(?P<lead>\s*#\s*)\^(?P<text>.*)$|^#<(?P<text1>.*)$")


def expected_problems(root: Path) -> list[tuple[str, int, int, str]]:
    found = []
    for path in sorted(root.rglob("*")):
        if path.suffix not in (".yaml", ".py") or path.name == "environ.yaml":
            continue
        target = 0
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            m = _MARK.match(line)
            if m is None:
                target = number
                continue
            column = len(m["lead"]) + 1 if m["lead"] is not None else 1
            text = (m["text"] if m["text"] is not None else m["text1"]).strip()
            found.append((path.relative_to(root).as_posix(), target, column, text))
    return found


@pytest.mark.parametrize("case", sorted(p.name for p in CASES.iterdir() if p.is_dir()))
def test_invalid_project(case: str) -> None:
    root = CASES / case
    environ_file = root / "environ.yaml"
    environ = yaml.safe_load(environ_file.read_text()) if environ_file.exists() else {}
    expected = expected_problems(root)
    assert expected, f"{case} has no annotated problem"

    with pytest.raises(ProjectError) as info:
        csflow.Project.load(root, environ=environ)
    problems = [relative(p, root) for p in info.value.problems]

    got = sorted((p.path, p.line, p.column) for p in problems)
    want = sorted((path, line, column) for path, line, column, _ in expected)
    shown = "\n".join(str(p) for p in problems)
    assert got == want, f"problems reported:\n{shown}"
    for path, line, column, text in expected:
        here = [
            ("warning: " if p.warning else "") + p.message
            for p in problems
            if (p.path, p.line, p.column) == (path, line, column)
        ]
        assert any(text in message for message in here), (
            f"{path}:{line}:{column}: want {text!r}, got {here}"
        )
