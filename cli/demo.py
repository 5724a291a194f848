"""``csflow demo``: Demo Shop on a free loopback port, one WISMO conversation per case, then
one conversation per intent (cancel, address, return label, subscriptions) over REST, SOAP
and GraphQL, then multi-turn chats in the customer's own words (§12: intents, asks and
handoffs). The intents change Demo Shop's data, so each uses a customer no other one does.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import httpx
from rich.console import Console
from rich.rule import Rule
from rich.text import Text

from csflow.cli.render import show_run, stdout_console


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


@dataclass(frozen=True)
class Chat:
    """A conversation in the customer's own words: each message a turn (``Project.say``)."""

    case: str
    messages: tuple[str, ...]
    ends: str  # the status the last turn should end with


CHATS = [
    Chat(
        "the order number is asked for",
        ("hi, where's my stuff??", "oh sorry, it's ord 1003"),
        "completed",
    ),
    Chat(
        "a refund over the limit goes to a person",
        ("I was charged for a box I didn't want, can I get my money back", "premium@demo.shop"),
        "handoff",
    ),
    Chat(
        "no order number after three answers: a person takes over",
        (
            "has my parcel shipped yet",
            "I don't have it to hand",
            "it was a gift, no idea",
            "sorry, still nothing",
        ),
        "handoff",
    ),
]


def shipped_project() -> Path:
    """The flows that ship with csflow, next to the installed packages or in the cwd."""
    here = Path(__file__).resolve().parent.parent / "flows"
    return here if here.is_dir() else Path.cwd() / "flows"


def run_demo(project_dir: Path | None, *, as_json: bool = False) -> int:
    """Run every conversation; 0 when each behaved as it should (the outage case fails)."""
    from csflow import Project
    from csflow.demo.server import DemoShop

    console = stdout_console()
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


@dataclass
class Tally:
    """How the conversations went, for the closing line."""

    completed: int = 0
    failed_as_expected: int = 0
    surprises: int = 0  # a run that failed, or an outage that did not make it fail

    def add(self, conv: Conversation | None, ok: bool) -> None:
        if conv is None:  # a chat: ``ok`` says whether it ended as it should
            if ok:
                self.completed += 1
            else:
                self.surprises += 1
        elif ok and not conv.outage:
            self.completed += 1
        elif not ok and conv.outage:
            self.failed_as_expected += 1
        else:
            self.surprises += 1

    def line(self, seconds: float) -> str:
        total = self.completed + self.failed_as_expected + self.surprises
        text = (
            f"{total} conversations: {self.completed} as they should, "
            f"{self.failed_as_expected} failed as expected"
        )
        if self.surprises:
            text += f", {self.surprises} did not behave as expected"
        return f"{text} · {seconds:.1f} s"


async def _conversations(project: Any, shop: Any, console: Console, as_json: bool) -> int:
    tally, started = Tally(), time.monotonic()
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
            tally.add(conv, result.ok)
            if as_json:  # JSON lines: one conversation each, named by its case
                expected = "failed" if conv.outage else "completed"
                line = {"case": conv.case, "expected": expected, **json.loads(result.to_json())}
                click.echo(json.dumps(line, ensure_ascii=False))
                continue
            console.print(Rule(f"{conv.flow} · {conv.case}", style="dim"))
            shown = ", ".join(f"{k}={v}" for k, v in _inputs(conv).items())
            console.print(
                Text.assemble(
                    ("customer  ", "dim"), (conv.question, "bold"), (f"   ({shown})", "dim")
                )
            )
            show_run(console, result, title=conv.flow, expected=conv.outage)
        for n, chat in enumerate(CHATS, 1):
            await _chat(project, chat, f"demo-chat-{n}", console, as_json, tally)
    finally:
        await admin.aclose()
        await project.aclose()
    if not as_json:
        console.print(Rule(style="dim"))
        ok = not tally.surprises
        console.print(
            Text(tally.line(time.monotonic() - started), style="bold green" if ok else "bold red")
        )
    return 0 if not tally.surprises else 1


async def _chat(
    project: Any, chat: Chat, conversation: str, console: Console, as_json: bool, tally: Tally
) -> None:
    """One multi-turn chat, shown as its transcript: each message, reply, intent and steps."""
    from csflow.cli.commands.chat import trace

    if not as_json:
        console.print(Rule(f"chat · {chat.case}", style="dim"))
    result = None
    for i, message in enumerate(chat.messages):
        result = await project.say(conversation, message)
        if as_json:
            line = {
                "case": chat.case,
                "turn": i + 1,
                "say": message,
                **json.loads(result.to_json()),
            }
            click.echo(json.dumps(line, ensure_ascii=False))
            continue
        console.print(Text.assemble(("customer  ", "dim"), (message, "bold")))
        if i == 0 and result.intent is not None:
            intent = result.intent
            console.print(
                Text(f"  intent   {intent['name']} ({intent['confidence']:.2f})", style="magenta")
            )
        console.print(Text.assemble(("  reply    ", "dim"), (result.reply or "", "cyan")))
        console.print(trace(result))
    assert result is not None
    if not as_json and result.handoff is not None:
        h = result.handoff
        console.print(
            Text.assemble(("  handoff  ", "dim"), (f"{h['reason']}: {h['note']}", "blue"))
        )
    tally.add(None, result.status == chat.ends)
