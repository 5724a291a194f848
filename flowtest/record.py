"""``csflow run --record FILE``: a real run captured as a ready-to-edit flow test case.

Every answer the run receives is kept as a mock, in order. Secrets never reach the file
(the connection's redactor has already replaced them in bodies), and personal data is
replaced by consistent stand-ins: the same email becomes the same ``person1@example.com``
in the inputs, the query strings and the bodies, so the case still replays.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import yaml

from csflow.adapters.transport import make_transport

DEFAULT_PII = (
    "email",
    "phone",
    "name",
    "first_name",
    "last_name",
    "line1",
    "line2",
    "address",
    "postal_code",
)


@dataclass
class Recorder:
    """Wraps every connection's transport and keeps what each call answered."""

    project: Any
    pii: tuple[str, ...] = DEFAULT_PII
    calls: list[dict[str, Any]] = field(default_factory=list)
    _aliases: dict[str, str] = field(default_factory=dict)

    def install(self) -> None:
        bases = {c.name: urlsplit(c.base_url) for c in self.project.connections}

        def factory(limit: int) -> httpx.AsyncBaseTransport:
            return _Recording(make_transport(limit), self, bases)

        self.project.connections.use_transport(factory)

    # -- scrubbing -------------------------------------------------------------------------------

    def alias(self, key: str, value: str) -> str:
        if value not in self._aliases:
            n = 1 + sum(1 for v in self._aliases.values() if v.startswith(_stem(key)))
            self._aliases[value] = (
                f"{_stem(key)}{n}@example.com" if "@" in value else f"{_stem(key)}{n}"
            )
        return self._aliases[value]

    def scrub(self, value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: self.scrub(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self.scrub(v, key) for v in value]
        if isinstance(value, str) and key.lower() in self.pii and value:
            return self.alias(key.lower(), value)
        return value

    def scrub_text(self, text: str) -> str:
        for real, alias in sorted(self._aliases.items(), key=lambda kv: -len(kv[0])):
            text = text.replace(real, alias)
        return text

    # -- the case --------------------------------------------------------------------------------

    def case(self, flow: str, inputs: dict[str, Any], result: Any) -> dict[str, Any]:
        scrubbed_inputs = self.scrub(inputs)
        mocks = [self._finish(call) for call in self.calls]
        expect: dict[str, Any] = {"status": result.status}
        if result.outputs:
            expect["outputs"] = json.loads(
                self.scrub_text(json.dumps(self.scrub(result.outputs), default=str))
            )
        if result.reply:
            expect["reply"] = self.scrub_text(result.reply)
        if result.path:
            expect["path"] = result.path
        return {
            "flow": flow,
            "cases": [
                {
                    "name": f"recorded run of {flow}",
                    "inputs": scrubbed_inputs,
                    "mocks": mocks,
                    "expect": expect,
                }
            ],
        }

    def _finish(self, call: dict[str, Any]) -> dict[str, Any]:
        out = dict(call)
        out["path"] = self.scrub_text(out["path"])
        for key in ("body", "xml"):
            if key in out:
                out[key] = self.scrub_text(out[key])
        if "json" in out:
            out["json"] = json.loads(self.scrub_text(json.dumps(out["json"])))
        return out


def _stem(key: str) -> str:
    return {"email": "person", "phone": "555000"}.get(key, key.replace("_", "-"))


class _Recording(httpx.AsyncBaseTransport):
    def __init__(
        self, inner: httpx.AsyncBaseTransport, recorder: Recorder, bases: dict[str, Any]
    ) -> None:
        self.inner, self.recorder, self.bases = inner, recorder, bases

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        content = await response.aread()
        name, path = self._locate(request.url)
        call: dict[str, Any] = {
            "connection": name,
            "method": request.method,
            "path": path,
            "status": response.status_code,
        }
        # No `query:` in the mock: a scrubbed input would no longer match the recorded one,
        # and the calls replay in order anyway.
        ctype = response.headers.get("Content-Type", "")
        if "json" in ctype:
            try:
                call["json"] = self.recorder.scrub(json.loads(content))
            except ValueError:
                call["body"] = content.decode(errors="replace")
        elif "xml" in ctype:
            call["xml"] = _scrub_xml(content.decode(errors="replace"), self.recorder)
        elif content:
            call["body"] = content.decode(errors="replace")
        self.recorder.calls.append(call)
        return httpx.Response(
            response.status_code, headers=response.headers, content=content, request=request
        )

    def _locate(self, url: httpx.URL) -> tuple[str, str]:
        for name, base in self.bases.items():
            if url.host == base.hostname and url.path.startswith(base.path.rstrip("/")):
                return name, url.path[len(base.path.rstrip("/")) :] or "/"
        return url.host, url.path

    async def aclose(self) -> None:
        await self.inner.aclose()


def _scrub_xml(text: str, recorder: Recorder) -> str:
    for key in recorder.pii:
        for m in re.finditer(rf"<(?:\w+:)?{key}>([^<]+)</", text, re.IGNORECASE):
            recorder.alias(key, m.group(1))
    return text


def dump_case(case: dict[str, Any]) -> str:
    header = (
        "# Recorded by `csflow run --record`: edit the name and the expectations, then keep it.\n"
    )
    return header + yaml.safe_dump(case, sort_keys=False, allow_unicode=True, width=100)
