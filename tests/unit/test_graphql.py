"""The ``graphql`` action with no network: the schema from the project, answers from MockTransport.

Covers the load-time checks against the schema (exact places), GraphQL errors as typed
errors with their partial data, mutations as writes under §7, and the transport boundary.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from unit_support import ProjectFiles, answer

from csflow.adapters.operation_mocks import use_operation_mocks

SCHEMA = (Path(__file__).resolve().parents[2] / "demo" / "subscriptions.graphql").read_text()
KEY = "subs-Key-123456"
URL = "https://subs.example.com/graphql"

CONNECTIONS = f"""
subs:
  type: graphql
  url: {URL}
  schema: schema/subs.graphql
  auth: {{type: api_key, header: X-API-Key, key: {{env: SUBS_KEY}}}}
  timeout: 2s
  retry: {{attempts: 3, backoff: 10ms, on: [connect, timeout, 5xx]}}
"""

FLOWS = Path(__file__).parent / "projects" / "graphql" / "flows"  # shared by several tests
FIND = FLOWS / "find.yaml"
REFUND = FLOWS / "refund.yaml"
PAUSE = FLOWS / "pause.yaml"


def load(
    proj: ProjectFiles, *flows: str | Path, connections: str = CONNECTIONS, schema: str = SCHEMA
):
    proj.write(
        flows={f"f{i}": text for i, text in enumerate(flows)},
        connections=connections,
        files={"schema/subs.graphql": schema},
    )
    return proj.load({"SUBS_KEY": KEY})


# ------------------------------------------------------------------------------ calling


async def test_a_query_posts_json_and_its_data_is_the_steps_data(proj):
    project = load(proj, FIND)
    data = {
        "customer": {"name": "Noah", "subscriptions": [{"id": "S1", "plan": {"name": "Basic"}}]}
    }
    seen = answer(project, lambda r: httpx.Response(200, json={"data": data}))
    result = await project.run("find", {"email": "noah@example.com"})
    assert result.status == "completed", result.error
    assert result.outputs == {"name": "Noah", "plan": "Basic", "count": 1}
    request = seen[0]
    assert str(request.url) == URL and request.method == "POST"
    assert request.headers["X-API-Key"] == KEY
    body = json.loads(request.content)
    assert body["variables"] == {"email": "noah@example.com"}
    assert body["operationName"] == "Find"
    assert body["query"].startswith("query Find($email: String!)")
    assert result.steps[0].status == 200


async def test_errors_fail_the_step_with_their_messages_and_keep_partial_data(proj):
    project = load(proj, REFUND)
    body = {
        "data": {"refundLastCharge": None},
        "errors": [
            {
                "message": "Charge CH-1 is already refunded",
                "path": ["refundLastCharge"],
                "extensions": {"code": "ALREADY_REFUNDED"},
            }
        ],
    }
    seen = answer(project, lambda r: httpx.Response(200, json=body))
    result = await project.run("refund", {"id": "S1"})
    assert result.status == "failed"
    step = result.steps[0]
    assert step.error["kind"] == "action"
    assert "Charge CH-1 is already refunded" in step.error["message"]
    assert step.error["code"] == "ALREADY_REFUNDED"
    assert step.error["data"] == {"refundLastCharge": None}  # the partial data
    # The flow branches on them: steps.ID.error.code, .data, .errors
    assert result.reply == "ALREADY_REFUNDED | {'refundLastCharge': None} | ['refundLastCharge']"
    assert len(seen) == 1  # the API decided: never retried, key or not


async def test_a_timed_out_mutation_without_a_key_is_unknown_and_never_retried(proj):
    keyed = (
        REFUND.read_text()
        .replace("name: refund", "name: keyed")
        .replace("    extract:", '    idempotency_key: "refund-{{ id }}"\n    extract:')
    )
    project = load(proj, REFUND, keyed)

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("no answer", request=request)

    seen = answer(project, slow)
    result = await project.run("refund", {"id": "S1"})
    step = result.steps[0]
    assert step.error["kind"] == "timeout"
    assert step.outcome == "unknown"
    assert step.attempts == 1 and len(seen) == 1  # `on: [timeout]`, but no idempotency_key
    assert "GraphQL subs.Refund" in step.error["message"]
    again = await project.run("keyed", {"id": "S1"})
    assert again.steps[0].attempts == 3  # with a key the same mutation may be sent again
    assert {r.headers["Idempotency-Key"] for r in seen[1:]} == {"refund-S1"}
    assert "Idempotency-Key" not in seen[0].headers


async def test_a_timed_out_query_is_a_read_and_is_retried(proj):
    project = load(proj, FIND)

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("no answer", request=request)

    seen = answer(project, slow)
    result = await project.run("find", {"email": "a@b.co"})
    assert result.steps[0].attempts == 3 and len(seen) == 3
    assert result.steps[0].outcome is None


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (401, {"error": "unauthorized", "message": "bad key"}, "auth"),
        (503, {"error": "down", "message": "the subscriptions API is down"}, "http_status"),
        (200, "<html>oops</html>", "parse"),
        (200, {"result": 1}, "parse"),
    ],
    ids=["401", "503", "html", "json that is not a GraphQL result"],
)
async def test_answers_that_are_not_results_get_their_kind(proj, status, body, kind):
    project = load(proj, FIND)
    content = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    answer(project, lambda r: httpx.Response(status, content=content))
    result = await project.run("find", {"email": "a@b.co"})
    assert result.error["kind"] == kind
    assert result.steps[0].status == status
    assert KEY not in result.to_json()


async def test_date_variables_are_sent_as_iso_text(proj):
    project = load(proj, PAUSE)
    seen = answer(
        project,
        lambda r: httpx.Response(
            200, json={"data": {"pauseSubscription": {"pausedUntil": "2026-12-24"}}}
        ),
    )
    result = await project.run("pause", {"id": "S1", "until": "2026-12-24"})
    assert result.outputs["until"].isoformat() == "2026-12-24"
    assert json.loads(seen[0].content)["variables"] == {"id": "S1", "until": "2026-12-24"}


async def test_operation_mocks_match_the_operation_or_its_field(proj):
    project = load(proj, FIND, REFUND)
    seen = answer(project, lambda r: httpx.Response(500))
    asked: list[tuple[str, str]] = []

    def lookup(connection: str, operation: str):
        asked.append((connection, operation))
        if operation == "refundLastCharge":
            return True, {"refundLastCharge": {"amount": 29.0}}
        return False, None

    use_operation_mocks(project.connections, lookup)
    try:
        result = await project.run("refund", {"id": "S1"})
    finally:
        use_operation_mocks(project.connections, None)
    assert result.outputs == {"amount": 29.0}
    assert asked == [("subs", "Refund"), ("subs", "refundLastCharge")]
    assert seen == []


# ------------------------------------------------------------------------------ load time

BAD_FIELD = """
name: bad
steps:
  - id: q
    call: graphql
    with:
      connection: subs
      query: |
        query Find($email: String!) {
          customer(email: $email) { nme }
        }
      variables: {email: a@b.co}
