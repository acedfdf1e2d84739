"""A real opencode for tests: the pinned `opencode-ai` npm package, run as `opencode serve` in a throw-away
HOME, with the dashboard's plugin installed as the README tells a user, talking to a scripted model on
loopback (tests/scripted_model.py).

- **Installed** by `make opencode` (`.ci/run` does it) into `.opencode-ci/` (git-ignored), at the versions
  `tests/opencode/package.json` pins; `OPENCODE_BIN` names another binary instead. Missing, its tests
  skip, saying how to get it — but fail under `CI=1`, where skipping would hide them.
- **Isolated**: HOME and the XDG folders are the test's; the auto-update, sharing, LSP downloads and the
  models.dev fetch are off, and opencode is started with a clean environment (no inherited keys).
- **Offline**: at start-up opencode installs `@opencode-ai/plugin` into each of its config folders unless
  `node_modules` is there and `package-lock.json` lists what `package.json` asks for (its `Npm.install`);
  offline that install retries for about 70 s. `preinstall_plugin_package` puts the pinned copy there.
- **Bounded**: every wait has a deadline, and the process group is killed on the way out (an opencode
  whose model answers 500 retries for ever).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.processes import REPO, free_port

PACKAGES = json.loads((REPO / "tests" / "opencode" / "package.json").read_text())["dependencies"]
PINNED_VERSION = PACKAGES["opencode-ai"]
INSTALL_DIR = REPO / ".opencode-ci"
INSTALLED_BINARY = INSTALL_DIR / "node_modules" / ".bin" / "opencode"

# Off: what would reach the network or change the install behind the test's back.
QUIET = {"OPENCODE_DISABLE_AUTOUPDATE": "1", "OPENCODE_DISABLE_SHARE": "1", "OPENCODE_DISABLE_LSP_DOWNLOAD": "1",
         "OPENCODE_DISABLE_MODELS_FETCH": "1"}
START_TIMEOUT_S = 180  # a first start on a loaded machine; about 5 s when nothing else runs


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def opencode_binary() -> Path:
    """The pinned opencode, or a skip saying how to get it (a failure under CI=1)."""
    named = os.environ.get("OPENCODE_BIN")
    binary = Path(named) if named else INSTALLED_BINARY
    problem = None
    if not binary.exists():
        problem = f"opencode is not installed ({binary} is missing): `make opencode` installs {PINNED_VERSION}"
    else:
        with tempfile.TemporaryDirectory() as home:  # even --version may write under HOME
            version = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=120,
                                     env=isolated_env(Path(home))).stdout.strip()
        if version != PINNED_VERSION:
            problem = f"{binary} is opencode {version or '?'}, not the pinned {PINNED_VERSION}: run `make opencode`"
    if problem:
        if in_ci():
            pytest.fail(f"{problem} — CI must run the real-opencode test (.ci/run installs it)")
        pytest.skip(problem)
    return binary


def isolated_env(home: Path) -> dict[str, str]:
    """A clean environment for opencode: its HOME and XDG folders under `home`, nothing inherited but PATH."""
    return {"PATH": os.environ["PATH"], "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_DATA_HOME": str(home / ".local" / "share"), "XDG_STATE_HOME": str(home / ".local" / "state"),
            "XDG_CACHE_HOME": str(home / ".cache"), "LANG": "C.UTF-8", **QUIET}


def readme_install_commands() -> list[str]:
    """The shell lines that install the plugin, as the README gives them to a user: the `mkdir` and `cp`
    lines of the first `sh` block that copies `hooks/` into an opencode `plugin/` folder."""
    blocks = re.findall(r"```sh\n(.*?)```", (REPO / "README.md").read_text(), flags=re.DOTALL)
    for block in blocks:
        lines = [line.split("#", 1)[0].strip() for line in block.splitlines()]
        commands = [line for line in lines if line.startswith(("mkdir ", "cp "))]
        if any(line.startswith("cp hooks/") and "opencode/plugin" in line for line in commands):
            return commands
    raise AssertionError("the README has no `sh` block that copies hooks/ into opencode's plugin folder")


def install_plugin_as_the_readme_says(env: dict[str, str]) -> list[str]:
    """Run the README's install lines from the checkout, with the test's HOME; the commands run."""
    commands = readme_install_commands()
    for command in commands:
        subprocess.run(["bash", "-euc", command], cwd=REPO, env=env, check=True, timeout=60)
    return commands


def preinstall_plugin_package(config_dir: Path) -> None:
    """What opencode would otherwise install into `config_dir` at start-up (`@opencode-ai/plugin`, from
    the network): the pinned install's manifest, lock and packages."""
    config_dir.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copy(INSTALL_DIR / name, config_dir / name)
    (config_dir / "node_modules").symlink_to(INSTALL_DIR / "node_modules", target_is_directory=True)


