"""Projecting accepted events into the tables the dashboard reads, recording a change for each.

`project(event, now)` runs inside the request's write transaction; anything it raises rolls the
whole batch back. Each kind has one function; the table `PROJECTIONS` maps kinds to them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from functions.events.contract import Event, lookup, ms_to_unix
from shared.clock import iso_from_unix
from shared.errors import invalid
from shared.feed import record_change
from shared.models import Agent, AgentTask, Message, Session, Todo


def project(event: Event, now: int) -> None:
    projection = PROJECTIONS.get(event.type)
    if projection is not None:
        projection(event, now)


# Agents -------------------------------------------------------------------------------------------------

def ensure_agent(agent_id: str, now: int, *, name: str | None = None, type: str = "primary",
                 parent_agent_id: str | None = None) -> None:
    """Make sure the agent exists, so tasks and sub-agents can point at it. An existing agent is left
    as it is: what it said about itself in agent.registered wins over what we infer."""
    if parent_agent_id:
        ensure_agent(parent_agent_id, now)
    inserted = (Agent.insert(id=agent_id, name=name or agent_id, type=type, parent_agent_id=parent_agent_id,
                             status="idle", created_at=now, updated_at=now)
                .on_conflict_ignore().as_rowcount().execute())
    if inserted:
        _publish_agent(agent_id, "registered")


def _publish_agent(agent_id: str, action: str) -> None:
    record_change("agent", action, Agent.get_by_id(agent_id).to_json())


def agent_registered(event: Event, now: int) -> None:
    data = event.data
    if data.get("parent_agent_id"):
        ensure_agent(data["parent_agent_id"], now)
    fields = {
        Agent.name: data["name"],
        Agent.type: data["type"],
        Agent.parent_agent_id: data.get("parent_agent_id"),
        Agent.soul_md: data.get("soul_md"),
        Agent.skills: data.get("skills"),
        Agent.config: data.get("config"),
        Agent.updated_at: now,
    }
    (Agent.insert({Agent.id: data["id"], Agent.created_at: event.occurred_at, **fields})
     .on_conflict(conflict_target=[Agent.id], update=fields).execute())
    _publish_agent(data["id"], "registered")


def agent_status(event: Event, now: int) -> None:
    data = event.data
    ensure_agent(data["id"], now)
    fields = {Agent.status: data["status"], Agent.status_reason: data.get("reason"),
              Agent.last_heartbeat: event.occurred_at, Agent.updated_at: now}
    if "current_task_id" in data:
        fields[Agent.current_task_id] = data["current_task_id"]
    Agent.update(fields).where(Agent.id == data["id"]).execute()
    _publish_agent(data["id"], "status")


def agent_heartbeat(event: Event, now: int) -> None:
    ensure_agent(event.data["id"], now)
    _beat(event.data["id"], event.occurred_at, now)


def _beat(agent_id: str, at: int, now: int) -> None:
    Agent.update(last_heartbeat=at, updated_at=now).where(Agent.id == agent_id).execute()
    record_change("agent", "heartbeat", {"id": agent_id, "last_heartbeat": iso_from_unix(at)})


# Tasks --------------------------------------------------------------------------------------------------

def task_created(event: Event, now: int) -> None:
    data = event.data
    ensure_agent(data["agent_id"], now)
    fields = {
        AgentTask.agent_id: data["agent_id"],
        AgentTask.title: data["title"],
        AgentTask.priority: data.get("priority") or "medium",
        AgentTask.linear_issue_id: data.get("linear_issue_id"),
        AgentTask.project_id: data.get("project_id"),
        AgentTask.updated_at: now,
    }
    (AgentTask.insert({AgentTask.id: data["id"], AgentTask.status: "pending",
                       AgentTask.created_at: event.occurred_at, **fields})
     .on_conflict(conflict_target=[AgentTask.id], update=fields).execute())
    record_change("task", "created", AgentTask.get_by_id(data["id"]).to_json())


def task_updated(event: Event, now: int) -> None:
    data = event.data
    task = AgentTask.get_or_none(AgentTask.id == data["id"])
    if task is None:
        raise invalid(event.field("data.id"), f"No task {data['id']!r}: send task.created first.")
    set_task_status(task, data["status"], event.occurred_at, now, reason=data.get("blocked_reason"))


def set_task_status(task: AgentTask, status: str, at: int, now: int, *, reason: str | None = None) -> None:
    """Move a task to `status`, keeping its timestamps and its agent's current task in step."""
    task.status = status
    task.updated_at = now
    if status == "blocked":
        task.blocked_at = task.blocked_at or at  # one blocked episode keeps its start
        task.blocked_reason = reason or task.blocked_reason
    else:
        task.blocked_at = None
        task.blocked_reason = None
    if status == "in_progress" and task.started_at is None:
        task.started_at = at
    if status in ("completed", "cancelled"):
        task.completed_at = at
    task.save()
    if status == "in_progress":
        Agent.update(current_task_id=task.id).where(Agent.id == task.agent_id).execute()
    elif status in ("completed", "cancelled"):
        (Agent.update(current_task_id=None)
         .where((Agent.id == task.agent_id) & (Agent.current_task_id == task.id)).execute())
    record_change("task", status, task.to_json())


