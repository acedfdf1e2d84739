"""`POST /api/linear/sync {"full": true}`: a sync started from the dashboard, run in a thread.

The lock is taken in the request, before the thread starts, so the caller learns at once whether a
sync is already running (409) instead of a thread finding out later. The thread uses its own
database connection; its outcome lands in the settings table and on the feed like any sync's.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from functions.linear_sync.graphql_client import LinearClient, LinearError
from functions.linear_sync.lock import SyncLock, new_sync_lock
from functions.linear_sync.sync import run_sync
from shared.config import Settings
from shared.store.db import database

log = logging.getLogger(__name__)


class BackgroundSync:
    def __init__(self, settings: Settings, client_factory: Callable[[], LinearClient]):
        self.settings = settings
        self.client_factory = client_factory
        self.last_thread: threading.Thread | None = None  # tests join it

    def start(self, full: bool) -> None:
        """Start a sync in a thread; SyncAlreadyRunning when another sync holds the lock."""
        lock = new_sync_lock(self.settings)
        lock.acquire()
        thread = threading.Thread(target=self._run, args=(lock, full), name="linear-sync", daemon=True)
        self.last_thread = thread
        thread.start()

    def _run(self, lock: SyncLock, full: bool) -> None:
        try:
            with database.connection_context():
                report = run_sync(self.client_factory(), full=full, team_ids=self.settings.linear_team_ids)
            log.info("%s", report.summary())
        except LinearError:
            pass  # run_sync recorded it (settings row, feed) and logged it
        except Exception:
            log.exception("Linear sync started from the dashboard failed")
        finally:
            lock.release()
