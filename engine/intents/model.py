"""The typed model of ``intents.yaml`` (§12): the source of its reference page."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

EntityType = Literal["email", "phone"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EntitySpec(_Strict):
    """One entity: a built-in ``type``, or the merchant's own ``pattern`` (and ``format``)."""

    type: EntityType | None = None
    pattern: str | None = None
    format: str | None = None
    region: str = Field("US", pattern=r"^[A-Z]{2}$")

    @model_validator(mode="after")
    def _one_way_to_find(self) -> EntitySpec:
        if (self.type is None) == (self.pattern is None):
            raise ValueError("an entity has either a type (email, phone) or a pattern")
        if self.format is not None and self.pattern is None:
            raise ValueError("format rebuilds a pattern's match: give a pattern too")
        return self


class FallbackSpec(_Strict):
    flow: str


class IntentSpec(_Strict):
    flow: str
    examples: list[str]


class IntentsFile(_Strict):
    threshold: float = Field(0.5, ge=0.0, le=1.0)
    fallback: FallbackSpec | None = None
    entities: dict[str, EntitySpec] = Field(default_factory=dict)
    intents: dict[str, IntentSpec]
