"""Projecting accepted events into the tables the dashboard reads, recording a change for each.

`project(event, now)` runs inside the request's write transaction; anything it raises rolls the
whole batch back. Each kind has one function; the registry (`kinds.KINDS`) names each kind's.

This is the ingest hot path, so it speaks plain SQL (`shared.store.db.execute`): peewee's query builder
costs about ten times what SQLite needs to run these statements. Reads for the API stay in peewee.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from typing import Any

from functions.events.event import Event, lookup, ms_to_unix
from functions.events.message_rows import json_value, messages
from functions.events.session_turns import (
    BUSY,
    agent_of,
    beat,
    links_changed,
    prompt_asked,
    prompt_settled,
    session_busy,
    session_links,
    session_retitled,
    session_waits,
    status_stated,
)
from shared.agents.questions import ask, parse_question
from shared.agents.tasks import as_json, ensure_agent, publish_agent, set_task_status, upsert_task
from shared.store.db import MAX_INTEGER, execute, execute_many, first_in_batch, insert_returning_id
from shared.store.feed import record_change, record_row_change
from shared.store.models import AgentTask, Message, Session, SessionFile, Todo
from shared.web.errors import invalid


def scalar(statement: str, params: tuple) -> Any:
    row = execute(statement, params).fetchone()
    return None if row is None else row[0]


# Agents -------------------------------------------------------------------------------------------------

def agent_registered(event: Event, now: int) -> None:
    data = event.data
    parent = data.get("parent_agent_id") or None  # "" names no agent
    if parent:
        ensure_agent(parent, now)
    execute(
        "INSERT INTO agents (id, name, type, parent_agent_id, soul_md, skills, config, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET name = excluded.name,"
        " type = excluded.type, parent_agent_id = excluded.parent_agent_id, soul_md = excluded.soul_md,"
        " skills = excluded.skills, config = excluded.config, updated_at = excluded.updated_at",
        (data["id"], data["name"], data["type"], parent, data.get("soul_md"),
         as_json(data.get("skills")), as_json(data.get("config")), event.occurred_at, now))
    publish_agent(data["id"], "registered")


def agent_status(event: Event, now: int) -> None:
    data = event.data
    ensure_agent(data["id"], now)
    status_stated(data["id"])
    execute("UPDATE agents SET status = ?, status_reason = ?, last_heartbeat = ?, updated_at = ? WHERE id = ?",
            (data["status"], data.get("reason"), event.occurred_at, now, data["id"]))
    if "current_task_id" in data:
        execute("UPDATE agents SET current_task_id = ? WHERE id = ?", (data["current_task_id"], data["id"]))
    publish_agent(data["id"], "status")


def agent_heartbeat(event: Event, now: int) -> None:
    ensure_agent(event.data["id"], now)
    beat(event.data["id"], event.occurred_at, now)


def agent_of_event(event: Event) -> str:
    return event.data["id"]


def heartbeat_superseded(event: Event, now: int) -> None:
    """A later heartbeat of the same batch sets the agent's last heartbeat: this one only registers it."""
    ensure_agent(event.data["id"], now)


# Tasks --------------------------------------------------------------------------------------------------

def task_created(event: Event, now: int) -> None:
    upsert_task(event.data, event.occurred_at, now)


def task_updated(event: Event, now: int) -> None:
    data = event.data
    task = AgentTask.fetch_json("id = ?", (data["id"],))
    if task is None:
        raise invalid(event.field("data.id"), f"No task {data['id']!r}: send task.created first.")
    reason = data.get("blocked_reason")
    if data.get("question") is not None:
        question = parse_question(data["question"], event.field("data.question"))
        ask(data["id"], task["agent_id"], question, now)
        reason = reason or question["text"]
    set_task_status(data["id"], task["agent_id"], data["status"], event.occurred_at, now, reason=reason)


# Sessions -----------------------------------------------------------------------------------------------

SESSION_FIELDS = frozenset({"name", "directory", "parent_id", "agent_id", "status", "deleted_at", "ended_at"})


