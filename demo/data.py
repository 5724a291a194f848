"""The seeded data set: one customer per case, dates relative to the server's start.

Every date is computed from `now` so that "delivered 5 days ago, inside the 30-day return
window" stays true on whatever day the demo runs. The emails and order numbers are fixed
and documented in demo/README.md: flows and tests rely on them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from csflow.demo.models import (
    Address,
    Charge,
    Customer,
    Frequency,
    Line,
    Order,
    OrderStatus,
    Plan,
    Shipment,
    Subscription,
    SubscriptionItem,
    SubscriptionStatus,
    TrackingEvent,
)

US_WAREHOUSE = "Reno, NV, US"
EU_WAREHOUSE = "Venlo, NL"


@dataclass(slots=True)
class Seed:
    now: datetime
    customers: list[Customer] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)
    plans: list[Plan] = field(default_factory=list)
    subscriptions: list[Subscription] = field(default_factory=list)


class _Clock:
    """Turns "N days ago" into timestamps anchored at the seed's `now`."""

    def __init__(self, now: datetime) -> None:
        self.now = now.replace(microsecond=0)

    def ago(self, days: float, hours: float = 0) -> datetime:
        return self.now - timedelta(days=days, hours=hours)

    def in_days(self, days: int) -> date:
        return (self.now + timedelta(days=days)).date()


def _events(s: Shipment, warehouse: str, hub: str, city: str, now: datetime) -> list[TrackingEvent]:
    """A carrier-like history, newest first, never showing an event in the future."""
    assert s.shipped_at is not None
    at = s.shipped_at
    events = [
        TrackingEvent(
            at - timedelta(hours=6), "label_created", warehouse, "Shipping label created"
        ),
        TrackingEvent(at, "picked_up", warehouse, f"Picked up by {s.carrier}"),
        TrackingEvent(at + timedelta(hours=14), "in_transit", hub, "Arrived at sort facility"),
        TrackingEvent(at + timedelta(hours=20), "in_transit", hub, "Departed sort facility"),
    ]
    if s.delivered_at is not None:
        events += [
            TrackingEvent(
                s.delivered_at - timedelta(hours=5), "out_for_delivery", city, "Out for delivery"
            ),
            TrackingEvent(s.delivered_at, "delivered", city, "Delivered, left at front door"),
        ]
    return sorted((e for e in events if e.at <= now), key=lambda e: e.at, reverse=True)


def _parcel(
    order: Order,
    n: int,
    carrier: str,
    tracking: str | None,
    skus: list[str],
    clock: _Clock,
    *,
    shipped_days_ago: float | None = None,
    delivered_days_ago: float | None = None,
    hub: str = "",
) -> Shipment:
    shipped_at = clock.ago(shipped_days_ago) if shipped_days_ago is not None else None
    delivered_at = clock.ago(delivered_days_ago) if delivered_days_ago is not None else None
    if shipped_at is None:
        status = "preparing"
    elif delivered_at is not None:
        status = "delivered"
    else:
        status = "in_transit"
    s = Shipment(
        id=f"{order.number}-P{n}",
        carrier=carrier,
        tracking_number=tracking,
        status=status,
        skus=skus,
        shipped_at=shipped_at,
        delivered_at=delivered_at,
        eta=order.expected_delivery if status == "in_transit" else None,
        order_number=order.number,
    )
    if shipped_at is not None:
        warehouse = US_WAREHOUSE if order.currency == "USD" else EU_WAREHOUSE
        s.events = _events(s, warehouse, hub or order.address.city, order.address.city, clock.now)
    order.shipments.append(s)
    return s


def _order(
    number: str,
    customer: Customer,
    status: OrderStatus,
    created_days_ago: float,
    lines: list[tuple[str, str, int, float]],
    currency: str,
    address: Address,
    clock: _Clock,
    *,
    expected_in_days: int | None,
    phone: str | None = None,
    updated_days_ago: float | None = None,
) -> Order:
    created = clock.ago(created_days_ago)
    return Order(
        number=number,
        customer=customer,
        phone=phone or customer.phone,
        status=status,
        created_at=created,
        updated_at=clock.ago(updated_days_ago) if updated_days_ago is not None else created,
        expected_delivery=clock.in_days(expected_in_days) if expected_in_days is not None else None,
        ref=f"SF-88{number[-3:]}",
        lines=[Line(sku, name, qty, price) for sku, name, qty, price in lines],
        currency=currency,
        address=address,
    )