def write_project(project: Path, model_url: str, permission: dict[str, str]) -> None:
    """A git project whose opencode.json points opencode at the scripted model (with prices, so messages
    have a cost) and sets the permissions."""
    project.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(project)], check=True, timeout=60)
    config = {
        "$schema": "https://opencode.ai/config.json",
        "provider": {"scripted": {"npm": "@ai-sdk/openai-compatible", "name": "Scripted",
                                  "options": {"baseURL": model_url, "apiKey": "not-a-key"},
                                  "models": {"scripted-1": {"name": "Scripted 1",
                                                            "cost": {"input": 3, "output": 15}}}}},
        "model": "scripted/scripted-1", "small_model": "scripted/scripted-1",
        "permission": permission,
    }
    (project / "opencode.json").write_text(json.dumps(config, indent=2))


@dataclass
class Seen:
    at: float  # time.monotonic() when the test read it
    wall: float  # time.time() then
    event: dict[str, Any]

    @property
    def type(self) -> str:
        return self.event.get("type", "")

    @property
    def properties(self) -> dict[str, Any]:
        return self.event.get("properties") or {}


@dataclass
class EventLog:
    """Everything opencode publishes on `GET /event` (SSE), read by a thread, each with when it arrived."""

    port: int
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Condition = field(default_factory=threading.Condition)
    error: BaseException | None = None

    def start(self) -> EventLog:
        threading.Thread(target=self._read, name="opencode-events", daemon=True).start()
        self.wait_for(lambda e: e.type == "server.connected", timeout=60, what="opencode's event stream")
        return self

    def _read(self) -> None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/event", timeout=3600) as stream:
                for raw in stream:
                    line = raw.decode(errors="replace").rstrip("\r\n")
                    if line.startswith("data:"):
                        with self.lock:
                            self.seen.append(Seen(time.monotonic(), time.time(), json.loads(line[5:])))
                            self.lock.notify_all()
        except BaseException as error:  # the process ended; the waits report it
            with self.lock:
                self.error = error
                self.lock.notify_all()

    def events(self, type_: str | None = None) -> list[Seen]:
        with self.lock:
            return [seen for seen in self.seen if type_ is None or seen.type == type_]

    def wait_for(self, matches: Callable[[Seen], bool], timeout: float, what: str) -> Seen:
        """The first event (seen so far or to come) that `matches`."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                found = next((seen for seen in self.seen if matches(seen)), None)
                if found is not None:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.error is not None:
                    types = [seen.type for seen in self.seen][-30:]
                    raise AssertionError(f"opencode never sent {what} within {timeout} s"
                                         f" (stream: {self.error!r}; last events: {types})")
                self.lock.wait(min(remaining, 1.0))


@dataclass
class Opencode:
    port: int
    process: subprocess.Popen
    log_path: Path
    events: EventLog | None = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def asked_at(self, request_id: str) -> float | None:
        """When opencode logged that it asks the person (`message=asking id=<request id>`), Unix seconds:
        its own clock, a little before its event stream says so."""
        found = re.search(rf"^timestamp=(\S+) .*message=asking id={re.escape(request_id)}\b", self.log(),
                          flags=re.MULTILINE)
        return datetime.fromisoformat(found.group(1).replace("Z", "+00:00")).timestamp() if found else None

    def call(self, method: str, path: str, body: Any = None, timeout: float = 60) -> Any:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method,
                                         data=None if body is None else json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            payload = response.read()
        return json.loads(payload) if payload else None


@contextlib.contextmanager
def opencode_serve(binary: Path, project: Path, env: dict[str, str], log_path: Path) -> Iterator[Opencode]:
    """`opencode serve` on a free loopback port in `project`, its event stream read from the start; the
    whole process group is killed afterwards."""
    port = free_port()
    with log_path.open("wb") as log:
        process = subprocess.Popen([str(binary), "--print-logs", "serve", "--hostname", "127.0.0.1",
                                    "--port", str(port)], cwd=project, env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    opencode = Opencode(port, process, log_path)
    try:
        _wait_until_answering(opencode)
        opencode.events = EventLog(port).start()
        yield opencode
    finally:
        _kill_group(process)


def _wait_until_answering(opencode: Opencode) -> None:
    # A request sent while opencode is still starting can hang for a minute, so each try is short.
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if opencode.process.poll() is not None:
            raise RuntimeError(f"opencode exited with {opencode.process.returncode}:\n{opencode.log()}")
        with contextlib.suppress(OSError, urllib.error.URLError):
            opencode.call("GET", "/config", timeout=5)
            return
        time.sleep(0.5)
    raise RuntimeError(f"opencode did not answer within {START_TIMEOUT_S} s:\n{opencode.log()}")


def _kill_group(process: subprocess.Popen) -> None:
    """SIGTERM to opencode and everything it started (the shell tool's commands), then SIGKILL."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=15)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=15)
