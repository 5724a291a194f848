"""A real browser on the console: Debian's Chromium through Selenium, and a real ``csflow serve``.

Nothing is downloaded: the driver and the browser are the system's (``apt-get install
chromium chromium-driver``), given to Selenium by path so that Selenium Manager never runs.
Every request the page makes is read from Chrome's performance log (``Network.
requestWillBeSent``), so a test can say that none left loopback.

``docs/screenshots/make.py`` uses the same pieces outside pytest.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from console_support import BASE, CHANNEL_KEYS, PASSWORD, USER
from support import SHIPPED, csflow_running, wait_until

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
DESKTOP = (1280, 900)
PHONE = (390, 844)
LOOPBACK = {"127.0.0.1", "localhost", "[::1]", "::1"}


def missing() -> list[str]:
    """What the browser tests need and this machine lacks."""
    lacking = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        lacking.append("selenium (pip install -e '.[dev]')")
    return lacking


def leaves_loopback(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about"):
        return False
    return parts.hostname not in LOOPBACK


@contextmanager
def serving_console(shop: Any, store: Path, env: Mapping[str, str] | None = None) -> Iterator[str]:
    """``csflow serve`` of the shipped project over ``shop``, recording into ``store``.

    Two runs go through the generic channel first: one that completes and one that fails
    because Demo Shop is down, so the console has a failure to show. Yields the server's URL.
    """
    values = {**shop.env(), **CHANNEL_KEYS, "CSFLOW_STORE": str(store), **(env or {})}
    with csflow_running("serve", "-p", str(SHIPPED), "--port", "0", env=values) as server:
        url = server.wait_for(r'"url": ?"(http://[^"]+)"').group(1)
        admin = httpx.Client(
            base_url=shop.base_url, headers={"Authorization": f"Bearer {shop.token}"}
        )
        api = httpx.Client(
            base_url=url, headers={"x-api-key": CHANNEL_KEYS["CSFLOW_API_KEY"]}, timeout=30
        )
        with admin, api:
            ran = api.post("/v1/flows/wismo/runs", json={"inputs": {"email": "shipped@demo.shop"}})
            assert ran.json()["status"] == "completed", ran.text
            admin.post("/_admin/outage", json={"on": True}).raise_for_status()
            try:
                ran = api.post(
                    "/v1/flows/wismo/runs", json={"inputs": {"email": "shipped@demo.shop"}}
                )
                assert ran.json()["status"] == "failed", ran.text
            finally:
                admin.post("/_admin/outage", json={"on": False}).raise_for_status()
        yield url
        server.stop()


class Browser:
    """One headless Chromium, and every URL its pages asked for (``requests``)."""

    def __init__(self, url: str) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager, were it asked: no network
        self.url = url
        self.requests: list[str] = []
        self._profile = tempfile.TemporaryDirectory(prefix="csflow-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in (
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--disable-extensions", "--disable-default-apps",
            f"--window-size={DESKTOP[0]},{DESKTOP[1]}", f"--user-data-dir={self._profile.name}",
        ):  # fmt: skip
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
        self.viewport(*DESKTOP)

    def close(self) -> None:
        self.driver.quit()
        self._profile.cleanup()

    # ------------------------------------------------------------------ pages

    def get(self, path: str) -> None:
        self.driver.get(self.url + path)
        self.drain()

    def drain(self) -> list[str]:
        """Read the performance log into ``requests``; the URLs new since the last call."""
        new = []
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message["method"] == "Network.requestWillBeSent":
                new.append(message["params"]["request"]["url"])
        self.requests += new
        return new

    def errors(self) -> list[str]:
        """The page's console errors (a refused script, a CSP violation, a failed load)."""
        return [e["message"] for e in self.driver.get_log("browser") if e["level"] == "SEVERE"]

    def find(self, css: str) -> Any:
        from selenium.webdriver.common.by import By

        return wait_until(lambda: self.driver.find_elements(By.CSS_SELECTOR, css), what=css)[0]

    def all(self, css: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        return list(self.driver.find_elements(By.CSS_SELECTOR, css))

    def text(self) -> str:
        return str(self.find("body").text)

    def path(self) -> str:
        parts = urlsplit(self.driver.current_url)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    def wait_for_path(self, path: str) -> None:
        wait_until(lambda: self.path() == path, what=f"the page {path}", detail=self.path)

    def fresh(self) -> None:
        """No session: what a new visitor has."""
        self.driver.get(self.url + BASE + "/static/console.css")  # a page of the cookie's site
        self.driver.delete_all_cookies()

    def sign_in(self, user: str = USER, password: str = PASSWORD, path: str = "/") -> None:
        self.fresh()
        self.get(BASE + path)
        self.submit_sign_in(user, password)

    def submit_sign_in(self, user: str, password: str) -> None:
        name = self.find("#user")
        name.clear()
        name.send_keys(user)
        self.find("#password").send_keys(password)
        self.follow(self.find(".signin button[type=submit]"))

    def follow(self, element: Any) -> None:
        """Click ``element`` and wait for the next page to replace this one."""
        from selenium.common.exceptions import WebDriverException

        page = self.find("html")
        element.click()

        def replaced() -> bool:
            try:
                page.tag_name  # noqa: B018 -- asking is the test: a replaced page is stale
            except WebDriverException:  # stale, or "does not belong to the document" mid-swap
                return True
            return False

        wait_until(replaced, what="the next page", detail=self.path)
        wait_until(lambda: self.driver.execute_script("return document.readyState") == "complete",
                   what="the next page to load")  # fmt: skip
        self.drain()

    # ------------------------------------------------------------------ looks

    def viewport(self, width: int, height: int, *, mobile: bool = False) -> None:
        self.driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
        )

    def screenshot(self, path: Path, width: int = DESKTOP[0], *, mobile: bool = False) -> None:
        """The whole page at ``width`` CSS pixels, as a PNG."""
        import base64

        self.viewport(width, PHONE[1] if mobile else DESKTOP[1], mobile=mobile)
        height = int(self.driver.execute_script("return document.documentElement.scrollHeight"))
        self.viewport(width, max(height, PHONE[1] if mobile else 600), mobile=mobile)
        shot = self.driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png"})
        path.write_bytes(base64.b64decode(shot["data"]))
        self.viewport(*DESKTOP)


__all__ = [
    "CHROMEDRIVER",
    "CHROMIUM",
    "PHONE",
    "Browser",
    "leaves_loopback",
    "missing",
    "serving_console",
]
