"""A listening socket for csflow's servers (``csflow serve``, Demo Shop), bound up front.

Binding before uvicorn starts means port 0's real port is known at once, and a port that is
taken is one plain error here ("cannot listen on 127.0.0.1:8765: address already in use"),
rather than uvicorn's ``sys.exit()`` from inside a server thread or a traceback.
"""

from __future__ import annotations

import socket


class ListenError(OSError):
    """The address cannot be listened on; the message says which and why, for a person."""


def listen_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (IPv6 when the host has a colon); ListenError."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    shown = f"[{host}]" if ":" in host else host
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except (OSError, OverflowError) as exc:  # OverflowError: a port beyond 65535
        sock.close()
        error = ListenError(f"cannot listen on {shown}:{port}: {_why(exc)}")
        error.errno = getattr(exc, "errno", None)
        raise error from exc
    return sock


def _why(exc: BaseException) -> str:
    # "Address already in use" reads as the middle of a sentence here: lower-case it.
    text = getattr(exc, "strerror", None) or str(exc)
    return text[:1].lower() + text[1:]