def _customers() -> dict[str, Customer]:
    rows = [
        ("pending@demo.shop", "Olivia Bennett", "+1 (415) 867-5309"),
        ("processing@demo.shop", "Lukas Schneider", "+49 151 2345 6789"),
        ("shipped@demo.shop", "Jane Doe", "4151234567"),
        ("partial@demo.shop", "Amélie Laurent", "+33 6 12 34 56 78"),
        ("delivered@demo.shop", "Marcus Johnson", "(212) 555-0147"),
        ("delivered-old@demo.shop", "Sofia Rossi", "+39 347 765 4321"),
        ("cancelled@demo.shop", "Hannah Weber", "+43 664 123 9876"),
        ("erp-only@demo.shop", "Kenji Tanaka", "+1-206-555-0199"),
        ("repeat@demo.shop", "Emma Wilson", "+353 86 555 0123"),
        ("multiparcel@demo.shop", "Liam O'Connor", "+1 312 555 0188"),
        ("active@demo.shop", "Noah Fischer", "+49 160 9876 5432"),
        ("paused@demo.shop", "Mia Kowalski", "+48 601 482 905"),
        ("cancelled-sub@demo.shop", "Ethan Brooks", "+1 617 555 0133"),
        ("refunded@demo.shop", "Ava Martinez", "+34 612 908 771"),
        ("premium@demo.shop", "Oscar Lindqvist", "+46 70 864 29 31"),
    ]
    return {
        email: Customer(f"CUS-{i:03d}", email, name, phone)
        for i, (email, name, phone) in enumerate(rows, start=1)
    }


