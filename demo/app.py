"""The ASGI app: REST, SOAP ERP and GraphQL backends of one merchant over one data set."""

from __future__ import annotations

from starlette.applications import Starlette

from csflow.demo.erp import erp_routes
from csflow.demo.graphql_api import graphql_routes, schema
from csflow.demo.rest import rest_routes
from csflow.demo.state import DemoConfig, ShopState


def create_app(config: DemoConfig | None = None) -> Starlette:
    """A new app with its own copy of the seeded data: instances never share state."""
    state = ShopState(config or DemoConfig())
    schema()  # build the GraphQL schema now, not on the first request
    app = Starlette(routes=[*rest_routes(state), *erp_routes(state), *graphql_routes(state)])
    app.state.shop = state  # for tests and embedding code that want to poke at the data
    return app
