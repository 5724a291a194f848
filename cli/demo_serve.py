"""``csflow demo --serve``: Demo Shop, the channels server over it, and a curl for each channel."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import yaml
from rich.console import Console

DEMO_PORT = 8080
# Demo values for the keys of flows/channels.yaml. They replace whatever the shell had: a
# real key left in the environment would otherwise be printed in the curl commands below.
DEMO_KEYS = {
    "CSFLOW_API_KEY": "demo-api-key",
    "ZIPCHAT_API_KEY": "demo-zipchat-key",
    "COFFIELD_SECRET": "demo-coffield-signing-secret",
    "ORDERS_API_KEY": "demo-orders-key",
    "CONSOLE_OPS_PASSWORD": "demo-ops-password",
}
COFFIELD_TENANT = 42


def serve_demo(project_dir: Path | None) -> int:
    """Start Demo Shop and the channels server, print a curl per channel, serve until Ctrl+C."""
    from csflow.adapters.listen import listen_socket
    from csflow.cli.demo import shipped_project
    from csflow.demo.server import DemoShop
    from csflow.serve.app import create_app
    from csflow.serve.server import serve

    project = project_dir or shipped_project()
    console = Console(highlight=False)
    with DemoShop() as shop:
        os.environ.update(shop.env())
        os.environ.update(DEMO_KEYS)
        app = create_app(project, os.environ)
        try:
            sock = listen_socket("127.0.0.1", DEMO_PORT)
        except OSError:
            sock = listen_socket("127.0.0.1", 0)  # 8080 is taken: any free port will do for a demo
        channels = _raw_channels(project)

        def started(url: str) -> None:
            console.print(
                f"[bold]Demo Shop[/bold] on {shop.base_url}   [bold]channels[/bold] on {url}"
            )
            console.print(f"  {url}/healthz   {url}/openapi.json", style="dim")
            for name, endpoint in app.channels.endpoints.items():
                command = _curl(url, endpoint, channels.get(name) or {})
                console.print(f"\n[bold]{name}[/bold] ({endpoint.platform})")
                console.print(command, soft_wrap=True, markup=False)
            for name, mount in app.channels.mounts.items():
                console.print(f"\n[bold]{name}[/bold] ({mount.platform})")
                console.print(f"  {url}{mount.path}/   {_sign_in(channels.get(name) or {})}")
            console.print("\nServing until Ctrl+C. Access log: JSON lines below.\n", style="dim")

        serve(app, "127.0.0.1", sock.getsockname()[1], sock=sock, on_started=started)
    return 0


def _raw_channels(project: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load((project / "channels.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def _sign_in(raw: dict[str, Any]) -> str:
    """The console's demo users, ``sign in as ops / demo-ops-password``."""
    users = raw.get("users")
    if not isinstance(users, dict):
        return "no users"
    shown = [f"{name} / {_secret(ref)}" for name, ref in users.items()]
    return "sign in as " + ", ".join(shown)


def _secret(raw: Any) -> str:
    """The demo value of a key written ``{env: NAME}``, or ``$NAME`` for the shell to fill."""
    if isinstance(raw, list):
        raw = raw[0] if raw else None
    name = raw.get("env") if isinstance(raw, dict) else None
    if not name:
        return "KEY"
    return os.environ.get(name, f"${name}") if name in DEMO_KEYS else f"${name}"


def _curl(url: str, endpoint: Any, raw: dict[str, Any]) -> str:
    from csflow.serve.conversation import ConversationEndpoint
    from csflow.serve.generic import GenericEndpoint
    from csflow.serve.order_lookup import OrderLookupEndpoint
    from csflow.serve.zipchat import ZipchatEndpoint

    q = shlex.quote
    if isinstance(endpoint, GenericEndpoint):
        flows = endpoint.flows("default") if "default" in endpoint.projects else {}
        flow = "wismo" if "wismo" in flows else next(iter(flows), "FLOW")
        body = json.dumps({"inputs": {"email": "shipped@demo.shop"}})
        return (
            f"curl -s -X POST {q(f'{url}{endpoint.path}/flows/{flow}/runs')} "
            f"-H {q('x-api-key: ' + _secret(raw.get('api_keys')))} "
            f"-H 'content-type: application/json' -d {q(body)}"
        )
    if isinstance(endpoint, ZipchatEndpoint):
        query = urlencode({"order_id": "ORD-1003", "customer_email": "shipped@demo.shop"})
        return (
            f"curl -s -i {q(f'{url}{endpoint.path}?{query}')} "
            f"-H {q('x-api-key: ' + _secret(raw.get('api_key')))}"
        )
    if isinstance(endpoint, ConversationEndpoint):
        body = json.dumps({"text": "where is my order?", "context": {"email": "shipped@demo.shop"}})
        return (
            f"curl -s -X POST {q(f'{url}{endpoint.path}/demo-chat-1/messages')} "
            f"-H {q('x-api-key: ' + _secret(raw.get('api_keys')))} "
            f"-H 'content-type: application/json' -d {q(body)}"
        )
    if isinstance(endpoint, OrderLookupEndpoint):
        query = urlencode({"phone": "+1 (415) 867-5309"})
        return (
            f"curl -s {q(f'{url}{endpoint.path}?{query}')} "
            f"-H {q('x-api-key: ' + _secret(raw.get('api_key')))}"
        )
    kind = "order" if "order" in endpoint.kinds else next(iter(endpoint.kinds))
    body = json.dumps(
        {
            "kind": kind,
            "reference": "ORD-1003",
            "context": {"email": "shipped@demo.shop"},
            "tenant_id": COFFIELD_TENANT,
        }
    )
    secret = _secret(raw.get("signing_secret"))
    if secret.startswith("$"):
        digest = f'printf %s {q(body)} | openssl dgst -sha256 -hmac "{secret}" -r'
        signature = f"sha256=$({digest} | cut -d' ' -f1)"
    else:  # the signature covers the body only, so it can be computed here once
        signature = "sha256=" + hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()
    return (
        f"curl -s -X POST {q(url + endpoint.path)} -H 'content-type: application/json' "
        f'-H "X-Coffield-Timestamp: $(date +%s)" -H "X-Coffield-Signature: {signature}" '
        f"-H 'X-Coffield-Tenant-Id: {COFFIELD_TENANT}' -H 'X-Coffield-Lookup-Kind: {kind}' "
        f"-d {q(body)}"
    )
