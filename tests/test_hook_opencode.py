"""The plugin inside a real opencode, end to end — opt-in, because opencode is a 350 MB download:

    mkdir /tmp/oc && cd /tmp/oc && npm install opencode-ai
    OPENCODE_BIN=/tmp/oc/node_modules/.bin/opencode .venv/bin/python -m pytest tests/test_hook_opencode.py

opencode (`opencode serve`, no model needed) loads hooks/ from a project's `.opencode/plugin/` and its
events must arrive in the dashboard under gunicorn. This is what caught opencode refusing a plugin file
with an export that is not a function.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from tests.processes import REPO, free_port, gunicorn
from tests.support import API_KEY, DASHBOARD, DASHBOARD_TOKEN

OPENCODE = os.environ.get("OPENCODE_BIN") or shutil.which("opencode")

pytestmark = pytest.mark.skipif(not OPENCODE, reason="opencode is not installed (set OPENCODE_BIN to run this check)")


def call(port: int, method: str, path: str, body: dict | None = None) -> tuple[int, dict | None]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, None


def wait_until(check, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.2)
    raise AssertionError("timed out")


def test_a_real_opencode_with_the_plugin_installed_reports_its_sessions_and_messages(tmp_path):
    project, home = tmp_path / "shop", tmp_path / "home"
    (project / ".opencode" / "plugin").mkdir(parents=True)
    home.mkdir()
    # The README's install, into a project: the plugin and the modules it imports, nothing else.
    for source in [REPO / "hooks" / "dashboard-hook.js", *(REPO / "hooks").glob("dashboard-*.mjs")]:
        shutil.copy(source, project / ".opencode" / "plugin" / source.name)
    subprocess.run(["git", "init", "-q", str(project)], check=True)

    env = {"DASHBOARD_API_KEY": API_KEY, "DASHBOARD_TOKEN": DASHBOARD_TOKEN}
    with gunicorn(f"sqlite:///{tmp_path / 'dashboard.db'}", env) as dashboard:
        port = free_port()
        opencode_env = {"PATH": os.environ["PATH"], "HOME": str(home), "DASHBOARD_API_KEY": API_KEY,
                        "DASHBOARD_URL": f"http://127.0.0.1:{dashboard.port}", "DASHBOARD_BATCH_MS": "50",
                        "DASHBOARD_SPOOL_DIR": str(tmp_path / "spool")}
        with (tmp_path / "opencode.log").open("w") as log:
            opencode = subprocess.Popen([OPENCODE, "--print-logs", "serve", "--port", str(port), "--hostname",
                                         "127.0.0.1"], cwd=project, env=opencode_env, stdout=log,
                                        stderr=subprocess.STDOUT)
        try:
            wait_until(lambda: _answers(port), timeout=120)  # a first start, offline, takes a while
            status, session = call(port, "POST", "/session", {"title": "Fix the build"})
            assert status == 200, (tmp_path / "opencode.log").read_text()
            # No model is configured: opencode records the prompt, then fails the turn; both are reported.
            call(port, "POST", f"/session/{session['id']}/message",
                 {"parts": [{"type": "text", "text": "hello"}], "model": {"providerID": "none", "modelID": "none"}})

            def reported():
                _, body = dashboard.request("GET", f"/api/sess/{session['id']}", headers=DASHBOARD)
                return body if "hello" in [message["content"] for message in body.get("messages", [])] else None

            body = wait_until(reported)
        finally:
            opencode.terminate()
            opencode.wait(timeout=20)

    log_text = (tmp_path / "opencode.log").read_text()
    assert "failed to load plugin" not in log_text, log_text
    assert body["session"]["name"] == "Fix the build"
    assert body["session"]["agent_id"] == "opencode-shop"  # and the user's message arrived: see reported()


def _answers(port: int) -> bool:
    try:
        return call(port, "GET", "/config")[0] == 200
    except OSError:
        return False
