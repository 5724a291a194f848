"""Run records, the same on every store: round trip, filters and paging, in_flight then
finish, id prefixes, redaction and lone surrogates."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from csflow.engine.errors import StoreError
from csflow.engine.store import IN_FLIGHT, RunRecord

TOKEN = "tok_store_secret_9876"


def record(
    rid: str, flow: str = "lookup", status: str = "completed", at: str = "", **kw: Any
) -> RunRecord:
    return RunRecord(
        id=rid, flow=flow, status=status, started_at=at or f"2026-11-20T10:00:{rid[-2:]}.000Z", **kw
    )


def written(store: Any, *records: RunRecord) -> None:
    for r in records:
        store.finish(r)
    assert store.flush(20)


def test_a_run_reads_back_whole_with_its_conversation_turn_and_dry_run(store: Any) -> None:
    steps = [
        {"id": "orders", "verb": "call", "action": "http", "ok": True, "status": 200,
         "duration_ms": 3.25, "attempts": 1, "error": None, "line": 7, "outcome": "done"},
        {"id": None, "verb": "reply", "action": None, "ok": False, "status": None,
         "duration_ms": None, "attempts": None, "line": 9,
         "error": {"kind": "validation", "message": "no"}},
    ]  # fmt: skip
    written(
        store,
        record(
            "run-01",
            inputs={"email": "jane@example.com", "n": [1, 2]},
            outputs={"status": "shipped"},
            reply="On its way",
            duration_ms=12.3456,
            steps=steps,
            conversation_id="chat-7",
            turn=2,
            dry_run=True,
        ),
    )
    got = store.get_run("run-01")
    assert got is not None
    assert got.as_dict() == {
        "id": "run-01",
        "flow": "lookup",
        "status": "completed",
        "started_at": "2026-11-20T10:00:01.000Z",
        "duration_ms": 12.346,
        "error": None,
        "conversation_id": "chat-7",
        "turn": 2,
        "dry_run": True,
        "inputs": {"email": "jane@example.com", "n": [1, 2]},
        "outputs": {"status": "shipped"},
        "reply": "On its way",
        "steps": [
            {**steps[0]},
            {**{k: v for k, v in steps[1].items()}},
        ],
    }
    (listed,) = store.list_runs()
    assert listed.steps == []  # a listing holds summaries
    assert (listed.conversation_id, listed.turn, listed.dry_run) == ("chat-7", 2, True)


def test_runs_are_listed_newest_first_with_every_filter(store: Any) -> None:
    error = {"kind": "connect", "message": "refused", "step": "orders"}
    written(
        store,
        record("run-01"),
        record("run-02", status="failed", error=error),
        record("run-03", flow="create"),
        record("run-04", status="waiting", conversation_id="c-1", turn=1),
        record("run-05", status="completed", conversation_id="c-1", turn=2),
    )

    def ids(**filters: Any) -> list[str]:
        return [r.id for r in store.list_runs(**filters)]

    assert ids() == ["run-05", "run-04", "run-03", "run-02", "run-01"]
    assert ids(flow="lookup") == ["run-05", "run-04", "run-02", "run-01"]
    assert ids(failed=True) == ["run-02"]
    assert ids(status="waiting") == ["run-04"]
    assert ids(status="completed", flow="create") == ["run-03"]
    assert ids(conversation_id="c-1") == ["run-05", "run-04"]
    # since <= started_at < until
    assert ids(since="2026-11-20T10:00:02.000Z", until="2026-11-20T10:00:04.000Z") == [
        "run-03",
        "run-02",
    ]
    assert ids(limit=2) == ["run-05", "run-04"]
    assert ids(limit=2, offset=2) == ["run-03", "run-02"]
    assert ids(limit=2, offset=4) == ["run-01"]
    assert ids(offset=5) == []
    assert store.list_runs()[3].summary() == {
        "id": "run-02",
        "flow": "lookup",
        "status": "failed",
        "started_at": "2026-11-20T10:00:02.000Z",
        "duration_ms": None,
        "error": error,
    }
    assert {k: v.id for k, v in store.last_failures().items()} == {"lookup": "run-02"}


def test_runs_started_at_the_same_moment_list_the_last_recorded_first(store: Any) -> None:
    at = "2026-11-20T10:00:00.000Z"
    written(store, record("b-1", at=at), record("a-2", at=at), record("c-3", at=at))
    assert [r.id for r in store.list_runs()] == ["c-3", "a-2", "b-1"]


def test_begin_is_readable_when_it_returns_and_finish_replaces_it(backing: Any) -> None:
    store = backing.open()
    steps = [{"id": "create", "verb": "call", "ok": True, "state": IN_FLIGHT, "attempts": 1}]
    asyncio.run(store.begin(record("run-01", status=IN_FLIGHT, steps=steps)))
    other = backing.open()  # another store object on the same backing, as another process
    found = other.get_run("run-01")
    assert found is not None and found.status == IN_FLIGHT
    assert [(s["id"], s["state"]) for s in found.steps] == [("create", IN_FLIGHT)]
    written(store, record("run-01", steps=[{**steps[0], "state": None, "outcome": "done"}]))
    stored = other.get_run("run-01")
    assert stored is not None and stored.status == "completed"
    assert stored.steps == [
        {
            "id": "create",
            "verb": "call",
            "action": None,
            "ok": True,
            "status": None,
            "duration_ms": None,
            "attempts": 1,
            "error": None,
            "line": None,
            "outcome": "done",
        }
    ]


async def test_finish_on_a_loop_resolves_once_committed(store: Any) -> None:
    await store.finish(record("run-01"))
    assert [r.id for r in await asyncio.to_thread(store.list_runs)] == ["run-01"]


def test_a_run_is_found_by_a_unique_prefix_of_its_id(store: Any) -> None:
    written(store, record("abcdef-01"), record("abcdxyz-02"))
    assert store.get_run("abcde").id == "abcdef-01"
    assert store.get_run("abcdxyz-02").id == "abcdxyz-02"
    assert store.get_run("abc") is None  # too short to be a prefix
    assert store.get_run("abc_") is None  # "_" is a character, not a wildcard
    with pytest.raises(StoreError, match="more than one"):
        store.get_run("abcd")


def test_secrets_are_redacted_in_every_field_a_run_keeps(store: Any) -> None:
    def hide(text: str) -> str:
        return text.replace(TOKEN, "***")

    error = {"kind": "http", "message": f"401 for {TOKEN}", "step": "orders"}
    steps = [{"id": "orders", "verb": "call", "ok": False, "error": error}]
    written(
        store,
        record(
            "run-01",
            status="failed",
            inputs={"email": f"a@b.co {TOKEN}"},
            outputs={"note": TOKEN},
            reply=f"token {TOKEN}",
            error=error,
            steps=steps,
            redact=hide,
        ),
    )
    got = store.get_run("run-01")
    assert got is not None
    assert TOKEN not in repr(got.as_dict())
    assert got.inputs == {"email": "a@b.co ***"}
    assert got.reply == "token ***"
    assert got.error == {"kind": "http", "message": "401 for ***", "step": "orders"}
    assert got.steps[0]["error"]["message"] == "401 for ***"


def test_a_lone_surrogate_does_not_lose_the_runs_committed_with_it(store: Any) -> None:
    bad = {"kind": "validation", "message": "bad \udcff", "step": "a"}
    written(
        store,
        record("ok-01"),
        record(
            "odd-02", status="failed", error=bad, reply="ORD-1003\ud800", inputs={"q": "\ud83d"}
        ),
    )
    assert [r.id for r in store.list_runs()] == ["odd-02", "ok-01"]
    odd = store.get_run("odd-02")
    assert odd is not None and odd.error == bad and odd.inputs == {"q": "\ud83d"}
    assert odd.reply == "ORD-1003\\ud800"  # a reply is text: the escape shows
