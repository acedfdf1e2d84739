"""peewee models mirroring the schema that `shared.store.migrations` creates (the migrations own the DDL).

Times are stored as integer Unix seconds (`UnixTimeField`) and shown as ISO 8601 by `to_json()`;
JSON columns (`JSONField`) hold text in the database and Python values in code.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from typing import Any

import orjson
import peewee

from shared.clock import iso_from_unix
from shared.store.db import database, execute


class UnixTimeField(peewee.IntegerField):
    """Integer Unix seconds in the database; rendered as ISO 8601 in JSON."""


def compact_json(value: Any) -> str:
    """How every JSON column and change payload is written: compact, UTF-8 as it is. By orjson, because the
    ingest writes several values an event (the raw event, a message's columns, each change's payload) and
    it encodes them about ten times faster than the standard library (docs/benchmarks.md). What orjson
    refuses — an integer past 64 bits, text with half a surrogate pair: a signed Linear webhook may carry
    either, and its delivery is kept as sent (ingest refuses both first, functions/events/limits.py) — is
    written by the standard library's encoder, as before."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError is one
        return _standard_json(value)


_standard_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


class JSONField(peewee.TextField):
    def db_value(self, value: Any) -> str | None:
        return None if value is None else compact_json(value)

    def python_value(self, value: str | None) -> Any:
        return None if value is None else json.loads(value)


