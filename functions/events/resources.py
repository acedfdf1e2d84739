"""The events function's HTTP resources: ingest, and the v1/v2 read paths over what was ingested."""

from __future__ import annotations

import falcon
import peewee

from functions.events.contract import parse_events
from functions.events.event import Event
from functions.events.ingest import ingest
from functions.events.kinds import TODO_STATUSES
from functions.events.projections import error_agent, error_text
from functions.events.session_turns import TURN_KINDS, error_turn, turns_begun
from shared.agents.task_workflow import SIGNAL_ERROR, SIGNAL_SLEEP, SIGNAL_WAKE
from shared.config import Settings
from shared.jobs.workflow_starts import signal_current_task, signal_task, start_workflows
from shared.store.db import MAX_INTEGER, write_transaction
from shared.store.feed import record_change
from shared.store.models import Message, Session, SessionFile, Todo
from shared.store.pagination import page_request, paginate
from shared.web.auth import AGENT
from shared.web.errors import ApiError, bad_query, invalid
from shared.web.json_body import read_json
from shared.web.query import list_param, since_param, whole_number

# An agent that says it sleeps is not stuck: its task's workflow holds off BLOCKED until it works again.
AGENT_STATUS_SIGNALS = {"sleeping": SIGNAL_SLEEP, "working": SIGNAL_WAKE}

SESSION_MESSAGES_SHOWN = 100
MAX_MARKED_READ = 1000  # per request: well under SQLite's bound-variable limit


class EventsResource:
    """POST /api/events — the ingest contract (docs/events.md)."""

    auth = AGENT

    def __init__(self, settings: Settings):
        self.settings = settings
        self.max_body_bytes = settings.max_body_bytes

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        events = parse_events(read_json(req, self.max_body_bytes))
        result = ingest(events)
        resp.media = result.to_json()
        resp.status = falcon.HTTP_202
        if self.settings.temporal_address is not None:
            tell_workflows(self.settings, result.applied)


def tell_workflows(settings: Settings, applied: list[Event]) -> None:
    """After the commit (a workflow must find its task): start new tasks' workflows (opencode sessions'
    turns too), and signal the ones whose agent changed. Only events applied now (a resent one was told
    already); Temporal down costs nothing here: tasks wait for their workflows and the reconciler starts them."""
    created = [event.data["id"] for event in applied if event.type == "task.created"]
    turns = turns_begun([event.data["sessionID"] for event in applied if event.type in TURN_KINDS])
    if created or turns:
        start_workflows(settings, created + turns)
    sleep_or_wake: dict[str, str] = {}  # an agent's last sleep/wake in the batch is the one that counts
    errors: list[tuple[str, str | None, str]] = []
    for event in applied:
        if event.type == "agent.status" and event.data["status"] in AGENT_STATUS_SIGNALS:
            sleep_or_wake[event.data["id"]] = AGENT_STATUS_SIGNALS[event.data["status"]]
        elif event.type == "session.error" and (agent_id := error_agent(event)):
            # Its task's workflow fires the error rules: the session's turn's, else the agent's current task's.
            errors.append((agent_id, error_turn(event), error_text(event)))
    for agent_id, signal in sleep_or_wake.items():
        signal_current_task(settings, agent_id, signal)
    for agent_id, turn, text in errors:
        if turn is None:
            signal_current_task(settings, agent_id, SIGNAL_ERROR, text)
        else:
            signal_task(settings, *turn, SIGNAL_ERROR, text)


