"""``bench.canned``: answers like the Demo Shop's REST API, with no I/O.

``wismo3_canned`` runs the same steps as ``wismo3`` through this action, so that
``python -m bench`` can time what the engine itself costs per conversation.
"""

from __future__ import annotations

from typing import Any

from csflow import action

_TRACKING = "1Z999AA10123456784"
_ORDER = {
    "number": "ORD-1003",
    "status": "SHP",
    "created_at": "2026-11-19T03:17:24Z",
    "customer": {"email": "shipped@demo.shop", "phone": "4151234567", "name": "Jane Doe"},
    "lines": [
        {
            "sku": "SHO-TRL-42",
            "name": "Trail Running Shoes",
            "quantity": 1,
            "price": 129.0,
            "shipped_quantity": 1,
        },
        {
            "sku": "SOC-MER-02",
            "name": "Merino Socks",
            "quantity": 2,
            "price": 14.5,
            "shipped_quantity": 2,
        },
    ],
    "total": 158.0,
    "currency": "USD",
    "shipments": [{"carrier": "UPS", "tracking_number": _TRACKING, "status": "in_transit"}],
}
_BODIES = {
    "/orders": [_ORDER],
    "/orders/ORD-1003": _ORDER,
    f"/tracking/{_TRACKING}": {
        "tracking_number": _TRACKING,
        "status": "in_transit",
        "order_number": "ORD-1003",
    },
}


@action("bench.canned")
async def canned(path: str, query: dict[str, Any] | None = None) -> Any:
    """The body the Demo Shop would send for ``GET path``."""
    return _BODIES[path]
