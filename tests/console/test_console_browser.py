"""The console in a real browser against a real ``csflow serve`` and Demo Shop (issue 13).

Under ``CI=true`` these run or fail: a machine without Chromium is a broken CI, not a reason
to skip (``.ci/run`` installs it). Elsewhere they are skipped with what to install.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from browser import PHONE, Browser, leaves_loopback, missing, serving_console
from console_support import BASE, CHANNEL_KEYS, USER
from csflow.serve.console.chat import can_talk
from support import SHIPPED

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
        for path in ("/", "/runs", "/flows/wismo"):
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


@pytest.mark.skipif(can_talk(Project), reason="Project.say exists: the three-turn test runs")
def test_the_test_chat_says_it_needs_conversations(browser: Browser) -> None:
    browser.sign_in(path="/chat")
    assert "needs conversations" in browser.text()
    assert not browser.find("#text").is_enabled()


@pytest.mark.skipif(not can_talk(Project), reason="the test chat needs Project.say (§12)")
def test_a_three_turn_test_chat_shows_each_turn_and_its_transcript(browser: Browser) -> None:
    browser.sign_in(path="/chat")
    messages = ["Hi, where is my order?", "ORD-1003", "shipped@demo.shop"]
    for count, message in enumerate(messages, start=1):
        box = browser.find("#text")
        box.send_keys(message)
        browser.find("#chat button[type=submit]").click()
        turns = browser.driver.find_elements("css selector", "#log > li.turn")
        from support import wait_until

        wait_until(
            lambda n=count: (
                len(browser.driver.find_elements("css selector", "#log > li.turn")) == n
            ),
            what=f"turn {count} in the log",
        )
        turns = browser.all("#log > li.turn")
        assert message in turns[-1].text and turns[-1].find_elements("css selector", ".badge")
    assert "dry run" in browser.find("#log").text
    browser.follow(browser.find("#log > li.turn:last-child a[href*='/conversations/']"))
    transcript = browser.text()
    assert all(message in transcript for message in messages)
