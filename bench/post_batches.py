"""The counting half of bench/instructions.py, run under callgrind: make a fresh SQLite database, post the
given request bodies to POST /api/events in-process (falcon.testing, no HTTP, Temporal off), and turn
callgrind's instrumentation on from the `warm`-th body: only the rest is counted.

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

from falcon import testing

from deploy.mount import create_app
from shared.config import Settings
from shared.store.db import open_database
from shared.store.migrations import migrate


def instrument(on: bool) -> None:
    subprocess.run(["callgrind_control", "-i", "on" if on else "off", str(os.getpid())], check=True,
                   capture_output=True)


def post(warm: int, bodies: list[Path]) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-post-batches-") as tmp:
        settings = Settings(database_url=f"sqlite:///{tmp}/bench.db", api_key=secrets.token_urlsafe(24),
                            dashboard_token=secrets.token_urlsafe(24), temporal_address=None, log_level="WARNING")
        open_database(settings)
        migrate()
        client = testing.TestClient(create_app(settings))
        headers = {"Authorization": f"Bearer {settings.api_key}", "Content-Type": "application/json"}
        for position, body in enumerate(bodies):
            if position == warm:
                instrument(True)
            answer = client.simulate_post("/api/events", body=body.read_bytes(), headers=headers)
            if answer.status_code != 202:
                raise SystemExit(f"POST /api/events answered {answer.status_code}: {answer.text}")
        instrument(False)


if __name__ == "__main__":
    post(int(sys.argv[1]), [Path(path) for path in sys.argv[2:]])
