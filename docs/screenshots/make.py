"""The console's screenshots in this folder: ``python docs/screenshots/make.py``.

The same pieces as the browser tests (``tests/console/browser.py``): Demo Shop, ``csflow
serve`` of the shipped project with two runs through its generic channel (one fails: the shop
is down), and Debian's headless Chromium. Two conversations go through the test chat first
(one handed to a person, and where is my order over three turns), so the chat is taken
mid-conversation and the conversations pages have something to show. Each page is taken
whole at 1,280 px, and the runs and chat pages once more at a phone's 390 px.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "console")]

from browser import PHONE, Browser, missing, serving_console  # noqa: E402
from console_support import BASE  # noqa: E402
from support import wait_until  # noqa: E402

from csflow.demo import DemoShop  # noqa: E402


def say(browser: Browser, message: str) -> None:
    """Send ``message`` in the test chat and wait for its answer in the log."""
    count = len(browser.all("#log > li.turn"))
    browser.find("#text").send_keys(message)
    browser.find("#chat button[type=submit]").click()
    wait_until(lambda: len(browser.all("#log > li.turn")) > count, what=f"an answer to {message}")
    wait_until(lambda: not browser.find("#text").get_attribute("value"), what="the box cleared")


def shoot(browser: Browser) -> None:
    browser.fresh()
    browser.get(f"{BASE}/login")
    browser.screenshot(HERE / "login.png")
    browser.sign_in(path="/chat")
    say(browser, "can I talk to a real person please")
    browser.get(f"{BASE}/chat")
    conversation = browser.find("#conversation-id").text
    say(browser, "hi, where's my stuff??")
    say(browser, "no idea")
    browser.find("#text").send_keys("it's ord 1003")  # typed, not sent yet
    browser.screenshot(HERE / "chat.png")
    browser.screenshot(HERE / "chat-phone.png", PHONE[0], mobile=True)
    say(browser, "")  # the typed message
    pages = {"flows": "/", "flow": "/flows/wismo", "runs": "/runs"}
    pages["conversations"] = "/conversations"
    pages["conversation"] = f"/conversations/{conversation}"
    for name, path in pages.items():
        browser.get(BASE + path)
        if name == "flow":
            browser.find("#diagram[data-drawn=true] svg")
        browser.screenshot(HERE / f"{name}.png")
    browser.get(f"{BASE}/runs")
    failed = next(r for r in browser.all("tr.run-row") if "failed" in r.text)
    browser.follow(failed.find_element("css selector", "td a"))
    browser.screenshot(HERE / "run.png")
    browser.get(f"{BASE}/runs")
    browser.screenshot(HERE / "runs-phone.png", PHONE[0], mobile=True)


def main() -> int:
    lacking = missing()
    if lacking:
        print(f"needs {', '.join(lacking)}: apt-get install chromium chromium-driver")
        return 1
    with (
        DemoShop() as shop,
        tempfile.TemporaryDirectory() as scratch,
        serving_console(shop, Path(scratch) / "runs.sqlite3") as url,
    ):
        browser = Browser(url)
        try:
            shoot(browser)
        finally:
            browser.close()
    for png in sorted(HERE.glob("*.png")):
        print(png.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
