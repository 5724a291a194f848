"""Demo Shop: a realistic merchant (REST orders, SOAP ERP, GraphQL subscriptions) for csflow."""

from __future__ import annotations

from csflow.demo.app import create_app
from csflow.demo.server import DemoShop, serve
from csflow.demo.state import DemoConfig

__all__ = ["DemoConfig", "DemoShop", "create_app", "serve"]
