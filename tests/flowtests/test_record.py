"""``--record`` against real loopback servers: gzip, two connections on one host, personal data.

Two servers on 127.0.0.1, one port each, both under ``/api``: a shop that gzips every answer
over 1 KB (as json-server does) and a CRM answering a SOAP-shaped envelope.
"""

from __future__ import annotations

import gzip
import json
import shutil
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from csflow import Project
from csflow.engine.model import TestCase
from csflow.engine.result import RunResult
from csflow.flowtest import run_case
from csflow.flowtest.record import CaseRecorder, dump_case
from csflow.flowtest.scrub import Scrubber

DATA = Path(__file__).parent / "data" / "record"
PERSONAL = [
    "jane.doe@example.org",
    "jane.doe%40example.org",
    "Jane",
    "Doe",
    "+44 20 7946 0958",
    "555-625-1199",
    "Chestnut Street",
    "Flat 4",
    "40202",
]


class _Handler(BaseHTTPRequestHandler):
    answers: dict[str, tuple[str, bytes]] = {}

    def do_GET(self) -> None:
        found = [answer for suffix, answer in self.answers.items() if self.path.endswith(suffix)]
        if not found:
            self.send_error(404)
            return
        ctype, body = found[0]
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        if len(body) > 1024 and "gzip" in self.headers.get("Accept-Encoding", ""):
            body = gzip.compress(body)
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, format: str, *args: object) -> None:
        pass


def _serve(answers: dict[str, tuple[str, bytes]]) -> ThreadingHTTPServer:
    handler = type("Handler", (_Handler,), {"answers": answers})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def serve_project(tmp_path: Path) -> Iterator[Callable[[bytes], Path]]:
    """A project whose shop answers ``order`` and whose CRM answers ``customer.xml``."""
    servers: list[ThreadingHTTPServer] = []

    def start(order: bytes) -> Path:
        shop = _serve({"/orders/1003": ("application/json", order)})
        crm = _serve({"/customer": ("text/xml", (DATA / "customer.xml").read_bytes())})
        servers.extend((shop, crm))
        shutil.copytree(DATA / "flows", tmp_path / "flows")
        (tmp_path / "connections.yaml").write_text(
            f"shop: {{type: rest, base_url: 'http://127.0.0.1:{shop.server_port}/api'}}\n"
            f"crm:\n  type: rest\n  base_url: 'http://127.0.0.1:{crm.server_port}/api'\n"
            "  namespaces: {crm: 'http://crm.example/customers'}\n"
        )
        return tmp_path

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def project(serve_project: Callable[[bytes], Path]) -> Path:
    order = (DATA / "shopify_order.json").read_bytes()
    assert len(order) > 1024  # so that the shop gzips it
    return serve_project(order)


async def _record(root: Path) -> tuple[str, RunResult]:
    project = Project.load(root)
    recorder = CaseRecorder(project)
    recorder.install()
    result = await project.run("order_card", {"email": "jane.doe@example.org"})
    await project.aclose()
    return dump_case(recorder.case("order_card", {"email": "jane.doe@example.org"}, result)), result


async def test_a_gzipped_answer_is_recorded_and_the_run_goes_on(project: Path) -> None:
    text, result = await _record(project)
    assert result.status == "completed", result.error
    mocks = yaml.safe_load(text)["cases"][0]["mocks"]
    assert mocks[0]["json"]["line_items"][0]["name"] == "Blue Mug"  # decoded once, kept as JSON


async def test_calls_are_named_by_port_as_well_as_host(
    serve_project: Callable[[bytes], Path],
) -> None:
    small = {"name": "#1003", "shipping_address": {"city": "Louisville"}, "line_items": []}
    text, _ = await _record(serve_project(json.dumps(small).encode()))  # too small to gzip
    mocks = yaml.safe_load(text)["cases"][0]["mocks"]
    assert [(m["connection"], m["path"]) for m in mocks] == [
        ("shop", "/customers/person1@example.com/orders/1003"),
        ("crm", "/customer"),
    ]


async def test_personal_data_is_scrubbed_by_what_it_is_and_the_case_replays(
    project: Path,
) -> None:
    text, _ = await _record(project)
    left = [value for value in PERSONAL if value in text]
    assert left == []
    case = yaml.safe_load(text)["cases"][0]
    order = case["mocks"][0]["json"]
    assert order["name"] == "#1003"  # an order's name is no person's
    assert [item["name"] for item in order["line_items"]] == ["Blue Mug", "Coffee Beans 1kg"]
    assert order["shipping_address"]["city"] == "Louisville"
    assert order["customer"]["email"] == order["email"] == "person1@example.com"
    assert "tracking_url" in order["fulfillments"][0]
    assert "<crm:tier>gold</crm:tier>" in case["mocks"][1]["xml"]
    assert case["expect"]["reply"] == "Hi Person1, order #1003 goes to Louisville."
    replayed = await run_case(Project.load(project), "order_card", TestCase.model_validate(case))
    assert replayed.failures == []


