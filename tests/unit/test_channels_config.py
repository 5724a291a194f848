"""Loading channels.yaml: every problem in one pass, each at its ``PATH:LINE:COL``."""

from __future__ import annotations

from typing import Any

import pytest
from unit_support import ProjectFiles, relative

from csflow import Problem, ProjectError
from csflow.serve import load_channels
from csflow.serve.app import create_app

ENV = {"ZIPCHAT_API_KEY": "zk-123456", "COFFIELD_SECRET": "cs-123456", "API_KEY": "ak-123456"}

LOOKUP = """
    name: lookup
    inputs:
      order_number: string
      email: {type: string, required: false}
    outputs:
      found: boolean
      tracking_url: string
      order_status: string
    steps:
      - set: {found: true}
"""

ZIPCHAT = """
    zipchat:
      type: zipchat
      path: /zipchat
      api_key: {env: ZIPCHAT_API_KEY}
      flow: lookup
      inputs: {order_number: "{{ request.order_id }}", email: "{{ request.customer_email }}"}
      found: "{{ outputs.found }}"
      tracking_url: "{{ outputs.tracking_url }}"
"""


def problems(proj: ProjectFiles, channels: str, env: dict[str, str] | None = None) -> list[Problem]:
    if not (proj.root / "flows" / "lookup.yaml").exists():
        proj.write(flows={"lookup": LOOKUP})
    proj.write(files={"channels.yaml": channels})
    _, found = load_channels(proj.root, ENV if env is None else env)
    return [relative(p, proj.root) for p in found]


def one(proj: ProjectFiles, channels: str, fragment: str, **kw: Any) -> Problem:
    found = [p for p in problems(proj, channels, **kw) if fragment in p.message]
    assert len(found) == 1, f"want one problem with {fragment!r}, got {found}"
    return found[0]


def test_the_spec_example_for_zipchat_loads(proj):
    proj.write(flows={"lookup": LOOKUP}, files={"channels.yaml": ZIPCHAT})
    channels, found = load_channels(proj.root, ENV)
    assert found == []
    assert list(channels.endpoints) == ["zipchat"]
    assert channels.endpoints["zipchat"].timeout == 5.0  # Zipchat's own limit
    assert "zk-123456" in channels.secrets  # for the log redactor


def test_no_channels_yaml_is_no_channels_and_no_problem(proj):
    proj.write(flows={"lookup": LOOKUP})
    channels, found = load_channels(proj.root, ENV)
    assert found == [] and channels.endpoints == {}
    with pytest.raises(ProjectError, match="no channels to serve"):
        create_app(proj.root, ENV)


def test_unknown_key_with_a_near_miss(proj):
    p = one(proj, ZIPCHAT.replace("api_key:", "api_kye:"), "unknown key 'api_kye'")
    assert "(did you mean 'api_key'?)" in p.message
    assert ProjectFiles.place(p) == proj.at("channels.yaml", "api_kye")


def test_unknown_channel_type(proj):
    p = one(proj, ZIPCHAT.replace("type: zipchat", "type: zipchatt"), "unknown channel type")
    assert "(did you mean 'zipchat'?)" in p.message
    assert ProjectFiles.place(p) == proj.at("channels.yaml", "zipchatt")


def test_a_literal_key_is_refused(proj):
    p = one(proj, ZIPCHAT.replace("{env: ZIPCHAT_API_KEY}", "hunter22"), "never the value")
    assert ProjectFiles.place(p) == proj.at("channels.yaml", "hunter22")


def test_a_missing_environment_variable_is_named(proj):
    p = one(proj, ZIPCHAT, "environment variable 'ZIPCHAT_API_KEY' is not set", env={})
    assert ProjectFiles.place(p) == proj.at("channels.yaml", "{env: ZIPCHAT_API_KEY}")


def test_an_unknown_flow_with_a_near_miss(proj):
    p = one(proj, ZIPCHAT.replace("flow: lookup", "flow: lookpu"), "unknown flow 'lookpu'")
    assert "(did you mean 'lookup'?)" in p.message


