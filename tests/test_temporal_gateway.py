"""The web processes' way to Temporal: short timeouts and a circuit breaker, so an outage costs a
request nothing after the first one notices it."""

from __future__ import annotations

import socket
import time

import pytest
from temporalio.client import WorkflowExecutionStatus

from shared.agents.temporal import TemporalGateway, TemporalUnavailable, gateway, start_task_workflows, temporal_health
from shared.config import Settings
from tests.temporal_support import wait_for


@pytest.fixture
def silent_server():
    """A port that accepts TCP connections and never says a word (a hung Temporal)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"127.0.0.1:{listener.getsockname()[1]}"


def timed(call) -> tuple[float, Exception | None]:
    started = time.monotonic()
    try:
        call()
    except Exception as error:  # the test inspects it
        return time.monotonic() - started, error
    return time.monotonic() - started, None


def test_a_hung_temporal_costs_one_timeout_then_calls_fail_at_once_until_the_retry_window(silent_server,
                                                                                          monkeypatch):
    attempts = []  # each time a call goes out to Temporal (a connect and an RPC), rather than failing at once
    reach_temporal = TemporalGateway._with_client
    monkeypatch.setattr(TemporalGateway, "_with_client",
                        lambda self, operation: attempts.append(operation) or reach_temporal(self, operation))
    settings = Settings(temporal_address=silent_server, temporal_rpc_timeout_s=0.3, temporal_retry_after_s=1.0)
    first, error = timed(lambda: start_task_workflows(settings, [("agent", "task")]))
    assert isinstance(error, TemporalUnavailable) and first > 0.25 and len(attempts) == 1  # it waited for Temporal
    for _ in range(20):
        with pytest.raises(TemporalUnavailable):
            start_task_workflows(settings, [("agent", "task")])
    assert len(attempts) == 1 and gateway(settings).breaker_open  # none of them tried Temporal: no wait
    health = temporal_health(settings)
    assert (health["reachable"], health["configured"]) == (False, True) and "unavailable" in health["error"]
    wait_for(lambda: not gateway(settings).breaker_open, what="the end of the retry window")
    again, error = timed(lambda: start_task_workflows(settings, [("agent", "task")]))
    assert isinstance(error, TemporalUnavailable) and again > 0.25 and len(attempts) == 2  # Temporal tried again


def test_temporal_off_is_reported_and_never_contacted():
    off = Settings(temporal_address=None)
    assert gateway(off) is None
    assert temporal_health(off) == {"configured": False, "reachable": False}
    with pytest.raises(TemporalUnavailable):
        start_task_workflows(off, [("agent", "task")])


def test_a_reachable_temporal_is_healthy(temporal, settings):
    assert temporal_health(temporal.settings_for(settings))["reachable"] is True


def test_starting_a_tasks_workflow_twice_is_harmless(temporal, settings):
    reachable = temporal.settings_for(settings)  # no worker: the workflow only has to exist
    assert start_task_workflows(reachable, [("agent-twice", "t-twice")]) == ["t-twice"]
    first = temporal.run(temporal.handle("agent-twice", "t-twice").describe())
    assert start_task_workflows(reachable, [("agent-twice", "t-twice")]) == ["t-twice"]
    assert temporal.run(temporal.handle("agent-twice", "t-twice").describe()).run_id == first.run_id
    temporal.run(temporal.handle("agent-twice", "t-twice").terminate("test over"))


def test_a_finished_workflow_runs_again_only_for_a_task_still_open(temporal, settings):
    reachable = temporal.settings_for(settings)  # no worker: the workflows only have to exist
    handle = temporal.handle("agent-over", "t-over")
    assert start_task_workflows(reachable, [("agent-over", "t-over")]) == ["t-over"]
    first = temporal.run(handle.describe())
    temporal.run(handle.terminate("its task is over"))
    # The task is finished too: its workflow is not run twice.
    assert start_task_workflows(reachable, [("agent-over", "t-over")], finished={"t-over"}) == ["t-over"]
    again = temporal.run(handle.describe())
    assert (again.run_id, again.status) == (first.run_id, WorkflowExecutionStatus.TERMINATED)
    # The database says it is open (it forgot the first run): a new run watches it.
    assert start_task_workflows(reachable, [("agent-over", "t-over")]) == ["t-over"]
    anew = temporal.run(handle.describe())
    assert anew.run_id != first.run_id and anew.status == WorkflowExecutionStatus.RUNNING
    temporal.run(handle.terminate("test over"))


def test_a_large_batch_of_new_tasks_all_get_their_workflows_without_tripping_the_breaker(temporal, settings):
    reachable = temporal.settings_for(settings, temporal_rpc_timeout_s=0.5)
    tasks = [("agent-batch", f"t-batch-{n}") for n in range(400)]
    assert sorted(start_task_workflows(reachable, tasks)) == sorted(task for _, task in tasks)
    assert not gateway(reachable).breaker_open