class TodosResource:
    """GET /api/todos?session_id=&status=a,b&since= — newest first."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        query = Todo.select()
        if session_id := req.get_param("session_id"):
            query = query.where(Todo.session_id == session_id)
        if statuses := list_param(req, "status", sorted(TODO_STATUSES)):
            query = query.where(Todo.status.in_(statuses))
        if (since := since_param(req)) is not None:
            query = query.where(Todo.updated_at >= since)
        rows, cursor = paginate(query, (Todo.updated_at, Todo.id), page_request(req))
        resp.media = {"todos": [row.to_json() for row in rows], "next_cursor": cursor}


class MessagesResource:
    """GET /api/msgs (v1: /api/messages)?session_id=&type=&unread_only=&since=&order=&from_id=; POST marks read.

    A transcript is read both ways from any message: `from_id` starts the page at that message (itself
    included), `order` says which way it goes (`newest_first`, the default, or `oldest_first`), and each
    way's `next_cursor` goes on from there."""

    def __init__(self, max_body_bytes: int):
        self.max_body_bytes = max_body_bytes

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        query = Message.select()
        if session_id := req.get_param("session_id"):
            query = query.where(Message.session_id == session_id)
        if types := list_param(req, "type"):
            query = query.where(Message.type.in_(types))
        if req.get_param_as_bool("unread_only", default=False):
            query = query.where(Message.read == 0)
        if (since := since_param(req)) is not None:
            query = query.where(Message.created_at >= since)
        newest_first = order_param(req) == "newest_first"
        keys = (Message.created_at, Message.id)
        if (start := start_message(req, session_id)) is not None:
            row_key, start_key = peewee.Tuple(*keys), peewee.Tuple(start.created_at, start.id)
            query = query.where(row_key <= start_key if newest_first else row_key >= start_key)
        rows, cursor = paginate(query, keys, page_request(req), newest_first=newest_first)
        resp.media = {"messages": [row.to_json() for row in rows], "next_cursor": cursor}

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        ids = message_ids(read_json(req, self.max_body_bytes))
        with write_transaction():
            updated = Message.update(read=1).where(Message.id.in_(ids) & (Message.read == 0)).execute()
            if updated:
                record_change("message", "read", {"ids": ids})
        resp.media = {"marked_read": updated}


ORDERS = ("newest_first", "oldest_first")


def order_param(req: falcon.Request) -> str:
    order = req.get_param("order") or "newest_first"
    if order not in ORDERS:
        raise bad_query("order", f"order must be one of {', '.join(ORDERS)}")
    return order


def start_message(req: falcon.Request, session_id: str | None) -> Message | None:
    """The message `from_id` names (in the session asked for, if one is), else 400 naming `from_id`."""
    raw = req.get_param("from_id")
    if raw is None:
        return None
    message_id = whole_number(raw)
    message = (Message.get_or_none(Message.id == message_id)
               if message_id is not None and 1 <= message_id <= MAX_INTEGER else None)
    if message is None or (session_id and message.session_id != session_id) or message.created_at is None:
        where = f" in session {session_id!r}" if session_id else ""
        raise bad_query("from_id", f"from_id names no message{where}")
    return message


def message_ids(body: object) -> list[int]:
    ids = body.get("ids") if isinstance(body, dict) else None
    if not isinstance(ids, list) or len(ids) > MAX_MARKED_READ or not all(is_row_id(i) for i in ids):
        raise invalid("ids", f"ids must be a list of at most {MAX_MARKED_READ} message ids (positive integers).")
    return ids


def is_row_id(value) -> bool:
    """A positive integer that fits a database integer column (a larger one would not even reach SQL)."""
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_INTEGER


class SessionsResource:
    """GET /api/sess (v1: /api/sessions)?status=&agent_id=&since= — most recently started first."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        query = Session.select()
        if statuses := list_param(req, "status"):
            query = query.where(Session.status.in_(statuses))
        if agent_id := req.get_param("agent_id"):
            query = query.where(Session.agent_id == agent_id)
        if (since := since_param(req)) is not None:
            query = query.where(Session.updated_at >= since)
        rows, cursor = paginate(query, (Session.started_at, Session.id), page_request(req))
        resp.media = {"sessions": [row.to_json() for row in rows], "next_cursor": cursor}

    def on_get_item(self, req: falcon.Request, resp: falcon.Response, session_id: str) -> None:
        session = Session.get_or_none(Session.id == session_id)
        if session is None:
            raise ApiError(404, "not_found", f"No session {session_id!r}.")
        todos = Todo.select().where(Todo.session_id == session_id).order_by(Todo.position, Todo.id)
        messages = (Message.select().where(Message.session_id == session_id)
                    .order_by(Message.created_at.desc(), Message.id.desc()).limit(SESSION_MESSAGES_SHOWN))
        files = SessionFile.select().where(SessionFile.session_id == session_id).order_by(SessionFile.file)
        resp.media = {
            "session": session.to_json(),
            "todos": [todo.to_json() for todo in todos],
            "messages": [message.to_json() for message in messages],
            "files": [file.to_json() for file in files],
        }