def touch_session(session_id: str, now: int, **fields: Any) -> None:
    """Create the session if this is the first we hear of it; update `fields` and `updated_at`."""
    if not fields.keys() <= SESSION_FIELDS:  # column names go into the SQL text: only known ones
        raise ValueError(f"not session columns: {sorted(fields.keys() - SESSION_FIELDS)}")
    if not first_in_batch(("session", session_id)) and not fields:
        return  # an earlier event of the batch created or touched it: updated_at is `now` already
    columns = [*fields, "updated_at"]
    values = [*fields.values(), now]
    updates = ", ".join(f"{column} = excluded.{column}" for column in columns)
    execute(f"INSERT INTO sessions (id, started_at, {', '.join(columns)})"
            f" VALUES (?, ?{', ?' * len(columns)}) ON CONFLICT (id) DO UPDATE SET {updates}",
            (session_id, now, *values))
    if fields.keys() & {"parent_id", "agent_id"}:  # a session created without them has none, as read before
        links_changed(session_id)


def publish_session(session_id: str, action: str) -> None:
    record_row_change("session", session_id, action, lambda: Session.fetch_json("id = ?", (session_id,)))


def session_upserted(event: Event, now: int) -> None:
    info = event.data["info"]
    fields: dict[str, Any] = {"name": info.get("title"), "directory": info.get("directory"),
                              "parent_id": info.get("parentID")}
    agent_id = session_agent(event, info, now)
    if agent_id:
        fields["agent_id"] = agent_id
    old_title = scalar("SELECT name FROM sessions WHERE id = ?", (info["id"],))
    touch_session(info["id"], now, **fields)
    session_retitled(info["id"], old_title, info.get("title"))
    started = ms_to_unix(lookup(info, "time.created"))
    if started is not None:
        execute("UPDATE sessions SET started_at = ? WHERE id = ?", (started, info["id"]))
    publish_session(info["id"], "created" if event.type == "session.created" else "updated")


def session_agent(event: Event, info: dict[str, Any], now: int) -> str | None:
    """The agent running this session. A child session (parentID set) is a sub-agent's: unless the
    sender named a different agent, one is registered for it under the parent session's agent."""
    parent_session_id = info.get("parentID")
    if not parent_session_id:
        if event.agent_id:
            ensure_agent(event.agent_id, now)
        return event.agent_id
    parent_agent = session_links(parent_session_id)[1]
    agent_id = event.agent_id if event.agent_id and event.agent_id != parent_agent else f"sub-{info['id']}"
    ensure_agent(agent_id, now, name=info.get("title") or agent_id, type="sub-agent",
                 parent_agent_id=parent_agent)
    return agent_id


def session_deleted(event: Event, now: int) -> None:
    session_id = event.data["info"]["id"]
    touch_session(session_id, now, status="deleted", deleted_at=event.occurred_at, ended_at=event.occurred_at)
    publish_session(session_id, "deleted")
    session_waits(event, session_id, now)


def session_idle(event: Event, now: int) -> None:
    touch_session(event.data["sessionID"], now, status="idle")
    publish_session(event.data["sessionID"], "status")
    session_waits(event, event.data["sessionID"], now)


def session_status(event: Event, now: int) -> None:
    session_id = event.data["sessionID"]
    touch_session(session_id, now, status=event.data["status"]["type"])
    publish_session(session_id, "status")
    agent_id = agent_of(session_id, event.agent_id)
    if agent_id:
        beat(agent_id, event.occurred_at, now)
    if event.data["status"]["type"] in BUSY:
        session_busy(event, now)
    elif event.data["status"]["type"] == "idle":
        session_waits(event, session_id, now)


def session_compacted(event: Event, now: int) -> None:
    """opencode summarised the session's history to free its context: the messages stay as they were."""
    touch_session(event.data["sessionID"], now)
    publish_session(event.data["sessionID"], "compacted")


