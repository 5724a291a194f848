"""The floor of serving: a bare Starlette endpoint answering a Zipchat-shaped request, no run.

``python -m bench.bare_starlette`` listens on a free port of 127.0.0.1 with the uvicorn
settings ``csflow serve`` uses (httptools, uvloop, no access log) and prints the line
``{"message": "serving", "url": ...}`` on stderr, as ``csflow serve`` does, so that
bench/serve.py drives both the same way. The endpoint checks ``x-api-key``, reads the two
query parameters and answers the JSON Zipchat expects: what any server must do per request.
"""

from __future__ import annotations

import json
import os
import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

KEY = os.environ.get("ZIPCHAT_API_KEY", "bench-zipchat-key")


async def order(request: Request) -> Response:
    if request.headers.get("x-api-key") != KEY:
        return Response(b"", 401, media_type="application/json")
    order_id = request.query_params.get("order_id")
    email = request.query_params.get("customer_email")
    if not order_id or not email:
        return JSONResponse({"context": "order_id and customer_email are needed"}, 400)
    return JSONResponse(
        {
            "context": f"Order {order_id} shipped, tracking 1Z999AA10123456784.",
            "tracking_url": "https://track.example/1Z999AA10123456784",
        }
    )


def main() -> None:
    from csflow.serve.server import bind, uvicorn_config

    app = Starlette(routes=[Route("/zipchat/order", order, methods=["GET"])])
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn_config(app, "127.0.0.1", 0, log_config=None))
    port = sock.getsockname()[1]
    sock.listen(2048)  # connections wait in the backlog until uvicorn accepts them
    print(json.dumps({"message": "serving", "url": f"http://127.0.0.1:{port}"}), file=sys.stderr)
    sys.stderr.flush()
    server.run(sockets=[sock])


if __name__ == "__main__":
    main()
