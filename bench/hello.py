"""A bare Falcon app answering {"ok": true}: the stack floor that bench/ingest.py compares ingest with.

Served as `gunicorn -c deploy/gunicorn.conf.py bench.hello:app`; the positional app overrides the
config's `wsgi_app`, so everything else (workers, threads, keep-alive) stays the production setting.
"""

from __future__ import annotations

import falcon

HELLO_PATH = "/hello"


class Hello:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"ok": True}

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        # Read the body as ingest does, so both servers pay for receiving the same bytes.
        req.bounded_stream.read()
        resp.media = {"ok": True}


app = falcon.App()
app.add_route(HELLO_PATH, Hello())