@pytest.mark.parametrize(
    ("key", "value", "kind"),
    [
        ("customerEmail", "a.b@shop.example", "email"),
        ("contact", "+49 30 1234567", "phone"),
        ("mobile", "0171 2345678", "phone"),
        ("ZIP", "10115", "postal"),
        ("postalCode", "SW1A 1AA", "postal"),
        ("address_line_1", "1 High St", "street"),
        ("lastName", "O'Brien", "name"),
        ("recipient_name", "Anna Müller", "name"),
        ("name", "#1003", None),
        ("name", "Blue Mug", None),
        ("order_number", "1003", None),
        ("created_at", "2024-10-10", None),
        ("email_verified", "true", None),
        ("ip_address", "10.0.0.1", None),
    ],
)
def test_a_value_is_personal_by_what_it_is(key: str, value: str, kind: str | None) -> None:
    from csflow.flowtest.scrub import kind_of

    assert kind_of(key, value, personal_record=False) == kind


def test_a_name_in_a_persons_record_is_scrubbed_and_not_elsewhere() -> None:
    scrubber = Scrubber()
    data = {
        "contact": {"name": "Jane Doe", "id": 7},
        "owner": {"name": "Jane Doe"},
        "product": {"name": "Blue Mug", "owner": "Jane Doe"},
    }
    out = scrubber.data(data)
    assert out["contact"]["name"] == out["owner"]["name"] == "Person1 Person2"
    assert out["product"] == {"name": "Blue Mug", "owner": "Person1 Person2"}  # the same one
    # A flow's reply that greets by first name gets the stand-in of that name.
    assert scrubber.text("Thanks for being with us, Jane!") == "Thanks for being with us, Person1!"
    # A postal code stands alone in text: part of a longer number it is left as it is.
    scrubber.alias("postal", "10115")
    assert scrubber.text("zip 10115, id 101150") == "zip 00001, id 101150"


async def test_a_body_over_the_cap_is_refused_and_not_recorded(project: Path) -> None:
    connections = project / "connections.yaml"
    text = connections.read_text().replace("/api'}", "/api', max_response_bytes: 1200}", 1)
    connections.write_text(text)
    recorded, result = await _record(project)  # gzipped it is under 1200 bytes, not inflated
    assert result.error is not None and result.error["kind"] == "parse", result.error
    mock = yaml.safe_load(recorded)["cases"][0]["mocks"][0]
    assert mock == {"connection": "shop", "method": "GET", "path": mock["path"], "status": 200}


async def test_a_token_the_run_obtained_is_redacted_in_the_file(tmp_path: Path) -> None:
    token = '{"access_token": "tok-0123456789abcdef", "token_type": "Bearer", "expires_in": 600}'
    order = json.dumps(
        {
            "name": "#1003",
            "customer": {"first_name": "Ann"},
            "shipping_address": {"city": "X"},
            "line_items": [],
        }
    )
    server = _serve(
        {
            "/oauth/token": ("application/json", token.encode()),
            "/orders/1003": ("application/json", order.encode()),
            "/customer": ("text/xml", (DATA / "customer.xml").read_bytes()),
        }
    )
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        shutil.copytree(DATA / "flows", tmp_path / "flows")
        (tmp_path / "connections.yaml").write_text(
            f"shop:\n  type: rest\n  base_url: '{base}/api'\n  auth:\n"
            f"    type: oauth2_client_credentials\n    token_url: '{base}/oauth/token'\n"
            "    client_id: csflow\n    client_secret: {env: SHOP_SECRET}\n"
            f"crm: {{type: rest, base_url: '{base}/crm', namespaces: {{crm: 'http://crm.example/customers'}}}}\n"
        )
        project = Project.load(tmp_path, environ={"SHOP_SECRET": "client-secret-4567"})
        recorder = CaseRecorder(project)
        recorder.install()
        result = await project.run("order_card", {"email": "a@b.co"})
        await project.aclose()
    finally:
        server.shutdown()
        server.server_close()
    assert result.status == "completed", result.error
    text = dump_case(recorder.case("order_card", {"email": "a@b.co"}, result))
    assert "/oauth/token" in text  # the token call is a mock too, so the case replays
    assert "tok-0123456789abcdef" not in text and "client-secret-4567" not in text


def test_a_short_value_is_replaced_whole_and_never_inside_other_values() -> None:
    scrubber = Scrubber()
    data = scrubber.data({"shipping_address": {"address2": "4", "zip": "1010"}, "quantity": 4})
    assert data["shipping_address"] == {"address2": "1 Example Street", "zip": "00001"}
    later = scrubber.strings({"quantity": 4, "price": 1010, "note": "box 4, code 1010"})
    assert later == {"quantity": 4, "price": 1010, "note": "box 4, code 00001"}
