"""``{env: NAME, default: DEMO}`` for a channel key (issue 10, item 28)."""

from __future__ import annotations

from test_channels_config import LOOKUP, ZIPCHAT
from unit_support import ProjectFiles, relative

from csflow.serve import load_channels

DEMO = ZIPCHAT.replace("{env: ZIPCHAT_API_KEY}", "{env: ZIPCHAT_API_KEY, default: demo-zip-key}")


def load(proj: ProjectFiles, channels: str, env: dict[str, str]):  # type: ignore[no-untyped-def]
    proj.write(flows={"lookup": LOOKUP}, files={"channels.yaml": channels})
    found, problems = load_channels(proj.root, env)
    return found, [relative(p, proj.root) for p in problems]


def test_the_default_is_taken_when_the_variable_is_not_set_and_is_named(proj):
    channels, problems = load(proj, DEMO, {})
    assert problems == []
    assert channels.demo_keys == ["ZIPCHAT_API_KEY"]
    assert "demo-zip-key" in channels.secrets  # redacted like any key
    assert channels.endpoints["zipchat"].keys.match("demo-zip-key") is not None


def test_a_set_variable_wins_and_no_demo_key_is_used(proj):
    channels, problems = load(proj, DEMO, {"ZIPCHAT_API_KEY": "zk-production-1"})
    assert problems == [] and channels.demo_keys == []
    assert channels.endpoints["zipchat"].keys.match("demo-zip-key") is None


def test_an_empty_variable_is_a_problem_not_the_default(proj):
    _, problems = load(proj, DEMO, {"ZIPCHAT_API_KEY": ""})
    assert [p.message for p in problems] == ["environment variable 'ZIPCHAT_API_KEY' is empty"]


def test_a_default_goes_with_env_only(proj):
    text = ZIPCHAT.replace("{env: ZIPCHAT_API_KEY}", "{file: key.txt, default: demo-zip-key}")
    _, problems = load(proj, text, {})
    assert any("default: goes with env:" in p.message for p in problems), problems
