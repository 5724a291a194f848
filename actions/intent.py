"""The built-in ``intent`` action: the project's intents and entities of a text (§12).

A router flow calls it (``call: intent``, ``with: {text: ...}``); its data is
``{name, confidence, runner_up: {name, confidence}, entities: {...}}``, with ``name`` null
when the text is not understood. The trained model comes as ``ctx.intents``, which the
engine sets from the loaded project: nothing is trained or read from disk per call.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from csflow.engine.context import ActionContext
from csflow.engine.errors import StepError
from csflow.engine.intents import FILE_NAME, Intents
from csflow.engine.registry import action


def check(args: dict[str, Any], connection: Any, root: Path) -> Iterable[tuple[str, str]]:
    """Load-time: the action needs the project's intents.yaml."""
    if not (root / FILE_NAME).exists():
        yield "text", f"the intent action needs the project's {FILE_NAME} (§12)"


@action("intent", check=check)
async def intent(text: str, *, ctx: ActionContext) -> dict[str, Any]:
    """The best intent of ``text``, its confidence, the runner-up and the entities found."""
    intents = ctx.intents
    if not isinstance(intents, Intents):
        raise StepError("action", f"the intent action has no trained {FILE_NAME} to ask")
    return intents.understand(text).as_data()
