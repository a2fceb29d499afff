"""The built-in admin page: `GET /` and its assets under `/page/`, static files that
hold no data (so no token is needed to load them). The page asks for a token and calls
the `/api/v1` endpoints from the browser; it renders every value as text.

The files are served from a fixed list, never from a path the request names, with a
Content-Security-Policy that allows only this origin's script, style and API: a value
in the data that looks like markup cannot run even if a future edit rendered it as HTML.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from aiohttp import web

PAGE_DIR: Final = Path(__file__).with_name("page")
ASSETS: Final = {
    "app.js": "text/javascript",
    "style.css": "text/css",
    "favicon.svg": "image/svg+xml",
}
HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def install_page(app: web.Application) -> None:
    """Add `GET /` and `GET /page/{name}` to `app`. The files are read once, here: a
    package installed without them fails at start, not on the first visit."""
    files = {name: (PAGE_DIR / name).read_bytes() for name in ("index.html", *ASSETS)}

    def send(name: str, content_type: str) -> web.Response:
        return web.Response(
            body=files[name], content_type=content_type, charset="utf-8", headers=HEADERS
        )

    async def index(request: web.Request) -> web.Response:
        """The page itself."""
        return send("index.html", "text/html")

    async def asset(request: web.Request) -> web.Response:
        """One of the page's assets; any other name is 404."""
        name = request.match_info["name"]
        if name not in ASSETS:
            raise web.HTTPNotFound()
        return send(name, ASSETS[name])

    app.router.add_get("/", index)
    app.router.add_get("/page/{name}", asset)
