"""The console in a real browser against a real ``csflow serve`` and Demo Shop (issue 13).

Under ``CI=true`` these run or fail: a machine without Chromium is a broken CI, not a reason
to skip (``.ci/run`` installs it). Elsewhere they are skipped with what to install.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from browser import PHONE, Browser, leaves_loopback, missing, serving_console
from console_support import BASE, CHANNEL_KEYS, USER
from support import SHIPPED, wait_until

from csflow import Project
from csflow.demo import DemoShop


@pytest.fixture(scope="module")
def served(shop: DemoShop, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    lacking = missing()
    if lacking:
        why = f"the browser tests need {', '.join(lacking)} (apt-get install chromium chromium-driver)"
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    with serving_console(shop, tmp_path_factory.mktemp("console") / "runs.sqlite3") as url:
        yield url


@pytest.fixture(scope="module")
def browser(served: str) -> Iterator[Browser]:
    opened = Browser(served)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture(scope="module")
def wismo(shop: DemoShop) -> Project:
    return Project.load(SHIPPED, environ={**os.environ, **shop.env(), **CHANNEL_KEYS})


def test_a_page_without_a_session_goes_to_sign_in_and_back_after_it(browser: Browser) -> None:
    browser.fresh()
    browser.get(f"{BASE}/runs?flow=wismo")
    browser.wait_for_path(f"{BASE}/login?next={BASE}/runs%3Fflow%3Dwismo")
    assert "Sign in" in browser.text() and "wismo" not in browser.text()
    browser.submit_sign_in(USER, CHANNEL_KEYS["CONSOLE_OPS_PASSWORD"])
    browser.wait_for_path(f"{BASE}/runs?flow=wismo")
    assert browser.find("#f-flow").get_attribute("value") == "wismo"


def test_a_flow_page_draws_its_diagram_as_an_svg_with_the_step_ids(
    browser: Browser, wismo: Project
) -> None:
    browser.sign_in(path="/flows/wismo")
    svg = browser.find("#diagram[data-drawn=true] svg")
    labels = svg.text
    ids = [step.id for step in wismo.flows["wismo"].steps if step.id]
    assert ids and all(f"{id}:" in labels for id in ids), labels
    assert browser.find("#diagram").get_attribute("data-drawn") == "true"


def test_a_failed_runs_reason_is_in_the_list_and_on_its_page(browser: Browser) -> None:
    browser.sign_in(path="/runs")
    failed = [row for row in browser.all("tr.run-row") if "failed" in row.text]
    assert len(failed) == 1, [row.text for row in browser.all("tr.run-row")]
    reason = failed[0].find_element("css selector", "td.reason").text
    assert "the order system did not answer" in reason and "503" in reason
    browser.follow(failed[0].find_element("css selector", "td a"))
    assert "Why it failed" in browser.text() and reason in browser.find(".failure .reason").text
    assert "find.by_email" in browser.text()  # the step that failed, with its attempts
    browser.driver.back()
    browser.wait_for_path(f"{BASE}/runs")


def test_a_form_without_its_csrf_token_is_refused(browser: Browser) -> None:
    browser.sign_in()
    browser.driver.execute_script("document.querySelector('.signout input[name=csrf]').remove()")
    browser.follow(browser.find(".signout button"))
    assert "Form refused" in browser.find("main").text
    browser.get(f"{BASE}/")
    assert browser.path() == f"{BASE}/"  # still signed in: the forged sign-out did nothing


def test_a_bad_password_is_refused_and_then_throttled(browser: Browser) -> None:
    browser.fresh()
    browser.get(f"{BASE}/login")
    for _ in range(5):  # another user than the other tests': the throttle is per user
        browser.submit_sign_in("nobody", "guess")
        assert "Wrong user name or password." in browser.find(".alert").text
    browser.submit_sign_in("nobody", "guess")
    assert "Too many failed sign-ins" in browser.find(".alert").text


def test_no_request_leaves_loopback_and_no_page_logs_an_error(browser: Browser) -> None:
    browser.sign_in()
    browser.errors()  # what signing in logged is the sign-in tests' concern
    browser.requests.clear()
    for path in ("/", "/flows/wismo", "/runs", "/conversations", "/chat"):
        browser.get(f"{BASE}{path}")
        if path == "/flows/wismo":
            browser.find("#diagram[data-drawn=true] svg")
    browser.drain()
    assert any(url.endswith("/static/vendor/mermaid-11.17.2.min.js") for url in browser.requests)
    assert [url for url in browser.requests if leaves_loopback(url)] == []
    assert browser.errors() == []


def test_pages_fit_a_phone_and_show_where_the_focus_is(browser: Browser) -> None:
    browser.sign_in()
    browser.viewport(*PHONE, mobile=True)
    try:
        for path in ("/", "/runs", "/flows/wismo", "/conversations", "/chat"):
            browser.get(f"{BASE}{path}")
            width = browser.driver.execute_script("return document.documentElement.scrollWidth")
            assert width <= PHONE[0], f"{path} is {width} px wide on a {PHONE[0]} px phone"
    finally:
        browser.viewport(1280, 900)
    from selenium.webdriver.common.keys import Keys

    browser.find("body").send_keys(Keys.TAB)
    focused = browser.driver.switch_to.active_element
    assert focused.text == "Skip to the content"
    assert focused.value_of_css_property("outline-style") != "none"


def chat_turn(browser: Browser, message: str, count: int) -> Any:
    """Type ``message`` in the test chat, send it, and wait for the ``count``-th turn's answer."""
    box = browser.find("#text")
    box.send_keys(message)
    browser.find("#chat button[type=submit]").click()
    wait_until(
        lambda: (
            len(browser.all("#log > li.turn")) == count
            and not browser.find("#text").get_attribute("value")
        ),
        what=f"turn {count} in the log",
        detail=lambda: browser.find("#log").text,
    )
    turn = browser.all("#log > li.turn")[-1]
    assert message in turn.find_element("css selector", ".bubble.customer").text
    return turn