# Sessions -----------------------------------------------------------------------------------------------

def touch_session(session_id: str, now: int, **fields: Any) -> None:
    """Create the session if this is the first we hear of it; update `fields` and `updated_at`."""
    changes = {getattr(Session, name): value for name, value in fields.items()}
    changes[Session.updated_at] = now
    (Session.insert({Session.id: session_id, Session.started_at: now, **changes})
     .on_conflict(conflict_target=[Session.id], update=changes).execute())


def _publish_session(session_id: str, action: str) -> None:
    record_change("session", action, Session.get_by_id(session_id).to_json())


def session_upserted(event: Event, now: int) -> None:
    info = event.data["info"]
    fields: dict[str, Any] = {"name": info.get("title"), "directory": info.get("directory"),
                              "parent_id": info.get("parentID")}
    agent_id = _session_agent(event, info, now)
    if agent_id:
        fields["agent_id"] = agent_id
    touch_session(info["id"], now, **fields)
    started = ms_to_unix(lookup(info, "time.created"))
    if started is not None:
        Session.update(started_at=started).where(Session.id == info["id"]).execute()
    _publish_session(info["id"], "created" if event.type == "session.created" else "updated")


def _session_agent(event: Event, info: dict[str, Any], now: int) -> str | None:
    """The agent running this session. A child session (parentID set) is a sub-agent's: unless the
    sender named a different agent, one is registered for it under the parent session's agent."""
    parent_session_id = info.get("parentID")
    if not parent_session_id:
        if event.agent_id:
            ensure_agent(event.agent_id, now)
        return event.agent_id
    parent = Session.get_or_none(Session.id == parent_session_id)
    parent_agent = parent.agent_id if parent else None
    if event.agent_id and event.agent_id != parent_agent:
        agent_id = event.agent_id
    else:
        agent_id = f"sub-{info['id']}"
    ensure_agent(agent_id, now, name=info.get("title") or agent_id, type="sub-agent",
                 parent_agent_id=parent_agent)
    return agent_id


def session_deleted(event: Event, now: int) -> None:
    session_id = event.data["info"]["id"]
    touch_session(session_id, now, status="deleted", deleted_at=event.occurred_at, ended_at=event.occurred_at)
    _publish_session(session_id, "deleted")


def session_idle(event: Event, now: int) -> None:
    touch_session(event.data["sessionID"], now, status="idle")
    _publish_session(event.data["sessionID"], "status")


def session_status(event: Event, now: int) -> None:
    session_id = event.data["sessionID"]
    touch_session(session_id, now, status=event.data["status"]["type"])
    _publish_session(session_id, "status")
    agent_id = Session.get_by_id(session_id).agent_id or event.agent_id
    if agent_id and Agent.select().where(Agent.id == agent_id).exists():
        _beat(agent_id, event.occurred_at, now)


