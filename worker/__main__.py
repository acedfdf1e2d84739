"""`python -m worker`: connect to Temporal and run the task workflows and activities until SIGTERM.

TEMPORAL_ADDRESS (default localhost:7233) and TEMPORAL_NAMESPACE (default `default`) say where;
the database is DATABASE_URL's, like every other process. Temporal may start after the worker (under
`make run` they start together): the worker keeps trying to connect until it can.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from shared.agents.temporal import exit_without_finalizing
from shared.config import Settings, settings_for_command
from shared.logs import configure_logging
from shared.store.db import open_database
from worker.activities import TaskActivities
from worker.workflows import AgentTaskWorkflow

log = logging.getLogger("worker")

ACTIVITY_THREADS = 16
CONNECT_RETRY_S = 2.0
GRACE = timedelta(seconds=10)  # running activities get this long to finish on SIGTERM


def build_worker(client: Client, settings: Settings, executor: ThreadPoolExecutor,
                 task_queue: str | None = None) -> Worker:
    """The worker for the task workflows; the activities run on `executor` (they are synchronous)."""
    return Worker(client, task_queue=task_queue or settings.temporal_task_queue, workflows=[AgentTaskWorkflow],
                  activities=TaskActivities(settings).all(), activity_executor=executor,
                  max_concurrent_activities=ACTIVITY_THREADS, graceful_shutdown_timeout=GRACE)


async def connect(settings: Settings, stop: asyncio.Event) -> Client | None:
    """Connect, retrying until Temporal answers or we are asked to stop (then None)."""
    while not stop.is_set():
        try:
            return await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace)
        except Exception as error:
            log.warning("Temporal at %s not reachable yet (%s); retrying", settings.temporal_address, error)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), CONNECT_RETRY_S)
    return None


async def serve(settings: Settings) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    client = await connect(settings, stop)
    if client is None:
        return 0
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS, thread_name_prefix="activity") as executor:
        async with build_worker(client, settings, executor):
            log.info("worker polling %s on %s (namespace %s)", settings.temporal_task_queue,
                     settings.temporal_address, settings.temporal_namespace)
            await stop.wait()
            log.info("stopping: finishing running activities")
    return 0


def main() -> int:
    settings = settings_for_command()
    if settings.temporal_address is None:
        print("TEMPORAL_ADDRESS is off: there is no Temporal to work for", file=sys.stderr)
        return 2
    configure_logging(settings)
    open_database(settings)
    return asyncio.run(serve(settings))


if __name__ == "__main__":
    exit_without_finalizing(main())