def test_a_three_turn_test_chat_then_its_transcript_and_one_turns_run(browser: Browser) -> None:
    browser.sign_in(path="/chat")
    assert browser.find("#dry-run").is_selected()  # a dry run unless turned off
    conversation = browser.find("#conversation-id").text
    first = chat_turn(browser, "hi, where's my stuff??", 1)
    assert "What's your order number?" in first.find_element("css selector", ".bubble.bot").text
    meta = first.find_element("css selector", ".meta").text
    assert "waiting" in meta and "intent wismo" in meta and "dry run" in meta
    assert first.find_element("css selector", ".confidence").text.endswith("%")
    trace = first.find_element("css selector", ".trace").text
    assert "find (find_order)" in trace and "find.ask_order_number (ask)" in trace
    # While the conversation waits, its mode is fixed: the switch shows it and cannot change.
    assert not browser.find("#dry-switch input[type=checkbox]").is_enabled()

    second = chat_turn(browser, "no idea", 2)
    assert "couldn't find an order number" in second.text and "intent" not in second.text
    third = chat_turn(browser, "it's ord 1003", 3)
    assert "on its way with UPS" in third.text and "completed" in third.text
    assert "find.by_number (http 200)" in third.find_element("css selector", ".trace").text
    assert browser.find("#dry-run").is_enabled()  # ended: the next message starts afresh
    assert browser.find("#conversation-id").text == conversation

    browser.get(f"{BASE}/conversations")
    row = next(r for r in browser.all("tr.conversation-row") if conversation in r.text)
    assert "completed" in row.text and "wismo" in row.text and "%" in row.text
    browser.follow(row.find_element("css selector", f"a[href$='/conversations/{conversation}']"))
    transcript = browser.find(".transcript").text
    places = [transcript.index(m) for m in ("where's my stuff", "no idea", "it's ord 1003")]
    assert places == sorted(places)
    assert len(browser.all(".transcript .run-link")) == 3
    browser.follow(browser.all(".transcript .run-link")[1])
    assert browser.path().startswith(f"{BASE}/runs/")
    assert "waiting" in browser.find("h1").text
    back = browser.find("a.conversation-link")
    assert back.text == conversation and "turn 2" in back.find_element("xpath", "..").text
    browser.follow(back)
    assert browser.path() == f"{BASE}/conversations/{conversation}"


def test_a_handoff_in_the_test_chat_shows_its_reason_and_note(browser: Browser) -> None:
    browser.sign_in(path="/chat")
    turn = chat_turn(browser, "can I talk to a real person please", 1)
    handoff = turn.find_element("css selector", ".handoff").text
    assert "customer_asked" in handoff and "The customer asked to talk to a person." in handoff
    assert "intent handoff" in turn.text
    browser.follow(turn.find_element("css selector", ".transcript-link"))
    assert "Handed to a person: customer_asked" in browser.find(".alert.handoff").text


def test_the_test_chat_context_starts_a_conversation_with_what_the_platform_knows(
    browser: Browser,
) -> None:
    browser.sign_in(path="/chat")
    browser.find("#context").send_keys("email=shipped@demo.shop")
    turn = chat_turn(browser, "where is my order?", 1)
    assert "ORD-1003" in turn.text and "completed" in turn.text  # found by email, not asked
    # The field survives the turn's swap, ready for the next conversation.
    assert browser.find("#context").get_attribute("value") == "email=shipped@demo.shop"


def test_the_test_chat_page_logs_no_error_and_stays_on_loopback(browser: Browser) -> None:
    browser.sign_in(path="/chat")
    browser.errors()
    browser.requests.clear()
    chat_turn(browser, "where is my order ORD-1003", 1)
    browser.drain()
    assert any(url.endswith("/console/chat") for url in browser.requests)
    assert [url for url in browser.requests if leaves_loopback(url)] == []
    assert browser.errors() == []
