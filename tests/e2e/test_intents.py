"""Every branch of every shipped intent flow, end to end over loopback against Demo Shop.

One table of conversations: each runs the shipped project against this module's own Demo
Shop (reset before each, so mutations never leak), over its three backends: REST, the SOAP
ERP and GraphQL. Branches that need the world to change between two steps (the warehouse
ships the order while the customer asks to cancel it) change Demo Shop's data right before
the request leaves, through a transport that forwards to the real network
(``Connections.use_transport``). ``test_every_branch_is_reached`` then checks, from the
runs' step records, that the table reaches every ``switch`` branch and ``on_error`` target.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from csflow import Project, RunResult
from csflow.adapters.transport import make_transport
from csflow.demo.models import Address
from csflow.demo.server import DemoShop
from csflow.flowtest.coverage import branches, taken

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FLOWS = (
    "wismo",
    "find_order",
    "erp_order_status",
    "cancel_order",
    "change_address",
    "return_label",
    "find_subscription",
    "subscription_cancel",
    "subscription_pause",
    "subscription_change_plan",
    "subscription_refund",
)
TIMEOUT = "250ms"  # DEMO_ERP_TIMEOUT and DEMO_SUBS_TIMEOUT: a delay of 0.6 s is a timeout
TODAY = dt.datetime.now(dt.UTC).date()


def in_days(n: int) -> str:
    return (TODAY + dt.timedelta(days=n)).isoformat()


# -------------------------------------------------------------------------- what a case sets up

Setup = Callable[[Any, Project], Any]  # (shop state, project) -> a context manager


def outage(*services: str) -> Setup:
    @contextmanager
    def on(state: Any, project: Project) -> Iterator[None]:
        state.down.update(services)
        yield

    return on


def delay(seconds: float, *services: str) -> Setup:
    @contextmanager
    def on(state: Any, project: Project) -> Iterator[None]:
        state.delays.update(dict.fromkeys(services, seconds))
        yield

    return on


def edit(change: Callable[[Any], None]) -> Setup:
    @contextmanager
    def on(state: Any, project: Project) -> Iterator[None]:
        change(state)
        yield

    return on


class _Before(httpx.AsyncBaseTransport):
    """The real transport, but ``change`` runs once, right before a matching request leaves."""

    def __init__(self, inner: httpx.AsyncBaseTransport, match: bytes, change: Callable[[], None]):
        self.inner, self.match, self.change = inner, match, change

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.match in request.content and not getattr(self.change, "done", False):
            self.change.done = True  # type: ignore[attr-defined]
            self.change()
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def before(match: str, change: Callable[[Any], None]) -> Setup:
    """The world changes between the flow's look-up and its write (another agent, the warehouse)."""

    @contextmanager
    def on(state: Any, project: Project) -> Iterator[None]:
        def once() -> None:
            change(state)

        project.connections.use_transport(
            lambda n: _Before(make_transport(n), match.encode(), once)
        )
        try:
            yield
        finally:
            project.connections.use_transport(None)

    return on


