"""What ``path:`` sees of a SOAP operation's answer, read from the WSDL's types.

zeep hands back the answer's body unwrapped, and so does the ``soap`` action (its data is
``adapters.soap.plain`` of zeep's result): a response element with one child gives that
child, and a child that is itself a type with one element gives that element. So the usual
.NET/WCF answer ``GetOrderStatusResponse{GetOrderStatusResult{status, carrier}}`` is seen by
``path:`` as ``{status, carrier}``. ``answer_of`` follows the same rules as zeep's
``SoapMessage.deserialize`` on the types, before any call, for ``csflow inspect`` and for
the load-time check of each path (``engine.shapes``).
"""

from __future__ import annotations

from typing import Any

from zeep import xsd

from csflow.engine.shapes import MAX_DEPTH, OPEN, Answer, Shape


def answer_of(operation: str, op: Any) -> Answer | None:
    """The shape of ``op``'s answer as ``path:`` sees it, or None when it cannot be told."""
    output = getattr(op, "output", None)
    body = getattr(output, "body", None)
    if body is None:
        return None
    header = getattr(output, "header", None)
    if header is not None and header.type._element:
        return None  # zeep answers {header, body} then: a shape this check does not follow
    what = operation
    elements, attributes = _parts(body.type)
    if elements is None:
        return Answer(what, _element(body, 0))
    count = len(elements) + len(attributes)
    if count == 0:
        return Answer(what, Shape(type="nothing"))
    if count > 1:
        return Answer(what, _fields(body.type, 0))
    # One child: zeep gives its value, and inside it the one element of a one-element type.
    name, child = (elements or attributes)[0]
    unwrapped: tuple[str, ...] = (name,)
    inner, inner_attributes = _parts(child.type)
    if (
        elements
        and not _repeats(child)
        and inner is not None
        and len(inner) == 1
        and not inner_attributes
    ):
        name, child = inner[0]
        unwrapped = (*unwrapped, name)
    return Answer(what, _element(child, 1), unwrapped)


def _parts(xsd_type: Any) -> tuple[list[tuple[str, Any]] | None, list[tuple[str, Any]]]:
    """(elements, attributes) of a complex type; (None, []) for a simple one."""
    elements = getattr(xsd_type, "elements", None)
    if elements is None:
        return None, []
    return list(elements), list(getattr(xsd_type, "attributes", []))


def _unlisted(xsd_type: Any) -> bool:
    for _, particle in getattr(xsd_type, "elements_nested", []):
        if isinstance(particle, xsd.Any) or (
            isinstance(particle, xsd.Choice) and _repeats(particle)
        ):
            return True
        if isinstance(particle, xsd.Sequence | xsd.All | xsd.Group) and any(
            isinstance(p, xsd.Any) or (isinstance(p, xsd.Choice) and _repeats(p)) for p in particle
        ):
            return True
    return False


def _repeats(element: Any) -> bool:
    return getattr(element, "max_occurs", 1) != 1


def _element(element: Any, depth: int) -> Shape:
    one = _type(element.type, depth)
    return Shape(item=one) if _repeats(element) else one


def _type(xsd_type: Any, depth: int) -> Shape:
    if getattr(xsd_type, "elements", None) is None:
        name = getattr(getattr(xsd_type, "qname", None), "localname", None)
        return Shape(type=name or type(xsd_type).__name__.lower())
    return _fields(xsd_type, depth)


def _fields(xsd_type: Any, depth: int) -> Shape:
    if depth > MAX_DEPTH:
        return OPEN
    elements, attributes = _parts(xsd_type)
    assert elements is not None
    # xsd:any, or a repeated choice: zeep gives a list of whatever came as `_value_N`.
    if _unlisted(xsd_type) or (not elements and attributes):
        return OPEN
    fields = {n: _element(e, depth + 1) for n, e in elements}
    fields.update({n: Shape(type="attribute") for n, _ in attributes})
    qname = getattr(xsd_type, "qname", None)
    return Shape(fields=fields, type=getattr(qname, "localname", None) or "")