def _orders(c: dict[str, Customer], k: _Clock) -> list[Order]:
    sf = Address("123 Main Street", "San Francisco", "94103", "US")
    orders: list[Order] = []

    o = _order("ORD-1001", c["pending@demo.shop"], "pending", 0.125,
               [("AUD-EB-200", "Wireless Earbuds Pro", 1, 59.99),
                ("AUD-TIP-10", "Silicone Ear Tips", 2, 9.50)],
               "USD", sf, k, expected_in_days=6)  # fmt: skip
    orders.append(o)

    o = _order("ORD-1002", c["processing@demo.shop"], "processing", 1.2,
               [("KIT-ESP-01", "Espresso Machine Barista One", 1, 349.00)],
               "EUR", Address("Torstraße 112", "Berlin", "10119", "DE"), k,
               expected_in_days=4, updated_days_ago=0.5)  # fmt: skip
    orders.append(o)

    o = _order("ORD-1003", c["shipped@demo.shop"], "shipped", 4,
               [("SHO-TRL-42", "Trail Running Shoes", 1, 129.00),
                ("SOC-MER-02", "Merino Socks", 2, 14.50)],
               "USD", Address("500 Howard Street", "San Francisco", "94105", "US", "Apt 4B"), k,
               expected_in_days=2, updated_days_ago=2)  # fmt: skip
    _parcel(o, 1, "UPS", "1Z999AA10123456784", ["SHO-TRL-42", "SOC-MER-02"], k,
            shipped_days_ago=2, hub="Oakland, CA, US")  # fmt: skip
    orders.append(o)

    # Partly shipped: parcel 1 is on its way, parcel 2 is still being packed, and the
    # blanket is backordered (in no parcel at all).
    o = _order("ORD-1004", c["partial@demo.shop"], "shipped", 6,
               [("HOM-DUV-220", "Linen Duvet Cover", 1, 89.00),
                ("HOM-PIL-050", "Linen Pillowcases", 2, 24.00),
                ("HOM-BLK-075", "Weighted Blanket", 1, 119.00)],
               "EUR", Address("18 Rue de Rivoli", "Paris", "75004", "FR"), k,
               expected_in_days=3, updated_days_ago=2)  # fmt: skip
    _parcel(o, 1, "DHL", "00340434161234567890", ["HOM-DUV-220"], k,
            shipped_days_ago=2, hub="Roissy-en-France, FR")  # fmt: skip
    _parcel(o, 2, "DHL", None, ["HOM-PIL-050"], k)
    orders.append(o)

    o = _order("ORD-1005", c["delivered@demo.shop"], "delivered", 12,
               [("AUD-HP-700", "Noise-Cancelling Headphones", 1, 249.99)],
               "USD", Address("350 5th Avenue", "New York", "10118", "US"), k,
               expected_in_days=-5, updated_days_ago=5)  # fmt: skip
    _parcel(o, 1, "FedEx", "781234567890", ["AUD-HP-700"], k,
            shipped_days_ago=10, delivered_days_ago=5, hub="Newark, NJ, US")  # fmt: skip
    orders.append(o)

    o = _order("ORD-1006", c["delivered-old@demo.shop"], "delivered", 52,
               [("BAG-WKD-01", "Leather Weekender Bag", 1, 189.00)],
               "EUR", Address("Via Roma 24", "Milano", "20121", "IT"), k,
               expected_in_days=-45, updated_days_ago=45)  # fmt: skip
    _parcel(o, 1, "GLS", "ZX48392017", ["BAG-WKD-01"], k,
            shipped_days_ago=50, delivered_days_ago=45, hub="Piacenza, IT")  # fmt: skip
    orders.append(o)

    o = _order("ORD-1007", c["cancelled@demo.shop"], "cancelled", 3,
               [("WAT-SMT-05", "Smart Watch Series 5", 1, 299.00)],
               "EUR", Address("Mariahilfer Straße 77", "Wien", "1060", "AT"), k,
               expected_in_days=None, updated_days_ago=2)  # fmt: skip
    o.cancelled_at, o.cancel_reason = k.ago(2), "Customer changed their mind"
    orders.append(o)

    # ERP-only: the REST record has no status and no parcels; the ERP knows it is in transit.
    o = _order("ORD-1008", c["erp-only@demo.shop"], "shipped", 5,
               [("KIT-SKL-12", "Cast Iron Skillet", 1, 45.00),
                ("KIT-KNF-08", "Chef's Knife", 1, 89.00)],
               "USD", Address("1201 3rd Avenue", "Seattle", "98101", "US"), k,
               expected_in_days=2, updated_days_ago=3)  # fmt: skip
    o.erp_only = True
    _parcel(o, 1, "USPS", "9400111899223100012345", ["KIT-SKL-12", "KIT-KNF-08"], k,
            shipped_days_ago=3, hub="Kent, WA, US")  # fmt: skip
    orders.append(o)

    # One customer, three orders, the phone typed two ways: "most recent" must be computed.
    emma = c["repeat@demo.shop"]
    dublin = Address("27 Baggot Street Lower", "Dublin", "D02 X285", "IE")
    o = _order("ORD-1009", emma, "delivered", 95, [("FIT-YOG-01", "Yoga Mat", 1, 39.00)],
               "EUR", dublin, k, expected_in_days=-88, updated_days_ago=88)  # fmt: skip
    _parcel(o, 1, "DPD", "15501234567890", ["FIT-YOG-01"], k,
            shipped_days_ago=91, delivered_days_ago=88, hub="Athlone, IE")  # fmt: skip
    orders.append(o)
    o = _order("ORD-1010", emma, "delivered", 20,
               [("FIT-ROL-02", "Foam Roller", 1, 25.00),
                ("FIT-BND-03", "Resistance Bands Set", 1, 19.00)],
               "EUR", dublin, k, expected_in_days=-14, phone="086 555 0123",
               updated_days_ago=14)  # fmt: skip
    _parcel(o, 1, "DPD", "15501234567891", ["FIT-ROL-02", "FIT-BND-03"], k,
            shipped_days_ago=17, delivered_days_ago=14, hub="Athlone, IE")  # fmt: skip
    orders.append(o)
    o = _order("ORD-1011", emma, "shipped", 3, [("APP-JKT-09", "Running Jacket", 1, 110.00)],
               "EUR", dublin, k, expected_in_days=1, updated_days_ago=1)  # fmt: skip
    _parcel(o, 1, "An Post", "CE123456789IE", ["APP-JKT-09"], k,
            shipped_days_ago=1, hub="Dublin Mail Centre, IE")  # fmt: skip
    orders.append(o)

    # Several parcels, all shipped: one already delivered, one still on the road.
    o = _order("ORD-1012", c["multiparcel@demo.shop"], "shipped", 7,
               [("OFF-DSK-FR", "Standing Desk Frame", 1, 399.00),
                ("OFF-DSK-TP", "Oak Desk Top", 1, 199.00),
                ("OFF-CBL-TR", "Cable Tray", 1, 29.00)],
               "USD", Address("233 S Wacker Drive", "Chicago", "60606", "US", "Suite 4100"), k,
               expected_in_days=2, updated_days_ago=1)  # fmt: skip
    _parcel(o, 1, "UPS", "1Z999AA10123456785", ["OFF-DSK-FR"], k,
            shipped_days_ago=5, delivered_days_ago=1, hub="Hodgkins, IL, US")  # fmt: skip
    _parcel(o, 2, "UPS", "1Z999AA10123456786", ["OFF-DSK-TP", "OFF-CBL-TR"], k,
            shipped_days_ago=3, hub="Hodgkins, IL, US")  # fmt: skip
    orders.append(o)
    return orders