class _Watch(httpx.AsyncBaseTransport):
    """The real transport, but ``seen`` runs before every request carrying ``match`` leaves."""

    def __init__(
        self, inner: httpx.AsyncBaseTransport, match: bytes, seen: Callable[[httpx.Request], None]
    ):
        self.inner, self.match, self.seen = inner, match, seen

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.match in request.content:
            self.seen(request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


class LostAnswer:
    """A write whose answer never comes: from the first request carrying ``match`` on, Demo Shop
    holds ``service`` for 0.6 s, past the 250 ms timeout (the look-ups before it are not held).
    ``keys`` holds the Idempotency-Key of each request carrying ``match`` that went to Demo
    Shop in the last run (None when it had none): one item per write sent."""

    def __init__(self, match: str, service: str) -> None:
        self.match, self.service = match, service
        self.keys: list[str | None] = []

    @contextmanager
    def __call__(self, state: Any, project: Project) -> Iterator[None]:
        self.keys = []

        def seen(request: httpx.Request) -> None:
            self.keys.append(request.headers.get("idempotency-key"))
            state.delays[self.service] = 0.6

        project.connections.use_transport(
            lambda n: _Watch(make_transport(n), self.match.encode(), seen)
        )
        try:
            yield
        finally:
            project.connections.use_transport(None)


def ship(number: str) -> Callable[[Any], None]:
    def change(state: Any) -> None:
        state.store.orders[number].status = "shipped"

    return change


# -------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Case:
    name: str
    flow: str
    inputs: dict[str, Any]
    path: tuple[str, ...]  # these step ids ran, in this order (others may run between)
    reply: str = ""  # a fragment the reply contains
    outputs: dict[str, Any] = field(default_factory=dict)
    status: str = "completed"
    setup: Setup | None = None
    settle: float = 0.0  # seconds for delayed requests to finish before the next reset
    # A conversation (§12): the customer's answers to the flow's asks, one turn each. The
    # case's result is the last turn's, with the steps of every turn.
    answers: tuple[str, ...] = ()


BERLIN = {"line1": "Unter den Linden 5", "city": "Berlin", "postal_code": "10117", "country": "de"}

# One conversation per line, so that the table reads as a table.
# fmt: off
CASES = [
    # ---- wismo (and find_order, erp_order_status)
    Case("wismo pending", "wismo", {"email": "pending@demo.shop"}, ("find.by_email", "find.from_shop", "pending"), "waiting to be processed"),
    Case("wismo processing", "wismo", {"email": "processing@demo.shop"}, ("processing",), "being prepared"),
    Case("wismo shipped", "wismo", {"order_number": "ord-1003", "email": "shipped@demo.shop"}, ("find.by_number", "find.fields", "shipped"), "1Z999AA10123456784"),
    Case("wismo partly shipped", "wismo", {"email": "partial@demo.shop"}, ("partly_shipped",), "will follow in a separate parcel"),
    Case("wismo delivered", "wismo", {"phone": "(212) 555-0147"}, ("find.by_phone", "delivered"), "by FedEx", {"order_status": "delivered"}),
    Case("wismo cancelled", "wismo", {"email": "cancelled@demo.shop"}, ("cancelled",), "was cancelled"),
    Case("wismo from the ERP", "wismo", {"email": "erp-only@demo.shop"}, ("find.erp", "find.erp.status", "shipped"), "9400111899223100012345", {"status_source": "erp", "carrier": "USPS", "order_status": "shipped"}),
    Case("wismo ERP down", "wismo", {"email": "erp-only@demo.shop"}, ("find.erp", "find.from_shop", "unknown_status"), "can't see its", {"order_status": "unknown"}, setup=outage("erp",)),
    Case("wismo unknown number", "wismo", {"order_number": "ORD-4242"}, ("find.by_number", "find.not_found", "not_found"), "couldn't find", {"found": False}),
    Case("wismo someone else's email", "wismo", {"order_number": "ORD-1003", "email": "pending@demo.shop"}, ("find.by_number", "find.not_found", "not_found"), outputs={"found": False}),
    Case("wismo unknown email", "wismo", {"email": "nobody@demo.shop"}, ("find.check", "find.not_found", "not_found")),
    Case("wismo order API down", "wismo", {"email": "shipped@demo.shop"}, ("find", "api_down"), "can't reach our order system", status="failed", setup=outage("rest",)),
    Case("wismo no details", "wismo", {}, ("find", "find.ask_order_number"), "What's your order number?", status="waiting"),
    Case("wismo asks, then finds", "wismo", {}, ("find.ask_order_number", "find.by_number", "shipped"), "on its way with UPS", answers=("it's ord 1003",)),
    Case("wismo no order number thrice", "wismo", {}, ("find.ask_order_number", "find.not_identified"), "pass you to one of our team", status="handoff", answers=("no", "no idea", "still no")),
    # ---- cancel_order
    Case("cancel pending", "cancel_order", {"email": "pending@demo.shop", "reason": "wrong size"}, ("cancel", "cancelled"), "refunding $78.99", {"cancelled": True, "refund_amount": 78.99, "currency": "USD", "outcome": "cancelled"}),
    Case("cancel shipped", "cancel_order", {"order_number": "ORD-1003"}, ("too_late",), "ask me for a return label", {"cancelled": False, "outcome": "too_late"}),
    Case("cancel delivered", "cancel_order", {"email": "delivered@demo.shop"}, ("too_late",), "within 30 days", {"outcome": "too_late"}),
    Case("cancel cancelled", "cancel_order", {"email": "cancelled@demo.shop"}, ("already_cancelled",), "already cancelled", {"outcome": "already_cancelled"}),
    Case("cancel not found", "cancel_order", {"email": "nobody@demo.shop"}, ("not_found",), outputs={"found": False, "outcome": "not_found"}),
    Case("cancel status unknown", "cancel_order", {"email": "erp-only@demo.shop"}, ("find.erp", "status_unknown"), "can't cancel it safely", setup=outage("erp",)),
    Case("cancel shipped meanwhile", "cancel_order", {"email": "pending@demo.shop"}, ("cancel", "cancel_refused", "too_late"), "can no longer be cancelled", {"outcome": "too_late"}, setup=before("CancelOrder", ship("ORD-1001"))),
    Case("cancel cancelled meanwhile", "cancel_order", {"email": "pending@demo.shop"}, ("cancel", "cancel_refused", "already_cancelled"), outputs={"outcome": "already_cancelled"}, setup=before("CancelOrder", lambda s: s.store.cancel_order("ORD-1001", "by phone"))),
    Case("cancel answer lost", "cancel_order", {"email": "pending@demo.shop"}, ("cancel", "cancel_refused", "cancel_unknown"), "didn't confirm", {"outcome": "unknown"}, setup=delay(0.6, "erp"), settle=0.6),
    Case("cancel ERP down", "cancel_order", {"email": "pending@demo.shop"}, ("cancel", "cancel_refused", "cancel_failed"), "A teammate will cancel it", status="failed", setup=outage("erp",)),
    Case("cancel order API down", "cancel_order", {"email": "pending@demo.shop"}, ("find", "api_down"), status="failed", setup=outage("rest",)),
    # ---- change_address
    Case("address asked for", "change_address", {"email": "processing@demo.shop"}, ("ask_line1", "ask_city", "ask_postal_code", "ask_country", "update_address", "updated"), "Unter den Linden 5, 10117 Berlin, DE", answers=("Unter den Linden 5", "Berlin", "10117", "de")),
    Case("address changed", "change_address", {"email": "processing@demo.shop", **BERLIN}, ("check_address", "find", "update_address", "updated"), "Unter den Linden 5, 10117 Berlin, DE", {"updated": True, "outcome": "updated"}),
    Case("address unchanged", "change_address", {"email": "processing@demo.shop", **BERLIN}, ("find", "unchanged"), "nothing needed changing", {"updated": False, "outcome": "unchanged"}, setup=edit(lambda s: setattr(s.store.orders["ORD-1002"], "address", Address("Unter den Linden 5", "Berlin", "10117", "DE"),))),
    Case("address bad postal code", "change_address", {"email": "processing@demo.shop", **BERLIN, "postal_code": "1017"}, ("check_address", "invalid_address"), "doesn't look complete", {"outcome": "invalid_address"}),
    Case("address bad country", "change_address", {"email": "processing@demo.shop", **BERLIN, "country": "Germany"}, ("check_address", "invalid_address"), "two-letter country code"),
    Case("address bad US zip", "change_address", {"email": "processing@demo.shop", "line1": "1 Main St", "city": "Boston", "postal_code": "2110", "country": "US",}, ("check_address", "invalid_address"), "(5 digits)"),
    Case("address shipped", "change_address", {"email": "shipped@demo.shop", **BERLIN}, ("too_late",), "ask UPS to redirect", {"outcome": "too_late"}),
    Case("address delivered", "change_address", {"email": "delivered@demo.shop", **BERLIN}, ("too_late",), "been delivered"),
    Case("address cancelled", "change_address", {"email": "cancelled@demo.shop", **BERLIN}, ("cancelled",), "was cancelled", {"outcome": "cancelled"}),
    Case("address status unknown", "change_address", {"email": "erp-only@demo.shop", **BERLIN}, ("status_unknown",), outputs={"outcome": "unknown"}, setup=outage("erp",)),
    Case("address not found", "change_address", {"order_number": "ORD-4242", **BERLIN}, ("not_found",), outputs={"outcome": "not_found"}),
    Case("address shipped meanwhile", "change_address", {"email": "processing@demo.shop", **BERLIN}, ("update_address", "update_refused", "too_late"), outputs={"outcome": "too_late"}, setup=before("UpdateShippingAddress", ship("ORD-1002"))),
    Case("address answer lost", "change_address", {"email": "processing@demo.shop", **BERLIN}, ("update_address", "update_refused", "update_unknown"), "didn't confirm the change in time. Please don't send it again", {"updated": False, "outcome": "unknown"}, setup=LostAnswer("UpdateShippingAddress", "erp"), settle=0.6),
    Case("address ERP down", "change_address", {"email": "processing@demo.shop", **BERLIN}, ("update_address", "update_refused", "update_failed"), status="failed", setup=outage("erp",)),
    Case("address order API down", "change_address", {"email": "processing@demo.shop", **BERLIN}, ("find", "api_down"), status="failed", setup=outage("rest",)),
    # ---- return_label
    Case("label in the window", "return_label", {"email": "delivered@demo.shop"}, ("label", "label_ready"), "/labels/RL-1005-", {"outcome": "label", "label_carrier": "FedEx", "days_since_delivery": 5}),
    Case("label window closed", "return_label", {"email": "delivered-old@demo.shop"}, ("window_closed",), "45\ndays ago".replace("\n", " "), {"outcome": "window_closed"}),
    Case("label still shipping", "return_label", {"email": "shipped@demo.shop"}, ("not_delivered",), "still on its way with UPS", {"outcome": "not_delivered"}),
    Case("label not shipped", "return_label", {"email": "processing@demo.shop"}, ("not_delivered",), "I can cancel"),
    Case("label cancelled", "return_label", {"email": "cancelled@demo.shop"}, ("not_delivered",), "nothing to send back"),
    Case("label status unknown", "return_label", {"email": "erp-only@demo.shop"}, ("not_delivered",), "can't see the delivery", setup=outage("erp",)),
    Case("label not found", "return_label", {"email": "nobody@demo.shop"}, ("not_found",), outputs={"found": False}),
    Case("label undelivered meanwhile", "return_label", {"email": "delivered@demo.shop"}, ("label", "label_refused", "not_delivered"), setup=before("CreateReturnLabel", ship("ORD-1005"))),
    Case("label answer lost", "return_label", {"email": "delivered@demo.shop"}, ("label", "label_refused", "label_unknown"), "didn't answer in time, so I don't have the label yet", {"outcome": "unknown", "label_url": None}, setup=LostAnswer("CreateReturnLabel", "erp"), settle=0.6),
    Case("label ERP down", "return_label", {"email": "delivered@demo.shop"}, ("label", "label_refused", "label_failed"), "A teammate will", status="failed", setup=outage("erp",)),
    Case("label order API down", "return_label", {"email": "delivered@demo.shop"}, ("find", "api_down"), status="failed", setup=outage("rest",)),
    # ---- subscription_cancel (and find_subscription)
    Case("sub cancel over price", "subscription_cancel", {"email": "active@demo.shop", "reason": "Too expensive"}, ("find.by_email", "plans", "cancel", "cancelled"), "Basic Coffee Box is $19.00", {"cancelled": True, "subscription_status": "cancelled", "cancel_reason": "Too expensive", "outcome": "cancelled",}),
    Case("sub cancel moving", "subscription_cancel", {"subscription_id": "sub-2005", "email": "repeat@demo.shop", "reason": "Moving abroad"}, ("find.by_id", "cancel", "cancelled"), "Thanks for being with us, Emma", {"subscription_id": "SUB-2005"}),
    Case("sub cancel already", "subscription_cancel", {"email": "cancelled-sub@demo.shop", "reason": "x"}, ("already_cancelled",), "already cancelled", {"outcome": "already_cancelled"}),
    Case("sub cancel unknown email", "subscription_cancel", {"email": "nobody@demo.shop", "reason": "x"}, ("find.check", "find.not_found", "not_found"), outputs={"found": False}),
    Case("sub cancel no subscriptions", "subscription_cancel", {"email": "pending@demo.shop", "reason": "x"}, ("find.not_found", "not_found")),
    Case("sub cancel unknown id", "subscription_cancel", {"subscription_id": "SUB-9999", "reason": "x"}, ("find.by_id", "find.not_found", "not_found")),
    Case("sub cancel someone else's", "subscription_cancel", {"subscription_id": "SUB-2001", "email": "repeat@demo.shop", "reason": "x"}, ("find.by_id", "find.not_found", "not_found")),
    Case("sub cancel cancelled meanwhile", "subscription_cancel", {"email": "active@demo.shop", "reason": "x"}, ("cancel", "cancel_refused", "already_cancelled"), setup=before("mutation CancelSubscription", lambda s: s.store.cancel_subscription("SUB-2001", "by phone"),)),
    Case("sub cancel answer lost", "subscription_cancel", {"email": "active@demo.shop", "reason": "x"}, ("cancel", "cancel_refused", "cancel_unknown"), "didn't confirm", {"outcome": "unknown"}, setup=before("mutation CancelSubscription", lambda s: s.delays.update(graphql=0.6)), settle=0.6),
    Case("sub cancel API fails", "subscription_cancel", {"email": "active@demo.shop", "reason": "x"}, ("cancel", "cancel_refused", "cancel_failed"), status="failed", setup=before("mutation CancelSubscription", lambda s: s.down.add("graphql",))),
    Case("sub cancel API down", "subscription_cancel", {"email": "active@demo.shop", "reason": "x"}, ("find", "api_down"), "subscription system", status="failed", setup=outage("graphql",)),
    Case("sub cancel no details", "subscription_cancel", {"reason": "x"}, ("find", "find.ask_email"), "What's the email address", status="waiting"),
    Case("sub cancel asks why", "subscription_cancel", {"email": "active@demo.shop"}, ("ask_reason", "find", "cancel"), answers=("it's too expensive",)),
    Case("sub no email thrice", "subscription_refund", {}, ("find.ask_email", "find.not_identified"), "find your subscription with you", status="handoff", answers=("no", "nope", "none")),
    # ---- subscription_pause
    Case("pause asks until when", "subscription_pause", {"email": "repeat@demo.shop"}, ("ask_until", "pause", "paused"), "paused until", answers=(f"until {in_days(21)} please",)),
    Case("pause asked again for a date", "subscription_pause", {"email": "repeat@demo.shop"}, ("ask_until", "pause", "paused"), "paused until", answers=("whenever suits", f"{in_days(21)}")),
    Case("pause", "subscription_pause", {"email": "repeat@demo.shop", "until": in_days(21)}, ("pause", "paused"), "paused until", {"paused_until": dt.date.fromisoformat(in_days(21)), "subscription_status": "paused"}),
    Case("pause already paused", "subscription_pause", {"email": "paused@demo.shop", "until": in_days(30)}, ("already_paused",), "already paused until"),
    Case("pause cancelled", "subscription_pause", {"email": "cancelled-sub@demo.shop", "until": in_days(30)}, ("cancelled",), "nothing to pause"),
    Case("pause today", "subscription_pause", {"email": "repeat@demo.shop", "until": in_days(0)}, ("invalid_date",), "has to end after today"),
    Case("pause too long", "subscription_pause", {"email": "repeat@demo.shop", "until": in_days(120)}, ("too_long",), "120 days away"),
    Case("pause not found", "subscription_pause", {"email": "nobody@demo.shop", "until": in_days(10)}, ("not_found",)),
    Case("pause paused meanwhile", "subscription_pause", {"email": "repeat@demo.shop", "until": in_days(21)}, ("pause", "pause_refused", "already_paused"), setup=before("mutation Pause", lambda s: s.store.pause_subscription("SUB-2005", TODAY + dt.timedelta(days=7)),)),
    Case("pause answer lost", "subscription_pause", {"email": "repeat@demo.shop", "until": in_days(21)}, ("pause", "pause_refused", "pause_unknown"), "didn't confirm it in time. Please don't ask again", {"outcome": "unknown", "paused_until": None}, setup=LostAnswer("mutation Pause", "graphql"), settle=0.6),
    Case("pause API fails", "subscription_pause", {"email": "repeat@demo.shop", "until": in_days(21)}, ("pause", "pause_refused", "pause_failed"), status="failed", setup=before("mutation Pause", lambda s: s.down.add("graphql",))),
    Case("pause API down", "subscription_pause", {"email": "repeat@demo.shop", "until": in_days(21)}, ("find", "api_down"), status="failed", setup=outage("graphql",)),
    # ---- subscription_change_plan
    Case("plan asks which", "subscription_change_plan", {"email": "paused@demo.shop"}, ("ask_plan", "change_plan", "changed"), "Upgraded!", answers=("the premium one",)),
    Case("plan upgrade", "subscription_change_plan", {"email": "paused@demo.shop", "plan": "Premium Coffee Box"}, ("plans", "change_plan", "changed"), "Upgraded!", {"change": "upgrade", "plan_id": "premium", "previous_plan": "Basic Coffee Box", "price": 49.0,}),
    Case("plan downgrade", "subscription_change_plan", {"email": "refunded@demo.shop", "plan": "basic plan"}, ("change_plan", "changed"), "You'll pay less", {"change": "downgrade", "plan_id": "basic"}),
    Case("plan same", "subscription_change_plan", {"email": "active@demo.shop", "plan": "Standard"}, ("plans", "same_plan"), "already on Standard Coffee Box", {"outcome": "same_plan"}),
    Case("plan unknown", "subscription_change_plan", {"email": "active@demo.shop", "plan": "gold"}, ("plans", "unknown_plan"), "Premium Coffee Box ($49.00 every 30 days)", {"outcome": "unknown_plan"}),
    Case("plan cancelled", "subscription_change_plan", {"email": "cancelled-sub@demo.shop", "plan": "basic"}, ("cancelled",), "can't change"),
    Case("plan not found", "subscription_change_plan", {"email": "nobody@demo.shop", "plan": "basic"}, ("not_found",)),
    Case("plan changed meanwhile", "subscription_change_plan", {"email": "paused@demo.shop", "plan": "premium"}, ("change_plan", "change_refused", "same_plan"), "already on Premium", setup=before("mutation ChangePlan", lambda s: s.store.change_plan("SUB-2002", "premium"))),
    Case("plan answer lost", "subscription_change_plan", {"email": "paused@demo.shop", "plan": "premium"}, ("change_plan", "change_refused", "change_unknown"), "from Basic Coffee Box to Premium Coffee Box, but the subscription system didn't confirm it in time", {"outcome": "unknown", "change": None}, setup=LostAnswer("mutation ChangePlan", "graphql"), settle=0.6),
    Case("plan API fails", "subscription_change_plan", {"email": "paused@demo.shop", "plan": "premium"}, ("change_plan", "change_refused", "change_failed"), status="failed", setup=before("mutation ChangePlan", lambda s: s.down.add("graphql",))),
    Case("plan list fails", "subscription_change_plan", {"email": "paused@demo.shop", "plan": "premium"}, ("plans", "api_down"), status="failed", setup=before("query Plans", lambda s: s.down.add("graphql",))),
    Case("plan API down", "subscription_change_plan", {"email": "paused@demo.shop", "plan": "premium"}, ("find", "api_down"), status="failed", setup=outage("graphql",)),
    # ---- subscription_refund
    Case("refund", "subscription_refund", {"email": "active@demo.shop"}, ("refund", "refunded"), "refunded your last Standard Coffee Box charge of $29.00", {"refund_amount": 29.0, "charge_id": "CH-5001", "outcome": "refunded"}),
    Case("refund by id", "subscription_refund", {"subscription_id": "SUB-2005"}, ("find.by_id", "refund", "refunded"), "$19.00"),
    Case("refund twice", "subscription_refund", {"email": "refunded@demo.shop"}, ("already_refunded",), "already refunded on", {"outcome": "already_refunded"}),
    Case("refund too old", "subscription_refund", {"email": "cancelled-sub@demo.shop"}, ("too_old",), "more than 30 days old", status="handoff"),
    Case("refund over the limit", "subscription_refund", {}, ("find.ask_email", "over_limit"), "Refunds of that size are checked", status="handoff", answers=("premium@demo.shop",)),
    Case("refund no charge", "subscription_refund", {"email": "repeat@demo.shop"}, ("no_charge",), "no charge", {"outcome": "no_charge"}, setup=edit(lambda s: setattr(s.store.subscriptions["SUB-2005"], "last_charge", None))),
    Case("refund not found", "subscription_refund", {"email": "nobody@demo.shop"}, ("not_found",)),
    Case("refund refunded meanwhile", "subscription_refund", {"email": "active@demo.shop"}, ("refund", "refund_refused", "already_refunded"), setup=before("mutation Refund", lambda s: s.store.refund_last_charge("SUB-2001"))),
    Case("refund answer lost", "subscription_refund", {"email": "active@demo.shop"}, ("refund", "refund_refused", "refund_unknown"), "charge of $29.00, but the subscription system didn't confirm it in time. Please don't ask for it again", {"outcome": "unknown", "charge_id": "CH-5001", "refund_id": None}, setup=LostAnswer("mutation Refund", "graphql"), settle=0.6),
    Case("refund API fails", "subscription_refund", {"email": "active@demo.shop"}, ("refund", "refund_refused", "refund_failed"), status="handoff", setup=before("mutation Refund", lambda s: s.down.add("graphql",))),
    Case("refund API down", "subscription_refund", {"email": "active@demo.shop"}, ("find", "api_down"), status="failed", setup=outage("graphql",)),
]
# fmt: on

# -------------------------------------------------------------------------- running them


@pytest.fixture(scope="module")
def shop() -> Iterator[DemoShop]:
    with DemoShop() as running:  # this module's own: its writes never reach other tests
        yield running


@pytest.fixture(scope="module")
def project(shop: DemoShop) -> Project:
    env = {**os.environ, **shop.env(), "DEMO_ERP_TIMEOUT": TIMEOUT, "DEMO_SUBS_TIMEOUT": TIMEOUT}
    return Project.load(os.path.join(ROOT, "flows"), environ=env)


RESULTS: dict[str, RunResult] = {}
TURNS: dict[str, list[RunResult]] = {}  # a conversation's every turn, as coverage reads them


async def converse(shop: DemoShop, project: Project, case: Case) -> RunResult:
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {shop.token}"}) as admin:
        (await admin.post(f"{shop.base_url}/_admin/reset")).raise_for_status()
    state = shop.app.state.shop
    setup = case.setup(state, project) if case.setup is not None else contextlib.nullcontext()
    with setup:
        try:
            if case.answers:
                result = await _talk(project, case)
            else:
                result = await project.run(case.flow, case.inputs)
        finally:
            await project.connections.aclose_loop()  # this test's loop ends with the test
    if case.settle:
        await asyncio.sleep(case.settle)  # let the delayed requests end before a reset
    RESULTS[case.name] = result
    return result


async def _talk(project: Project, case: Case) -> RunResult:
    """The case as a conversation: started with its inputs, then each answer a turn."""
    conversation = f"e2e-{case.name.replace(' ', '-').replace(',', '')}-{os.getpid()}"
    result = await project.say(conversation, "hello", flow=case.flow, context=case.inputs)
    TURNS[case.name] = [result]
    steps = list(result.steps)
    for answer in case.answers:
        assert result.status == "waiting", (case.name, result.status, result.reply)
        result = await project.say(conversation, answer)
        TURNS[case.name].append(result)
        steps += result.steps
    result.steps = steps
    return result


def in_order(path: list[str], wanted: tuple[str, ...]) -> bool:
    it = iter(path)
    return all(step in it for step in wanted)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_conversation(shop, project, case: Case):
    result = await converse(shop, project, case)
    assert result.status == case.status, (result.error, result.path)
    assert in_order(result.path, case.path), result.path
    assert case.reply in (result.reply or ""), result.reply
    for key, value in case.outputs.items():
        assert result.outputs[key] == value, (key, result.outputs)
    assert result.reply, "every conversation answers the customer"
    assert "erp-secret" not in result.to_json() and "subs-key" not in result.to_json()


async def test_every_branch_is_reached(shop, project):
    """The table reaches every branch of every shipped intent flow: switch branches, on_error
    targets, asks answered and asked again, handoffs."""
    for case in CASES:
        if case.name not in RESULTS:  # run alone (-k): the table is run here
            await converse(shop, project, case)
    went = taken(
        type("Outcome", (), {"result": r, "results": TURNS.get(name)})()
        for name, r in RESULTS.items()
    )
    missing = [
        f"{name}: {label}"
        for name in FLOWS
        for src, dst, label in branches(project.flows[name])
        if (name, src, dst) not in went
    ]
    assert missing == []


# -------------------------------------------------------------------------- what the writes did


async def test_a_cancel_shows_in_the_order_api(shop, project):
    result = await converse(shop, project, CASES[[c.name for c in CASES].index("cancel pending")])
    assert result.outputs["cancelled"] is True
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {shop.token}"}) as api:
        order = (await api.get(f"{shop.rest_url}/orders/ORD-1001")).json()
    assert order["status"] == "CNL" and order["cancel_reason"] == "wrong size"
    step = next(s for s in result.steps if s.id == "cancel")
    assert step.action == "soap" and step.status == 200 and step.outcome == "done"


async def test_a_new_address_shows_in_the_order_api(shop, project):
    await converse(shop, project, CASES[[c.name for c in CASES].index("address changed")])
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {shop.token}"}) as api:
        order = (await api.get(f"{shop.rest_url}/orders/ORD-1002")).json()
    assert order["shipping_address"]["city"] == "Berlin"
    assert order["shipping_address"]["country"] == "DE"


async def test_the_label_url_in_the_reply_serves_the_label(shop, project):
    result = await converse(
        shop, project, CASES[[c.name for c in CASES].index("label in the window")]
    )
    url = result.outputs["label_url"]
    assert url in result.reply
    async with httpx.AsyncClient() as client:
        pdf = await client.get(url)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


async def test_a_lost_cancel_answer_is_retried_with_its_key_then_unknown(shop, project):
    result = RESULTS.get("cancel answer lost") or await converse(
        shop, project, CASES[[c.name for c in CASES].index("cancel answer lost")]
    )
    step = next(s for s in result.steps if s.id == "cancel")
    assert step.error["kind"] == "timeout" and step.outcome == "unknown"
    assert step.attempts == 2  # the step's idempotency_key allows the retry


# Each write whose answer is lost: (case, step id, its idempotency key). The step's `retry`
# allows 2 attempts in all, the second only because the key makes it safe.
LOST = [
    ("address answer lost", "update_address", "address-ORD-1002-10117-unter den linden 5"),
    ("label answer lost", "label", "return-label-ORD-1005"),
    ("pause answer lost", "pause", f"subscription-pause-SUB-2005-{in_days(21)}"),
    ("plan answer lost", "change_plan", "subscription-plan-SUB-2002-premium"),
    ("refund answer lost", "refund", "refund-CH-5001"),
]


@pytest.mark.parametrize(("name", "step_id", "key"), LOST, ids=[n for n, _, _ in LOST])
async def test_a_lost_write_answer_is_unknown_and_sent_at_most_twice(
    shop, project, name, step_id, key
):
    case = CASES[[c.name for c in CASES].index(name)]
    assert isinstance(case.setup, LostAnswer)
    result = await converse(shop, project, case)
    step = next(s for s in result.steps if s.id == step_id)
    assert step.error["kind"] == "timeout" and step.outcome == "unknown", step
    assert result.status == "completed" and result.outputs["outcome"] == "unknown"
    assert step.attempts == 2  # the idempotency_key allows one retry, and no more
    # What reached Demo Shop: as many writes as the step records, each with the same key.
    assert case.setup.keys == [key] * step.attempts
    assert "couldn't" not in result.reply and "Done" not in result.reply, result.reply
