"""SOAP and GraphQL round trips per second: csflow beside the same call made by hand.

One round trip is one call and its answer read into plain data, then a one-line reply:
- SOAP: the ERP's ``GetOrderStatus`` for ORD-1003 (Basic auth), the status and the last
  parcel's tracking number. csflow: a one-step flow (``call: soap`` + ``extract``). By hand:
  ``zeep.AsyncClient`` on the WSDL the ERP serves, ``serialize_object``.
- GraphQL: the subscriptions of active@demo.shop (``X-API-Key``), the plan's name. csflow: a
  one-step flow (``call: graphql`` + ``extract``). By hand: gql's ``Client`` over its
  ``HTTPXAsyncTransport`` and one session, the query parsed once with ``gql()``.

The by-hand rows come twice: on httpx's own pool (what zeep and gql do unless told) and on
httpx-aiohttp, csflow's transport, so that the ratio to the second is the cost of csflow
itself. Cells are closed loops (c workers, one shared client), best of the rounds.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import tempfile
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter, process_time
from typing import Any

import httpx
from httpx_aiohttp import AiohttpTransport

from csflow import Project

ROOT = Path(__file__).resolve().parent.parent
TRACKING = "1Z999AA10123456784"  # ORD-1003's parcel: every SOAP reply must name it
PLAN = "Standard Coffee Box"  # active@demo.shop's plan: every GraphQL reply must name it
ERP_USER, ERP_PASSWORD, SUBS_KEY = "erp", "erp-secret", "subs-key"  # python -m demo's defaults
QUERY = "query Subs($email: String!) { customer(email: $email) { subscriptions { id status plan { name } } } }"
LEVELS = (1, 10)

FLOWS = {
    "soap1": """
        name: soap1
        steps:
          - id: erp
            call: soap
            with: {connection: erp, operation: GetOrderStatus, args: {orderNumber: ORD-1003}}
            extract:
              status: status
              tracking: "shipments.shipment[-1].trackingNumber"
          - reply: "Order ORD-1003 is {{ status }}: tracking {{ tracking }}."
        """,
    "graphql1": f"""
        name: graphql1
        steps:
          - id: subs
            call: graphql
            with:
              connection: subs
              query: "{QUERY}"
              variables: {{email: active@demo.shop}}
            extract:
              plan: "customer.subscriptions[0].plan.name"
          - reply: "Your plan is {{{{ plan }}}}."
        """,
}

CONNECTIONS = """
erp:
  type: soap
  wsdl: erp.wsdl
  url: {env: BENCH_ERP_URL}
  auth: {type: basic, username: erp, password: {env: BENCH_ERP_PASSWORD}}
  read_only: [GetOrderStatus]
subs:
  type: graphql
  url: {env: BENCH_SUBS_URL}
  schema: subs.graphql
  auth: {type: api_key, header: X-API-Key, key: {env: BENCH_SUBS_KEY}}
"""


class Contender:
    """``open`` makes its client on the running loop; ``talk`` is one round trip."""

    def __init__(self, key: str, label: str, protocol: str) -> None:
        self.key, self.label, self.protocol = key, label, protocol

    async def open(self) -> None: ...

    async def talk(self) -> str:
        raise NotImplementedError

    async def close(self) -> None: ...


class Csflow(Contender):
    def __init__(self, project: Project, flow: str, protocol: str) -> None:
        super().__init__(f"csflow_{protocol}", f"csflow, one-step {flow} flow", protocol)
        self.project, self.flow = project, flow

    async def talk(self) -> str:
        result = await self.project.run(self.flow)
        if result.status != "completed":
            raise RuntimeError(f"{self.flow} failed: {result.error}")
        return result.reply or ""

    async def close(self) -> None:
        await self.project.connections.aclose_loop()


def _pool(aiohttp: bool) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    if aiohttp:
        return {"transport": AiohttpTransport(limits=limits, trust_env=False)}
    return {"limits": limits}


class Zeep(Contender):
    """By hand: zeep's AsyncClient on the WSDL the ERP serves (its own address inside)."""

    def __init__(self, base_url: str, aiohttp: bool) -> None:
        pool = "httpx-aiohttp" if aiohttp else "httpx's pool"
        super().__init__(f"zeep{'_aiohttp' if aiohttp else ''}", f"zeep by hand, {pool}", "soap")
        self.wsdl, self.aiohttp = f"{base_url}/erp?wsdl", aiohttp
        self.client: Any = None

    async def open(self) -> None:
        import zeep
        from zeep.transports import AsyncTransport

        auth = httpx.BasicAuth(ERP_USER, ERP_PASSWORD)
        transport = AsyncTransport(
            client=httpx.AsyncClient(auth=auth, timeout=10, **_pool(self.aiohttp)),
            wsdl_client=httpx.Client(auth=auth, timeout=10),
        )
        settings = zeep.Settings(forbid_dtd=True, forbid_entities=True, forbid_external=True)
        # Loading the WSDL is sync in zeep: off the loop, once per cell.
        self.client = await asyncio.to_thread(
            zeep.AsyncClient, self.wsdl, transport=transport, settings=settings
        )

    async def talk(self) -> str:
        from zeep.helpers import serialize_object

        result = serialize_object(
            await self.client.service.GetOrderStatus(orderNumber="ORD-1003"), dict
        )
        tracking = result["shipments"]["shipment"][-1]["trackingNumber"]
        return f"Order ORD-1003 is {result['status']}: tracking {tracking}."

    async def close(self) -> None:
        await self.client.transport.aclose()
        self.client.transport.wsdl_client.close()