def _plans() -> list[Plan]:
    beans = "COF-BNS-1KG"
    return [
        Plan("basic", "Basic Coffee Box", 19.00, "USD", Frequency(30, "DAY"), 1,
             [SubscriptionItem(beans, "House Blend Beans 1kg", 1)]),
        Plan("standard", "Standard Coffee Box", 29.00, "USD", Frequency(30, "DAY"), 2,
             [SubscriptionItem(beans, "House Blend Beans 1kg", 2)]),
        Plan("premium", "Premium Coffee Box", 49.00, "USD", Frequency(30, "DAY"), 3,
             [SubscriptionItem(beans, "House Blend Beans 1kg", 2),
              SubscriptionItem("COF-SGL-250", "Single Origin of the Month 250g", 1)]),
    ]  # fmt: skip


def _subscriptions(c: dict[str, Customer], plans: dict[str, Plan], k: _Clock) -> list[Subscription]:
    def sub(
        sid: str,
        email: str,
        plan_id: str,
        status: SubscriptionStatus,
        created_days_ago: int,
        charge_days_ago: int,
        **extra: object,
    ) -> Subscription:
        plan = plans[plan_id]
        charge = Charge(f"CH-{5000 + int(sid[-4:]) - 2000}", plan.price, plan.currency,
                        k.ago(charge_days_ago))  # fmt: skip
        s = Subscription(sid, c[email], plan, status, k.ago(created_days_ago),
                         list(plan.items), last_charge=charge)  # fmt: skip
        for name, value in extra.items():
            setattr(s, name, value)
        return s

    refunded = sub("SUB-2004", "refunded@demo.shop", "premium", "ACTIVE", 60, 3,
                   next_order_date=k.in_days(27))  # fmt: skip
    assert refunded.last_charge is not None
    refunded.last_charge.refunded, refunded.last_charge.refunded_at = True, k.ago(2)
    return [
        sub("SUB-2001", "active@demo.shop", "standard", "ACTIVE", 130, 10,
            next_order_date=k.in_days(20)),
        sub("SUB-2002", "paused@demo.shop", "basic", "PAUSED", 200, 25,
            paused_until=k.in_days(21), next_order_date=k.in_days(21)),
        sub("SUB-2003", "cancelled-sub@demo.shop", "premium", "CANCELLED", 160, 45,
            cancelled_at=k.ago(40), cancel_reason="Too expensive"),
        refunded,
        sub("SUB-2005", "repeat@demo.shop", "basic", "ACTIVE", 90, 15,
            next_order_date=k.in_days(15)),
        sub("SUB-2006", "repeat@demo.shop", "standard", "CANCELLED", 400, 220,
            cancelled_at=k.ago(215), cancel_reason="Switching to a smaller box"),
        sub("SUB-2007", "premium@demo.shop", "premium", "ACTIVE", 75, 4,
            next_order_date=k.in_days(26)),
    ]  # fmt: skip


def build_seed(now: datetime) -> Seed:
    """A fresh, independent copy of the whole data set (one per server instance)."""
    clock = _Clock(now)
    customers = _customers()
    plans = _plans()
    by_id = {p.id: p for p in plans}
    return Seed(
        now=clock.now,
        customers=list(customers.values()),
        orders=_orders(customers, clock),
        plans=plans,
        subscriptions=_subscriptions(customers, by_id, clock),
    )
