"""``csflow demo --serve`` prints the console's address and its demo sign-in, and both work."""

from __future__ import annotations

import re
import signal

import httpx
from console_support import csrf_of
from support import csflow_running


def test_demo_serve_prints_the_console_and_a_sign_in_that_works():
    with csflow_running("demo", "--serve", env={}) as proc:
        proc.wait_for("Serving until Ctrl", stream="out", within=30)
        printed = re.search(
            r"(http://127\.0\.0\.1:\d+/console/)\s+sign in as (\w+) / (\S+)", "".join(proc.out)
        )
        assert printed, "".join(proc.out)
        url, user, password = printed.groups()
        with httpx.Client() as client:
            login = client.get(f"{url}login")
            signed = client.post(
                f"{url}login",
                data={"csrf": csrf_of(login.text), "user": user, "password": password},
            )
            assert signed.status_code == 303
            assert "wismo" in client.get(url).text
        code, _, err = proc.stop(signal.SIGINT)
    assert code == 0 and "Traceback" not in err
