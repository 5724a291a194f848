"""The Demo Shop's domain objects, shared by its REST, SOAP and GraphQL views.

One canonical model with three renderings is what makes the demo honest: a cancel through
the ERP must show up as `CNL` in REST because both read the same `Order` object.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

OrderStatus = Literal["pending", "processing", "shipped", "delivered", "cancelled"]
SubscriptionStatus = Literal["ACTIVE", "PAUSED", "CANCELLED"]

# The merchant's own REST codes: flows must map them to business words (`SHP: shipped`).
REST_STATUS: dict[str, str] = {
    "pending": "NEW",
    "processing": "PRC",
    "shipped": "SHP",
    "delivered": "DLV",
    "cancelled": "CNL",
}
# The legacy ERP speaks yet another vocabulary, as real ERPs do.
ERP_STATUS: dict[str, str] = {
    "pending": "OPEN",
    "processing": "IN_PROGRESS",
    "shipped": "IN_TRANSIT",
    "delivered": "DELIVERED",
    "cancelled": "CANCELLED",
}

TRACKING_URLS: dict[str, str] = {
    "UPS": "https://www.ups.com/track?tracknum={}",
    "FedEx": "https://www.fedex.com/fedextrack/?trknbr={}",
    "DHL": "https://www.dhl.com/global-en/home/tracking/tracking-parcel.html?tracking-id={}",
    "GLS": "https://gls-group.eu/track/{}",
    "USPS": "https://tools.usps.com/go/TrackConfirmAction?tLabels={}",
    "DPD": "https://tracking.dpd.de/status/en_US/parcel/{}",
    "An Post": "https://www.anpost.com/Post-Parcels/Track/History?item={}",
}


def iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a `Z`, the form every API of the shop uses."""
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


class ShopError(Exception):
    """A business refusal (already shipped, unknown order...), rendered per protocol."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(slots=True)
class Address:
    line1: str
    city: str
    postal_code: str
    country: str
    line2: str | None = None


@dataclass(slots=True)
class Customer:
    id: str
    email: str
    name: str
    phone: str


@dataclass(slots=True)
class Line:
    sku: str
    name: str
    quantity: int
    price: float

    @property
    def image_url(self) -> str:
        return f"https://cdn.demo-shop.example/img/{self.sku.lower()}.jpg"


@dataclass(slots=True)
class TrackingEvent:
    at: datetime
    status: str
    location: str
    description: str


@dataclass(slots=True)
class Shipment:
    id: str
    carrier: str
    tracking_number: str | None
    status: str  # preparing | in_transit | out_for_delivery | delivered
    skus: list[str]
    shipped_at: datetime | None = None
    delivered_at: datetime | None = None
    eta: date | None = None
    events: list[TrackingEvent] = field(default_factory=list)  # newest first
    order_number: str = ""

    @property
    def tracking_url(self) -> str | None:
        if self.tracking_number is None:
            return None
        return TRACKING_URLS.get(self.carrier, "https://track.demo-shop.example/{}").format(
            self.tracking_number
        )

    @property
    def shipped(self) -> bool:
        return self.shipped_at is not None


@dataclass(slots=True)
class ReturnLabel:
    id: str
    order_number: str
    carrier: str
    created_at: datetime
    expires_at: datetime


@dataclass(slots=True)
class Order:
    number: str
    customer: Customer
    phone: str  # as typed at checkout: one customer's orders may format it differently
    status: OrderStatus
    created_at: datetime
    updated_at: datetime
    expected_delivery: date | None
    ref: str
    lines: list[Line]
    currency: str
    address: Address
    shipments: list[Shipment] = field(default_factory=list)
    # The REST record of an ERP-only order carries no status or parcels: flows must ask the ERP.
    erp_only: bool = False
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None
    return_label: ReturnLabel | None = None

    @property
    def total(self) -> float:
        return round(sum(line.price * line.quantity for line in self.lines), 2)

    def shipped_quantity(self, line: Line) -> int:
        # Parcels carry whole lines (a line never splits across parcels in this shop).
        shipped = any(s.shipped and line.sku in s.skus for s in self.shipments)
        return line.quantity if shipped else 0


@dataclass(slots=True)
class Frequency:
    interval: int
    unit: str  # DAY | WEEK | MONTH

    @property
    def label(self) -> str:
        unit = self.unit.lower()
        return f"every {self.interval} {unit}s" if self.interval != 1 else f"every {unit}"


@dataclass(slots=True)
class SubscriptionItem:
    sku: str
    name: str
    quantity: int


@dataclass(slots=True)
class Plan:
    id: str
    name: str
    price: float
    currency: str
    frequency: Frequency
    tier: int  # higher is better: upgrade/downgrade compare tiers
    items: list[SubscriptionItem]


@dataclass(slots=True)
class Charge:
    id: str
    amount: float
    currency: str
    date: datetime
    refunded: bool = False
    refunded_at: datetime | None = None


@dataclass(slots=True)
class Subscription:
    id: str
    customer: Customer
    plan: Plan
    status: SubscriptionStatus
    created_at: datetime
    items: list[SubscriptionItem]
    next_order_date: date | None = None
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None
    paused_until: date | None = None
    last_charge: Charge | None = None


@dataclass(slots=True)
class Refund:
    id: str
    amount: float
    currency: str
    created_at: datetime
    charge: Charge
    subscription: Subscription
