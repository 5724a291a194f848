"""`csflow schema`: the JSON Schemas come from the models, and accept what the loader accepts."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import jsonschema
import pytest
from support import ROOT, csflow

from csflow.engine.errors import Problem
from csflow.engine.source import load_yaml


def _yaml(path: Path) -> object:
    problems: list[Problem] = []
    data, _ = load_yaml(path, problems)
    assert not problems
    return data


@pytest.fixture(scope="module")
def schemas(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    out = tmp_path_factory.mktemp("schemas")
    proc = _schema("--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return {
        p.name.split("-")[1].split(".")[0]: json.loads(p.read_text()) for p in out.glob("*.json")
    }


def test_every_shipped_file_matches_its_schema(schemas: dict[str, dict]) -> None:
    files = {
        "flow": sorted((ROOT / "flows" / "flows").glob("*.yaml")),
        "connections": [ROOT / "flows" / "connections.yaml"],
        "channels": [ROOT / "flows" / "channels.yaml"],
        "test": sorted((ROOT / "flows" / "tests" / "flows").glob("*.yaml")),
        "intents": [ROOT / "flows" / "intents.yaml"],
    }
    assert all(files.values())
    for kind, paths in files.items():
        for path in paths:
            jsonschema.validate(_yaml(path), schemas[kind])


@pytest.mark.parametrize(
    ("kind", "doc", "words"),
    [
        ("flow", {"name": "x", "steps": [{"sett": {"a": 1}}]}, "'sett' was unexpected"),
        ("flow", {"name": "x", "steps": [{"call": "http", "timeout": "soon"}]}, "soon"),
        (
            "connections",
            {
                "shop": {
                    "type": "rest",
                    "base_url": "https://x",
                    "auth": {"type": "bearer", "tokn": {"env": "T"}},
                }
            },
            "tokn",
        ),
        (
            "test",
            {"flow": "wismo", "cases": [{"name": "a", "expect": {"stauts": "completed"}}]},
            "stauts",
        ),
        (
            "channels",
            {
                "z": {
                    "type": "zipchat",
                    "path": "/z",
                    "api_key": {"env": "K"},
                    "flow": "w",
                    "contxt": "x",
                }
            },
            "contxt",
        ),
    ],
)
def test_schemas_reject_what_the_loader_rejects(
    schemas: dict[str, dict], kind: str, doc: dict, words: str
) -> None:
    with pytest.raises(jsonschema.ValidationError) as info:
        jsonschema.validate(doc, schemas[kind])
    assert words in str(info.value)


def test_short_forms_are_allowed(schemas: dict[str, dict]) -> None:
    flow = {
        "name": "x",
        "inputs": {"n": "integer"},
        "outputs": {"ok": "boolean"},
        "steps": [
            {
                "call": "http",
                "with": {},
                "timeout": "500ms",
                "retry": {"on": [502, "5xx"]},
                "extract": {"a": "b.c"},
            }
        ],
    }
    jsonschema.validate(flow, schemas["flow"])


def _schema(*args: str) -> subprocess.CompletedProcess[str]:
    return csflow("schema", *args)


def test_schema_with_no_kind_prints_the_flow_schema() -> None:
    proc = _schema()
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["title"] == "csflow flow (flows/*.yaml)"


def test_out_writes_only_the_kind_asked(tmp_path: Path) -> None:
    proc = _schema("connections", "--out", str(tmp_path / "s"))
    assert proc.returncode == 0, proc.stderr
    assert [p.name for p in (tmp_path / "s").iterdir()] == ["csflow-connections.schema.json"]
    assert proc.stdout.strip() == str(tmp_path / "s" / "csflow-connections.schema.json")


def test_an_unknown_kind_is_a_usage_error() -> None:
    proc = _schema("flwo")
    assert proc.returncode == 2 and "'flwo' is not one of 'flow'" in proc.stderr