def test_inputs_are_checked_against_the_flow(proj):
    text = ZIPCHAT.replace("{order_number:", "{order_numbr:")
    found = problems(proj, text)
    messages = [p.message for p in found]
    assert "flow 'lookup' has no input 'order_numbr' (did you mean 'order_number'?)" in messages
    assert "flow 'lookup' needs input 'order_number'" in messages


def test_a_misspelt_output_is_found_at_its_column(proj):
    text = ZIPCHAT.replace("outputs.tracking_url", "outputs.trackng_url")
    p = one(proj, text, "has no output 'trackng_url'")
    assert "(did you mean 'tracking_url'?)" in p.message
    assert ProjectFiles.place(p) == proj.at("channels.yaml", "outputs.trackng_url")


def test_a_misspelt_request_field_is_found(proj):
    text = ZIPCHAT.replace("request.customer_email", "request.customer_emial")
    p = one(proj, text, "the request has no field 'customer_emial'")
    assert "(did you mean 'customer_email'?)" in p.message


def test_inputs_cannot_read_the_run(proj):
    p = one(proj, ZIPCHAT.replace("request.order_id", "reply"), "inputs are built before the run")
    assert "'reply'" in p.message


def test_a_template_syntax_error_points_into_the_template(proj):
    p = one(proj, ZIPCHAT.replace("{{ outputs.found }}", "{{ outputs.found }"), "syntax error")
    assert p.path == "channels.yaml"


def test_a_default_template_says_it_is_a_default(proj):
    text = """
        coffield:
          type: coffield
          path: /c
          signing_secret: {env: COFFIELD_SECRET}
          kinds: {order: {flow: lookup, inputs: {order_number: "{{ request.reference }}"}}}
          summary: "{{ reply }}"
    """
    proj.write(flows={"lookup": LOOKUP.replace("order_status: string", "state: string")})
    p = one(proj, text, "has no output 'order_status'")
    assert p.message.startswith("the default status: '{{ outputs.order_status }}': ")


def test_zipchat_cannot_wait_longer_than_zipchat_does(proj):
    p = one(proj, ZIPCHAT + "      timeout: 6s\n", "Zipchat waits 5s at most")
    assert p.path == "channels.yaml"


@pytest.mark.parametrize("path", ["/healthz", "/openapi.json", "orders", "/a/", "/a?b"])
def test_paths_are_checked(proj, path):
    assert one(proj, ZIPCHAT.replace("path: /zipchat", f"path: {path}"), "path")


def test_two_channels_on_one_path(proj):
    text = ZIPCHAT + ZIPCHAT.replace("zipchat:\n", "other:\n", 1)
    p = one(proj, text, "already served by 'zipchat'")
    assert ProjectFiles.place(p) == proj.at("channels.yaml", "/zipchat", nth=2)


def test_a_channel_without_credentials(proj):
    assert one(
        proj, ZIPCHAT.replace("      api_key: {env: ZIPCHAT_API_KEY}\n", ""), "needs api_key"
    )


def test_every_problem_in_one_pass(proj):
    text = (
        ZIPCHAT.replace("flow: lookup", "flow: nope").replace("api_key:", "api_key_:")
        + """
    coffield:
      type: coffield
      path: /coffield
      signing_secret: abc
      kinds: {}
    api:
      type: generic
      path: /v1
      api_keys: [{env: MISSING_KEY}]
"""
    )
    found = problems(proj, text)
    lines = {p.line for p in found}
    assert len(found) >= 4 and len(lines) >= 4


TENANTS = """
    tenants:
      acme: {project: acme}
    zipchat:
      type: zipchat
      path: /zipchat
      api_key: {env: ZIPCHAT_API_KEY}
      flow: lookup
      inputs: {order_number: "{{ request.order_id }}"}
      tenants:
        acme: {api_key: {env: ACME_KEY}}
"""


