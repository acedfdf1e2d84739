"""The web functions' and cron job's way to Temporal: start a task's workflow, signal it, check health.

Falcon code is synchronous; the Temporal client is asyncio. Each process keeps one client per address
on a background event-loop thread (`TemporalGateway`), and a sync call waits for its result at most
TEMPORAL_RPC_TIMEOUT_S. A circuit breaker keeps Temporal's outages from costing every request that
timeout: after a failure, calls fail at once for TEMPORAL_RETRY_AFTER_S, then one call tries again.
Nothing here touches the database; callers record what happened (see shared.jobs.workflow_starts).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Collection
from datetime import timedelta
from typing import Any, TypeVar

from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from shared.agents.task_workflow import QUERY_VIEW, WORKFLOW_NAME, TaskWorkflowInput, task_workflow_id
from shared.config import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")

# RPC failures that mean "Temporal is not answering" (trip the breaker), as opposed to an answer
# about the workflow (not found, already started) which says Temporal is fine.
OUTAGE_CODES = {RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED,
                RPCStatusCode.UNKNOWN, RPCStatusCode.INTERNAL, RPCStatusCode.RESOURCE_EXHAUSTED}


# Starts in flight at once for a batch, and the time each adds to the batch's wait: a quiet dev server
# starts ~300 a second, a loaded 2-core machine ~35; the budget allows 20, so a busy machine is not
# mistaken for a Temporal that does not answer.
CONCURRENT_STARTS = 64
START_BUDGET_S = 0.05


class TemporalUnavailable(RuntimeError):
    """Temporal did not answer (or the breaker is open after it recently did not)."""


class TemporalGateway:
    """One Temporal client on a background event loop, usable from any thread of this process."""

    def __init__(self, address: str, namespace: str, rpc_timeout_s: float, retry_after_s: float):
        self.address = address
        self.namespace = namespace
        self.rpc_timeout_s = rpc_timeout_s
        self.retry_after_s = retry_after_s
        self.last_error: str | None = None
        self._open_until = 0.0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: Client | None = None

    @property
    def breaker_open(self) -> bool:
        return time.monotonic() < self._open_until

    def call(self, operation: Callable[[Client], Awaitable[T]], extra_s: float = 0.0) -> T:
        """Run `operation(client)` on the gateway's loop and wait for it (one RPC's timeout, plus
        `extra_s` for an operation of many RPCs); TemporalUnavailable on an outage."""
        if self.breaker_open:
            raise TemporalUnavailable(f"Temporal at {self.address} is unavailable: {self.last_error}")
        future = asyncio.run_coroutine_threadsafe(self._with_client(operation), self._running_loop())
        try:
            result = future.result(timeout=self.rpc_timeout_s + 0.5 + extra_s)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise self._trip("no answer within the timeout") from None
        except RPCError as error:
            if error.status in OUTAGE_CODES:
                raise self._trip(f"{error.status.name}: {error.message}") from None
            raise
        except (RuntimeError, OSError, TimeoutError) as error:  # the client's connect failures
            raise self._trip(str(error)) from None
        self.last_error = None
        return result

    def _trip(self, reason: str) -> TemporalUnavailable:
        self.last_error = reason
        self._open_until = time.monotonic() + self.retry_after_s
        self._client = None  # reconnect next time: the old channel may be stuck
        log.warning("Temporal at %s unavailable (%s); retrying in %.0f s", self.address, reason, self.retry_after_s)
        return TemporalUnavailable(f"Temporal at {self.address} is unavailable: {reason}")

    async def _with_client(self, operation: Callable[[Client], Awaitable[T]]) -> T:
        if self._client is None:
            self._client = await asyncio.wait_for(
                Client.connect(self.address, namespace=self.namespace, connect_timeout=self.rpc_timeout),
                self.rpc_timeout_s)
        return await operation(self._client)

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name=f"temporal-{self.address}", daemon=True).start()
                self._loop = loop
            return self._loop

    @property
    def rpc_timeout(self) -> timedelta:
        return timedelta(seconds=self.rpc_timeout_s)


_gateways: dict[tuple[int, str, str], TemporalGateway] = {}
_gateways_lock = threading.Lock()


def gateway(settings: Settings) -> TemporalGateway | None:
    """This process's gateway to `settings`' Temporal (None when TEMPORAL_ADDRESS is off).

    Keyed by pid too: a gunicorn worker forked from a parent that had one gets its own loop thread."""
    if settings.temporal_address is None:
        return None
    key = (os.getpid(), settings.temporal_address, settings.temporal_namespace)
    with _gateways_lock:
        if key not in _gateways:
            _gateways[key] = TemporalGateway(settings.temporal_address, settings.temporal_namespace,
                                             settings.temporal_rpc_timeout_s, settings.temporal_retry_after_s)
        return _gateways[key]


def workflow_input(settings: Settings, agent_id: str, task_id: str) -> TaskWorkflowInput:
    return TaskWorkflowInput(agent_id=agent_id, task_id=task_id, blocked_after_high_s=settings.blocked_after_high_s,
                             blocked_after_low_s=settings.blocked_after_low_s,
                             monitor_interval_s=settings.monitor_interval_s)


def start_task_workflows(settings: Settings, tasks: list[tuple[str, str]], finished: Collection[str] = ()) -> list[str]:
    """Start the workflow of each (agent_id, task_id), all at once; the task ids whose workflow now
    exists (a running one counts). Raises TemporalUnavailable when Temporal does not answer.

    A workflow that finished under the same id is run again for an open task: the database forgot it
    (restored from a backup, started afresh) and the task must be watched. Never for a task in `finished`:
    its workflow has done its work, `completed` rules included, and must not do it twice."""
    temporal = gateway(settings)
    if temporal is None:
        raise TemporalUnavailable("TEMPORAL_ADDRESS is off")

    async def start_one(client: Client, agent_id: str, task_id: str) -> str:
        with contextlib.suppress(WorkflowAlreadyStartedError):  # starting a running one again is harmless
            await client.start_workflow(
                WORKFLOW_NAME, workflow_input(settings, agent_id, task_id), id=task_workflow_id(agent_id, task_id),
                task_queue=settings.temporal_task_queue,
                # Each start may wait behind the others in flight before the server takes it up.
                rpc_timeout=temporal.rpc_timeout + timedelta(seconds=CONCURRENT_STARTS * START_BUDGET_S),
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE if task_id in finished
                else WorkflowIDReusePolicy.ALLOW_DUPLICATE)
        return task_id

    async def start_all(client: Client) -> list[str]:
        limit = asyncio.Semaphore(CONCURRENT_STARTS)

        async def start_limited(agent_id: str, task_id: str) -> str:
            async with limit:
                return await start_one(client, agent_id, task_id)

        return list(await asyncio.gather(*(start_limited(agent, task) for agent, task in tasks)))

    # A batch of many new tasks takes longer than one start.
    return temporal.call(start_all, extra_s=len(tasks) * START_BUDGET_S) if tasks else []


def signal_task_workflow(settings: Settings, agent_id: str, task_id: str, signal: str, *args: Any) -> bool:
    """Send `signal` to the task's workflow: True if delivered, False if no such workflow is running.
    Raises TemporalUnavailable when Temporal does not answer."""
    temporal = gateway(settings)
    if temporal is None:
        raise TemporalUnavailable("TEMPORAL_ADDRESS is off")

    async def send(client: Client) -> bool:
        handle = client.get_workflow_handle(task_workflow_id(agent_id, task_id))
        try:
            await handle.signal(signal, args=list(args), rpc_timeout=temporal.rpc_timeout)
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        return True

    return temporal.call(send)


def query_task_workflow(settings: Settings, agent_id: str, task_id: str) -> dict[str, Any] | None:
    """The workflow's own view (status, blocked_since, blocked_reason, runs), or None if it has none."""
    temporal = gateway(settings)
    if temporal is None:
        raise TemporalUnavailable("TEMPORAL_ADDRESS is off")

    async def ask(client: Client) -> dict[str, Any] | None:
        handle = client.get_workflow_handle(task_workflow_id(agent_id, task_id))
        try:
            return await handle.query(QUERY_VIEW, rpc_timeout=temporal.rpc_timeout)
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                return None
            raise

    return temporal.call(ask)


def temporal_health(settings: Settings) -> dict[str, Any]:
    """For /api/health: whether Temporal answers (never raises)."""
    if settings.temporal_address is None:
        return {"configured": False, "reachable": False}
    temporal = gateway(settings)

    async def check(client: Client) -> bool:
        return await client.service_client.check_health(timeout=temporal.rpc_timeout)

    body: dict[str, Any] = {"configured": True, "address": settings.temporal_address,
                            "namespace": settings.temporal_namespace}
    try:
        body["reachable"] = bool(temporal.call(check))
    except (TemporalUnavailable, RPCError) as error:
        body |= {"reachable": False, "error": str(error)}
    return body


def exit_without_finalizing(code: int) -> None:
    """End a command that used a Temporal client, skipping the interpreter's finalization.

    The client's Rust runtime keeps native threads that may call back into Python while the interpreter
    shuts down, which aborts it ("PyGILState_Release: thread state must be current", temporalio/sdk-python
    #300): a worker that stopped cleanly would exit with SIGABRT. Our work is done and flushed by then."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
