"""YAML read safely, keeping where every key and value stands.

``load_yaml`` returns plain Python data and a ``Source`` that maps a location path
(``("steps", 2, "call")``, the same tuples pydantic puts in ``loc``) to a line and column.
Every later check reports through ``Source.problem(loc, message)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from csflow.engine.errors import Problem

try:  # The C loader is ~9x faster and keeps marks too.
    _Loader: type[Any] = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - libyaml missing
    _Loader = yaml.SafeLoader

MAX_FILE_BYTES = 1_000_000
# Values that aliases repeat: enough to share mock data, far too few for "billion laughs".
MAX_ALIAS_VALUES = 10_000

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Mark:
    line: int
    column: int
    quoted: bool = False


@dataclass
class Source:
    """Positions of one file's nodes: values by location, keys by location."""

    path: str
    values: dict[Loc, Mark] = field(default_factory=dict)
    keys: dict[Loc, Mark] = field(default_factory=dict)

    def mark(self, loc: Loc, *, key: bool = False) -> Mark:
        """The mark of ``loc``, or of its nearest located parent."""
        table = self.keys if key else self.values
        probe = tuple(loc)
        while probe:
            if probe in table:
                return table[probe]
            if not key and probe in self.keys:
                return self.keys[probe]
            probe = probe[:-1]
        return self.values.get((), Mark(1, 1))

    def problem(
        self,
        loc: Loc,
        message: str,
        *,
        key: bool = False,
        offset: int | None = None,
        warning: bool = False,
    ) -> Problem:
        """A problem at ``loc``; ``offset`` counts characters into a scalar's text."""
        m = self.mark(loc, key=key)
        column = m.column if offset is None else m.column + offset + (1 if m.quoted else 0)
        return Problem(self.path, m.line, column, message, warning)


def display_path(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def load_yaml(path: Path, problems: list[Problem]) -> tuple[Any, Source]:
    """Read ``path``; problems are appended, and the data is None when unreadable."""
    shown = display_path(path)
    source = Source(shown)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            problems.append(
                Problem(shown, 1, 1, f"file is {size} bytes; the limit is {MAX_FILE_BYTES}")
            )
            return None, source
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(Problem(shown, 1, 1, f"cannot read file: {exc}"))
        return None, source
    return parse_yaml(text, source, problems), source


def parse_yaml(text: str, source: Source, problems: list[Problem]) -> Any:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        builder = _Builder(loader, source, problems)
        return builder.build(node, ())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problems.append(Problem(source.path, line, col, f"YAML syntax error: {exc.problem}"))
        return None
    except yaml.YAMLError as exc:
        problems.append(Problem(source.path, 1, 1, f"YAML error: {exc}"))
        return None
    finally:
        loader.dispose()


class _Builder:
    def __init__(self, loader: Any, source: Source, problems: list[Problem]) -> None:
        self.loader = loader
        self.source = source
        self.problems = problems
        self.seen: set[int] = set()
        self.repeated = 0

    def build(self, node: yaml.Node, loc: Loc) -> Any:
        # An alias is the same node object met again: count what they repeat, to stop
        # "billion laughs" before it is built.
        if id(node) in self.seen:
            self.repeated += 1
            if self.repeated > MAX_ALIAS_VALUES:
                raise yaml.YAMLError(f"aliases repeat more than {MAX_ALIAS_VALUES} values")
        else:
            self.seen.add(id(node))
        start = node.start_mark
        style = getattr(node, "style", None)
        self.source.values[loc] = Mark(start.line + 1, start.column + 1, style in ("'", '"'))
        if isinstance(node, yaml.MappingNode):
            self.loader.flatten_mapping(node)
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                # Keys are names in this language: `on:` stays "on", never YAML 1.1's True.
                if not isinstance(key_node, yaml.ScalarNode):
                    m = key_node.start_mark
                    self.problems.append(
                        Problem(
                            self.source.path, m.line + 1, m.column + 1, "keys must be plain text"
                        )
                    )
                    continue
                key = key_node.value
                km = key_node.start_mark
                if key in out:
                    self.problems.append(
                        Problem(
                            self.source.path, km.line + 1, km.column + 1, f"duplicate key '{key}'"
                        )
                    )
                self.source.keys[(*loc, key)] = Mark(km.line + 1, km.column + 1)
                out[key] = self.build(value_node, (*loc, key))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*loc, i)) for i, item in enumerate(node.value)]
        return self.loader.construct_object(node, deep=True)
