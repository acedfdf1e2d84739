"""`make run` for a person at a terminal, over the real process (`python -m deploy.run`, Temporal off):
a banner once it serves (where to go, the credentials on the first run, where the logs go), lines for a
person rather than JSON, no INFO line labelled as an error, and Ctrl-C with a browser's stream open ends
the stream cleanly at once instead of holding the stop for gunicorn's graceful timeout."""

from __future__ import annotations

import os
import pty
import signal
import subprocess
import sys
import threading

from tests.processes import REPO, free_port
from tests.sse_client import Stream
from tests.temporal_support import wait_for


class Terminal:
    """A pseudo-terminal for the process's stderr (so it sees a person's terminal), read as it comes."""

    def __init__(self) -> None:
        self.reader, self.writer = pty.openpty()
        self.chunks: list[bytes] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.reader, 65536)
            except OSError:  # the last writer closed
                return
            if not chunk:
                return
            self.chunks.append(chunk)

    @property
    def text(self) -> str:
        return b"".join(self.chunks).decode(errors="replace").replace("\r\n", "\n")


def test_make_run_greets_speaks_plainly_and_stops_at_once_with_a_stream_open(tmp_path):
    port = free_port()
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'dashboard.db'}", "DASHBOARD_PORT": str(port),
           "DASHBOARD_WORKERS": "2", "TEMPORAL_ADDRESS": "off"}
    env.pop("DASHBOARD_LOG_FORMAT", None)
    env.pop("DASHBOARD_TOKEN", None)
    terminal = Terminal()
    process = subprocess.Popen([sys.executable, "-m", "deploy.run"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                               stderr=terminal.writer, text=True)
    os.close(terminal.writer)
    printed: list[str] = []
    reader = threading.Thread(target=lambda: printed.extend(process.stdout), daemon=True)
    reader.start()
    try:
        wait_for(lambda: any("Ctrl-C stops everything" in line for line in printed), timeout=60,
                 what="the banner")
        output = "".join(printed)
        [token] = [line.split(": ")[-1].strip() for line in printed if "Sign in there with your dashboard" in line]
        assert f"OpenCode Dashboard is up: http://127.0.0.1:{port}" in output
        assert "Your agents' API key (DASHBOARD_API_KEY): " in output
        assert "Logs: this terminal (text lines" in output

        stream = Stream(port, headers={"Authorization": f"Bearer {token}"}).subscribed()  # a browser's tab
        process.send_signal(signal.SIGINT)  # Ctrl-C
        frames = list(stream.frames())  # read to its end: a clean end of the response, not a reset connection
        stream.close()
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    reader.join(10)
    terminal.thread.join(10)
    logged = terminal.text
    assert all(frame.event != "reset" for frame in frames)
    assert "INFO gunicorn: Booting worker" in logged  # a line for a person, not JSON
    assert not any(line.lstrip().startswith("{") for line in logged.splitlines())
    assert "gunicorn.error" not in logged
    assert "INFO access" in logged and "GET /api/stream 200" in logged  # the stream ended, and was logged
    assert "gunicorn: stopped after" in logged and "killing it" not in logged and "Traceback" not in logged
