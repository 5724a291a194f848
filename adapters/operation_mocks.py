"""Operation mocks (§11): a flow test gives a SOAP or GraphQL operation's data directly.

``mocks: [{connection: erp, operation: GetOrderStatus, data: {...}}]`` stands for the
action's data, not for an HTTP answer, so the ``soap`` and ``graphql`` actions ask here
before they call. A test harness installs a lookup per project's connections:

>>> use_operation_mocks(project.connections, router.operation)   # (found, data)
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from typing import Any

Lookup = Callable[[str, str], tuple[bool, Any]]

_lookups: weakref.WeakKeyDictionary[Any, Lookup] = weakref.WeakKeyDictionary()


def use_operation_mocks(connections: Iterable[Any], lookup: Lookup | None) -> None:
    """Answer the operations of ``connections`` from ``lookup(connection, operation)``.

    ``None`` removes the lookup: calls go to the network (or the mocked transport) again.
    """
    for conn in connections:
        if lookup is None:
            _lookups.pop(conn, None)
        else:
            _lookups[conn] = lookup


def mocked(conn: Any, *operations: str) -> tuple[bool, Any]:
    """``(True, data)`` when a mock answers one of ``operations`` on ``conn``."""
    if not _lookups:
        return False, None  # the common case: no test harness installed, no cost
    lookup = _lookups.get(conn)
    if lookup is None:
        return False, None
    for operation in operations:
        found, data = lookup(conn.name, operation)
        if found:
            return True, data
    return False, None