def test_tenants_load_their_own_projects(proj):
    proj.write(files={"acme/flows/lookup.yaml": LOOKUP})
    channels, found = load_channels(
        proj.write(flows={"lookup": LOOKUP}, files={"channels.yaml": TENANTS}),
        {**ENV, "ACME_KEY": "acme-123456"},
    )
    assert found == []
    assert set(channels.tenants) == {"default", "acme"}
    assert channels.tenants["acme"].project is not channels.tenants["default"].project
    ring = channels.endpoints["zipchat"].keys
    assert ring.match("acme-123456") == "acme" and ring.match("zk-123456") == "default"


def test_a_channel_names_an_unknown_tenant(proj):
    proj.write(files={"acme/flows/lookup.yaml": LOOKUP})
    text = TENANTS.replace("    acme: {api_key", "    acne: {api_key")
    p = one(proj, text, "unknown tenant 'acne'", env={**ENV, "ACME_KEY": "acme-123456"})
    assert "(did you mean 'acme'?)" in p.message


def test_a_tenant_project_that_does_not_exist(proj):
    p = one(proj, TENANTS, "project folder 'acme' not found", env={**ENV, "ACME_KEY": "a-123456"})
    assert ProjectFiles.place(p) == proj.at("channels.yaml", "acme}")


def test_a_tenant_project_with_problems_reports_them_as_the_tenants(proj):
    proj.write(files={"acme/flows/lookup.yaml": LOOKUP.replace("set:", "sett:")})
    found = problems(proj, TENANTS, env={**ENV, "ACME_KEY": "acme-123456"})
    assert any("unknown key 'sett'" in p.message and "(tenant 'acme')" in p.message for p in found)


def test_two_tenants_cannot_share_a_key(proj):
    proj.write(files={"acme/flows/lookup.yaml": LOOKUP})
    p = one(proj, TENANTS, "already a key of this channel", env={**ENV, "ACME_KEY": "zk-123456"})
    assert ProjectFiles.place(p) == proj.at("channels.yaml", "{env: ACME_KEY}")


def test_a_tenant_environment_never_holds_a_literal_secret(proj):
    proj.write(
        connections="""
            shop:
              type: rest
              base_url: {env: SHOP_URL, default: "http://127.0.0.1:1/api"}
              auth: {type: bearer, token: {env: SHOP_TOKEN}}
        """
    )
    text = (
        """
    tenants:
      globex: {env: {SHOP_URL: "http://127.0.0.1:2/api", SHOP_TOKEN: "s3cret-token"}}
"""
        + ZIPCHAT
    )
    found = problems(proj, text, env={**ENV, "SHOP_TOKEN": "t-123456"})
    assert [p.message for p in found] == [
        "'SHOP_TOKEN' holds a secret of connections.yaml: write {env: NAME}, never the value"
    ]


def test_coffield_tenant_ids_are_unique(proj):
    text = """
        tenants:
          acme: {}
        coffield:
          type: coffield
          path: /c
          signing_secret: {env: COFFIELD_SECRET}
          tenant_id: 42
          status: ok
          kinds: {order: {flow: lookup, inputs: {order_number: "{{ request.reference }}"}}}
          tenants:
            acme: {tenant_id: 42, signing_secret: {env: COFFIELD_SECRET}}
    """
    assert one(proj, text, "Coffield tenant 42 is listed twice")


def test_the_worker_factory_finds_the_project_in_the_environment(proj, monkeypatch):
    from csflow.serve.app import create_app_from_env

    proj.write(flows={"lookup": LOOKUP}, files={"channels.yaml": ZIPCHAT})
    monkeypatch.setenv("CSFLOW_PROJECT", str(proj.root))
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    app = create_app_from_env()
    assert list(app.channels.endpoints) == ["zipchat"]
    assert app.channels.endpoints["zipchat"].keys.match("zk-123456") == "default"
