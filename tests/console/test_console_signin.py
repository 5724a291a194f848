"""Sign-in, sessions, CSRF and the throttle of the console, over HTTP to the real app (§13)."""

from __future__ import annotations

import secrets

import pytest
from console_support import (
    BASE,
    PASSWORD,
    SIGNING_KEY,
    FakeStore,
    console_client,
    csrf_of,
    sign_in,
)

from csflow.serve.console.auth import MAX_FAILURES, WINDOW, Session, Sessions, Throttle, Users
from csflow.serve.console.guard import CSP
from csflow.serve.console.signin import safe_next

PAGES = ["/", "/flows/wismo", "/runs", "/runs/abc", "/conversations", "/chat", "/nowhere"]


@pytest.mark.parametrize("page", PAGES)
async def test_every_page_without_a_session_goes_to_sign_in_and_keeps_the_page(shop_env, page):
    async with console_client(FakeStore(), shop_env, signed_in=False) as client:
        answer = await client.get(f"{BASE}{page}?flow=wismo")
        assert answer.status_code == 303
        assert answer.headers["location"] == f"{BASE}/login?next={BASE}{page}%3Fflow%3Dwismo"
        assert "wismo" not in answer.text  # nothing of the page itself


async def test_static_files_need_no_session_and_the_mount_itself_goes_to_its_first_page(shop_env):
    async with console_client(FakeStore(), shop_env, signed_in=False) as client:
        css = await client.get(f"{BASE}/static/console.css")
        assert css.status_code == 200 and ":focus-visible" in css.text
        root = await client.get(BASE)
        assert root.status_code == 307 and root.headers["location"] == f"{BASE}/"


async def test_signing_in_sets_a_signed_httponly_samesite_cookie_for_the_console_only(shop_env):
    async with console_client(FakeStore(), shop_env, signed_in=False) as client:
        answer = await sign_in(client, next=f"{BASE}/runs?flow=wismo")
        assert answer.status_code == 303
        assert answer.headers["location"] == f"{BASE}/runs?flow=wismo"
        cookie = answer.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and f"Path={BASE}" in cookie
        assert "Secure" not in cookie  # plain http on loopback: a Secure cookie would be lost
        assert PASSWORD not in cookie
        page = await client.get(f"{BASE}/")
        assert page.status_code == 200 and "wismo" in page.text and "Sign out" in page.text
        assert page.headers["content-security-policy"] == CSP
        assert page.headers["cache-control"] == "no-store"
        assert page.headers["x-frame-options"] == "DENY"


async def test_a_wrong_password_is_refused_without_saying_which_half_was_wrong(shop_env):
    async with console_client(FakeStore(), shop_env, signed_in=False) as client:
        for user in ("ops", "nobody"):
            answer = await sign_in(client, user=user, password="wrong")
            assert answer.status_code == 401
            assert "Wrong user name or password." in answer.text
        assert (await client.get(f"{BASE}/")).status_code == 303


async def test_failed_sign_ins_are_throttled_per_user_and_address(shop_env):
    async with console_client(FakeStore(), shop_env, signed_in=False) as client:
        for _ in range(MAX_FAILURES):
            assert (await sign_in(client, password="guess")).status_code == 401
        blocked = await sign_in(client)  # even the right password: the door is shut a while
        assert blocked.status_code == 429
        assert "Too many failed sign-ins" in blocked.text
        assert 1 <= int(blocked.headers["retry-after"]) <= WINDOW
        other = await sign_in(client, user="admin", password="guess")  # another user name
        assert other.status_code == 401


async def test_a_form_without_the_csrf_token_is_refused(shop_env):
    async with console_client(FakeStore(), shop_env) as client:
        for form in ({}, {"csrf": "forged"}):
            answer = await client.post(f"{BASE}/logout", data=form)
            assert answer.status_code == 403
            assert "did not carry the console" in answer.text
        assert (await client.get(f"{BASE}/")).status_code == 200  # still signed in
        login = await client.post(f"{BASE}/login", data={"user": "ops", "password": PASSWORD})
        assert login.status_code == 403


async def test_signing_out_ends_the_session_in_this_browser_and_any_copy_of_its_cookie(shop_env):
    async with console_client(FakeStore(), shop_env) as client:
        page = await client.get(f"{BASE}/")
        copied = client.cookies.get("csflow_console", path=BASE)
        assert copied
        out = await client.post(f"{BASE}/logout", data={"csrf": csrf_of(page.text)})
        assert out.status_code == 303 and out.headers["location"] == f"{BASE}/login"
        assert (await client.get(f"{BASE}/")).status_code == 303
        # A copy taken before signing out (another tab, a stolen cookie) is refused too.
        client.cookies.clear()
        client.cookies.set("csflow_console", copied, path=BASE)
        replayed = await client.get(f"{BASE}/runs")
        assert replayed.status_code == 303 and "/login" in replayed.headers["location"]
        # Signing in again gives a session of its own, which works.
        client.cookies.clear()
        await sign_in(client)
        assert (await client.get(f"{BASE}/")).status_code == 200


