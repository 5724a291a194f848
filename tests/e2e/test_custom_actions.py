"""The example custom actions (flows/actions/shop_extras.py, spec §10), loaded and run for real."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import httpx
import pytest

from csflow import Project, ProjectError

ROOT = Path(__file__).resolve().parents[2]


async def test_summary_counts_the_orders_the_shop_has(shipped, demo_shop) -> None:
    orders = httpx.get(
        f"{demo_shop.rest_url}/orders",
        params={"email": "repeat@demo.shop"},
        headers={"Authorization": f"Bearer {demo_shop.token}"},
    ).json()
    result = await shipped.run("customer_summary", {"email": "repeat@demo.shop"})
    assert result.status == "completed", result.error
    assert result.outputs["orders"] == len(orders) > 1
    assert result.outputs["spent"] == {
        orders[0]["currency"]: round(sum(o["total"] for o in orders), 2)
    }
    assert next(s for s in result.steps if s.id == "summary").action == "shop.customer_summary"


def test_business_days_skip_the_weekend_and_convert_their_inputs() -> None:
    project = Project.load(ROOT / "flows")
    spec = project.registry.get("calendar.add_business_days")
    assert spec is not None and not spec.is_async
    args = spec.convert({"start": "2024-11-22", "days": "2"})  # a Friday; "2" as YAML text
    assert args["days"] == 2
    assert spec.func(**args) == {"date": "2024-11-26"}
    assert dt.date(2024, 11, 22).weekday() == 4


def _project_with(project: Path, step: str) -> Path:
    (project / "flows" / "probe.yaml").write_text(
        f"name: probe\ninputs: {{email: string}}\nsteps:\n{step}"
    )
    return project


def test_with_keys_are_checked_against_the_signature_at_load(shipped_copy: Path) -> None:
    project = _project_with(
        shipped_copy, "  - call: shop.customer_summary\n    with: {emial: '{{ email }}'}\n"
    )
    with pytest.raises(ProjectError) as info:
        Project.load(project)
    messages = [(p.line, p.message) for p in info.value.problems if p.path.endswith("probe.yaml")]
    assert (
        5,
        "action 'shop.customer_summary' has no argument 'emial' (did you mean 'email'?)",
    ) in messages
    assert any(line == 5 and "needs argument 'email'" in m for line, m in messages)


def test_a_second_action_of_the_same_name_names_both_places(shipped_copy: Path) -> None:
    project = _project_with(shipped_copy, "  - return: {}\n")
    (project / "actions" / "copy.py").write_text(
        "from csflow import action\n\n\n@action('shop.customer_summary')\nasync def again(email: str):\n    return {}\n"
    )
    with pytest.raises(ProjectError) as info:
        Project.load(project)
    text = str(info.value)
    assert "defined twice" in text and "shop_extras.py" in text and "copy.py" in text
