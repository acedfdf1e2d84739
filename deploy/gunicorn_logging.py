"""gunicorn's own lines (booting, workers starting and exiting) in the dashboard's log format.

gunicorn writes through its own handlers; this logger class hands its messages to the root logger
instead, which `shared.logs.configure_logging` points at the dashboard's handler (JSON by default
under gunicorn), so one file or journal holds one format. Its access log stays off: `RequestLog` writes
one line per request with the request id, and without the query string gunicorn's would carry.
"""

from __future__ import annotations

import logging

from gunicorn.glogging import Logger

from shared.config import Settings
from shared.logs import configure_logging


def named_gunicorn(record: logging.LogRecord) -> bool:
    """gunicorn writes everything it says — "Booting worker", "Listening at" — to a logger named
    `gunicorn.error`; its lines are labelled `gunicorn`, so an INFO line does not read as an error."""
    record.name = "gunicorn"
    return True


class DashboardLogger(Logger):
    def setup(self, cfg) -> None:
        super().setup(cfg)
        configure_logging(Settings.from_env())
        for log in (self.error_log, self.access_log):
            for handler in list(log.handlers):
                log.removeHandler(handler)
            log.propagate = True
        if named_gunicorn not in self.error_log.filters:
            self.error_log.addFilter(named_gunicorn)