async def test_a_new_password_ends_the_sessions_signed_with_the_old_one() -> None:
    sessions = Sessions(SIGNING_KEY.encode())
    before = Users({"ops": b"first-password"}, SIGNING_KEY.encode())
    session = sessions.load(sessions.dump(sessions.fresh("ops", before.fingerprint("ops"))))
    assert session is not None and before.current(session)
    after = Users({"ops": b"second-password"}, SIGNING_KEY.encode())
    assert not after.current(session)
    assert not Users({"admin": b"first-password"}, SIGNING_KEY.encode()).current(session)


def test_a_tampered_or_foreign_cookie_is_no_session() -> None:
    sessions = Sessions(SIGNING_KEY.encode())
    cookie = sessions.dump(Session("token", "ops", "fingerprint"))
    assert sessions.load(cookie) == Session("token", "ops", "fingerprint")
    assert sessions.load(cookie[:-2] + "xx") is None
    assert Sessions(b"another-key-of-thirty-two-bytes!").load(cookie) is None
    assert sessions.load("") is None and sessions.load(None) is None


def test_the_throttle_lets_a_user_in_again_once_the_window_has_passed() -> None:
    now = [1000.0]
    throttle = Throttle(clock=lambda: now[0])
    for _ in range(MAX_FAILURES):
        assert throttle.wait("ops", "10.0.0.1") is None
        throttle.failed("ops", "10.0.0.1")
    assert throttle.wait("ops", "10.0.0.1") == WINDOW
    assert throttle.wait("ops", "10.0.0.2") is None  # another address is another count
    now[0] += WINDOW / 2
    assert throttle.wait("ops", "10.0.0.1") == WINDOW / 2
    now[0] += WINDOW / 2
    assert throttle.wait("ops", "10.0.0.1") is None


@pytest.mark.parametrize(
    ("wanted", "goes_to"),
    [
        ("/console/runs?flow=wismo", "/console/runs?flow=wismo"),
        ("/console/", "/console/"),
        ("https://evil.example/console/", "/console/"),
        ("//evil.example/console/", "/console/"),
        ("/\\evil.example", "/console/"),
        ("/v1/flows/wismo/runs", "/console/"),  # the server's, not the console's
        ("/console/login?next=//evil.example", "/console/"),
        ("/consolex/", "/console/"),
        (None, "/console/"),
    ],
)
def test_after_sign_in_only_a_page_of_this_console_is_a_destination(wanted, goes_to) -> None:
    assert safe_next("/console", wanted) == goes_to


async def test_a_signed_out_session_is_refused_by_every_server_sharing_redis(
    redis_url: str,
) -> None:
    """Two consoles (two servers) on one Redis: sign out on one, the copy fails on the other."""
    from csflow.adapters.shared.redis_state import RedisState
    from csflow.serve.console.auth import SignedOut

    sessions = Sessions(SIGNING_KEY.encode())
    session = sessions.fresh("ops", "fingerprint")
    prefix = f"csflow-test:{secrets.token_hex(6)}:"
    here, there = RedisState(redis_url, prefix=prefix), RedisState(redis_url, prefix=prefix)
    try:
        assert not await SignedOut(there).revoked(session)
        await SignedOut(here).revoke(session)
        assert await SignedOut(there).revoked(session)
        assert not await SignedOut(there).revoked(sessions.fresh("ops", "fingerprint"))
    finally:
        await here.aclose()
        await there.aclose()


async def test_a_shared_state_that_does_not_answer_leaves_the_console_usable(caplog) -> None:
    from csflow.adapters.shared import StateUnavailable
    from csflow.serve.console.auth import SignedOut

    class Away:
        async def get(self, key: str) -> bytes | None:
            raise StateUnavailable("redis://127.0.0.1:9/0 did not answer within 0.5 s")

        async def put(self, key: str, value: bytes, ttl: float | None) -> None:
            raise StateUnavailable("redis://127.0.0.1:9/0 did not answer within 0.5 s")

    session = Sessions(SIGNING_KEY.encode()).fresh("ops", "fingerprint")
    signed_out = SignedOut(Away())  # type: ignore[arg-type]
    await signed_out.revoke(session)  # the cookie is still cleared by the caller
    assert await signed_out.revoked(session) is False
    assert "could not be revoked" in caplog.text and "could not check" in caplog.text
    assert session.csrf not in caplog.text
