"""Reading a connection's WSDL at project load, once per location, with no stray network.

``wsdl_for`` reads a project file (or fetches a URL with the connection's own auth) into a
cached ``Wsdl``: zeep's parsed document, the SOAP binding and address, and each operation's
argument names for the ``soap`` action's load-time checks. zeep's loader goes through
``LoadTransport``, which reads nothing but the WSDL's own URL or files inside the project.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import zeep.exceptions as zx
from lxml import etree
from zeep.transports import Transport
from zeep.wsdl import Document

from csflow.adapters.auth import AuthSetupError, build_auth
from csflow.adapters.wsdl_shapes import answer_of
from csflow.adapters.xml import wsdl_problem, zeep_settings
from csflow.engine.redaction import Redactor
from csflow.engine.shapes import Answer
from csflow.engine.urls import same_origin, url_problem

# Untrusted XML either way: no DTD, no entities, no fetches beyond the entry document.
SETTINGS = zeep_settings()
FAILURE_TTL = 30.0  # seconds a failed WSDL load is remembered: one project load, not forever


class WsdlError(Exception):
    """A WSDL that cannot be read or used; its message is for the flow author."""


@dataclass(frozen=True)
class Operation:
    name: str
    args: tuple[str, ...] | None  # None: a style whose arguments zeep cannot list
    required: frozenset[str] = frozenset()
    answer: Answer | None = None  # what `path:` sees of its answer (adapters.wsdl_shapes)


@dataclass
class Wsdl:
    location: str
    document: Document
    binding: Any
    address: str | None
    operations: dict[str, Operation] = field(default_factory=dict)


_loaded: dict[tuple[Any, ...], Wsdl] = {}
_failed: dict[tuple[Any, ...], tuple[float, str]] = {}


def wsdl_for(model: Any, root: Path) -> Wsdl:
    """The connection's WSDL, read once per location and cached; raises WsdlError.

    A URL is fetched with the connection's auth and timeout, and nothing else is fetched:
    imports that point at the network are refused (``forbid_external``).
    """
    location = str(model.wsdl)
    problem = wsdl_problem(location, root, allow_insecure_http=model.allow_insecure_http)
    if problem:
        raise WsdlError(problem)
    remote = "://" in location
    if remote:
        key: tuple[Any, ...] = (location,)
    else:
        path = (root / location).resolve()
        try:
            stat = path.stat()
        except OSError:
            raise WsdlError(f"WSDL file '{location}' not found in the project") from None
        key = (str(path), stat.st_mtime_ns, stat.st_size)  # an edited file is read again
        location = str(path)
    if key in _loaded:
        return _loaded[key]
    failed = _failed.get(key)
    if failed is not None and time.monotonic() - failed[0] < FAILURE_TTL:
        raise WsdlError(failed[1])
    try:
        wsdl = _read(location, model, root, remote)
    except WsdlError as exc:
        _failed[key] = (time.monotonic(), str(exc))
        raise
    _loaded[key] = wsdl
    return wsdl


def _read(location: str, model: Any, root: Path, remote: bool) -> Wsdl:
    shown = model.wsdl
    transport = LoadTransport(model, root, location if remote else None)
    try:
        document = Document(location, transport, settings=SETTINGS)  # type: ignore[arg-type]
    except WsdlError:
        raise
    except zx.ExternalReferenceForbidden as exc:
        url = getattr(exc, "url", None) or exc
        raise WsdlError(f"WSDL '{shown}' imports {url}: only the WSDL itself is read") from None
    except (zx.DTDForbidden, zx.EntitiesForbidden):
        raise WsdlError(f"WSDL '{shown}' declares a DTD or entities, which are refused") from None
    except zx.Error as exc:
        raise WsdlError(f"WSDL '{shown}' is not usable: {exc.message or exc}") from None
    except etree.LxmlError as exc:
        raise WsdlError(f"WSDL '{shown}' is not valid XML: {exc}") from None
    finally:
        transport.close()
    binding, address = _first_soap_port(document)
    if binding is None:
        raise WsdlError(f"WSDL '{shown}' has no SOAP service port")
    return Wsdl(shown, document, binding, address, _operations(binding))


def _first_soap_port(document: Document) -> tuple[Any, str | None]:
    from zeep.wsdl.bindings.soap import SoapBinding

    for service in document.services.values():
        for port in service.ports.values():
            if isinstance(port.binding, SoapBinding):
                return port.binding, port.binding_options.get("address")
    return None, None


def _operations(binding: Any) -> dict[str, Operation]:
    out: dict[str, Operation] = {}
    for name, op in binding._operations.items():
        answer = _answer(name, op)
        body = getattr(op.input, "body", None)
        elements = getattr(getattr(body, "type", None), "elements", None)
        if elements is None:
            out[name] = Operation(name, None, answer=answer)
            continue
        args = tuple(n for n, _ in elements)
        required = frozenset(n for n, e in elements if e.min_occurs and not e.nillable)
        out[name] = Operation(name, args, required, answer)
    return out


def _answer(name: str, op: Any) -> Answer | None:
    try:
        return answer_of(name, op)
    except Exception:  # zeep's types are many: a shape we cannot read only goes unchecked
        return None


class LoadTransport(Transport):
    """zeep's loader, kept to what the connection names: the WSDL's own URL, or project files."""

    def __init__(self, model: Any, root: Path, url: str | None) -> None:
        self.cache = None
        self.load_timeout = model.timeout
        self.operation_timeout = None
        self.logger = logging.getLogger("zeep.transports")
        self._close_session = False
        self._model, self._root, self._url = model, root.resolve(), url
        self._http: httpx.Client | None = None

    def load(self, url: str) -> bytes:
        if "://" in url and not url.startswith("file://"):
            return self._load_remote_data(url)
        path = Path(url.removeprefix("file://")).resolve()
        if not path.is_relative_to(self._root):
            raise WsdlError(f"WSDL '{self._model.wsdl}' reads '{url}', outside the project")
        try:
            return path.read_bytes()
        except OSError as exc:
            raise WsdlError(f"cannot read '{url}': {exc.strerror}") from None

    def _load_remote_data(self, url: str) -> bytes:
        if self._url is None or not same_origin(url, self._url):
            raise WsdlError(f"WSDL '{self._model.wsdl}' reads '{url}': only its own host is read")
        client = self._client()
        what = f"WSDL '{self._model.wsdl}'"
        try:
            with client.stream("GET", url) as response:
                if response.status_code >= 400:
                    raise WsdlError(f"{what}: the server answered {response.status_code}")
                chunks, size = [], 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > self._model.max_response_bytes:
                        raise WsdlError(f"{what} is over {self._model.max_response_bytes} bytes")
                    chunks.append(chunk)
        except WsdlError:
            raise
        except Exception as exc:  # httpx's, or an auth that cannot run here: never a traceback
            raise WsdlError(f"{what} could not be fetched ({type(exc).__name__})") from None
        return b"".join(chunks)

    def _client(self) -> httpx.Client:
        if self._http is None:
            try:
                # The check hook has no environ of its own: {env} secrets come from os.environ.
                auth = build_auth(self._model.auth, self._root, Redactor(), os.environ)
            except (AuthSetupError, OSError) as exc:
                raise WsdlError(f"cannot authenticate to fetch the WSDL: {exc}") from None
            self._http = httpx.Client(
                auth=auth,
                headers=self._model.headers,
                timeout=self._model.timeout,
                follow_redirects=False,
                trust_env=False,
            )
        return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()


def endpoint_problem(model: Any, wsdl: Wsdl) -> str | None:
    """Why the address calls would go to is not acceptable, or None."""
    address = model.url or wsdl.address
    if not address:
        return f"WSDL '{wsdl.location}' gives no address: set the connection's 'url'"
    return url_problem(address, allow_insecure_http=model.allow_insecure_http)
