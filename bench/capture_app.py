"""The real mount, keeping a copy of each POST /api/events body in BENCH_CAPTURE_DIR, named by the time it
came (bench/instructions.py serves it: `gunicorn ... bench.capture_app:app`). The shipped hook sends one
request at a time, so the names sort in the order it sent them."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

from deploy.mount import create_app

_mount = create_app()
_capture_dir = Path(os.environ["BENCH_CAPTURE_DIR"])


def app(environ, start_response):
    if environ["REQUEST_METHOD"] == "POST" and environ["PATH_INFO"] == "/api/events":
        body = environ["wsgi.input"].read()
        (_capture_dir / f"{time.monotonic_ns():020d}-{os.getpid()}.json").write_bytes(body)
        environ["wsgi.input"] = io.BytesIO(body)
    return _mount(environ, start_response)
