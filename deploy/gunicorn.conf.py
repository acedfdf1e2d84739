"""gunicorn settings for the mounted functions: `gunicorn -c deploy/gunicorn.conf.py`.

Bound to loopback by default; reach it from elsewhere through an SSH tunnel or Tailscale.
gthread workers, through the project's own subclass (deploy/gunicorn_worker.py): it gives a connection a
thread only once its request head has arrived whole, drops a head that has not within
DASHBOARD_HEADER_TIMEOUT_S, and lets a browser stream (Server-Sent Events, long-lived) hand its
connection to the worker's feed poller once it has replayed its backlog, so that an open stream holds no
thread.

Capacity (docs/capacity.md): DASHBOARD_THREADS threads per worker (96), of which DASHBOARD_API_THREADS
(16) are kept for ordinary API calls; long polls (and streams while they replay) share the other 80 per
worker, and open streams are bounded by DASHBOARD_STREAMS per worker (1 000); past either, 503 with
Retry-After. 4 workers: 4 000 open streams, 320 long polls at once.

Four processes rather than two on the reference 2-core machine: writes are serialised by SQLite, and
a process whose writer must win the GIL back from threads parsing other requests holds the write lock
longer. With four, single-event ingest went from about 0.29 to 0.37-0.46 of the bare stack's rate
(bench/ingest.py), when each request wrote its own transaction. Since group commit
(shared/store/group_commit.py) the requests that queue in one process share a transaction, so fewer
processes make bigger groups: on 2026-12-02 two workers spent 1 720-2 020 µs of CPU per single event
against 1 800-2 570 with four, within that day's noise (docs/benchmarks.md, "Single events"), so
the count was left alone: it also sets the long polls' capacity and the idle memory.
DASHBOARD_WORKERS changes it; each worker runs one feed poller."""

import os

from deploy.http_errors import answer_in_json
from functions.sse.hub import stop_every_hub_in_this_process
from shared.config import Settings

# JSON log lines unless asked otherwise; set here so the workers' functions inherit it.
os.environ.setdefault("DASHBOARD_LOG_FORMAT", "json")
_settings = Settings.from_env()
answer_in_json()  # requests gunicorn refuses itself (bad request line, huge headers) get the JSON error shape

wsgi_app = "deploy.mount:create_app()"
bind = f"{_settings.host}:{_settings.port}"
worker_class = "deploy.gunicorn_worker.HeadGuardWorker"
workers = int(os.environ.get("DASHBOARD_WORKERS", "4"))
threads = _settings.threads
keepalive = 5
# gunicorn believes X-Forwarded-Proto (and lets headers set SCRIPT_NAME) from 127.0.0.1 unless told:
# from any local client, then. Only the proxies named in DASHBOARD_TRUSTED_PROXIES (none by default);
# the functions settle the rest themselves (shared/web/proxies.py).
forwarded_allow_ips = ",".join(str(network) for network in _settings.trusted_proxies)
# With gthread this is the worker's heartbeat, not a per-request limit, so streams are not cut.
timeout = 30
graceful_timeout = 10
loglevel = _settings.log_level.lower()
# Every line (gunicorn's own, the functions', one access line per request) through shared.logs:
# DASHBOARD_LOG_FILE or stderr, DASHBOARD_LOG_FORMAT. See deploy/gunicorn_logging.py.
logger_class = "deploy.gunicorn_logging.DashboardLogger"
accesslog = None
errorlog = "-"
proc_name = "opencode-dashboard"
# gunicorn's control socket lives at one path per user, so a second instance (tests, a benchmark)
# would take it over from the one serving; nothing here uses gunicornc.
control_socket_disable = True
# The app is built once in the master and the workers fork from it, sharing the imported code's pages:
# idle, the four workers took 45 MB PSS each, now ~12-23 MB (bench/memory.py). Safe because building the
# app starts no thread and opens no connection (the pool, the feed poller, the commit watch and the write
# lock's descriptor all begin in the worker, on first use).
preload_app = True


def worker_int(worker) -> None:
    """A worker told to quit at once (SIGINT or SIGQUIT: gunicorn's quick stop, which `make run` asks for
    on Ctrl-C). Its open browser streams end now, cleanly (the feed poller sends each the end of its
    body before the worker exits), and their browsers reconnect to whichever server answers next."""
    stop_every_hub_in_this_process()
    worker.quitting_at_once = True


def worker_exit(server, worker) -> None:
    """After a quick stop, the worker exits without interpreter finalization: it would wait for whatever
    request is still running (an agent's long poll) and for the Temporal client's native threads, seconds
    in all, for nothing — a quick stop does not wait for requests, and every write is committed or not."""
    if getattr(worker, "quitting_at_once", False):
        os._exit(0)
