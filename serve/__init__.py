"""Inbound channels (spec §9): chat platforms call csflow's flows over their own protocols.

``load_channels(project_root, environ)`` reads and checks ``channels.yaml``;
``create_app(project_root, environ)`` is the ASGI app that ``csflow serve`` runs (in
``adapters.channels.app``, with ``create_app_from_env`` as uvicorn's factory). One module per
platform: ``generic``, ``zipchat``, ``coffield``, ``order_lookup``.
"""

from csflow.serve.config import Channels, Tenant, load_channels

__all__ = ["Channels", "Tenant", "load_channels"]
