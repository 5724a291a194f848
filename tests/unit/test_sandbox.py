"""Safe defaults of the language: customer text is never rendered, the Jinja sandbox holds,
values cannot grow without bound, and YAML cannot explode at load."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from unit_support import ProjectFiles

from csflow import StepError
from csflow.engine.expressions import Expressions
from csflow.engine.source import MAX_FILE_BYTES

# -- customer text is data ----------------------------------------------------------------------

INJECTION = {
    "echo": """
    name: echo
    inputs:
      note: string
    outputs:
      said: string
    steps:
      - id: lookup
        call: http
        with: {connection: shop, path: /notes, query: {q: "{{ note }}"}}
        extract: {remark: remark}
      - set: {said: "{{ note }}"}
      - reply: "You said {{ note }}; the shop says {{ remark }}."
    """
}

PAYLOADS = [
    "{{ 7 * 7 }}",
    "{% for i in range(3) %}x{% endfor %}",
    "{{ ''.__class__.__mro__ }}",
    "{{ steps }}",
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_customer_text_with_template_syntax_is_never_rendered(
    proj: ProjectFiles, payload: str
) -> None:
    proj.write(
        flows=INJECTION,
        connections="shop:\n  type: rest\n  base_url: https://shop.example.com\n",
    )
    project = proj.load()
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"remark": payload})  # the API echoes it, too

    project.connections.use_transport(lambda n: httpx.MockTransport(answer))
    result = project.run_sync("echo", {"note": payload})
    assert result.status == "completed", result.error
    assert result.outputs == {"said": payload}
    assert result.reply == f"You said {payload}; the shop says {payload}."
    assert seen[0].url.params["q"] == payload


# -- the sandbox -------------------------------------------------------------------------------

ESCAPES = [
    "''.__class__.__mro__[1].__subclasses__()",
    "().__class__.__bases__[0].__subclasses__()",
    "cycler.__init__.__globals__",
    "joiner.__init__.__globals__.os",
    "namespace.__init__.__globals__",
    "lipsum.__globals__",
    "range.__self__",
    "now.__class__.__init__.__globals__",
    "steps.__class__.__mro__",
    "'{0.__class__.__mro__}'.format(steps)",
    "'{0.__init__.__globals__}'.format(cycler)",
    "steps.update({'x': 1})",
    "[].append(1)",
    "order.pop('id')",
]


@pytest.mark.parametrize("source", ESCAPES)
def test_sandbox_escapes_fail_the_step_with_expression(source: str) -> None:
    compiled = Expressions().template("{{ " + source + " }}")
    scope = {"steps": {}, "order": {"id": 1}, **Expressions().globals()}
    import datetime as dt

    scope["now"] = dt.datetime.now(dt.UTC)
    with pytest.raises(StepError) as info:
        compiled(scope)
    assert info.value.kind == "expression"


# -- caps on what an expression builds ----------------------------------------------------------

HUGE = [
    "2 ** 100000",
    "(10 ** 400) ** 20",
    "'a' * 1000000",
    "[1] * 10 ** 6",
    "'%0999999999d' % 1",
    "'%.999999999f' % 1.5",
    "'%*d' % (999999999, 1)",
    "'{:>999999999}'.format(1)",
    "'{:{w}}'.format(1, w=999999999)",
    "'x' | center(999999999)",
    "'x'.center(999999999)",
    "'x'.ljust(999999999)",
    "'x'.zfill(999999999)",
    "('\\t' * 1000).expandtabs(999999)",
    "('a' * 100000) | replace('a', 'a' * 100)",
    "('a' * 100000).replace('a', 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb')",
    "'%08.999999d' | format(1)",
    "'x' | indent(999999999, true)",
    "range(10 ** 9) | list",
]


@pytest.mark.parametrize("source", HUGE)
def test_an_expression_cannot_build_a_huge_value(source: str) -> None:
    started = time.monotonic()
    exprs = Expressions()
    with pytest.raises(StepError) as info:
        exprs.expression(source)(exprs.globals())
    assert info.value.kind == "expression"
    assert time.monotonic() - started < 1.0


def test_lipsum_is_capped() -> None:
    exprs = Expressions()
    text = exprs.expression("lipsum(1000000, false, 1000000, 1000000)")(exprs.globals())
    assert len(text) < 10 * 100 * 20


def test_a_template_stops_as_soon_as_its_output_passes_the_cap() -> None:
    loop = (
        "{% for i in range(100000) %}{% for j in range(100000) %}xxxxxxxxxx{% endfor %}{% endfor %}"
    )
    started = time.monotonic()
    exprs = Expressions()
    with pytest.raises(StepError, match="over 100000 characters"):
        exprs.template(loop)(exprs.globals())
    assert time.monotonic() - started < 1.0


def test_a_value_doubled_by_a_loop_of_steps_stops_at_the_cap(proj: ProjectFiles) -> None:
    proj.write(
        flows={
            "grow": """
            name: grow
            steps:
              - set: {text: "x"}
              - id: double
                set: {text: "{{ text ~ text }}"}
                next: double
            """
        }
    )
    started = time.monotonic()
    result = proj.load().run_sync("grow")
    assert result.error["kind"] == "expression"
    assert "over 1000000 characters" in result.error["message"]
    assert time.monotonic() - started < 2.0


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("'%05.1f' % 3.14159", "003.1"),
        ("'{:>6}'.format('ab')", "    ab"),
        ("'ab' | center(6)", "  ab  "),
        ("'a-b' | replace('-', '+')", "a+b"),
        ("'%s and %s' | format('x', 'y')", "x and y"),
        ("2 ** 10", 1024),
        ("'ab' * 3", "ababab"),
    ],
)
def test_ordinary_formatting_still_works(source: str, expected: Any) -> None:
    assert Expressions().expression(source)({}) == expected


# -- YAML at load -------------------------------------------------------------------------------

LAUGHS = """
name: laughs
steps:
  - set:
      a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
      b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
      c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
      d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
      e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
      f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
      g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]
      h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]
      i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


