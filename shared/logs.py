"""Logging set-up shared by the web functions, the worker and the cron job."""

from __future__ import annotations

import logging


def configure_logging(level: str) -> None:
    """Log to stderr at `level`, unless the host process (gunicorn, pytest) already set logging up."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    root.setLevel(level)
