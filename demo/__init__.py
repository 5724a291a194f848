"""Demo Shop: a realistic merchant (REST orders, SOAP ERP, GraphQL subscriptions) for csflow."""

from __future__ import annotations

from demo.app import create_app
from demo.server import DemoShop, serve
from demo.state import DemoConfig

__all__ = ["DemoConfig", "DemoShop", "create_app", "serve"]
