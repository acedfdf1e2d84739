"""Versioned schema migrations: a fresh database is created, an existing one is upgraded in place.

Each migration is plain DDL, applied once, in its own transaction, and recorded in `schema_migrations`.
Migrations only ever add (tables, columns, indexes); nothing is dropped or rewritten, so rows survive
every upgrade. Version 1 is the v1 dashboard's schema and version 2 the TypeScript v2 schema, so a
database file left by the original app is upgraded in place too.

Run it by hand with `python -m shared.store.migrations`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from shared.store import search_schema
from shared.store.db import database, is_sqlite, write_transaction

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]
    # Where PostgreSQL needs statements of its own (triggers, functions), not a translation of these.
    postgresql: tuple[str, ...] | None = None


V1_SCHEMA = Migration(1, "v1 dashboard tables", (
    """CREATE TABLE IF NOT EXISTS todos (
        id TEXT PRIMARY KEY,
        session_id TEXT,
        content TEXT NOT NULL,
        status TEXT DEFAULT 'pending',
        priority TEXT DEFAULT 'medium',
        agent TEXT,
        created_at INTEGER DEFAULT (unixepoch()),
        updated_at INTEGER DEFAULT (unixepoch())
    )""",
    """CREATE TABLE IF NOT EXISTS messages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        type TEXT NOT NULL,
        content TEXT NOT NULL,
        todo_id TEXT,
        session_id TEXT,
        read INTEGER DEFAULT 0,
        created_at INTEGER DEFAULT (unixepoch())
    )""",
    """CREATE TABLE IF NOT EXISTS sessions (
        id TEXT PRIMARY KEY,
        name TEXT,
        started_at INTEGER DEFAULT (unixepoch()),
        ended_at INTEGER
    )""",
    """CREATE TABLE IF NOT EXISTS settings (
        key TEXT PRIMARY KEY,
        value TEXT
    )""",
))

V2_SCHEMA = Migration(2, "v2 agents, Linear cache and auth tables", (
    """CREATE TABLE IF NOT EXISTS agents (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        type TEXT NOT NULL,
        parent_agent_id TEXT REFERENCES agents(id),
        status TEXT DEFAULT 'idle',
        soul_md TEXT,
        skills TEXT,
        current_task_id TEXT,
        created_at INTEGER DEFAULT (unixepoch()),
        last_heartbeat INTEGER,
        config TEXT
    )""",
    """CREATE TABLE IF NOT EXISTS agent_tasks (
        id TEXT PRIMARY KEY,
        agent_id TEXT NOT NULL REFERENCES agents(id),
        linear_issue_id TEXT,
        project_id TEXT,
        title TEXT NOT NULL,
        status TEXT DEFAULT 'pending',
        priority TEXT DEFAULT 'medium',
        blocked_reason TEXT,
        blocked_at INTEGER,
        started_at INTEGER,
        completed_at INTEGER,
        created_at INTEGER DEFAULT (unixepoch()),
        updated_at INTEGER DEFAULT (unixepoch())
    )""",
    """CREATE TABLE IF NOT EXISTS linear_projects (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        description TEXT,
        state TEXT,
        progress REAL DEFAULT 0,
        start_date TEXT,
        target_date TEXT,
        url TEXT,
        team_id TEXT,
        team_name TEXT,
        prod_url TEXT,
        synced_at INTEGER DEFAULT (unixepoch())
    )""",
    """CREATE TABLE IF NOT EXISTS linear_issues (
        id TEXT PRIMARY KEY,
        project_id TEXT REFERENCES linear_projects(id),
        identifier TEXT,
        title TEXT NOT NULL,
        description TEXT,
        priority INTEGER,
        state_name TEXT,
        state_type TEXT,
        assignee_name TEXT,
        assignee_avatar TEXT,
        label_names TEXT,
        estimate INTEGER,
        url TEXT,
        agent_task_id TEXT REFERENCES agent_tasks(id),
        synced_at INTEGER DEFAULT (unixepoch())
    )""",
    """CREATE TABLE IF NOT EXISTS linear_workflow_states (
        id TEXT PRIMARY KEY,
        team_id TEXT NOT NULL,
        name TEXT NOT NULL,
        type TEXT NOT NULL,
        color TEXT,
        position REAL
    )""",
    """CREATE TABLE IF NOT EXISTS alert_rules (
        id TEXT PRIMARY KEY,
        trigger TEXT NOT NULL,
        priority_filter TEXT,
        delay_ms INTEGER DEFAULT 0,
        channel TEXT NOT NULL,
        enabled INTEGER DEFAULT 1
    )""",
    """CREATE TABLE IF NOT EXISTS users (
        id TEXT PRIMARY KEY,
        github_id TEXT UNIQUE NOT NULL,
        github_username TEXT NOT NULL,
        github_avatar_url TEXT,
        linear_access_token TEXT,
        created_at INTEGER DEFAULT (unixepoch()),
        last_login INTEGER
    )""",
    """CREATE TABLE IF NOT EXISTS auth_sessions (
        id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL REFERENCES users(id),
        token_hash TEXT NOT NULL,
        expires_at INTEGER NOT NULL,
        created_at INTEGER DEFAULT (unixepoch())
    )""",
))

FEED_AND_PROJECTIONS = Migration(3, "change feed, raw events, opencode projections", (
    # The change feed (the outbox every browser stream tails). AUTOINCREMENT so an id is never reused
    # after pruning: a browser resuming from an old id must never receive a different event under it.
    """CREATE TABLE changes (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        topic TEXT NOT NULL,
        action TEXT NOT NULL,
        payload TEXT NOT NULL,
        created_at INTEGER NOT NULL DEFAULT (unixepoch())
    )""",
    "CREATE INDEX changes_created_at ON changes (created_at)",
    """CREATE TABLE inbound_events (
        id TEXT PRIMARY KEY,
        type TEXT NOT NULL,
        agent_id TEXT,
        known INTEGER NOT NULL,
        occurred_at INTEGER NOT NULL,
        received_at INTEGER NOT NULL DEFAULT (unixepoch()),
        data TEXT NOT NULL
    )""",
    "CREATE INDEX inbound_events_received_at ON inbound_events (received_at)",
    """CREATE TABLE webhook_deliveries (
        id TEXT PRIMARY KEY,
        source TEXT NOT NULL,
        resource_type TEXT,
        action TEXT,
        payload TEXT NOT NULL,
        received_at INTEGER NOT NULL DEFAULT (unixepoch()),
        applied_at INTEGER
    )""",
    """CREATE TABLE notifications (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        rule_id TEXT,
        trigger TEXT NOT NULL,
        channel TEXT NOT NULL,
        title TEXT NOT NULL,
        body TEXT,
        agent_id TEXT,
        task_id TEXT,
        created_at INTEGER NOT NULL DEFAULT (unixepoch()),
        delivered_at INTEGER,
        read_at INTEGER
    )""",
    # opencode sessions: who runs them, their parent (sub-agent sessions), their live status.
    "ALTER TABLE sessions ADD COLUMN agent_id TEXT",
    "ALTER TABLE sessions ADD COLUMN parent_id TEXT",
    "ALTER TABLE sessions ADD COLUMN directory TEXT",
    "ALTER TABLE sessions ADD COLUMN status TEXT",
    "ALTER TABLE sessions ADD COLUMN updated_at INTEGER",
    "ALTER TABLE sessions ADD COLUMN deleted_at INTEGER",
    # opencode messages and tool calls share the v1 messages table; external_id is opencode's own id.
    "ALTER TABLE messages ADD COLUMN external_id TEXT",
    "ALTER TABLE messages ADD COLUMN role TEXT",
    "ALTER TABLE messages ADD COLUMN agent TEXT",
    "ALTER TABLE messages ADD COLUMN model_id TEXT",
    "ALTER TABLE messages ADD COLUMN provider_id TEXT",
    "ALTER TABLE messages ADD COLUMN cost REAL",
    "ALTER TABLE messages ADD COLUMN tokens TEXT",
    "ALTER TABLE messages ADD COLUMN parts TEXT",
    "ALTER TABLE messages ADD COLUMN completed_at INTEGER",
    "ALTER TABLE messages ADD COLUMN updated_at INTEGER",
    "CREATE UNIQUE INDEX messages_external_id ON messages (external_id)",
    "CREATE INDEX messages_session ON messages (session_id, created_at)",
    "ALTER TABLE todos ADD COLUMN position INTEGER",
    "CREATE INDEX todos_session ON todos (session_id)",
    "CREATE INDEX todos_updated_at ON todos (updated_at)",
    "ALTER TABLE agents ADD COLUMN status_reason TEXT",
    "ALTER TABLE agents ADD COLUMN updated_at INTEGER",
    "CREATE INDEX agent_tasks_agent ON agent_tasks (agent_id, status)",
    "CREATE INDEX auth_sessions_token_hash ON auth_sessions (token_hash)",
))

LINEAR_CACHE = Migration(4, "Linear cache: board columns, sync watermarks, cycles", (
    # What the kanban and the card move need beyond the seed's denormalised names: the ids behind
    # them (a state must belong to the team), Linear's board order and its own timestamps.
    "ALTER TABLE linear_issues ADD COLUMN team_id TEXT",
    "ALTER TABLE linear_issues ADD COLUMN state_id TEXT",
    "ALTER TABLE linear_issues ADD COLUMN assignee_id TEXT",
    "ALTER TABLE linear_issues ADD COLUMN cycle_id TEXT",
    "ALTER TABLE linear_issues ADD COLUMN sort_order REAL",
    "ALTER TABLE linear_issues ADD COLUMN created_at INTEGER",
    "ALTER TABLE linear_issues ADD COLUMN updated_at INTEGER",
    "CREATE INDEX linear_issues_project ON linear_issues (project_id)",
    # Project.state is deprecated at Linear: `state` keeps the status type, status_name its label.
    "ALTER TABLE linear_projects ADD COLUMN status_name TEXT",
    "ALTER TABLE linear_projects ADD COLUMN team_ids TEXT",
    "ALTER TABLE linear_projects ADD COLUMN updated_at INTEGER",
    "CREATE INDEX linear_workflow_states_team ON linear_workflow_states (team_id, position)",
    """CREATE TABLE linear_cycles (
        id TEXT PRIMARY KEY,
        team_id TEXT,
        number INTEGER,
        name TEXT,
        starts_at INTEGER,
        ends_at INTEGER,
        completed_at INTEGER,
        progress REAL,
        updated_at INTEGER,
        synced_at INTEGER NOT NULL DEFAULT (unixepoch())
    )""",
))

# The v2 dashboard's default alert rules (id, trigger, priority filter, delay in ms, channel).
DEFAULT_ALERT_RULES = (
    ("blocked-high", "blocked", "high", 0, "both"),
    ("blocked-medium", "blocked", "medium", 600000, "both"),
    ("blocked-low", "blocked", "low", 3600000, "in_app"),
    ("error-all", "error", "all", 0, "both"),
    ("completed-high", "completed", "high", 0, "in_app"),
    ("completed-batch", "completed", "all", 900000, "in_app"),
    ("idle-all", "idle_too_long", "all", 1800000, "in_app"),
)

# A question nobody answered in time: escalated at once, on every channel.
QUESTION_ALERT_RULES = (
    ("question-timeout", "question_timeout", "all", 0, "both"),
)

AGENT_WORKFLOWS = Migration(5, "task workflows, notification episodes, default alert rules", (
    # workflow_started_at stays NULL while a task waits for its Temporal workflow (Temporal down);
    # the reconciler starts those once Temporal answers.
    "ALTER TABLE agent_tasks ADD COLUMN workflow_id TEXT",
    "ALTER TABLE agent_tasks ADD COLUMN workflow_started_at INTEGER",
    "CREATE INDEX agent_tasks_workflow_waiting ON agent_tasks (workflow_started_at, status)",
    # One notification per rule per blocked episode: the key names both, and a retried activity or
    # a re-evaluated rule finds it taken.
    "ALTER TABLE notifications ADD COLUMN dedup_key TEXT",
    "ALTER TABLE notifications ADD COLUMN priority TEXT",
    "CREATE UNIQUE INDEX notifications_dedup_key ON notifications (dedup_key)",
    "CREATE INDEX notifications_created ON notifications (created_at, id)",
    # Seeded once, here: a rule the user deletes later stays deleted.
    *(f"INSERT INTO alert_rules (id, trigger, priority_filter, delay_ms, channel, enabled)"
      f" VALUES ('{rule}', '{trigger}', '{priority}', {delay}, '{channel}', 1) ON CONFLICT (id) DO NOTHING"
      for rule, trigger, priority, delay, channel in DEFAULT_ALERT_RULES),
))

SIGN_IN = Migration(6, "sign-in: revocable sessions, local users, failed sign-ins, Linear OAuth tokens", (
    # Sign-out revokes a session (kept, not deleted, so a stolen cookie's use can still be traced).
    "ALTER TABLE auth_sessions ADD COLUMN revoked_at INTEGER",
    "CREATE INDEX auth_sessions_user ON auth_sessions (user_id)",
    # Who a user is to us: 'github' (signed in with GitHub) or 'token' (the one local user behind the
    # dashboard token). The seed's github_id stays NOT NULL; the local user's is 'token:local', which no
    # GitHub account (numeric ids) can ever have.
    "ALTER TABLE users ADD COLUMN provider TEXT NOT NULL DEFAULT 'github'",
    # Failed dashboard-token sign-ins, one row each, so the limit holds across every process.
    """CREATE TABLE sign_in_failures (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        client TEXT NOT NULL,
        failed_at INTEGER NOT NULL
    )""",
    "CREATE INDEX sign_in_failures_client ON sign_in_failures (client, failed_at)",
    "CREATE INDEX sign_in_failures_failed_at ON sign_in_failures (failed_at)",
    # The installation's Linear OAuth connection (one row, id 1). Tokens are Fernet ciphertexts;
    # `generation` grows with every refresh so two processes refreshing at once keep one result.
    """CREATE TABLE linear_oauth_tokens (
        id INTEGER PRIMARY KEY,
        access_token TEXT NOT NULL,
        refresh_token TEXT,
        scope TEXT,
        expires_at INTEGER,
        generation INTEGER NOT NULL DEFAULT 1,
        connected_by TEXT REFERENCES users(id),
        connected_at INTEGER NOT NULL,
        refreshed_at INTEGER,
        last_error TEXT,
        last_error_at INTEGER
    )""",
))

QUESTIONS = Migration(7, "human in the loop: task questions, answers and the agents' inbox", (
    # A task is asked any number of questions over its life; at most one waits for an answer at a time
    # (the partial unique index), so two answers can never both find "the" pending question.
    """CREATE TABLE task_questions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        task_id TEXT NOT NULL REFERENCES agent_tasks(id),
        agent_id TEXT NOT NULL,
        type TEXT NOT NULL,
        text TEXT NOT NULL,
        choices TEXT,
        timeout_s INTEGER,
        asked_at INTEGER NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending',
        answer TEXT,
        answered_by TEXT,
        answered_at INTEGER
    )""",
    "CREATE INDEX task_questions_task ON task_questions (task_id, id)",
    "CREATE UNIQUE INDEX task_questions_one_pending ON task_questions (task_id) WHERE status = 'pending'",
    # What each agent has to pick up (an answer, or word that its question timed out), kept until the
    # agent acknowledges it: delivered at least once, across restarts.
    """CREATE TABLE agent_inbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        agent_id TEXT NOT NULL,
        task_id TEXT NOT NULL,
        question_id INTEGER NOT NULL UNIQUE REFERENCES task_questions(id),
        status TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        acked_at INTEGER
    )""",
    "CREATE INDEX agent_inbox_pending ON agent_inbox (agent_id, acked_at, id)",
    *(f"INSERT INTO alert_rules (id, trigger, priority_filter, delay_ms, channel, enabled)"
      f" VALUES ('{rule}', '{trigger}', '{priority}', {delay}, '{channel}', 1) ON CONFLICT (id) DO NOTHING"
      for rule, trigger, priority, delay, channel in QUESTION_ALERT_RULES),
))

SEARCH_AND_USAGE = Migration(
    8, "search index, usage rollup, timeline indexes (kept by triggers)",
    search_schema.sqlite_statements(), postgresql=search_schema.postgresql_statements())

SESSION_FILES = Migration(9, "the files each opencode session changed", (
    # One row per file: replaced by each session.diff (with its line counts), added to by file.edited.
    """CREATE TABLE session_files (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        session_id TEXT NOT NULL,
        file TEXT NOT NULL,
        status TEXT,
        additions INTEGER,
        deletions INTEGER,
        updated_at INTEGER NOT NULL
    )""",
    "CREATE UNIQUE INDEX session_files_file ON session_files (session_id, file)",
))

SESSION_TASKS = Migration(10, "opencode sessions: their turns as tasks, their prompts as questions", (
    # The opencode session whose turn the task is (NULL for a task an agent or a person created).
    "ALTER TABLE agent_tasks ADD COLUMN session_id TEXT",
    "CREATE INDEX agent_tasks_session ON agent_tasks (session_id, status)",
    # A question that is opencode's own prompt: its request id (the permission's or question's `id`),
    # which the agent waits on and the terminal's reply names, and the session that asked it.
    "ALTER TABLE task_questions ADD COLUMN request_id TEXT",
    "ALTER TABLE task_questions ADD COLUMN session_id TEXT",
    "CREATE INDEX task_questions_request ON task_questions (request_id)",
))

LINEAR_ORDER_AND_REPLAY = Migration(11, "Linear: the newest version of each entity, deliveries by body", (
    # The newest `updatedAt` (ms) applied per Linear entity, kept after its removal too: an older
    # description (a late delivery, a sync page read before a webhook) never overwrites a newer one.
    """CREATE TABLE linear_versions (
        kind TEXT NOT NULL,
        entity_id TEXT NOT NULL,
        updated_ms INTEGER NOT NULL,
        PRIMARY KEY (kind, entity_id)
    )""",
    # The SHA-256 of a delivery's signed body: the same body re-sent under a new Linear-Delivery id is
    # a duplicate. (NULL for deliveries stored before; those never collide.)
    "ALTER TABLE webhook_deliveries ADD COLUMN body_sha256 TEXT",
    "CREATE UNIQUE INDEX webhook_deliveries_body ON webhook_deliveries (body_sha256)",
))

LOOKUPS_BY_AGENT_AND_TASK = Migration(12, "indexes for what ingest asks at every turn", (
    # An agent's status is worked out from its sessions at every busy and idle of each of them
    # (functions/events/session_turns.py): without this index, a scan of every session ever seen.
    "CREATE INDEX sessions_agent ON sessions (agent_id, status)",
    # The prompts still waiting in a session (the same status, and a turn's blocked question).
    "CREATE INDEX task_questions_session ON task_questions (session_id, status)",
    # A task's blocked notifications, settled when it leaves blocked (shared/agents/alerts.py).
    "CREATE INDEX notifications_task ON notifications (task_id, trigger)",
))

WAITING_PROMPTS = Migration(13, "indexes of the prompts and the turns that wait", (
    # Whether any session of an agent waits on a person, asked at every busy and idle: found from the
    # few prompts waiting anywhere, instead of looking in each session the agent ever had.
    "CREATE INDEX task_questions_waiting ON task_questions (status, session_id)",
    # The turns of a batch's sessions still waiting for their workflow, asked after every ingest request
    # that may begin one: by session, not every task waiting since Temporal went down.
    "CREATE INDEX agent_tasks_session_workflow ON agent_tasks (session_id, workflow_started_at)",
))

MIGRATIONS: tuple[Migration, ...] = (
    V1_SCHEMA, V2_SCHEMA, FEED_AND_PROJECTIONS, LINEAR_CACHE, AGENT_WORKFLOWS, SIGN_IN, QUESTIONS,
    SEARCH_AND_USAGE, SESSION_FILES, SESSION_TASKS, LINEAR_ORDER_AND_REPLAY, LOOKUPS_BY_AGENT_AND_TASK,
    WAITING_PROMPTS,
)
LATEST_VERSION = MIGRATIONS[-1].version


def _for_postgresql(statement: str) -> str:
    # The DDL is written in SQLite's dialect; these are the only differences PostgreSQL needs.
    return (
        statement.replace("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGSERIAL PRIMARY KEY")
        .replace("(unixepoch())", "(CAST(EXTRACT(EPOCH FROM NOW()) AS BIGINT))")
        .replace(" INTEGER", " BIGINT")
        .replace(" REAL", " DOUBLE PRECISION")
    )


def _existing_tables() -> set[str]:
    return set(database.get_tables())


def current_version() -> int:
    """The schema version of the connected database; 0 for an empty one.

    A database written by the original TypeScript dashboard has no `schema_migrations` table: its
    version is read off the tables it has."""
    tables = _existing_tables()
    if "schema_migrations" in tables:
        row = database.execute_sql("SELECT MAX(version) FROM schema_migrations").fetchone()
        return row[0] or 0
    if "agents" in tables:
        return 2
    if "todos" in tables:
        return 1
    return 0


def migrate(target: int = LATEST_VERSION) -> list[int]:
    """Bring the schema up to `target`; return the versions applied (empty when already current)."""
    applied: list[int] = []
    with database.connection_context():
        with write_transaction():
            database.execute_sql(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)"
            )
            _record_legacy_versions()
        for migration in MIGRATIONS:
            if migration.version > target:
                break
            # Re-read inside the write lock: another process may have migrated meanwhile.
            with write_transaction():
                if migration.version in _applied_versions():
                    continue
                _apply(migration)
            applied.append(migration.version)
            log.info("schema migrated to version %d (%s)", migration.version, migration.name)
    return applied


def _applied_versions() -> set[int]:
    return {row[0] for row in database.execute_sql("SELECT version FROM schema_migrations").fetchall()}


def _record_legacy_versions() -> None:
    """Mark the versions an untracked (TypeScript-era) database already has as applied."""
    if database.execute_sql("SELECT COUNT(*) FROM schema_migrations").fetchone()[0]:
        return
    tables = _existing_tables()
    legacy = 2 if "agents" in tables else 1 if "todos" in tables else 0
    for migration in MIGRATIONS[:legacy]:
        _mark_applied(migration)


def _apply(migration: Migration) -> None:
    if is_sqlite():
        statements = migration.statements
    elif migration.postgresql is not None:
        statements = migration.postgresql
    else:
        statements = tuple(_for_postgresql(statement) for statement in migration.statements)
    for statement in statements:
        database.execute_sql(statement)
    _mark_applied(migration)


def _mark_applied(migration: Migration) -> None:
    p = database.param
    database.execute_sql(
        f"INSERT INTO schema_migrations (version, name, applied_at) VALUES ({p}, {p}, {p})",
        (migration.version, migration.name, int(time.time())),
    )


def main() -> None:
    from shared.config import Settings
    from shared.store.db import open_database

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    open_database(Settings.from_env())
    applied = migrate()
    print(f"schema at version {LATEST_VERSION}" + (f" (applied {applied})" if applied else " (already current)"))


if __name__ == "__main__":
    main()
