"""The merchant's state for one server instance: lookups, indexes and business rules.

Handlers stay thin: they parse their protocol, call one method here, and render the result
or the `ShopError`. All mutations run on the server's event loop without awaiting in the
middle, so no lock is needed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from csflow.demo.data import build_seed
from csflow.demo.models import (
    Address,
    Charge,
    Customer,
    Order,
    Plan,
    Refund,
    ReturnLabel,
    Shipment,
    ShopError,
    Subscription,
)

_NON_DIGITS = re.compile(r"\D")
PHONE_DIGITS = 7  # seed 000: compare the last 7 digits after stripping everything else
MAX_PAUSE_DAYS = 90
RETURN_LABEL_DAYS = 14


def phone_key(raw: str) -> str:
    return _NON_DIGITS.sub("", raw)[-PHONE_DIGITS:]


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class Store:
    def __init__(self, now: datetime, clock: Callable[[], datetime] = utcnow) -> None:
        seed = build_seed(now)
        self.seeded_at = seed.now
        self.clock = clock
        self.customers: dict[str, Customer] = {c.email.lower(): c for c in seed.customers}
        self.orders: dict[str, Order] = {o.number.upper(): o for o in seed.orders}
        self.plans: dict[str, Plan] = {p.id: p for p in seed.plans}
        self.subscriptions: dict[str, Subscription] = {s.id: s for s in seed.subscriptions}
        # Indexes over fields that no operation changes, built once.
        self._by_email: dict[str, list[Order]] = {}
        self._by_phone: dict[str, list[Order]] = {}
        self._by_ref: dict[str, list[Order]] = {}
        self._tracking: dict[str, Shipment] = {}
        for o in seed.orders:
            self._by_email.setdefault(o.customer.email.lower(), []).append(o)
            self._by_phone.setdefault(phone_key(o.phone), []).append(o)
            self._by_ref.setdefault(o.ref.upper(), []).append(o)
            for s in o.shipments:
                if s.tracking_number:
                    self._tracking[s.tracking_number.upper()] = s
        self._label_seq = 0
        self._refund_seq = 0

    # -- orders ------------------------------------------------------------------------

    def find_orders(
        self,
        *,
        email: str | None = None,
        phone: str | None = None,
        ref: str | None = None,
        number: str | None = None,
    ) -> list[Order]:
        """Orders matching every given filter (AND), oldest first like the merchant's DB."""
        candidates: list[list[Order]] = []
        if email is not None:
            candidates.append(self._by_email.get(email.strip().lower(), []))
        if phone is not None:
            key = phone_key(phone)
            # Fewer than 7 digits cannot be a phone number: nothing matches.
            candidates.append(self._by_phone.get(key, []) if len(key) == PHONE_DIGITS else [])
        if ref is not None:
            candidates.append(self._by_ref.get(ref.strip().upper(), []))
        if number is not None:
            found = self.orders.get(number.strip().upper())
            candidates.append([found] if found else [])
        if not candidates:
            return []
        first, *rest = candidates
        # Identity, not ==: dataclass equality would compare whole orders field by field.
        rest_ids = [{id(o) for o in other} for other in rest]
        keep = [o for o in first if all(id(o) in ids for ids in rest_ids)]
        return sorted(keep, key=lambda o: o.number)

    def order(self, number: str) -> Order:
        found = self.orders.get(number.strip().upper())
        if found is None:
            raise ShopError("ORDER_NOT_FOUND", f"Order {number} not found")
        return found

    def shipment(self, tracking_number: str) -> Shipment | None:
        return self._tracking.get(tracking_number.strip().upper())

    def update_address(self, number: str, address: Address) -> Order:
        order = self.order(number)
        if order.status == "cancelled":
            raise ShopError("ORDER_CANCELLED", f"Order {order.number} is cancelled")
        if order.status in ("shipped", "delivered") or any(s.shipped for s in order.shipments):
            raise ShopError(
                "ORDER_SHIPPED",
                f"Order {order.number} has already shipped; the address can no longer change",
            )
        for name in ("line1", "city", "postal_code", "country"):
            if not getattr(address, name).strip():
                raise ShopError("INVALID_ADDRESS", f"Address field {name} is required")
        order.address = address
        order.updated_at = self.clock()
        return order

    def cancel_order(self, number: str, reason: str) -> Order:
        order = self.order(number)
        if order.status == "cancelled":
            raise ShopError("ALREADY_CANCELLED", f"Order {order.number} is already cancelled")
        if order.status in ("shipped", "delivered"):
            raise ShopError(
                "ORDER_SHIPPED", f"Order {order.number} has already shipped and cannot be cancelled"
            )
        now = self.clock()
        order.status = "cancelled"
        order.cancelled_at = order.updated_at = now
        order.cancel_reason = reason or None
        order.expected_delivery = None
        return order

    def return_label(self, number: str) -> ReturnLabel:
        """The order's return label; asking twice returns the same label while it is valid.

        The 30-day return window is a business rule for flows to apply, not the ERP's:
        the ERP issues a label for any delivered order.
        """
        order = self.order(number)
        if order.status != "delivered":
            raise ShopError(
                "NOT_DELIVERED",
                f"Order {order.number} has not been delivered; no return label can be created",
            )
        now = self.clock()
        label = order.return_label
        if label is None or label.expires_at <= now:
            self._label_seq += 1
            carrier = order.shipments[-1].carrier if order.shipments else "UPS"
            label = ReturnLabel(
                id=f"RL-{order.number[-4:]}-{self._label_seq:03d}",
                order_number=order.number,
                carrier=carrier,
                created_at=now,
                expires_at=now + timedelta(days=RETURN_LABEL_DAYS),
            )
            order.return_label = label
        return label

    def label(self, label_id: str) -> ReturnLabel | None:
        for order in self.orders.values():
            if order.return_label is not None and order.return_label.id == label_id:
                return order.return_label
        return None

    # -- subscriptions -----------------------------------------------------------------

    def customer(self, email: str) -> Customer | None:
        return self.customers.get(email.strip().lower())

    def subscriptions_of(self, customer: Customer) -> list[Subscription]:
        return [s for s in self.subscriptions.values() if s.customer is customer]

    def _subscription(self, sid: str) -> Subscription:
        found = self.subscriptions.get(sid.strip().upper())
        if found is None:
            raise ShopError("NOT_FOUND", f"Subscription {sid} not found")
        return found

    def cancel_subscription(self, sid: str, reason: str | None) -> Subscription:
        s = self._subscription(sid)
        if s.status == "CANCELLED":
            raise ShopError("ALREADY_CANCELLED", f"Subscription {s.id} is already cancelled")
        s.status = "CANCELLED"
        s.cancelled_at = self.clock()
        s.cancel_reason = reason or None
        s.next_order_date = s.paused_until = None
        return s

    def pause_subscription(self, sid: str, until: date) -> Subscription:
        s = self._subscription(sid)
        if s.status != "ACTIVE":
            raise ShopError("NOT_ACTIVE", f"Subscription {s.id} is {s.status}, not ACTIVE")
        today = self.clock().date()
        if until <= today:
            raise ShopError("INVALID_DATE", "The pause must end after today")
        if until > today + timedelta(days=MAX_PAUSE_DAYS):
            raise ShopError("PAUSE_TOO_LONG", f"A pause cannot exceed {MAX_PAUSE_DAYS} days")
        s.status = "PAUSED"
        s.paused_until = s.next_order_date = until  # deliveries restart on that day
        return s

    def resume_subscription(self, sid: str) -> Subscription:
        s = self._subscription(sid)
        if s.status != "PAUSED":
            raise ShopError("NOT_PAUSED", f"Subscription {s.id} is {s.status}, not PAUSED")
        s.status = "ACTIVE"
        s.paused_until = None
        s.next_order_date = self.clock().date() + timedelta(days=s.plan.frequency.interval)
        return s

    def change_plan(self, sid: str, plan_id: str) -> Subscription:
        s = self._subscription(sid)
        plan = self.plans.get(plan_id.strip().lower())
        if plan is None:
            raise ShopError("UNKNOWN_PLAN", f"Plan {plan_id} does not exist")
        if s.status == "CANCELLED":
            raise ShopError("ALREADY_CANCELLED", f"Subscription {s.id} is cancelled")
        if plan is s.plan:
            raise ShopError("SAME_PLAN", f"Subscription {s.id} is already on plan {plan.id}")
        s.plan = plan
        s.items = list(plan.items)
        return s

    def refund_last_charge(self, sid: str) -> Refund:
        s = self._subscription(sid)
        charge: Charge | None = s.last_charge
        if charge is None:
            raise ShopError("NO_CHARGE", f"Subscription {s.id} has no charge to refund")
        if charge.refunded:
            raise ShopError(
                "ALREADY_REFUNDED", f"Charge {charge.id} of subscription {s.id} is already refunded"
            )
        now = self.clock()
        charge.refunded, charge.refunded_at = True, now
        self._refund_seq += 1
        return Refund(f"RF-{self._refund_seq:04d}", charge.amount, charge.currency, now, charge, s)
