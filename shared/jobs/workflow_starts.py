"""Making sure every open task has its workflow: started after the task is committed, or later.

A new task is written with `workflow_started_at` NULL: it waits for its workflow. Right after the
transaction commits, the writer calls `start_workflows` (never before: a workflow must find its task).
If Temporal is down the task simply keeps waiting, and the reconciler — `python -m
shared.jobs.workflow_starts`, run every minute by `make run` and the crontab — starts the waiting ones once
Temporal answers, so no task is left unmonitored.
"""

from __future__ import annotations

import logging

from shared.agents.task_workflow import FINISHED, task_workflow_id
from shared.agents.temporal import (
    TemporalUnavailable,
    exit_without_finalizing,
    signal_task_workflow,
    start_task_workflows,
)
from shared.clock import iso_from_unix, now
from shared.config import Settings, settings_for_command
from shared.logs import configure_logging, report
from shared.store.db import database, execute, open_database, write_transaction
from shared.store.feed import record_change

log = logging.getLogger(__name__)

RECONCILE_BATCH = 200


def waiting_tasks(task_ids: list[str] | None = None, limit: int = RECONCILE_BATCH) -> list[tuple[str, str, str]]:
    """(agent_id, task_id, status) of tasks whose workflow has not started, oldest first: open ones; and,
    when named, finished ones too (a task begun and finished in one batch of events, like a short
    opencode turn, still gets its workflow, which fires its `completed` rules)."""
    if task_ids is not None:
        return named_waiting_tasks(task_ids)[:limit]
    return [tuple(row) for row in execute(
        "SELECT agent_id, id, status FROM agent_tasks WHERE workflow_started_at IS NULL"
        f" AND status NOT IN ({', '.join('?' * len(FINISHED))}) ORDER BY created_at, id LIMIT ?",
        [*FINISHED, limit]).fetchall()]


def named_waiting_tasks(task_ids: list[str]) -> list[tuple[str, str, str]]:
    """Those of `task_ids` whose workflow has not started, oldest first. Looked up by id, and the rest
    done here: with `workflow_started_at IS NULL` in the query SQLite would read every task still waiting
    through that column's index — every task since Temporal went down, at every ingest request."""
    if not task_ids:
        return []
    rows = execute(f"SELECT agent_id, id, status, created_at, workflow_started_at FROM agent_tasks"
                   f" WHERE id IN ({', '.join('?' * len(task_ids))})", task_ids).fetchall()
    waiting = sorted((created_at or 0, task_id, agent_id, status)
                     for agent_id, task_id, status, created_at, started_at in rows if started_at is None)
    return [(agent_id, task_id, status) for _, task_id, agent_id, status in waiting]


def mark_started(tasks: list[tuple[str, str]]) -> None:
    """Record that these (agent_id, task_id) have their workflow (a task older than migration 5 gets
    its workflow id here too)."""
    if not tasks:
        return
    at = now()
    with write_transaction():
        for agent_id, task_id in tasks:
            workflow_id = task_workflow_id(agent_id, task_id)
            execute("UPDATE agent_tasks SET workflow_started_at = ?, workflow_id = COALESCE(workflow_id, ?)"
                    " WHERE id = ? AND workflow_started_at IS NULL", (at, workflow_id, task_id))
            record_change("task", "workflow_started", {"id": task_id, "workflow_id": workflow_id,
                                                       "workflow_started_at": iso_from_unix(at)})


def start_workflows(settings: Settings, task_ids: list[str] | None = None) -> list[str]:
    """Start the workflows of these waiting tasks (all waiting ones when None); the ids started.

    Never raises for Temporal's sake: a task whose workflow could not start stays waiting."""
    if settings.temporal_address is None:
        return []
    tasks = waiting_tasks(task_ids)
    if not tasks:
        return []
    pairs = [(agent_id, task_id) for agent_id, task_id, _ in tasks]
    finished = {task_id for _, task_id, status in tasks if status in FINISHED}
    try:
        started = start_task_workflows(settings, pairs, finished)
    except TemporalUnavailable as error:
        log.info("%d task(s) wait for their workflow: %s", len(tasks), error)
        return []
    started_ids = set(started)
    mark_started([pair for pair in pairs if pair[1] in started_ids])
    return started


def signal_current_task(settings: Settings, agent_id: str, signal: str, *args) -> bool:
    """Signal the workflow of the agent's current task, if it has one; False when not delivered."""
    if settings.temporal_address is None:
        return False
    row = execute("SELECT current_task_id FROM agents WHERE id = ?", (agent_id,)).fetchone()
    if row is None or row[0] is None:
        return False
    return signal_task(settings, agent_id, row[0], signal, *args)


def signal_task(settings: Settings, agent_id: str, task_id: str, signal: str, *args) -> bool:
    """Signal the task's workflow; False when not delivered (no such workflow running, Temporal down)."""
    if settings.temporal_address is None:
        return False
    try:
        return signal_task_workflow(settings, agent_id, task_id, signal, *args)
    except TemporalUnavailable as error:
        log.info("could not signal %s to the task %s: %s", signal, task_id, error)
        return False


def main() -> int:
    settings = settings_for_command()
    configure_logging(settings)
    open_database(settings)
    with database.connection_context():
        waiting = len(waiting_tasks())
        started = start_workflows(settings)
    report("workflow-starts", f"workflow starts: {len(started)} started, {waiting - len(started)} still waiting")
    return 0 if len(started) == waiting else 1


if __name__ == "__main__":
    exit_without_finalizing(main())
