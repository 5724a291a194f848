"""`csflow inspect` on a SOAP connection lists the answer's fields as `path:` sees them."""

from __future__ import annotations

import shutil
from pathlib import Path

from csflow.adapters.introspect import soap_operations
from csflow.engine.model import Connection

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).resolve().parents[2]


def _lines(tmp_path: Path, wsdl: Path) -> list[str]:
    shutil.copy(wsdl, tmp_path / "service.wsdl")
    model = Connection.model_validate({"type": "soap", "wsdl": "service.wsdl"})
    return soap_operations(model, tmp_path)


def test_a_wcf_answer_is_listed_inside_its_result_with_nested_fields(tmp_path: Path) -> None:
    lines = _lines(tmp_path, DATA / "wcf_orders.wsdl")
    at = lines.index("  GetOrderStatus")
    assert lines[at + 2] == "    out: GetOrderStatusResult: ns0:OrderStatus"
    assert lines[at + 3] == "    path: (inside GetOrderStatusResult, unwrapped)"
    listed = [line.split() for line in lines[at + 4 : at + 10]]
    assert listed == [
        ["OrderNumber", "string"],
        ["Status", "string"],
        ["Parcels", "ArrayOfParcel"],
        ["Parcels.Parcel[]", "list", "of", "Parcel"],
        ["Parcels.Parcel[].Carrier", "string"],
        ["Parcels.Parcel[].TrackingNumber", "string"],
    ]
    assert (
        "    path: one value (decimal): '@' (inside RefundOrderResult.Amount, unwrapped)" in lines
    )


def test_the_demo_erp_lists_the_fields_inside_its_complex_types(tmp_path: Path) -> None:
    lines = _lines(tmp_path, ROOT / "demo" / "erp.wsdl")
    fields = {line.split()[0] for line in lines if line.startswith("      ")}
    assert {"shipments.shipment[].trackingNumber", "address.postalCode", "refundAmount"} <= fields
