"""Custom actions of the shipped project: the example for integrators (spec §10).

Every ``.py`` file in a project's ``actions/`` is imported at load, and each function tagged
with ``@action`` becomes a step's ``call:``. ``with:`` keys are checked against the signature
at load; values are converted to the annotated types when the step runs.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from csflow import action


@action("shop.customer_summary")
async def customer_summary(email: str, *, ctx: Any) -> dict[str, Any]:
    """How many orders a customer placed and what they spent, from the shop's REST API.

    ``ctx.http("shop")`` is the connection's httpx client: its base URL, auth, timeouts and
    redaction come with it, and a flow test's mocks answer it like any other call.
    """
    client = ctx.http("shop")
    response = await client.get("/orders", params={"email": email.strip().lower()})
    response.raise_for_status()  # an exception fails the step with kind `action`
    orders = response.json()
    spent: dict[str, float] = {}
    for order in orders:
        spent[order["currency"]] = round(spent.get(order["currency"], 0.0) + order["total"], 2)
    return {
        "orders": len(orders),
        "spent": spent,
        "first_order": min((o["created_at"] for o in orders), default=None),
    }


@action("calendar.add_business_days")
def add_business_days(start: str, days: int = 1) -> dict[str, str]:
    """The date ``days`` business days after ``start`` (Monday to Friday).

    A plain function runs in a worker thread; ``days: 3`` or ``days: "3"`` both arrive as 3.
    """
    day = dt.date.fromisoformat(str(start)[:10])
    left = days
    while left > 0:
        day += dt.timedelta(days=1)
        if day.weekday() < 5:
            left -= 1
    return {"date": day.isoformat()}
