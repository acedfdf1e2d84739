"""Starting the real bundle under gunicorn for end-to-end tests, on a free loopback port."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Answer:
    """A response read off the wire, shaped like falcon's test `Result` so `assert_canonical_error` takes it."""

    status_code: int
    headers: dict[str, str]  # names in lower case
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")

    @property
    def json(self):
        return json.loads(self.body)


@dataclass
class Server:
    port: int
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def send(self, method: str, path: str, body: bytes | None = None, headers=None,
             timeout: float = 30) -> Answer:
        """One request with exactly these bytes; the whole answer, headers included."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return Answer(response.status, {name.lower(): value for name, value in response.getheaders()},
                          response.read())
        finally:
            connection.close()

    def busiest_worker(self) -> int:
        """The worker holding the most sockets, i.e. the most client connections (Linux /proc)."""
        def sockets(pid: int) -> int:
            count = 0
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):  # closed meanwhile
                    count += os.readlink(fd).startswith("socket:")
            return count
        return max(self.worker_pids(), key=sockets)

    def worker_serving(self, client_port: int) -> int | None:
        """The worker holding the server's end of the connection from this client port (Linux /proc)."""
        inode = None
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            local_port, remote_port = (int(address.rpartition(":")[2], 16) for address in fields[1:3])
            if (local_port, remote_port) == (self.port, client_port):
                inode = fields[9]
        for pid in self.worker_pids():
            with contextlib.suppress(OSError):
                if any(os.readlink(fd) == f"socket:[{inode}]" for fd in Path(f"/proc/{pid}/fd").iterdir()):
                    return pid
        return None

    def worker_pids(self) -> set[int]:
        """The pids of gunicorn's workers: the master's children (read from /proc, so Linux only)."""
        pids = set()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:  # gone meanwhile
                continue
            # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ")".
            if int(stat.rpartition(")")[2].split()[1]) == self.process.pid:
                pids.add(int(entry.name))
        return pids

    def request(self, method: str, path: str, body=None, headers=None) -> tuple[int, dict]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            payload = json.dumps(body).encode() if body is not None else None
            all_headers = {"Content-Type": "application/json"} if payload is not None else {}
            connection.request(method, path, body=payload, headers=all_headers | (headers or {}))
            response = connection.getresponse()
            return response.status, json.loads(response.read() or b"null")
        finally:
            connection.close()


@contextlib.contextmanager
def gunicorn(database_url: str, env: dict[str, str], workers: int = 2, port: int | None = None,
             checkout: Path = REPO) -> Iterator[Server]:
    """Migrate the database, serve the mount with the project's gunicorn config, stop it afterwards.
    `port` lets a test bring a server up where a client was already trying to reach one; `checkout`
    serves the code of another copy of the project (a release with a changed page, say)."""
    port = port or free_port()
    # Temporal off unless a test says otherwise: a dev server on this machine is none of the test's business.
    full_env = os.environ | {"TEMPORAL_ADDRESS": "off"} | env | {
        "DATABASE_URL": database_url, "DASHBOARD_PORT": str(port), "DASHBOARD_WORKERS": str(workers)}
    subprocess.run([sys.executable, "-m", "deploy.prepare"], cwd=REPO, env=full_env, check=True,
                   capture_output=True)
    # The log goes to a file, not a pipe: nobody reads a pipe while the test runs, and a full one
    # would block gunicorn mid-request.
    log_path = (Path(database_url.removeprefix("sqlite:///")).with_suffix(".gunicorn.log")
                if database_url.startswith("sqlite:") else Path(tempfile.mkdtemp()) / "gunicorn.log")
    with log_path.open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py"],
                                   cwd=checkout, env=full_env, stdout=log, stderr=subprocess.STDOUT)
    server = Server(port, process, log_path)
    try:
        _wait_until_serving(server, workers)
        yield server
    finally:
        stop(process, timeout=15)


@contextlib.contextmanager
def temporal_worker(database_url: str, env: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen]:
    """The dashboard's Temporal worker (`python -m worker`) as `make run` starts it, stopped afterwards."""
    with log_path.open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "worker"], cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                   env=os.environ | env | {"DATABASE_URL": database_url})
    try:
        yield process
    finally:
        stop(process, timeout=30)


def stop(process: subprocess.Popen, timeout: float) -> None:
    """SIGTERM, and SIGKILL if it has not exited within `timeout` seconds."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _wait_until_serving(server: Server, workers: int, timeout: float = 20.0) -> None:
    """Until the server answers and every worker is forked: on a loaded machine the last workers come up
    after the first answers, and a test that acts on "the workers" (limits them, kills one) must see them all."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {server.process.returncode}:\n{server.log()}")
        try:
            if server.request("GET", "/api/health")[0] == 200 and len(server.worker_pids()) >= workers:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("gunicorn did not start serving in time")
