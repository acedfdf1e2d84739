"""The one settings object, read from the environment in one place.

Every function, the worker and the cron job build a `Settings` with `Settings.from_env()`; tests build
one directly. Defaults are safe for a local run: loopback only, a database file under `data/`.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace


class ConfigError(ValueError):
    """A setting in the environment has a value we cannot use; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///data/dashboard.db"
    # Secrets: repr=False keeps them out of logs and tracebacks that print the settings.
    api_key: str | None = field(default=None, repr=False)
    dashboard_token: str | None = field(default=None, repr=False)
    host: str = "127.0.0.1"
    port: int = 3000
    log_level: str = "INFO"
    log_format: str = "text"  # or "json": one object a line (gunicorn and the services default to it)
    log_file: str | None = None  # None: stderr
    max_body_bytes: int = 8 * 1024 * 1024
    busy_timeout_ms: int = 5000
    # Signs short-lived tokens (stream tokens); generated and stored by `deploy.prepare` when unset.
    secret_key: str | None = field(default=None, repr=False)
    # Server-Sent Events and the change feed behind them.
    sse_heartbeat_s: float = 15.0
    sse_poll_interval_s: float = 0.05
    sse_queue_size: int = 1000
    sse_max_stream_s: float = 0.0  # 0: a stream stays open until the client leaves
    stream_token_ttl_s: int = 300
    # Capacity (docs/capacity.md). Threads per gunicorn worker; of them, `api_threads` are never given to
    # a request that holds its thread for long (a long poll, a stream while it replays its backlog): past
    # the rest, such a request is a 503 with Retry-After; so is a stream past `streams` open in a worker
    # (each is a connection, a file descriptor, once it no longer holds a thread). A request head must
    # arrive whole within `header_timeout_s` (else 408).
    threads: int = 96
    api_threads: int = 16
    streams: int = 1000
    header_timeout_s: float = 10.0
    feed_retention_days: float = 7.0
    record_retention_days: float = 30.0
    # Linear: a personal API key or an OAuth access token for the GraphQL API, and the webhook's
    # signing secret. Without them the Linear routes answer 503 and the sync job does nothing.
    linear_api_key: str | None = field(default=None, repr=False)
    linear_oauth_token: str | None = field(default=None, repr=False)
    linear_webhook_secret: str | None = field(default=None, repr=False)
    linear_api_url: str = "https://api.linear.app/graphql"
    linear_sync_interval_s: int = 60
    linear_team_ids: tuple[str, ...] = ()  # empty: every team the credential can see
    # Temporal: where the agents' task workflows run. None (TEMPORAL_ADDRESS=off): no workflows are
    # started and tasks wait for theirs. `temporal_dev_server`: `make run` starts a local dev server
    # (true unless TEMPORAL_ADDRESS names a server of your own).
    temporal_address: str | None = "localhost:7233"
    temporal_namespace: str = "default"
    temporal_task_queue: str = "opencode-agent-tasks"
    temporal_dev_server: bool = True
    temporal_rpc_timeout_s: float = 2.0
    temporal_retry_after_s: float = 15.0  # after a failure, calls fail at once for this long
    # The task workflow's rules: blocked this long (urgent/high, or medium/low) ⇒ BLOCKED and alerts.
    blocked_after_high_s: float = 600.0
    blocked_after_low_s: float = 3600.0
    monitor_interval_s: float = 10.0
    # Alerts: an ntfy-compatible topic URL for push; the dashboard's address for the click-through.
    push_url: str | None = field(default=None, repr=False)  # an ntfy topic URL is as good as a password
    push_token: str | None = field(default=None, repr=False)
    dashboard_public_url: str = "http://127.0.0.1:3000"
    # Sign-in. Failed dashboard-token sign-ins per client: at most this many in the window, then 429.
    # A wrong bearer token or API key on any route counts as one (shared.web.throttle).
    auth_max_failures: int = 10
    auth_failure_window_s: int = 900
    # The reverse proxies (addresses or networks) whose X-Forwarded-For/-Proto/-Host are believed; from
    # anyone else those headers are ignored (shared.web.proxies). Empty: nobody's.
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    # GitHub OAuth (an OAuth App's id and secret); only logins in the allow-list may sign in.
    github_client_id: str | None = None
    github_client_secret: str | None = field(default=None, repr=False)
    github_allowed_users: tuple[str, ...] = ()  # lower-cased: GitHub logins are case-insensitive
    # Linear OAuth (an OAuth2 application's id and secret), to connect Linear without a personal key.
    linear_client_id: str | None = None
    linear_client_secret: str | None = field(default=None, repr=False)
    linear_oauth_scope: str = "read,write"
    # Earlier DASHBOARD_SECRET_KEY values, still accepted to decrypt stored tokens while they are rotated.
    previous_secret_keys: tuple[str, ...] = field(default=(), repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        settings = cls(
            database_url=_text(env, "DATABASE_URL", cls.database_url),
            api_key=_secret(env, "DASHBOARD_API_KEY"),
            dashboard_token=_secret(env, "DASHBOARD_TOKEN"),
            host=_host(env, "DASHBOARD_HOST", cls.host),
            port=_integer(env, "DASHBOARD_PORT", cls.port, minimum=1, maximum=65535),
            log_level=_log_level(env, "DASHBOARD_LOG_LEVEL", cls.log_level),
            log_format=_choice(env, "DASHBOARD_LOG_FORMAT", cls.log_format, ("json", "text")),
            log_file=env.get("DASHBOARD_LOG_FILE", "").strip() or None,
            max_body_bytes=_integer(env, "DASHBOARD_MAX_BODY_BYTES", cls.max_body_bytes, minimum=1024),
            busy_timeout_ms=_integer(env, "DATABASE_BUSY_TIMEOUT_MS", cls.busy_timeout_ms, minimum=0),
            secret_key=_secret(env, "DASHBOARD_SECRET_KEY"),
            sse_heartbeat_s=_number(env, "SSE_HEARTBEAT_S", cls.sse_heartbeat_s, minimum=0.01),
            sse_poll_interval_s=_number(env, "SSE_POLL_INTERVAL_S", cls.sse_poll_interval_s, minimum=0.001),
            sse_queue_size=_integer(env, "SSE_QUEUE_SIZE", cls.sse_queue_size, minimum=1),
            sse_max_stream_s=_number(env, "SSE_MAX_STREAM_S", cls.sse_max_stream_s, minimum=0),
            stream_token_ttl_s=_integer(env, "STREAM_TOKEN_TTL_S", cls.stream_token_ttl_s, minimum=1),
            threads=_integer(env, "DASHBOARD_THREADS", cls.threads, minimum=2),
            api_threads=_integer(env, "DASHBOARD_API_THREADS", cls.api_threads, minimum=1),
            streams=_integer(env, "DASHBOARD_STREAMS", cls.streams, minimum=1),
            header_timeout_s=_number(env, "DASHBOARD_HEADER_TIMEOUT_S", cls.header_timeout_s, minimum=0.1),
            feed_retention_days=_number(env, "FEED_RETENTION_DAYS", cls.feed_retention_days, minimum=0.001),
            record_retention_days=_number(env, "RECORD_RETENTION_DAYS", cls.record_retention_days, minimum=1),
            linear_api_key=_secret(env, "LINEAR_API_KEY"),
            linear_oauth_token=_secret(env, "LINEAR_OAUTH_TOKEN"),
            linear_webhook_secret=_secret(env, "LINEAR_WEBHOOK_SECRET"),
            linear_api_url=_text(env, "LINEAR_API_URL", cls.linear_api_url),
            linear_sync_interval_s=_integer(env, "LINEAR_SYNC_INTERVAL_S", cls.linear_sync_interval_s, minimum=5),
            linear_team_ids=_id_list(env, "LINEAR_TEAM_IDS"),
            temporal_address=_temporal_address(env, "TEMPORAL_ADDRESS", cls.temporal_address),
            temporal_namespace=_text(env, "TEMPORAL_NAMESPACE", cls.temporal_namespace),
            temporal_task_queue=_text(env, "TEMPORAL_TASK_QUEUE", cls.temporal_task_queue),
            temporal_dev_server=not env.get("TEMPORAL_ADDRESS", "").strip(),
            temporal_rpc_timeout_s=_number(env, "TEMPORAL_RPC_TIMEOUT_S", cls.temporal_rpc_timeout_s, minimum=0.05),
            temporal_retry_after_s=_number(env, "TEMPORAL_RETRY_AFTER_S", cls.temporal_retry_after_s, minimum=0),
            blocked_after_high_s=_number(env, "BLOCKED_AFTER_HIGH_S", cls.blocked_after_high_s, minimum=0.1),
            blocked_after_low_s=_number(env, "BLOCKED_AFTER_LOW_S", cls.blocked_after_low_s, minimum=0.1),
            monitor_interval_s=_number(env, "MONITOR_INTERVAL_S", cls.monitor_interval_s, minimum=0.05),
            push_url=env.get("PUSH_URL", "").strip() or None,
            push_token=_secret(env, "PUSH_TOKEN"),
            dashboard_public_url=_text(env, "DASHBOARD_PUBLIC_URL", cls.dashboard_public_url).rstrip("/"),
            auth_max_failures=_integer(env, "AUTH_MAX_FAILURES", cls.auth_max_failures, minimum=1),
            auth_failure_window_s=_integer(env, "AUTH_FAILURE_WINDOW_S", cls.auth_failure_window_s, minimum=1),
            trusted_proxies=_networks(env, "DASHBOARD_TRUSTED_PROXIES"),
            github_client_id=env.get("GITHUB_CLIENT_ID", "").strip() or None,
            github_client_secret=_secret(env, "GITHUB_CLIENT_SECRET"),
            github_allowed_users=tuple(login.lower() for login in _id_list(env, "GITHUB_ALLOWED_USERS")),
            linear_client_id=env.get("LINEAR_CLIENT_ID", "").strip() or None,
            linear_client_secret=_secret(env, "LINEAR_CLIENT_SECRET"),
            linear_oauth_scope=_text(env, "LINEAR_OAUTH_SCOPE", cls.linear_oauth_scope),
            previous_secret_keys=_id_list(env, "DASHBOARD_SECRET_KEY_PREVIOUS"),
        )
        settings.check()
        return settings

    def check(self) -> None:
        if not self.database_url.startswith(("sqlite:", "postgres:", "postgresql:", "postgresext:")):
            raise ConfigError("DATABASE_URL must start with sqlite:/// or postgresql:// (got another scheme)")
        if not self.database_url.startswith("sqlite:") and importlib.util.find_spec("psycopg2") is None:
            raise ConfigError("DATABASE_URL is a PostgreSQL URL, but PostgreSQL's driver is not installed: "
                              "pip install -e '.[postgres]'")
        if self.api_key and self.api_key == self.dashboard_token:
            raise ConfigError(
                "DASHBOARD_API_KEY and DASHBOARD_TOKEN must differ: the agents' key must never open the dashboard"
            )
        if not self.linear_api_url.startswith(("https://", "http://")):
            raise ConfigError(f"LINEAR_API_URL must be an http(s) URL, got {self.linear_api_url!r}")
        if self.push_url and not self.push_url.startswith(("https://", "http://")):
            raise ConfigError("PUSH_URL must be an http(s) URL (an ntfy topic such as https://ntfy.sh/<topic>)")
        if not self.dashboard_public_url.startswith(("https://", "http://")):
            raise ConfigError(f"DASHBOARD_PUBLIC_URL must be an http(s) URL, got {self.dashboard_public_url!r}")
        if self.api_threads >= self.threads:
            raise ConfigError("DASHBOARD_API_THREADS must be fewer than DASHBOARD_THREADS: the rest serve streams "
                              "and long polls")
        if self.blocked_after_high_s > self.blocked_after_low_s:
            raise ConfigError("BLOCKED_AFTER_HIGH_S must not exceed BLOCKED_AFTER_LOW_S: urgent work escalates first")
        if bool(self.github_client_id) != bool(self.github_client_secret):
            raise ConfigError("GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET go together: set both or neither")
        if bool(self.linear_client_id) != bool(self.linear_client_secret):
            raise ConfigError("LINEAR_CLIENT_ID and LINEAR_CLIENT_SECRET go together: set both or neither")
        for name, value in (("LINEAR_API_KEY", self.linear_api_key), ("LINEAR_OAUTH_TOKEN", self.linear_oauth_token)):
            if value and (value.lower().startswith("bearer ") or any(c.isspace() for c in value)):
                raise ConfigError(f"{name} must be the bare credential, without `Bearer ` or spaces")

    @property
    def long_request_slots(self) -> int:
        """How many streams and long polls one gunicorn worker serves at once."""
        return self.threads - self.api_threads

    @property
    def linear_configured(self) -> bool:
        """Whether the GraphQL API can be called: an API key or an OAuth token is set."""
        return bool(self.linear_api_key or self.linear_oauth_token)

    @property
    def github_configured(self) -> bool:
        """Whether GitHub sign-in is offered: an OAuth App's id and secret are set."""
        return bool(self.github_client_id and self.github_client_secret)

    @property
    def linear_oauth_configured(self) -> bool:
        """Whether Linear can be connected over OAuth: an OAuth2 application's id and secret are set."""
        return bool(self.linear_client_id and self.linear_client_secret)

    def with_overrides(self, **changes) -> Settings:
        updated = replace(self, **changes)
        updated.check()
        return updated


def settings_for_command() -> Settings:
    """The settings for a command-line entry point: a bad value ends it with the message and exit 2."""
    try:
        return Settings.from_env()
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


def _text(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, "").strip()
    return value or default


def _secret(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    if not value:
        return None
    if len(value) < 16:
        raise ConfigError(f"{name} is too short: use at least 16 characters (e.g. `openssl rand -hex 32`)")
    return value


def _integer(env: Mapping[str, str], name: str, default: int, *, minimum: int, maximum: int | None = None) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise ConfigError(f"{name} must be {bounds}, got {value}")
    return value


def _number(env: Mapping[str, str], name: str, default: float, *, minimum: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not value >= minimum or value == float("inf"):
        raise ConfigError(f"{name} must be a finite number of at least {minimum}, got {raw}")
    return value


def _id_list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """A comma-separated list of ids (`a,b`); empty means none."""
    return tuple(part.strip() for part in env.get(name, "").split(",") if part.strip())


def _networks(env: Mapping[str, str], name: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """A comma-separated list of addresses and CIDR networks (`127.0.0.1, 10.0.0.0/8, ::1`)."""
    networks = []
    for part in _id_list(env, name):
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ConfigError(f"{name} must list IP addresses or networks such as 10.0.0.0/8, "
                              f"separated by commas; {part!r} is neither") from None
    return tuple(networks)


def _temporal_address(env: Mapping[str, str], name: str, default: str | None) -> str | None:
    """`host:port` of Temporal's frontend; `off` means no Temporal at all."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if raw.lower() == "off":
        return None
    host, _, port = raw.rpartition(":")
    if not host or not port.isdigit() or "://" in raw:
        raise ConfigError(f"{name} must be host:port (e.g. temporal.internal:7233) or off, got {raw!r}")
    return raw


def _host(env: Mapping[str, str], name: str, default: str) -> str:
    raw = env.get(name, "").strip() or default
    if raw == "localhost":
        return raw
    try:
        ipaddress.ip_address(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an IP address such as 127.0.0.1, got {raw!r}") from None
    return raw


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = env.get(name, "").strip().lower() or default
    if raw not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def _log_level(env: Mapping[str, str], name: str, default: str) -> str:
    raw = (env.get(name, "").strip() or default).upper()
    if raw not in logging.getLevelNamesMapping():
        raise ConfigError(f"{name} must be one of DEBUG, INFO, WARNING, ERROR, got {raw!r}")
    return raw