def test_billion_laughs_yaml_is_a_load_problem_not_a_hang(proj: ProjectFiles) -> None:
    proj.write(flows={"laughs": LAUGHS})
    started = time.monotonic()
    problem = proj.problem("aliases")
    assert problem.path == "flows/laughs.yaml"
    assert "aliases repeat more than 10000 values" in problem.message
    assert time.monotonic() - started < 2.0


def test_a_yaml_file_over_the_size_cap_is_refused_unread(proj: ProjectFiles) -> None:
    big = "name: big\nsteps:\n  - reply: hi\n# " + "x" * MAX_FILE_BYTES + "\n"
    proj.write(flows={"big": big})
    problem = proj.problem("the limit is")
    assert problem.path == "flows/big.yaml"
    assert (problem.line, problem.column) == (1, 1)


@pytest.mark.parametrize("form", ["[{cmd}]", "{{args: [{cmd}]}}", "'{cmd}'"])
def test_yaml_tags_that_would_run_python_never_do(
    proj: ProjectFiles, tmp_path: Any, form: str
) -> None:
    marker = tmp_path / "pwned"
    cmd = form.format(cmd=f"touch {marker}")
    proj.write(
        flows={"tag": f"name: tag\nsteps:\n  - reply: !!python/object/apply:os.system {cmd}\n"}
    )
    assert proj.problems()  # refused at load, one way or another
    assert not marker.exists()


def test_aliases_that_share_ordinary_data_are_fine(proj: ProjectFiles) -> None:
    from csflow.engine.errors import Problem
    from csflow.engine.source import Source, parse_yaml

    rows = "\n".join("  - *order" for _ in range(40))
    text = (
        "base: &order {number: ORD-1, status: SHP, lines: [{sku: A, qty: 1}, {sku: B, qty: 2}], total: 9}\nuses:\n"
        + rows
        + "\n"
    )
    problems: list[Problem] = []
    data = parse_yaml(text, Source("x.yaml"), problems)
    assert problems == []
    assert len(data["uses"]) == 40 and data["uses"][39]["lines"][1]["sku"] == "B"
