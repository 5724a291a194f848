"""``csflow demo``: Demo Shop on a free loopback port, one WISMO conversation per case, then
one conversation per intent (cancel, address, return label, subscriptions) over REST, SOAP
and GraphQL. The intents change Demo Shop's data, so each uses a customer no other one does.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.rule import Rule
from rich.text import Text

from csflow.cli.render import show_run


@dataclass(frozen=True)
class Conversation:
    question: str
    flow: str
    inputs: dict[str, Any]
    outage: bool = False
    case: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


WISMO = [
    Conversation(
        "Where is my order? I only ordered last night.",
        "wismo",
        {"email": "pending@demo.shop"},
        case="pending",
    ),
    Conversation(
        "Has my order left the warehouse yet?",
        "wismo",
        {"email": "processing@demo.shop"},
        case="processing",
    ),
    Conversation(
        "Where's order ORD-1003?",
        "wismo",
        {"order_number": "ord-1003", "email": "shipped@demo.shop"},
        case="shipped",
    ),
    Conversation(
        "I only got part of my order!",
        "wismo",
        {"email": "partial@demo.shop"},
        case="partly shipped",
    ),
    Conversation(
        "My tracking says delivered, is that right?",
        "wismo",
        {"phone": "+1 212-555-0147"},
        case="delivered",
    ),
    Conversation(
        "What happened to my order?", "wismo", {"email": "cancelled@demo.shop"}, case="cancelled"
    ),
    Conversation(
        "Where is order ORD-4242?", "wismo", {"order_number": "ORD-4242"}, case="not found"
    ),
    Conversation(
        "Where is my order?", "wismo", {"email": "shipped@demo.shop"}, outage=True, case="API down"
    ),
    Conversation(
        "Any news on my skillet?",
        "wismo",
        {"email": "erp-only@demo.shop"},
        case="status from the ERP (SOAP)",
    ),
]

INTENTS = [
    Conversation(
        "Please cancel my order, I ordered the wrong size.",
        "cancel_order",
        {"email": "pending@demo.shop", "reason": "Ordered the wrong size"},
        case="not shipped: cancelled, refund stated",
    ),
    Conversation(
        "Can I still cancel ORD-1003?",
        "cancel_order",
        {"order_number": "ORD-1003", "email": "shipped@demo.shop"},
        case="already shipped: a return offered",
    ),
    Conversation(
        "I moved! Please send my order to Unter den Linden 5, 10117 Berlin.",
        "change_address",
        {
            "email": "processing@demo.shop",
            "line1": "Unter den Linden 5",
            "city": "Berlin",
            "postal_code": "10117",
            "country": "DE",
        },
        case="before shipping: the ERP updated",
    ),
    Conversation(
        "The headphones don't fit me, how do I send them back?",
        "return_label",
        {"email": "delivered@demo.shop"},
        case="inside the 30-day window: a label",
    ),
    Conversation(
        "Can I pause my coffee until mid December?",
        "subscription_pause",
        {"email": "repeat@demo.shop", "until": "{in_21_days}"},
        case="active: paused until a date",
    ),
    Conversation(
        "I'd like the premium box from now on.",
        "subscription_change_plan",
        {"email": "paused@demo.shop", "plan": "Premium"},
        case="upgrade",
    ),
    Conversation(
        "I was charged but didn't want this month's box, can I get a refund?",
        "subscription_refund",
        {"email": "active@demo.shop"},
        case="the last charge, once",
    ),
    Conversation(
        "Please cancel my subscription, it's too expensive.",
        "subscription_cancel",
        {"email": "active@demo.shop", "reason": "Too expensive"},
        case="with a reason",
    ),
]


def shipped_project() -> Path:
    """The flows that ship with csflow, next to the installed packages or in the cwd."""
    here = Path(__file__).resolve().parent.parent / "flows"
    return here if here.is_dir() else Path.cwd() / "flows"


def run_demo(project_dir: Path | None, *, as_json: bool = False) -> int:
    from csflow import Project
    from csflow.demo.server import DemoShop

    console = Console(highlight=False)
    with DemoShop() as shop:
        os.environ.update(shop.env())
        project = Project.load(project_dir or shipped_project())
        if not as_json:
            console.print(
                Text.assemble(
                    ("Demo Shop ", "bold"),
                    f"is serving on {shop.base_url}  ",
                    ("(REST /api, SOAP /erp, GraphQL /graphql)", "dim"),
                )
            )
        return asyncio.run(_conversations(project, shop, console, as_json))


def _inputs(conv: Conversation) -> dict[str, Any]:
    """The conversation's inputs, with dates relative to today (the seed's dates are too)."""
    import datetime as dt

    today = dt.datetime.now(dt.UTC).date()
    days = {"{in_21_days}": (today + dt.timedelta(days=21)).isoformat()}
    return {k: days.get(v, v) if isinstance(v, str) else v for k, v in conv.inputs.items()}


async def _conversations(project: Any, shop: Any, console: Console, as_json: bool) -> int:
    failures = 0
    admin = httpx.AsyncClient(
        base_url=shop.base_url, headers={"Authorization": f"Bearer {shop.token}"}
    )
    try:
        for conv in [*WISMO, *INTENTS]:
            if conv.outage:
                await admin.post("/_admin/outage", json={"on": True})
            try:
                result = await project.run(conv.flow, _inputs(conv))
            finally:
                if conv.outage:
                    await admin.post("/_admin/outage", json={"on": False})
            expected_ok = not conv.outage
            failures += result.ok != expected_ok
            if as_json:
                console.print_json(result.to_json())
                continue
            console.print(Rule(f"{conv.flow} · {conv.case}", style="dim"))
            shown = ", ".join(f"{k}={v}" for k, v in _inputs(conv).items())
            console.print(
                Text.assemble(
                    ("customer  ", "dim"), (conv.question, "bold"), (f"   ({shown})", "dim")
                )
            )
            show_run(console, result, title=f"{conv.flow}")
    finally:
        await admin.aclose()
        await project.aclose()
    return 0 if failures == 0 else 1
