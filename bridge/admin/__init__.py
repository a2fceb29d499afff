"""The admin HTTP API of a node (aiohttp): `/livez`, `/readyz`, `/metrics`, `/api/v1`
and the admin page at `/`."""

from bridge.admin.server import build_app, serve_admin
from bridge.admin.state import STATE, AdminState

__all__ = ["STATE", "AdminState", "build_app", "serve_admin"]