def command_executed(event: Event, now: int) -> None:
    """A slash command ran in the session; the message it produced comes as message events."""
    data = event.data
    touch_session(data["sessionID"], now)
    record_change("session", "command", {"session_id": data["sessionID"], "name": data["name"],
                                         "arguments": data.get("arguments"), "message_id": data.get("messageID")})


def error_text(event: Event) -> str:
    """`Name: message` of a session.error's error."""
    name = lookup(event.data, "error.name") or "Error"
    detail = lookup(event.data, "error.data.message")
    return f"{name}: {detail}" if isinstance(detail, str) and detail else str(name)


def error_agent(event: Event) -> str | None:
    """The agent a session.error is about: its session's, or the sender."""
    session_id = event.data.get("sessionID")
    return agent_of(session_id, event.agent_id) if session_id else event.agent_id


def session_error(event: Event, now: int) -> None:
    data = event.data
    session_id = data.get("sessionID")
    name = lookup(data, "error.name") or "Error"
    text = error_text(event)
    if session_id:
        touch_session(session_id, now, status="error")
        publish_session(session_id, "status")
    message_id = insert_returning_id("INSERT INTO messages (type, content, session_id, agent, created_at,"
                                     " updated_at) VALUES ('error', ?, ?, ?, ?, ?)",
                                     (text, session_id, event.agent_id, event.occurred_at, now))
    record_change("error", "session", {"session_id": session_id, "agent_id": event.agent_id, "name": name,
                                       "message": Message.fetch_json("id = ?", (message_id,))})


# Messages -----------------------------------------------------------------------------------------------
# A batch's messages are rows in memory (message_rows.py): each event changes its message's row as its SQL
# would have, a new message is inserted before the batch's next event about something else, and the
# batch's end writes and publishes each once.

def message_of(event: Event) -> str | None:
    """The external id of the message an event of a message kind changes (None for other kinds)."""
    data = event.data
    match event.type:
        case "message.updated":
            return data["info"]["id"]
        case "message.part.updated":
            return data["part"]["messageID"]
        case "message.part.removed" | "message.removed":
            return data["messageID"]
        case "tool.execute.before" | "tool.execute.after":
            return tool_message(data)
    return None


def tool_message(data: dict[str, Any]) -> str:
    return f"tool:{data['callID']}"


def message_updated(event: Event, now: int) -> None:
    info = event.data["info"]
    touch_session(info["sessionID"], now)
    rows = messages()
    values = {"session_id": info["sessionID"], "role": info["role"], "agent": info.get("mode") or event.agent_id,
              "model_id": info.get("modelID"), "provider_id": info.get("providerID"), "cost": info.get("cost"),
              "tokens": info.get("tokens"), "completed_at": ms_to_unix(lookup(info, "time.completed")),
              "updated_at": now}
    if rows.get(info["id"]) is None:
        created = ms_to_unix(lookup(info, "time.created")) or event.occurred_at
        rows.insert(info["id"], "chat", created, content="", parts=[], **values)
    else:
        rows.update(info["id"], **values)
    rows.publish(info["id"], "updated")


def message_part_updated(event: Event, now: int) -> None:
    part = event.data["part"]
    touch_session(part["sessionID"], now)
    rows = messages()
    row = rows.get(part["messageID"])
    parts = [p for p in parts_of(row) if p.get("id") != part["id"]]
    parts.append(part)
    if row is None:  # parts can arrive before their message: then the part creates it, and message.updated fills it in
        rows.insert(part["messageID"], "chat", event.occurred_at, content=text_of(parts), parts=parts,
                    session_id=part["sessionID"], agent=event.agent_id, updated_at=now)
    else:
        rows.update(part["messageID"], content=text_of(parts), parts=parts, updated_at=now)
    rows.publish(part["messageID"], "updated")


