"""The one XML parser csflow uses, and the zeep settings: no entities, DTDs, network or huge trees.

XML from a merchant is untrusted: an external entity reads local files (XXE), nested
entities inflate a small document into gigabytes ("billion laughs"). The parser resolves no
entity, loads no DTD, fetches nothing and refuses huge trees; ``parse_xml`` refuses a
DOCTYPE outright. The SOAP adapter gives zeep ``zeep_settings()`` and takes a WSDL only from
the project folder or over https (``wsdl_problem``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lxml import etree

from csflow.engine.urls import url_problem


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


def zeep_settings(**overrides: Any) -> Any:
    """zeep's ``Settings`` for untrusted WSDLs and answers: no DTD, entities, or external refs.

    >>> zeep.AsyncClient(wsdl, settings=zeep_settings(), transport=...)
    """
    import zeep

    options: dict[str, Any] = {
        "strict": True,
        "forbid_dtd": True,
        "forbid_entities": True,
        "forbid_external": True,
        "xml_huge_tree": False,
        **overrides,
    }
    for key in ("forbid_dtd", "forbid_entities", "forbid_external"):
        if not options[key]:
            raise ValueError(f"{key} stays on: untrusted XML must not reach the network or disk")
    return zeep.Settings(**options)


def wsdl_problem(location: str, root: Path, *, allow_insecure_http: bool = False) -> str | None:
    """Why a WSDL may not be read from ``location``, or None: a project file, or https."""
    if "://" in location:
        return url_problem(location, allow_insecure_http=allow_insecure_http)
    path = Path(location)
    full = (path if path.is_absolute() else root / path).resolve()
    try:
        full.relative_to(Path(root).resolve())
    except ValueError:
        return f"WSDL '{location}' is outside the project: keep it in the project folder"
    return None
