"""The dashboard function: the browser page at `/` and its assets under `/assets/...`.

Static files committed under `page/`: plain HTML, CSS and JavaScript modules, no build step and no
CDN. Every file is read once, when the app is built, so a request only ever looks a name up in that
table: no path a client sends reaches the file system.
"""

from __future__ import annotations

from pathlib import Path

import falcon

from functions.dashboard.bundle import Bundle
from functions.dashboard.resources import AssetResource, PageResource
from shared.config import Settings
from shared.web.errors import install_error_handling

# `/` is matched exactly by the mount (it is no catch-all); `/agents/...` are the deep links that push
# notifications open (DASHBOARD_PUBLIC_URL/agents/<agent>?task=<task>).
ROUTE_PREFIXES = ("/", "/assets", "/agents")

PAGE_DIRECTORY = Path(__file__).resolve().parent / "page"


def create_app(settings: Settings | None = None, directory: Path = PAGE_DIRECTORY) -> falcon.App:
    # Static files need neither the database nor a credential (the page asks /api/auth/me itself),
    # so this app skips function_app's middleware and keeps only the one error shape.
    app = falcon.App()
    app.req_options.strip_url_path_trailing_slash = True
    install_error_handling(app)
    bundle = Bundle.load(directory)
    page = PageResource(bundle)
    app.add_route("/", page)
    app.add_route("/agents/{agent_id}", page, suffix="agent")
    app.add_route("/assets/{path:path}", AssetResource(bundle))
    return app
