"""Inbound channels (spec §9): chat platforms call csflow's flows over their own protocols.

The layer above the engine: it loads projects (``config``), and answers each request through
one pipeline (``endpoint.answer``: authenticate, parse, run within the deadline, render).

- ``config``: reads and checks ``channels.yaml``; ``platforms()`` is the table of platforms.
- ``endpoint``: the pipeline, ``Endpoint`` (what a platform module implements), ``Inbound``
  (a request with a bounded body), ``Answer``.
- ``generic``, ``zipchat``, ``coffield``, ``order_lookup``: one module per platform protocol.
- ``app``: the ASGI app (``create_app``; ``create_app_from_env`` is uvicorn's factory).
- ``server``, ``http_limits``: uvicorn, its settings, and the inbound limits.
- ``runtime`` (keys, deadlines, JSON), ``templates``, ``logs`` (``AccessEntry``), ``openapi``.
"""

from csflow.serve.config import Channels, Tenant, load_channels

__all__ = ["Channels", "Tenant", "load_channels"]