class Gql(Contender):
    """By hand: gql's Client on its HTTPXAsyncTransport, one session, the query parsed once."""

    def __init__(self, url: str, aiohttp: bool, schema: str | None = None) -> None:
        pool = "httpx-aiohttp" if aiohttp else "httpx's pool"
        extra = ", schema given (validates each call)" if schema else ""
        key = f"gql{'_aiohttp' if aiohttp else ''}{'_schema' if schema else ''}"
        super().__init__(key, f"gql by hand, {pool}{extra}", "graphql")
        self.url, self.aiohttp, self.schema = url, aiohttp, schema
        self.client: Any = None
        self.session: Any = None

    async def open(self) -> None:
        from gql import Client, gql
        from gql.transport.httpx import HTTPXAsyncTransport

        transport = HTTPXAsyncTransport(
            url=self.url, headers={"X-API-Key": SUBS_KEY}, timeout=10, **_pool(self.aiohttp)
        )
        self.client = Client(transport=transport, schema=self.schema, execute_timeout=None)
        self.session = await self.client.connect_async()
        self.document = gql(QUERY)

    async def talk(self) -> str:
        from gql import GraphQLRequest

        request = GraphQLRequest(self.document, variable_values={"email": "active@demo.shop"})
        data = await self.session.execute(request)
        return f"Your plan is {data['customer']['subscriptions'][0]['plan']['name']}."

    async def close(self) -> None:
        await self.client.close_async()


# ------------------------------------------------------------------------------ measuring


@dataclass
class Cell:
    rate: float  # round trips per second
    p50: float  # ms
    cpu_us: float  # client CPU per round trip
    errors: int = 0
    error: str = ""


async def _cell(client: Contender, level: int, warmup: float, duration: float) -> Cell:
    await client.open()
    try:
        reply = await client.talk()
        expected = TRACKING if client.protocol == "soap" else PLAN
        if expected not in reply:
            raise RuntimeError(f"{client.label}: unexpected reply {reply!r}")
        latencies: list[float] = []
        errors: list[str] = []
        start = perf_counter() + warmup
        end = start + duration
        cpu: list[float] = []

        async def worker() -> None:
            while (t0 := perf_counter()) < end:
                try:
                    await client.talk()
                except Exception as exc:  # counted and shown, never hidden
                    errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                if start <= (t1 := perf_counter()) <= end:
                    latencies.append(t1 - t0)

        async def clock() -> None:
            await asyncio.sleep(max(0.0, start - perf_counter()))
            cpu.append(process_time())
            await asyncio.sleep(max(0.0, end - perf_counter()))
            cpu.append(process_time())

        await asyncio.gather(clock(), *(worker() for _ in range(level)))
        n = len(latencies)
        return Cell(
            rate=n / duration,
            p50=statistics.median(latencies) * 1000 if n else float("nan"),
            cpu_us=(cpu[1] - cpu[0]) / n * 1e6 if n else float("nan"),
            errors=len(errors),
            error=errors[0] if errors else "",
        )
    finally:
        await client.close()


def _measure(client: Contender, level: int, warmup: float, duration: float) -> Cell:
    gc.collect()
    with asyncio.Runner() as runner:
        return runner.run(_cell(client, level, warmup, duration))


@dataclass
class Figures:
    rounds: int
    duration: float
    labels: dict[str, str] = field(default_factory=dict)
    cells: dict[tuple[str, int], Cell] = field(default_factory=dict)


