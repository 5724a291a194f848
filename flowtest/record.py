"""``csflow run --record FILE``: a real run captured as a ready-to-edit flow test case.

Every answer the run receives is kept as a mock, in order, named by the connection it was
for (``flowtest.routes``). Secrets never reach the file (every connection's redactor runs on
what is kept), and personal data is replaced by consistent stand-ins (``flowtest.scrub``):
the same email becomes the same ``person1@example.com`` in the inputs, the paths and the
bodies, so the case still replays. A dry run is recorded as a dry-run case (``dry_run:
true``), since the writes it kept back have no answer to replay.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import yaml
from lxml import etree

from csflow.adapters.transport import make_transport
from csflow.adapters.xml import parse_xml
from csflow.flowtest.routes import locate
from csflow.flowtest.scrub import Scrubber


@dataclass
class CaseRecorder:
    """Wraps every connection's transport and keeps what each call answered."""

    project: Any
    calls: list[dict[str, Any]] = field(default_factory=list)
    scrubber: Scrubber = field(default_factory=Scrubber)

    def install(self) -> None:
        def factory(limit: int) -> httpx.AsyncBaseTransport:
            return _Recording(make_transport(limit), self)

        self.project.connections.use_transport(factory)

    def scrub(self, value: Any) -> Any:
        return self.scrubber.data(value)

    def scrub_text(self, text: str) -> str:
        return self.scrubber.text(text)

    # -- the case --------------------------------------------------------------------------------

    def case(self, flow: str, inputs: dict[str, Any], result: Any) -> dict[str, Any]:
        # First every value is read, so that each one's stand-in is known; then the texts.
        scrubbed_inputs = self.scrub(inputs)
        parsed = [self.parse(call) for call in self.calls]
        outputs = json.loads(json.dumps(self.scrub(result.outputs), default=str))
        mocks = [self.finish(call) for call in parsed]
        kept_back = any(s.dry_run is not None for s in result.steps)
        expect: dict[str, Any] = {"status": result.status}
        if result.outputs:
            expect["outputs"] = self.scrubber.strings(outputs)
        if result.reply:
            expect["reply"] = self.scrub_text(result.reply)
        if result.path:
            expect["path"] = result.path
        case: dict[str, Any] = {"name": f"recorded {'dry ' * kept_back}run of {flow}"}
        if kept_back:  # replayed as it ran: the writes stay back again, so need no mock
            case["dry_run"] = True
        case.update(inputs=scrubbed_inputs, mocks=mocks, expect=expect)
        return {"flow": flow, "cases": [case]}

    def parse(self, call: dict[str, Any]) -> dict[str, Any]:
        """The call's body as a mock gives it, secrets redacted, its data's personal data
        replaced."""
        out = dict(call)
        if _TEXT in out:
            ctype, raw = out.pop(_TEXT)
            text = self.project.connections.redact(raw)
            if "json" in ctype:
                try:
                    out["json"] = self.scrub(json.loads(text))
                except ValueError:
                    out["body"] = text
            elif "xml" in ctype:
                _learn_xml(text, self.scrubber)
                out["xml"] = text
            elif text:
                out["body"] = text
        return out

    def finish(self, call: dict[str, Any]) -> dict[str, Any]:
        """The call with every known personal value replaced in its path and texts too."""
        out = dict(call)
        out["path"] = self.scrub_text(out["path"])
        for key in ("body", "xml"):
            if key in out:
                out[key] = self.scrub_text(out[key])
        if "json" in out:
            out["json"] = self.scrubber.strings(out["json"])
        return out


_TEXT = "_text"  # a recorded call's (content type, body), until the case is written


class _Recording(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport, recorder: CaseRecorder) -> None:
        self.inner, self.recorder = inner, recorder

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        status, stream = response.status_code, response.stream
        assert isinstance(stream, httpx.AsyncByteStream)
        # A copy: the size cap's layer above drops Content-Encoding from these headers.
        headers = httpx.Headers(response.headers)
        calls = self.recorder.calls
        slot = len(calls)  # the call's place is kept now, in the order the calls were made
        calls.append(self._call(request, status, headers, b""))

        def done(raw: bytes) -> None:
            calls[slot] = self._call(request, status, headers, raw)

        # The bytes pass on as they came, Content-Encoding and all, so the connection decodes
        # them once, under its size cap; a body the cap refused is never decoded here.
        response.stream = _Tee(stream, done)
        return response

    def _call(
        self, request: httpx.Request, status: int, headers: httpx.Headers, raw: bytes
    ) -> dict[str, Any]:
        name, path = locate(self.recorder.project.connections, request.url)
        call: dict[str, Any] = {
            "connection": name or request.url.host,
            "method": request.method,
            "path": path,
            "status": status,
        }
        # No `query:` in the mock: a scrubbed input would no longer match the recorded one,
        # and the calls replay in order anyway.
        if not raw:  # no body, or one the connection refused: the status is all there is
            return call
        try:  # the mock answers plainly: no Content-Encoding, so the body is kept decoded
            content = httpx.Response(200, headers=headers, content=raw).content
        except httpx.DecodingError:
            content = raw
        # Kept as text until the case is written: by then every connection's redactor knows
        # every secret, a token this very answer brought included.
        call[_TEXT] = (headers.get("Content-Type", ""), content.decode(errors="replace"))
        return call

    async def aclose(self) -> None:
        await self.inner.aclose()


class _Tee(httpx.AsyncByteStream):
    """An answer's raw bytes as they pass; ``done`` gets them all once the body was read."""

    def __init__(self, inner: httpx.AsyncByteStream, done: Callable[[bytes], None]) -> None:
        self._inner, self._done = inner, done

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunks = []
        async for chunk in self._inner:
            chunks.append(chunk)
            yield chunk
        self._done(b"".join(chunks))

    async def aclose(self) -> None:
        await self._inner.aclose()


def _learn_xml(text: str, scrubber: Scrubber) -> None:
    """Find the personal data in an XML answer as in JSON, by element names and values; the
    text is scrubbed with the rest (``CaseRecorder.finish``)."""
    try:
        root = parse_xml(text.encode())
    except (etree.LxmlError, ValueError):
        return
    scrubber.data(_as_data(root))


def _as_data(element: Any) -> Any:
    children = [c for c in element if isinstance(c.tag, str)]
    if not children:
        return (element.text or "").strip()
    out: dict[str, Any] = {}
    for child in children:
        key = etree.QName(child).localname
        value = _as_data(child)
        if key in out:
            out[key] = [*out[key], value] if isinstance(out[key], list) else [out[key], value]
        else:
            out[key] = value
    return out


def dump_case(case: dict[str, Any], command: str = "csflow run --record") -> str:
    header = f"# Recorded by `{command}`: edit the names and the expectations, then keep it.\n"
    return header + yaml.safe_dump(case, sort_keys=False, allow_unicode=True, width=100)
