"""Pydantic's validation errors, told as ``PATH:LINE:COL: message`` with a did-you-mean."""

from __future__ import annotations

import re
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from csflow.engine.errors import Problem
from csflow.engine.source import Loc, Source
from csflow.engine.suggest import did_you_mean

# Errors that only say "this is not the shape I wanted" at a node whose deeper errors say why.
_SHAPE = {
    "string_type",
    "model_type",
    "dict_type",
    "model_attributes_type",
    "list_type",
    "union_tag_invalid",
}


def validate(
    model: type[BaseModel], data: Any, source: Source, base: Loc = ()
) -> tuple[Any, list[Problem]]:
    """``model`` validated from ``data``; problems instead of a ValidationError."""
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        return None, describe(model, exc, data, source, base)


def describe(
    model: type[BaseModel], exc: ValidationError, data: Any, source: Source, base: Loc
) -> list[Problem]:
    found: list[tuple[Loc, Problem]] = []
    for err in exc.errors(include_url=False):
        raw = tuple(err["loc"])
        loc = _data_loc(data, raw, keep_last=err["type"] in ("extra_forbidden", "missing"))
        found.append((loc, _problem(model, err, raw, loc, source, base)))
    # A shape error ("not a valid string") gives way to a deeper error at the same place,
    # which says what is wrong inside: unions report one error per member.
    kept = []
    for loc, problem in found:
        deeper = any(other != loc and other[: len(loc)] == loc for other, _ in found)
        if deeper and _is_shape(problem):
            continue
        kept.append(problem)
    return finish(kept)


def _is_shape(problem: Problem) -> bool:
    return problem.message.startswith("\x00")


def _problem(
    model: type[BaseModel], err: Any, raw: Loc, loc: Loc, source: Source, base: Loc
) -> Problem:
    kind = err["type"]
    full = (*base, *loc)
    if kind == "extra_forbidden":
        key = str(raw[-1])
        allowed = _keys_at(model, raw[:-1])
        return source.problem(full, f"unknown key '{key}'{did_you_mean(key, allowed)}", key=True)
    if kind == "missing":
        parent = full[:-1]
        return source.problem(parent, f"missing key '{raw[-1]}'", key=bool(parent))
    message = err["msg"]
    if kind == "literal_error" and isinstance(err.get("input"), str):
        # "input should be 'a', 'b' or 'c'" reads as if the author were the input.
        choices = re.findall(r"'([^']*)'", str(err.get("ctx", {}).get("expected", "")))
        word = err["input"]
        hint = did_you_mean(word, choices)
        message = f"'{word}' is not one of {', '.join(choices)}" if not hint else f"'{word}'{hint}"
    elif message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    elif message.startswith("Assertion failed, "):
        message = message[len("Assertion failed, ") :]
    named = [str(p) for p in loc if isinstance(p, str)]
    text = f"{named[-1]}: {message[0].lower()}{message[1:]}" if named else message
    if kind in _SHAPE:
        text = "\x00" + text
    return source.problem(full, text)


def finish(problems: list[Problem]) -> list[Problem]:
    """Shape errors that survived are real: strip their marker."""
    out = []
    for p in problems:
        if p.message.startswith("\x00"):
            p = Problem(p.path, p.line, p.column, p.message[1:])
        out.append(p)
    return out


def _data_loc(data: Any, raw: Loc, *, keep_last: bool) -> Loc:
    """The path in the YAML data: union tags and validator names that are not in it dropped."""
    out: list[str | int] = []
    node = data
    for i, part in enumerate(raw):
        last = i == len(raw) - 1
        if (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        ):
            out.append(part)
            node = node[part]  # type: ignore[index]
        elif last and keep_last:
            out.append(part)
    return tuple(out)


def _strip(tp: Any) -> Any:
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _keys_at(model: Any, raw: Loc) -> list[str]:
    tp = _walk(model, raw)
    members = [_strip(m) for m in typing.get_args(tp)] if _is_union(tp) else [tp]
    keys: list[str] = []
    for m in members:
        if isinstance(m, type) and issubclass(m, BaseModel):
            keys += [f.alias or name for name, f in m.model_fields.items()]
    return keys


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def _walk(tp: Any, loc: Loc) -> Any:
    tp = _strip(tp)
    if not loc:
        return tp
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        members = [_strip(a) for a in typing.get_args(tp)]
        head = loc[0]
        for m in members:
            if isinstance(m, type) and issubclass(m, BaseModel):
                tag = m.model_fields.get("type")
                # pydantic names a member by its class, or `function-after[..., Class]`
                # when the class has a model validator.
                named = head == m.__name__ or str(head).endswith(f", {m.__name__}]")
                if named or (tag is not None and typing.get_args(tag.annotation) == (head,)):
                    return _walk(m, loc[1:])
        for m in members:
            found = _walk(m, loc)
            if found is not None:
                return found
        return None
    if origin is dict:
        return _walk(typing.get_args(tp)[1], loc[1:])
    if origin is list:
        return _walk(typing.get_args(tp)[0], loc[1:])
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        for name, f in tp.model_fields.items():
            if loc[0] in (name, f.alias):
                return _walk(f.annotation, loc[1:])
    return None