def project(base_url: str) -> Project:
    """The bench's own project, written to a temporary folder: one flow per protocol."""
    folder = Path(tempfile.mkdtemp(prefix="csflow-bench-protocols-"))
    (folder / "flows").mkdir()
    for name, text in FLOWS.items():
        (folder / "flows" / f"{name}.yaml").write_text(textwrap.dedent(text).lstrip())
    (folder / "connections.yaml").write_text(CONNECTIONS)
    (folder / "erp.wsdl").write_text((ROOT / "demo" / "erp.wsdl").read_text())
    (folder / "subs.graphql").write_text((ROOT / "demo" / "subscriptions.graphql").read_text())
    env = {
        "BENCH_ERP_URL": f"{base_url}/erp",
        "BENCH_ERP_PASSWORD": ERP_PASSWORD,
        "BENCH_SUBS_URL": f"{base_url}/graphql",
        "BENCH_SUBS_KEY": SUBS_KEY,
    }
    return Project.load(folder, environ=env)


def run(base_url: str, quick: bool, progress: Callable[[str], None] | None = None) -> Figures:
    rounds, warmup, duration = (1, 0.2, 1.0) if quick else (3, 0.3, 1.2)
    loaded = project(base_url)
    schema = (ROOT / "demo" / "subscriptions.graphql").read_text()
    contenders: list[Contender] = [
        Csflow(loaded, "soap1", "soap"),
        Zeep(base_url, aiohttp=True),
        Zeep(base_url, aiohttp=False),
        Csflow(loaded, "graphql1", "graphql"),
        Gql(f"{base_url}/graphql", aiohttp=True),
        Gql(f"{base_url}/graphql", aiohttp=False),
        Gql(f"{base_url}/graphql", aiohttp=True, schema=schema),
    ]
    figures = Figures(rounds, duration, {c.key: c.label for c in contenders})
    for level in LEVELS:
        for r in range(rounds):
            # Alternate the order between rounds, so no contender always runs first.
            for client in contenders if r % 2 == 0 else list(reversed(contenders)):
                cell = _measure(client, level, warmup, duration)
                best = figures.cells.get((client.key, level))
                if best is None or cell.rate > best.rate:
                    figures.cells[(client.key, level)] = cell
                if progress:
                    progress(f"  c={level:<3} round {r + 1}: {client.label:<58} {cell.rate:7.0f}/s")
    return figures


def report(f: Figures, where: str) -> list[str]:
    width = 62
    lines = [
        "3. SOAP and GraphQL round trips per second (p50 ms) [client CPU per round trip, µs]; "
        + where,
        f"   closed loop, c workers sharing one client; best of {f.rounds} round(s) of "
        f"{f.duration:g} s per cell",
        "   " + " " * width + "".join(f"{'c=' + str(c):>26}" for c in LEVELS),
    ]
    for key, label in f.labels.items():
        row = ""
        for c in LEVELS:
            cell = f.cells.get((key, c))
            text = "-" if cell is None else f"{cell.rate:.0f} ({cell.p50:.1f}) [{cell.cpu_us:.0f}]"
            if cell is not None and cell.errors:
                text += f" {cell.errors} err"
            row += f"{text:>26}"
        lines.append(f"   {label:<{width}}{row}")
    pairs: list[tuple[str, str, str]] = [
        ("csflow / zeep by hand, same transport", "csflow_soap", "zeep_aiohttp"),
        ("csflow / zeep by hand, httpx's pool", "csflow_soap", "zeep"),
        ("csflow / gql by hand, same transport", "csflow_graphql", "gql_aiohttp"),
        ("csflow / gql by hand, httpx's pool", "csflow_graphql", "gql"),
        ("csflow / gql by hand with its schema", "csflow_graphql", "gql_aiohttp_schema"),
    ]
    lines.append("   ratios: round trips/s [client CPU per round trip, theirs / csflow's]")
    for label, a, b in pairs:
        row = ""
        for c in LEVELS:
            x, y = f.cells.get((a, c)), f.cells.get((b, c))
            if x is None or y is None or not y.rate or not x.cpu_us:
                row += f"{'-':>26}"
                continue
            row += f"{f'{x.rate / y.rate:.2f} [{y.cpu_us / x.cpu_us:.2f}]':>26}"
        lines.append(f"   {label:<{width}}{row}")
    for (key, c), cell in f.cells.items():
        if cell.errors:
            lines.append(f"   errors: {f.labels[key]} at c={c}: {cell.errors}, {cell.error[:120]}")
    return lines