def session_error(event: Event, now: int) -> None:
    data = event.data
    session_id = data.get("sessionID")
    name = lookup(data, "error.name") or "Error"
    detail = lookup(data, "error.data.message")
    text = f"{name}: {detail}" if isinstance(detail, str) and detail else str(name)
    if session_id:
        touch_session(session_id, now, status="error")
    message = Message.create(type="error", content=text, session_id=session_id, created_at=event.occurred_at,
                             updated_at=now, agent=event.agent_id)
    record_change("error", "session", {"session_id": session_id, "agent_id": event.agent_id, "name": name,
                                       "message": message.to_json()})


# Messages -----------------------------------------------------------------------------------------------

def message_updated(event: Event, now: int) -> None:
    info = event.data["info"]
    touch_session(info["sessionID"], now)
    fields = {
        Message.session_id: info["sessionID"],
        Message.role: info["role"],
        Message.agent: info.get("mode") or event.agent_id,
        Message.model_id: info.get("modelID"),
        Message.provider_id: info.get("providerID"),
        Message.cost: info.get("cost"),
        Message.tokens: info.get("tokens"),
        Message.completed_at: ms_to_unix(lookup(info, "time.completed")),
        Message.updated_at: now,
    }
    created = ms_to_unix(lookup(info, "time.created")) or event.occurred_at
    (Message.insert({Message.external_id: info["id"], Message.type: "chat", Message.content: "",
                     Message.parts: [], Message.created_at: created, **fields})
     .on_conflict(conflict_target=[Message.external_id], update=fields).execute())
    record_change("message", "updated", Message.get(Message.external_id == info["id"]).to_json())


def message_part_updated(event: Event, now: int) -> None:
    part = event.data["part"]
    touch_session(part["sessionID"], now)
    message = Message.get_or_none(Message.external_id == part["messageID"])
    if message is None:  # parts can arrive before their message
        message = Message(external_id=part["messageID"], type="chat", session_id=part["sessionID"],
                          created_at=event.occurred_at, parts=[], agent=event.agent_id)
    parts = [existing for existing in (message.parts or []) if existing.get("id") != part["id"]]
    parts.append(part)
    message.parts = parts
    message.content = "".join(p["text"] for p in parts if p.get("type") == "text" and isinstance(p.get("text"), str))
    message.updated_at = now
    message.save()
    record_change("message", "updated", message.to_json())


def message_removed(event: Event, now: int) -> None:
    external_id = event.data["messageID"]
    Message.delete().where(Message.external_id == external_id).execute()
    record_change("message", "removed", {"external_id": external_id, "session_id": event.data["sessionID"]})


def tool_executed(event: Event, now: int) -> None:
    data = event.data
    touch_session(data["sessionID"], now)
    external_id = f"tool:{data['callID']}"
    message = Message.get_or_none(Message.external_id == external_id) or Message(
        external_id=external_id, type="tool", role="tool", session_id=data["sessionID"],
        created_at=event.occurred_at, agent=event.agent_id)
    call = (message.parts or [{}])[0]
    call.update({key: data[key] for key in ("tool", "callID", "args", "title", "output") if key in data})
    finished = event.type == "tool.execute.after"
    call["state"] = "completed" if finished else "running"
    message.parts = [call]
    message.content = data.get("title") or data["tool"]
    message.completed_at = event.occurred_at if finished else None
    message.updated_at = now
    message.save()
    record_change("message", "tool", message.to_json())


# Todos --------------------------------------------------------------------------------------------------

