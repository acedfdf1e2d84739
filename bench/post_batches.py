"""The counting half of bench/instructions.py, run under callgrind: make a fresh SQLite database, post the
given request bodies to POST /api/events in-process (no HTTP, Temporal off), and turn callgrind's
instrumentation on from the `warm`-th body: only the rest is counted.

Each body is handed to the mounted WSGI app as gunicorn would, in an environ made by falcon.testing, and
not through falcon.testing's client: that wraps the app in wsgiref's validator, which costs a single
event's request about a fifth again of its own work.

    python bench/post_batches.py WARM BODY...

It imports the project from wherever PYTHONPATH points, so that bench/instructions.py --compare can run it
on another commit's code; it imports nothing of bench/ for the same reason."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from falcon import testing

from deploy.mount import create_app
from shared.config import Settings
from shared.store.db import open_database
from shared.store.migrations import migrate


def instrument(on: bool) -> None:
    subprocess.run(["callgrind_control", "-i", "on" if on else "off", str(os.getpid())], check=True,
                   capture_output=True)


def call(app: Any, environ: dict[str, Any]) -> tuple[str, bytes]:
    """Call a WSGI app as a server does: its status line and its body."""
    answered: list[str] = []
    chunks = app(environ, lambda status, _headers, _exc_info=None: answered.append(status))
    try:
        return answered[0] if answered else "", b"".join(chunks)
    finally:
        if hasattr(chunks, "close"):
            chunks.close()


def post(warm: int, bodies: list[Path]) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-post-batches-") as tmp:
        settings = Settings(database_url=f"sqlite:///{tmp}/bench.db", api_key=secrets.token_urlsafe(24),
                            dashboard_token=secrets.token_urlsafe(24), temporal_address=None, log_level="WARNING")
        open_database(settings)
        migrate()
        app = create_app(settings)
        headers = {"Authorization": f"Bearer {settings.api_key}", "Content-Type": "application/json"}
        for position, body in enumerate(bodies):
            if position == warm:
                instrument(True)
            status, answer = call(app, testing.create_environ("/api/events", method="POST", body=body.read_bytes(),
                                                              headers=headers))
            if not status.startswith("202"):
                raise SystemExit(f"POST /api/events answered {status}: {answer.decode()}")
        instrument(False)


if __name__ == "__main__":
    post(int(sys.argv[1]), [Path(path) for path in sys.argv[2:]])