def message_part_removed(event: Event, now: int) -> None:
    data = event.data
    rows = messages()
    parts = parts_of(rows.get(data["messageID"]))
    kept = [p for p in parts if p.get("id") != data["partID"]]
    if len(kept) == len(parts):
        return  # a part never seen (or removed already): nothing changes
    rows.update(data["messageID"], content=text_of(kept), parts=kept, updated_at=now)
    rows.publish(data["messageID"], "updated")


def part_streamed(event: Event, now: int) -> None:
    """message.part.delta: a few characters of a part being written, sent many times a second. Nothing is
    stored (not even the raw event): the part's message.part.updated carries its whole text."""


def parts_of(row: dict[str, Any] | None) -> list[dict[str, Any]]:
    """A message's parts as stored, or none: anything in its parts that is not a part is left out."""
    stored = None if row is None else json_value(row, "parts")
    return [part for part in stored if isinstance(part, dict)] if isinstance(stored, list) else []


def text_of(parts: list[dict[str, Any]]) -> str:
    """A message's content: its text parts, in order."""
    return "".join(p["text"] for p in parts if p.get("type") == "text" and isinstance(p.get("text"), str))


def message_removed(event: Event, now: int) -> None:
    external_id = event.data["messageID"]
    messages().delete(external_id)
    record_change("message", "removed", {"external_id": external_id, "session_id": event.data["sessionID"]})


def tool_executed(event: Event, now: int) -> None:
    data = event.data
    touch_session(data["sessionID"], now)
    rows = messages()
    external_id = tool_message(data)
    row = rows.get(external_id)
    call = dict((parts_of(row) or [{}])[0])
    call.update({key: data[key] for key in ("tool", "callID", "args", "title", "output") if key in data})
    finished = event.type == "tool.execute.after"
    call["state"] = "completed" if finished else "running"
    values = {"content": data.get("title") or data["tool"], "parts": [call],
              "completed_at": event.occurred_at if finished else None, "updated_at": now}
    if row is None:
        rows.insert(external_id, "tool", event.occurred_at, role="tool", session_id=data["sessionID"],
                    agent=event.agent_id, **values)
    else:
        rows.update(external_id, **values)
    rows.publish(external_id, "tool")


# Todos --------------------------------------------------------------------------------------------------

def todo_updated(event: Event, now: int) -> None:
    """opencode sends a session's whole todo list each time: the stored list is replaced by it."""
    session_id = event.data["sessionID"]
    touch_session(session_id, now)
    todos = event.data["todos"]
    rows = [(todo_id, session_id, todo["content"], todo["status"], todo.get("priority") or "medium",
             event.agent_id, position, now, now)
            for position, (todo_id, todo) in enumerate(zip(todo_ids(session_id, todos), todos, strict=True))]
    keep = [row[0] for row in rows]
    if set(keep) != {todo_id for (todo_id,) in execute("SELECT id FROM todos WHERE session_id = ?", (session_id,))}:
        messages().insert_new()  # the list adds or removes todos, and so search entries: after the batch's messages
    execute(f"DELETE FROM todos WHERE session_id = ? AND id NOT IN ({', '.join('?' * len(keep))})"
            if keep else "DELETE FROM todos WHERE session_id = ?", (session_id, *keep))
    execute_many("INSERT INTO todos (id, session_id, content, status, priority, agent, position, created_at,"
                 " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
                 " content = excluded.content, status = excluded.status, priority = excluded.priority,"
                 " agent = excluded.agent, position = excluded.position, updated_at = excluded.updated_at", rows)
    stored = [Todo.json_from_db(TODO_COLUMNS, row) for row in rows_as_stored(session_id)]
    record_change("todo", "replaced", {"session_id": session_id, "todos": stored})


def session_of_event(event: Event) -> str:
    return event.data["sessionID"]


def todo_list_superseded(event: Event, now: int) -> None:
    """A later list of the same batch replaces this one whole: only its session is made sure of."""
    touch_session(event.data["sessionID"], now)