class BaseModel(peewee.Model):
    class Meta:
        database = database
        legacy_table_names = False

    def to_json(self) -> dict[str, Any]:
        """The row as the API shows it: every column, times in ISO 8601."""
        return self.present({
            field.name: iso_from_unix(getattr(self, field.name))
            if isinstance(field, UnixTimeField)
            else getattr(self, field.name)
            for field in self._meta.sorted_fields
        })

    @classmethod
    def json_from_db(cls, columns: Sequence[str], values: Sequence[Any]) -> dict[str, Any]:
        """`to_json` for a row read with plain SQL (`SELECT *`): the same shape, without building a
        model instance (which costs more than the query)."""
        readers = _api_readers(cls)
        return cls.present({name: read(value) for (name, read), value
                            in zip((readers[column] for column in columns), values, strict=True)})

    @classmethod
    def fetch_json(cls, where: str, params: Sequence[Any]) -> dict[str, Any] | None:
        """One row as JSON, read with plain SQL: `Agent.fetch_json("id = ?", [agent_id])`."""
        cursor = execute(f"SELECT * FROM {cls._meta.table_name} WHERE {where}", params)
        row = cursor.fetchone()
        return None if row is None else cls.json_from_db([d[0] for d in cursor.description], row)

    @classmethod
    def fetch_all_json(cls, where: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        """Every row `where` picks, as JSON, read with plain SQL."""
        cursor = execute(f"SELECT * FROM {cls._meta.table_name} WHERE {where}", params)
        columns = [d[0] for d in cursor.description]
        return [cls.json_from_db(columns, row) for row in cursor.fetchall()]

    @classmethod
    def present(cls, body: dict[str, Any]) -> dict[str, Any]:
        """A model's last touch on its API shape (none by default)."""
        return body


@functools.cache
def _api_readers(model: type[BaseModel]) -> dict[str, tuple[str, Callable[[Any], Any]]]:
    """column -> (API name, how its database value reads in the API), worked out once per model."""
    def reader(field: peewee.Field) -> Callable[[Any], Any]:
        if isinstance(field, UnixTimeField):
            return iso_from_unix
        if isinstance(field, JSONField):
            return field.python_value
        return lambda value: value

    return {column: (field.name, reader(field)) for column, field in model._meta.columns.items()}


# v1 tables -------------------------------------------------------------------------------------------

class Session(BaseModel):
    id = peewee.TextField(primary_key=True)
    name = peewee.TextField(null=True)
    started_at = UnixTimeField(null=True)
    ended_at = UnixTimeField(null=True)
    agent_id = peewee.TextField(null=True)
    parent_id = peewee.TextField(null=True)
    directory = peewee.TextField(null=True)
    status = peewee.TextField(null=True)
    updated_at = UnixTimeField(null=True)
    deleted_at = UnixTimeField(null=True)

    class Meta:
        table_name = "sessions"


class Todo(BaseModel):
    id = peewee.TextField(primary_key=True)
    session_id = peewee.TextField(null=True)
    content = peewee.TextField()
    status = peewee.TextField(default="pending")
    priority = peewee.TextField(default="medium")
    agent = peewee.TextField(null=True)
    created_at = UnixTimeField(null=True)
    updated_at = UnixTimeField(null=True)
    position = peewee.IntegerField(null=True)

    class Meta:
        table_name = "todos"


class SessionFile(BaseModel):
    """A file an opencode session changed, with its line counts when a session.diff gave them."""

    id = peewee.AutoField()
    session_id = peewee.TextField()
    file = peewee.TextField()
    status = peewee.TextField(null=True)
    additions = peewee.IntegerField(null=True)
    deletions = peewee.IntegerField(null=True)
    updated_at = UnixTimeField()

    class Meta:
        table_name = "session_files"


class Message(BaseModel):
    id = peewee.AutoField()
    type = peewee.TextField()
    content = peewee.TextField()
    todo_id = peewee.TextField(null=True)
    session_id = peewee.TextField(null=True)
    read = peewee.IntegerField(default=0)
    created_at = UnixTimeField(null=True)
    external_id = peewee.TextField(null=True, unique=True)
    role = peewee.TextField(null=True)
    agent = peewee.TextField(null=True)
    model_id = peewee.TextField(null=True)
    provider_id = peewee.TextField(null=True)
    cost = peewee.FloatField(null=True)
    tokens = JSONField(null=True)
    parts = JSONField(null=True)
    completed_at = UnixTimeField(null=True)
    updated_at = UnixTimeField(null=True)

    class Meta:
        table_name = "messages"

    @classmethod
    def present(cls, body: dict[str, Any]) -> dict[str, Any]:
        body["read"] = bool(body["read"])
        return body


class Setting(BaseModel):
    key = peewee.TextField(primary_key=True)
    value = peewee.TextField(null=True)

    class Meta:
        table_name = "settings"

    @classmethod
    def put(cls, key: str, value: str | None) -> None:
        """Insert or overwrite one setting (an upsert both SQLite and PostgreSQL speak; PostgreSQL has no
        INSERT OR REPLACE)."""
        cls.insert(key=key, value=value).on_conflict(conflict_target=[cls.key], preserve=[cls.value]).execute()


# v2 seed tables ----------------------------------------------------------------------------------------

class Agent(BaseModel):
    id = peewee.TextField(primary_key=True)
    name = peewee.TextField()
    type = peewee.TextField()
    parent_agent_id = peewee.TextField(null=True)  # REFERENCES agents(id), enforced by SQLite
    status = peewee.TextField(default="idle")
    soul_md = peewee.TextField(null=True)
    skills = JSONField(null=True)
    current_task_id = peewee.TextField(null=True)
    created_at = UnixTimeField(null=True)
    last_heartbeat = UnixTimeField(null=True)
    config = JSONField(null=True)
    status_reason = peewee.TextField(null=True)
    updated_at = UnixTimeField(null=True)

    class Meta:
        table_name = "agents"


class AgentTask(BaseModel):
    id = peewee.TextField(primary_key=True)
    agent_id = peewee.TextField()  # REFERENCES agents(id)
    linear_issue_id = peewee.TextField(null=True)
    project_id = peewee.TextField(null=True)
    title = peewee.TextField()
    status = peewee.TextField(default="pending")
    priority = peewee.TextField(default="medium")
    blocked_reason = peewee.TextField(null=True)
    blocked_at = UnixTimeField(null=True)
    started_at = UnixTimeField(null=True)
    completed_at = UnixTimeField(null=True)
    created_at = UnixTimeField(null=True)
    updated_at = UnixTimeField(null=True)
    workflow_id = peewee.TextField(null=True)
    workflow_started_at = UnixTimeField(null=True)  # NULL: waiting for its workflow to start
    session_id = peewee.TextField(null=True)  # the opencode session whose turn this is (docs/monitoring.md)

    class Meta:
        table_name = "agent_tasks"


class LinearProject(BaseModel):
    id = peewee.TextField(primary_key=True)
    name = peewee.TextField()
    description = peewee.TextField(null=True)
    state = peewee.TextField(null=True)
    progress = peewee.FloatField(default=0)
    start_date = peewee.TextField(null=True)
    target_date = peewee.TextField(null=True)
    url = peewee.TextField(null=True)
    team_id = peewee.TextField(null=True)
    team_name = peewee.TextField(null=True)
    prod_url = peewee.TextField(null=True)
    synced_at = UnixTimeField(null=True)
    status_name = peewee.TextField(null=True)
    team_ids = JSONField(null=True)
    updated_at = UnixTimeField(null=True)

    class Meta:
        table_name = "linear_projects"


class LinearIssue(BaseModel):
    id = peewee.TextField(primary_key=True)
    project_id = peewee.TextField(null=True)  # REFERENCES linear_projects(id)
    identifier = peewee.TextField(null=True)
    title = peewee.TextField()
    description = peewee.TextField(null=True)
    priority = peewee.IntegerField(null=True)
    state_name = peewee.TextField(null=True)
    state_type = peewee.TextField(null=True)
    assignee_name = peewee.TextField(null=True)
    assignee_avatar = peewee.TextField(null=True)
    label_names = JSONField(null=True)
    estimate = peewee.IntegerField(null=True)
    url = peewee.TextField(null=True)
    agent_task_id = peewee.TextField(null=True)  # REFERENCES agent_tasks(id)
    synced_at = UnixTimeField(null=True)
    team_id = peewee.TextField(null=True)
    state_id = peewee.TextField(null=True)
    assignee_id = peewee.TextField(null=True)
    cycle_id = peewee.TextField(null=True)
    sort_order = peewee.FloatField(null=True)
    created_at = UnixTimeField(null=True)
    updated_at = UnixTimeField(null=True)

    class Meta:
        table_name = "linear_issues"


class LinearWorkflowState(BaseModel):
    id = peewee.TextField(primary_key=True)
    team_id = peewee.TextField()
    name = peewee.TextField()
    type = peewee.TextField()
    color = peewee.TextField(null=True)
    position = peewee.FloatField(null=True)

    class Meta:
        table_name = "linear_workflow_states"


class LinearCycle(BaseModel):
    id = peewee.TextField(primary_key=True)
    team_id = peewee.TextField(null=True)
    number = peewee.IntegerField(null=True)
    name = peewee.TextField(null=True)
    starts_at = UnixTimeField(null=True)
    ends_at = UnixTimeField(null=True)
    completed_at = UnixTimeField(null=True)
    progress = peewee.FloatField(null=True)
    updated_at = UnixTimeField(null=True)
    synced_at = UnixTimeField()

    class Meta:
        table_name = "linear_cycles"


class LinearVersion(BaseModel):
    """The newest `updatedAt` (Unix ms) applied of one Linear entity; see shared.linear.versions."""

    kind = peewee.TextField()  # Linear's type name: Issue, Project, WorkflowState, Cycle, Comment
    entity_id = peewee.TextField()
    updated_ms = peewee.BigIntegerField()

    class Meta:
        table_name = "linear_versions"
        primary_key = peewee.CompositeKey("kind", "entity_id")


class AlertRule(BaseModel):
    id = peewee.TextField(primary_key=True)
    trigger = peewee.TextField()
    priority_filter = peewee.TextField(null=True)
    delay_ms = peewee.IntegerField(default=0)
    channel = peewee.TextField()
    enabled = peewee.IntegerField(default=1)

    class Meta:
        table_name = "alert_rules"


class User(BaseModel):
    id = peewee.TextField(primary_key=True)
    github_id = peewee.TextField(unique=True)
    github_username = peewee.TextField()
    github_avatar_url = peewee.TextField(null=True)
    linear_access_token = peewee.TextField(null=True)  # unused: Linear's OAuth tokens are in linear_oauth_tokens
    created_at = UnixTimeField(null=True)
    last_login = UnixTimeField(null=True)
    provider = peewee.TextField(default="github")  # 'github' or 'token' (the local user)

    class Meta:
        table_name = "users"


class AuthSession(BaseModel):
    id = peewee.TextField(primary_key=True)
    user_id = peewee.TextField()  # REFERENCES users(id)
    token_hash = peewee.TextField()
    expires_at = UnixTimeField()
    created_at = UnixTimeField(null=True)
    revoked_at = UnixTimeField(null=True)

    class Meta:
        table_name = "auth_sessions"


class SignInFailure(BaseModel):
    """One failed sign-in (a wrong credential presented); see shared.web.throttle."""

    id = peewee.AutoField()
    client = peewee.TextField()
    failed_at = UnixTimeField()

    class Meta:
        table_name = "sign_in_failures"


class LinearOAuthToken(BaseModel):
    """The Linear OAuth connection: encrypted tokens and when they expire; see shared.linear.oauth."""

    id = peewee.IntegerField(primary_key=True)
    access_token = peewee.TextField()  # Fernet ciphertext
    refresh_token = peewee.TextField(null=True)  # Fernet ciphertext
    scope = peewee.TextField(null=True)
    expires_at = UnixTimeField(null=True)
    generation = peewee.IntegerField(default=1)
    connected_by = peewee.TextField(null=True)  # REFERENCES users(id)
    connected_at = UnixTimeField()
    refreshed_at = UnixTimeField(null=True)
    last_error = peewee.TextField(null=True)
    last_error_at = UnixTimeField(null=True)

    class Meta:
        table_name = "linear_oauth_tokens"


# The project's own tables --------------------------------------------------------------------------------

class Change(BaseModel):
    """One row of the change feed; see shared.store.feed."""

    id = peewee.AutoField()
    topic = peewee.TextField()
    action = peewee.TextField()
    payload = JSONField()
    created_at = UnixTimeField()

    class Meta:
        table_name = "changes"


class InboundEvent(BaseModel):
    """Every accepted raw event, kept as sent; its client-made id makes ingest idempotent."""

    id = peewee.TextField(primary_key=True)
    type = peewee.TextField()
    agent_id = peewee.TextField(null=True)
    known = peewee.IntegerField()
    occurred_at = UnixTimeField()
    received_at = UnixTimeField()
    data = JSONField()

    class Meta:
        table_name = "inbound_events"


class WebhookDelivery(BaseModel):
    id = peewee.TextField(primary_key=True)
    source = peewee.TextField()
    resource_type = peewee.TextField(null=True)
    action = peewee.TextField(null=True)
    payload = JSONField()
    received_at = UnixTimeField()
    applied_at = UnixTimeField(null=True)
    body_sha256 = peewee.TextField(null=True, unique=True)

    class Meta:
        table_name = "webhook_deliveries"


class Notification(BaseModel):
    id = peewee.AutoField()
    rule_id = peewee.TextField(null=True)
    trigger = peewee.TextField()
    channel = peewee.TextField()
    title = peewee.TextField()
    body = peewee.TextField(null=True)
    agent_id = peewee.TextField(null=True)
    task_id = peewee.TextField(null=True)
    created_at = UnixTimeField()
    delivered_at = UnixTimeField(null=True)
    read_at = UnixTimeField(null=True)
    dedup_key = peewee.TextField(null=True, unique=True)
    priority = peewee.TextField(null=True)

    class Meta:
        table_name = "notifications"


class TaskQuestion(BaseModel):
    """A question an agent asked about a task (shared.agents.questions): pending until answered, timed out or
    withdrawn."""

    id = peewee.AutoField()
    task_id = peewee.TextField()  # REFERENCES agent_tasks(id)
    agent_id = peewee.TextField()
    type = peewee.TextField()  # question | permission | choice
    text = peewee.TextField()
    choices = JSONField(null=True)
    timeout_s = peewee.IntegerField(null=True)
    asked_at = UnixTimeField()
    # queued: asked while another question of the task waits (opencode asks in parallel); it waits next.
    status = peewee.TextField(default="pending")  # pending | queued | answered | timed_out | withdrawn
    answer = JSONField(null=True)
    answered_by = peewee.TextField(null=True)
    answered_at = UnixTimeField(null=True)
    request_id = peewee.TextField(null=True)  # opencode's permission or question request id
    session_id = peewee.TextField(null=True)  # the opencode session that asked

    class Meta:
        table_name = "task_questions"


class InboxEntry(BaseModel):
    """What an agent has to pick up from `GET /api/agent/{id}/inbox` until it acknowledges it."""

    id = peewee.AutoField()
    agent_id = peewee.TextField()
    task_id = peewee.TextField()
    question_id = peewee.IntegerField(unique=True)  # REFERENCES task_questions(id)
    status = peewee.TextField()  # answered | timed_out
    created_at = UnixTimeField()
    acked_at = UnixTimeField(null=True)

    class Meta:
        table_name = "agent_inbox"


ALL_MODELS: tuple[type[BaseModel], ...] = (
    Session, Todo, Message, Setting, Agent, AgentTask, LinearProject, LinearIssue, LinearWorkflowState,
    LinearCycle, AlertRule, User, AuthSession, SignInFailure, LinearOAuthToken, Change, InboundEvent,
    WebhookDelivery, Notification, TaskQuestion, InboxEntry,
)