def todo_updated(event: Event, now: int) -> None:
    """opencode sends a session's whole todo list each time: the stored list is replaced by it."""
    session_id = event.data["sessionID"]
    touch_session(session_id, now)
    # opencode's todo ids are only unique within a session ("1", "2", ...), hence the prefix.
    rows = [
        {"id": f"{session_id}:{todo['id']}", "session_id": session_id, "content": todo["content"],
         "status": todo["status"], "priority": todo.get("priority") or "medium", "agent": event.agent_id,
         "position": position, "created_at": now, "updated_at": now}
        for position, todo in enumerate(event.data["todos"])
    ]
    keep = [row["id"] for row in rows]
    Todo.delete().where((Todo.session_id == session_id) & Todo.id.not_in(keep)).execute()
    if rows:
        (Todo.insert_many(rows)
         .on_conflict(conflict_target=[Todo.id],
                      preserve=[Todo.content, Todo.status, Todo.priority, Todo.agent, Todo.position,
                                Todo.updated_at])
         .execute())
    todos = Todo.select().where(Todo.session_id == session_id).order_by(Todo.position)
    record_change("todo", "replaced", {"session_id": session_id, "todos": [t.to_json() for t in todos]})


# Files, permissions and questions -----------------------------------------------------------------------

def file_edited(event: Event, now: int) -> None:
    record_change("file", "edited", {"file": event.data["file"], "agent_id": event.agent_id,
                                     "event_id": event.id})


def _blocked_task_of_session(event: Event) -> tuple[Agent | None, AgentTask | None]:
    session = Session.get_or_none(Session.id == event.data["sessionID"])
    agent_id = (session.agent_id if session else None) or event.agent_id
    agent = Agent.get_or_none(Agent.id == agent_id) if agent_id else None
    task = AgentTask.get_or_none(AgentTask.id == agent.current_task_id) if agent and agent.current_task_id else None
    return agent, task


def asked(event: Event, now: int) -> None:
    """An agent waits on a person: its current task is blocked with the question as the reason."""
    reason = _question_text(event)
    agent, task = _blocked_task_of_session(event)
    if task is not None:
        set_task_status(task, "blocked", event.occurred_at, now, reason=reason)
    if agent is not None:
        _set_agent_status(agent, "blocked", reason, now)
    if task is None and agent is None:
        record_change("session", "asked", {"session_id": event.data["sessionID"], "reason": reason})


def replied(event: Event, now: int) -> None:
    agent, task = _blocked_task_of_session(event)
    if task is not None and task.status == "blocked":
        set_task_status(task, "in_progress", event.occurred_at, now)
    if agent is not None and agent.status == "blocked":
        _set_agent_status(agent, "working", None, now)


def _set_agent_status(agent: Agent, status: str, reason: str | None, now: int) -> None:
    Agent.update(status=status, status_reason=reason, updated_at=now).where(Agent.id == agent.id).execute()
    _publish_agent(agent.id, "status")


def _question_text(event: Event) -> str:
    data = event.data
    if event.type == "question.asked":
        questions = data.get("questions") or [{}]
        question = questions[0].get("question") if isinstance(questions[0], dict) else None
        return f"Question: {question}" if isinstance(question, str) else "Question asked"
    what = data.get("title") or data.get("permission") or data.get("type")
    return f"Permission requested: {what}" if isinstance(what, str) else "Permission requested"


PROJECTIONS: dict[str, Callable[[Event, int], None]] = {
    "session.created": session_upserted,
    "session.updated": session_upserted,
    "session.deleted": session_deleted,
    "session.idle": session_idle,
    "session.error": session_error,
    "session.status": session_status,
    "message.updated": message_updated,
    "message.removed": message_removed,
    "message.part.updated": message_part_updated,
    "todo.updated": todo_updated,
    "tool.execute.before": tool_executed,
    "tool.execute.after": tool_executed,
    "file.edited": file_edited,
    "permission.asked": asked,
    "question.asked": asked,
    "permission.replied": replied,
    "question.replied": replied,
    "question.rejected": replied,
    "agent.registered": agent_registered,
    "agent.status": agent_status,
    "agent.heartbeat": agent_heartbeat,
    "task.created": task_created,
    "task.updated": task_updated,
}