def todo_ids(session_id: str, todos: list[dict[str, Any]]) -> list[str]:
    """Each todo's id, prefixed by its session: opencode's own ids ("1", "2", ...) are only unique within a
    session. opencode's v2 todos (what 1.18 really sends) carry none; theirs is derived from the content,
    so a todo keeps its id (and its created_at) while its status changes and while others are added,
    removed or moved around it — the way todo lists change. Reworded, it is a new todo. The same content
    twice in one list gets `~2`, `~3`, ... by order of appearance."""
    seen: Counter[str] = Counter()
    ids = []
    for todo in todos:
        if isinstance(todo.get("id"), str) and todo["id"]:
            ids.append(f"{session_id}:{todo['id']}")
            continue
        digest = "#" + hashlib.sha256(todo["content"].encode("utf-8", "surrogatepass")).hexdigest()[:16]
        seen[digest] += 1
        ids.append(f"{session_id}:{digest}" + (f"~{seen[digest]}" if seen[digest] > 1 else ""))
    return ids


TODO_COLUMNS = [field.column_name for field in Todo._meta.sorted_fields]


def rows_as_stored(session_id: str) -> list[tuple]:
    return execute(f"SELECT {', '.join(TODO_COLUMNS)} FROM todos WHERE session_id = ? ORDER BY position",
                   (session_id,)).fetchall()


# Files, permissions and questions -----------------------------------------------------------------------

def file_edited(event: Event, now: int) -> None:
    """opencode names the file and not the session: the file goes to the sender's busy session, else the
    one it worked in last (a sender may add `sessionID` to say which)."""
    file = event.data["file"]
    session_id = event.data.get("sessionID") or latest_session_of(event.agent_id)
    if session_id:
        touch_session(session_id, now)
        execute("INSERT INTO session_files (session_id, file, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (session_id, file) DO UPDATE SET updated_at = excluded.updated_at",
                (session_id, file, now))
    record_change("file", "edited", {"file": file, "agent_id": event.agent_id, "session_id": session_id,
                                     "event_id": event.id})


def latest_session_of(agent_id: str | None) -> str | None:
    if agent_id is None:
        return None
    return scalar("SELECT id FROM sessions WHERE agent_id = ? AND deleted_at IS NULL ORDER BY"
                  " CASE WHEN status = 'busy' THEN 0 ELSE 1 END, updated_at DESC, id DESC LIMIT 1", (agent_id,))


def session_diff(event: Event, now: int) -> None:
    """The session's whole diff against where it started: its list of changed files is replaced by it.

    A diff naming no file leaves the list alone: opencode 1.18.33 sends `"diff": []` however many files
    its session wrote, and trusting it would wipe what `file.edited` recorded."""
    session_id = event.data["sessionID"]
    touch_session(session_id, now)
    files = {diff["file"]: diff for diff in event.data["diff"] if isinstance(diff.get("file"), str) and diff["file"]}
    if not files:
        return
    execute("DELETE FROM session_files WHERE session_id = ?", (session_id,))
    execute_many("INSERT INTO session_files (session_id, file, status, additions, deletions, updated_at)"
                 " VALUES (?, ?, ?, ?, ?, ?)",
                 [(session_id, file, diff.get("status") if isinstance(diff.get("status"), str) else None,
                   line_count(diff.get("additions")), line_count(diff.get("deletions")), now)
                  for file, diff in files.items()])
    record_change("session", "files", {"session_id": session_id, "files": session_files(session_id)})


def line_count(value: Any) -> int | None:
    """A diff's additions or deletions as a column holds them; anything else is left out."""
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= MAX_INTEGER:
        return int(value)
    return None


def session_files(session_id: str) -> list[dict[str, Any]]:
    cursor = execute("SELECT * FROM session_files WHERE session_id = ? ORDER BY file", (session_id,))
    columns = [d[0] for d in cursor.description]
    return [SessionFile.json_from_db(columns, row) for row in cursor.fetchall()]


def asked(event: Event, now: int) -> None:
    """opencode waits on a person (a permission or a question): see session_turns."""
    prompt_asked(event, now)


def replied(event: Event, now: int) -> None:
    prompt_settled(event, now)