"""


def test_a_bad_field_is_named_at_the_query_with_its_place_in_the_query(proj):
    proj.write(
        flows={"bad": BAD_FIELD}, connections=CONNECTIONS, files={"schema/subs.graphql": SCHEMA}
    )
    problems = proj.problems({"SUBS_KEY": KEY})
    assert [str(p) for p in problems] == [
        "flows/bad.yaml:7:14: Cannot query field 'nme' on type 'Customer'."
        " Did you mean 'name'? (query line 2, column 29)"
    ]
    assert proj.place(problems[0]) == proj.at("flows/bad.yaml", "|")


@pytest.mark.parametrize(
    ("query", "variables", "message", "at"),
    [
        (
            '"query { customer(email: 1 }"',
            "{}",
            "GraphQL syntax error: Syntax Error: Expected Name, found '}'. (query line 1, column 27)",
            "query",
        ),
        (
            '"query { plans { id } }"',
            "{planId: basic}",
            "the query declares no variable '$planId'",
            "variables",
        ),
        (
            '"query P($email: String!) { customer(email: $email) { name } }"',
            "{emial: a@b.co}",
            "the query declares no variable '$emial' (did you mean 'email'?)",
            "variables",
        ),
        (
            '"query P($email: String!) { customer(email: $email) { name } }"',
            "{}",
            "the query needs $email in 'variables'",
            "variables",
        ),
        (
            '"query A { plans { id } } query B { plans { id } }"',
            "{}",
            "the query has several operations",
            "query",
        ),
        (
            '"mutation { refundLastCharge(id: 1, amount: 2) { id } }"',
            "{}",
            "Unknown argument 'amount'",
            "query",
        ),
    ],
    ids=["syntax", "no variables", "near miss", "missing", "two operations", "argument"],
)
def test_queries_are_checked_at_load(proj, query, variables, message, at):
    flow = f"""
    name: q
    steps:
      - call: graphql
        with: {{connection: subs, query: {query}, variables: {variables}}}
    """
    proj.write(flows={"q": flow}, connections=CONNECTIONS, files={"schema/subs.graphql": SCHEMA})
    found = [p for p in proj.problems({"SUBS_KEY": KEY}) if message in p.message]
    assert len(found) == 1, proj.problems({"SUBS_KEY": KEY})
    assert proj.place(found[0]) == proj.at(
        "flows/q.yaml", {"query": query, "variables": variables}[at]
    )


def test_without_a_schema_only_the_syntax_is_checked(proj):
    connections = f"""
    subs:
      type: graphql
      url: {URL}
    """
    flow = """
    name: q
    steps:
      - call: graphql
        with: {connection: subs, query: "query { anything { goes } }"}
      - call: graphql
        with: {connection: subs, query: "query { broken "}
      - call: graphql
        with: {connection: subs, query: "subscription S { plans { id } }"}
    """
    proj.write(flows={"q": flow}, connections=connections)
    problems = proj.problems()
    assert [p.message.split(":")[0] for p in problems] == [
        "GraphQL syntax error",
        "subscriptions are not supported",
    ]
    assert proj.place(problems[0]) == proj.at("flows/q.yaml", '"query { broken')
    assert proj.place(problems[1]) == proj.at("flows/q.yaml", '"subscription S')


def test_a_schema_file_that_cannot_be_used_is_a_problem(proj):
    flow = """
    name: q
    steps:
      - call: graphql
        with: {connection: subs, query: "query { plans { id } }"}
    """
    proj.write(
        flows={"q": flow}, connections=CONNECTIONS, files={"schema/subs.graphql": "type Query {"}
    )
    problem = proj.problem("schema 'schema/subs.graphql' is not usable")
    assert proj.place(problem) == proj.at("flows/q.yaml", "subs,")
