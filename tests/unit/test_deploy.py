"""The deployment sketch of docs/scaling.md (``deploy/``) parses and hangs together.

Docker cannot run on the machine csflow is built on, so neither file is exercised here: this
checks what can be checked without running them. Both parse as YAML; every compose key is one
the Compose Specification documents; the workers, the balancer and the image agree on names
and the port; every ``csflow serve`` option they pass exists; the secrets they need are
there, as placeholders only; the readiness check is csflow's ``/healthz``.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from support import ROOT

from csflow.cli.commands.serve import serve
from csflow.serve.models import RESERVED_PATHS

DEPLOY = ROOT / "deploy"
WORKERS = ("csflow-1", "csflow-2")
# Service keys used, each in the Compose Specification (compose-spec.io, "Services top-level
# element"); a key outside this list is a typo or an option the reader's Compose may lack.
SERVICE_KEYS = {
    "build", "image", "env_file", "environment", "command", "depends_on", "healthcheck",
    "restart", "cpus", "volumes", "ports",
}  # fmt: skip
TOP_KEYS = {"name", "services", "volumes", "x-csflow"}
# What csflow serve needs besides the project's own connections: the store, the shared state,
# the shipped channels' keys and the console's signing key.
NEEDED = {
    "CSFLOW_STORE", "CSFLOW_REDIS", "CSFLOW_API_KEY", "ZIPCHAT_API_KEY", "COFFIELD_SECRET",
    "ORDERS_API_KEY", "CONSOLE_OPS_PASSWORD", "CSFLOW_CONSOLE_KEY",
}  # fmt: skip


def env_file(name: str) -> dict[str, str]:
    lines = (DEPLOY / name).read_text(encoding="utf-8").splitlines()
    pairs = (line.split("=", 1) for line in lines if line and not line.startswith("#"))
    return dict(pairs)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    return loaded


@pytest.fixture(scope="module")
def kubernetes() -> dict[str, dict[str, Any]]:
    docs = list(yaml.safe_load_all((DEPLOY / "kubernetes.yaml").read_text()))
    return {doc["kind"]: doc for doc in docs}


def serve_options(args: list[str]) -> set[str]:
    return {arg for arg in args if arg.startswith("--")}


def known_options() -> set[str]:
    return {opt for param in serve.params for opt in param.opts if opt.startswith("--")}


def image_command() -> list[str]:
    cmd = re.search(r"^CMD (\[.*\])$", (DEPLOY / "Dockerfile").read_text(), re.M)
    assert cmd is not None, "the Dockerfile has no CMD in its JSON form"
    command: list[str] = yaml.safe_load(cmd.group(1))
    return command


def test_the_compose_file_uses_documented_keys_only(compose: dict[str, Any]) -> None:
    assert set(compose) <= TOP_KEYS
    assert set(compose["services"]) == {"postgres", "redis", "haproxy", *WORKERS}
    for name, service in compose["services"].items():
        assert set(service) <= SERVICE_KEYS, name
        for dependency in service.get("depends_on", {}).values():
            assert dependency == {"condition": "service_healthy"}
        for named in service.get("volumes", []):
            volume = named.split(":", 1)[0]
            assert volume.startswith("./") or volume in compose["volumes"], named
    for name in compose["services"]:
        if name in ("postgres", "redis", *WORKERS):
            assert "test" in compose["services"][name]["healthcheck"], name


def test_both_workers_are_the_same_csflow_on_one_store_and_one_redis(
    compose: dict[str, Any],
) -> None:
    first, second = (compose["services"][w] for w in WORKERS)
    assert first == second  # one anchor: two machines of one kind
    assert first["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
    assert (ROOT / first["build"]["dockerfile"]).is_file()
    assert set(first["depends_on"]) == {"postgres", "redis"}
    env = env_file(f"{first['env_file']}.example")
    assert set(env) >= NEEDED
    assert env["CSFLOW_STORE"].startswith("postgresql://")
    assert env["CSFLOW_REDIS"].startswith("redis://")
    # The passwords in the URLs are the servers' own.
    postgres = env_file(compose["services"]["postgres"]["env_file"] + ".example")
    redis = env_file(compose["services"]["redis"]["env_file"] + ".example")
    assert f":{postgres['POSTGRES_PASSWORD']}@" in env["CSFLOW_STORE"]
    assert env["CSFLOW_STORE"].endswith(f"/{postgres['POSTGRES_DB']}")
    assert f":{redis['REDIS_PASSWORD']}@" in env["CSFLOW_REDIS"]
    assert "/healthz" in first["healthcheck"]["test"][-1] and "/healthz" in RESERVED_PATHS


def test_haproxy_balances_every_worker_on_the_images_port(compose: dict[str, Any]) -> None:
    config = (DEPLOY / "haproxy.cfg").read_text()
    servers = re.findall(r"^\s+server (\S+) (\S+):(\d+) check", config, re.M)
    command = image_command()
    port = command[command.index("--port") + 1]
    assert [(name, host, p) for name, host, p in servers] == [(w, w, port) for w in WORKERS]
    assert "balance roundrobin" in config and "option httpchk GET /healthz" in config
    assert (
        "./haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro"
        in compose["services"]["haproxy"]["volumes"]
    )


def test_the_kubernetes_deployment_its_service_and_its_secret_agree(
    kubernetes: dict[str, dict[str, Any]],
) -> None:
    assert set(kubernetes) == {"Secret", "Deployment", "Service"}
    secret, deployment, service = (kubernetes[k] for k in ("Secret", "Deployment", "Service"))
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"] == labels == service["spec"]["selector"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["envFrom"] == [{"secretRef": {"name": secret["metadata"]["name"]}}]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}
    (port,) = container["ports"]
    assert container["args"][container["args"].index("--port") + 1] == str(port["containerPort"])
    assert service["spec"]["ports"][0]["targetPort"] == port["name"]
    values = secret["stringData"]
    assert set(values) >= NEEDED
    assert values["CSFLOW_STORE"].startswith("postgresql://")
    assert values["CSFLOW_REDIS"].startswith(("redis://", "rediss://"))


def test_every_secret_in_the_sketch_is_a_placeholder(
    kubernetes: dict[str, dict[str, Any]],
) -> None:
    for name, value in kubernetes["Secret"]["stringData"].items():
        assert "CHANGE-ME" in value, name
    for example in ("csflow.env.example", "postgres.env.example", "redis.env.example"):
        for name, value in env_file(example).items():
            if "URL" not in name and name not in ("POSTGRES_USER", "POSTGRES_DB"):
                assert "CHANGE-ME" in value, f"{example}: {name}"


def test_only_options_csflow_serve_has_are_passed(kubernetes: dict[str, dict[str, Any]]) -> None:
    (container,) = kubernetes["Deployment"]["spec"]["template"]["spec"]["containers"]
    for args in (image_command(), container["args"]):
        assert args[:2] == ["csflow", "serve"]
        assert serve_options(args) <= known_options(), args
