"""The one XML parser csflow uses: no entities, no DTD, no network, no huge trees."""

from __future__ import annotations

from lxml import etree


def safe_parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        dtd_validation=False,
    )


_PARSER = safe_parser()


def parse_xml(content: bytes) -> etree._Element:
    """Parse a document; a DOCTYPE is refused outright (entity tricks live there)."""
    if b"<!DOCTYPE" in content or b"<!ENTITY" in content:
        raise etree.XMLSyntaxError("a DOCTYPE or ENTITY declaration is not accepted", None, 0, 0)
    return etree.fromstring(content, parser=_PARSER)
