"""Monitoring with no set-up: an opencode session's work becomes tasks, and its prompts their questions.

Each turn of a top-level session — from the moment the session goes busy until it waits for the person
again — is one task (`<session id>.turn-<n>`, priority `high`, titled by the person's prompt), which gets
its workflow like any task: BLOCKED, notifications and pushes follow. A permission or question opencode
puts to the person (in the session or in a sub-agent's session under it) is that turn's question, so it
blocks the task and can be answered from the dashboard; the terminal's reply settles it. An agent's
status follows its sessions: waiting on a person, blocked; busy, working; otherwise idle. An agent that
declared a task of its own (task.created, then in progress) keeps it: its sessions' prompts block that
task, and no turn tasks are made beside it. docs/monitoring.md says it for users.

Everything here runs inside the ingest's write transaction, in plain SQL (the ingest hot path).
"""

from __future__ import annotations

from typing import Any

from functions.events.event import Event
from functions.events.message_rows import latest_prompt
from shared.agents.questions import MAX_CHOICE, MAX_CHOICES, MAX_TEXT, ask, settle_request
from shared.agents.task_workflow import UNFINISHED
from shared.agents.tasks import (
    begin_task,
    ensure_agent,
    publish_task,
    resume_or_ask_next,
    set_agent_status,
    set_task_status,
)
from shared.clock import iso_from_unix
from shared.store.db import execute, memo_in_batch
from shared.store.feed import record_row_change
from shared.store.models import AgentTask

TURN_PRIORITY = "high"  # a person is waited on: BLOCKED after the high threshold (10 minutes by default)
MAX_TITLE = 120
MAX_SESSION_DEPTH = 32  # sub-agents of sub-agents: far deeper than opencode goes, and no cycle loops for ever
BUSY = ("busy", "retry")  # opencode's session.status types of a session at work
OPEN = f"status IN ({', '.join(repr(status) for status in UNFINISHED)})"


def scalar(statement: str, params: tuple) -> Any:
    row = execute(statement, params).fetchone()
    return None if row is None else row[0]


# Sessions and their turns ----------------------------------------------------------------------------------

def session_links(session_id: str) -> tuple[str | None, str | None]:
    """The session's parent session and agent ((None, None) for a session not stored), read once a batch:
    its events ask again and again. Whatever writes either (or creates the session) calls `links_changed`."""
    memo = memo_in_batch("session links")
    if memo is not None and (links := memo.get(session_id)) is not None:
        return links
    row = execute("SELECT parent_id, agent_id FROM sessions WHERE id = ?", (session_id,)).fetchone()
    links = (None, None) if row is None else (row[0], row[1])
    if memo is not None:
        memo[session_id] = links
    return links


def links_changed(session_id: str) -> None:
    memo = memo_in_batch("session links")
    if memo is not None:
        memo.pop(session_id, None)


def root_session(session_id: str) -> str:
    """The top-level session a (sub-agent's) session runs under: itself when it has no known parent."""
    seen = {session_id}
    while len(seen) <= MAX_SESSION_DEPTH:
        parent = session_links(session_id)[0]
        if not parent or parent in seen:
            break
        seen.add(parent)
        session_id = parent
    return session_id


def agent_of(session_id: str, sender: str | None) -> str | None:
    """The agent running the session: as recorded, else the event's sender."""
    return session_links(session_id)[1] or sender


# The tasks here are read as what moves them, {"id", "agent_id", "status"}, not as the API shows them: they
# are looked for at every status change of every session, and most are not moved.
TASK_REF = "SELECT id, agent_id, status, created_at FROM agent_tasks"


def task_ref(row: tuple) -> dict[str, Any]:
    return {"id": row[0], "agent_id": row[1], "status": row[2]}


def declared_task(agent_id: str) -> dict[str, Any] | None:
    """The open task the agent declared itself (not a turn) and is on, if any."""
    row = execute(f"{TASK_REF} WHERE id = (SELECT current_task_id FROM agents WHERE id = ?) AND session_id IS NULL"
                  f" AND {OPEN}", (agent_id,)).fetchone()
    return None if row is None else task_ref(row)


def open_turn(session_id: str) -> dict[str, Any] | None:
    """The session's newest unfinished turn (there is one at most, unless something went wrong). Picked
    here rather than by ORDER BY ... LIMIT 1, which SQLite would sort in a temporary b-tree (~30 µs, more
    than the lookup), at every status change of every session."""
    turns = execute(f"{TASK_REF} WHERE session_id = ? AND {OPEN}", (session_id,)).fetchall()
    newest = max(turns, key=lambda turn: (turn[3] or 0, turn[0]), default=None)
    return None if newest is None else task_ref(newest)


def working_task(session_id: str, sender: str | None, at: int, now: int) -> dict[str, Any] | None:
    """The task the session's work is on now — its agent's declared task, or the open turn of its
    top-level session, begun now if there is none. None when nobody says which agent runs it."""
    root = root_session(session_id)
    agent_id = agent_of(root, sender)
    if agent_id is None:
        return None
    ensure_agent(agent_id, now)
    return declared_task(agent_id) or open_turn(root) or begin_turn(root, agent_id, at, now)


def begin_turn(session_id: str, agent_id: str, at: int, now: int) -> dict[str, Any]:
    turn = 1 + scalar("SELECT COUNT(*) FROM agent_tasks WHERE session_id = ?", (session_id,))
    while scalar("SELECT 1 FROM agent_tasks WHERE id = ?", (turn_id(session_id, turn),)):
        turn += 1
    task_id = turn_id(session_id, turn)
    begin_task({"id": task_id, "agent_id": agent_id, "title": turn_title(session_id, turn),
                "priority": TURN_PRIORITY, "session_id": session_id}, at, now)
    return {"id": task_id, "agent_id": agent_id, "status": "in_progress"}


def turn_id(session_id: str, turn: int) -> str:
    return f"{session_id}.turn-{turn}"


def turn_title(session_id: str, turn: int) -> str:
    """The person's prompt that began the turn (its first line), else the session's title."""
    prompt = latest_prompt(session_id)  # the prompt may be a message of the batch being applied
    first_line = next((line.strip() for line in (prompt or "").splitlines() if line.strip()), "")
    if first_line:
        return shorten(first_line)
    title = scalar("SELECT name FROM sessions WHERE id = ?", (session_id,)) or f"opencode session {session_id}"
    return shorten(title if turn == 1 else f"{title} (turn {turn})")


def shorten(text: str, limit: int = MAX_TITLE) -> str:
    return text if len(text) <= limit else f"{text[:limit - 1]}…"


def session_busy(event: Event, now: int) -> None:
    """The session works: a top-level session's turn begins (if it has not), its agent is working."""
    session_id = event.data["sessionID"]
    if root_session(session_id) == session_id:
        # First heard of by its status (the plugin came in mid-session): the sender's.
        if event.agent_id and session_links(session_id)[1] is None:
            execute("UPDATE sessions SET agent_id = ? WHERE id = ? AND agent_id IS NULL", (event.agent_id, session_id))
            links_changed(session_id)
        working_task(session_id, event.agent_id, event.occurred_at, now)
    refresh_agents(session_id, event.agent_id, now)


def session_waits(event: Event, session_id: str, now: int) -> None:
    """The session finished its turn and waits for the person (idle): the turn is completed (its
    workflow fires the `completed` rules); a session that is gone ends its turn cancelled."""
    gone = event.type == "session.deleted"
    turn = open_turn(session_id)
    if turn is not None:
        set_task_status(turn["id"], turn["agent_id"], "cancelled" if gone else "completed", event.occurred_at, now)
    refresh_agents(session_id, event.agent_id, now)


def session_retitled(session_id: str, old_title: str | None, new_title: str | None) -> None:
    """opencode names a session after its first prompt has started: an open turn still titled by the
    old name takes the new one."""
    if not new_title or new_title == old_title:
        return
    renamed = execute(f"SELECT id FROM agent_tasks WHERE session_id = ? AND title = ? AND {OPEN}",
                      (session_id, shorten(old_title or f"opencode session {session_id}"))).fetchall()
    for (task_id,) in renamed:
        execute("UPDATE agent_tasks SET title = ? WHERE id = ?", (shorten(new_title), task_id))
        publish_task(task_id, "retitled")


# Kinds that may begin a turn (a busy status, a prompt), so the ingest starts the workflows of turns begun.
TURN_KINDS = frozenset({"session.status", "permission.asked", "permission.v2.asked", "question.asked",
                        "question.v2.asked"})


def turns_begun(session_ids: list[str]) -> list[str]:
    """The turn tasks of these sessions' top-level sessions still waiting for their workflow."""
    roots = list(dict.fromkeys(root_session(session_id) for session_id in session_ids if session_id))
    if not roots:
        return []
    return [row[0] for row in execute(waiting_turns(len(roots)), roots).fetchall()]


def waiting_turns(sessions: int) -> str:
    """The query for the turns of `sessions` sessions still waiting for their workflow (by session, through
    agent_tasks_session_workflow: while Temporal is down every task waits)."""
    return (f"SELECT id FROM agent_tasks WHERE session_id IN ({', '.join('?' * sessions)})"
            " AND workflow_started_at IS NULL")


def error_turn(event: Event) -> tuple[str, str] | None:
    """(agent_id, task_id) of the turn a session.error belongs to: its top-level session's latest turn
    (an error often ends the turn in the same batch), unless its agent is on a task it declared."""
    session_id = event.data.get("sessionID")
    if not isinstance(session_id, str):
        return None
    root = root_session(session_id)
    agent_id = agent_of(root, event.agent_id)
    if agent_id is None or declared_task(agent_id) is not None:
        return None
    row = execute("SELECT agent_id, id FROM agent_tasks WHERE session_id = ? ORDER BY created_at DESC, id DESC"
                  " LIMIT 1", (root,)).fetchone()
    return None if row is None else (row[0], row[1])


# Prompts ---------------------------------------------------------------------------------------------------

def prompt_asked(event: Event, now: int) -> None:
    """opencode asks the person (a permission or a question): the session's task is blocked with it as
    its question, answerable from the dashboard (or queued behind one that waits already)."""
    data = event.data
    session_id = data["sessionID"]
    question, reason = prompt_question(event)
    task = working_task(session_id, event.agent_id, event.occurred_at, now)
    if task is not None:
        status = ask(task["id"], task["agent_id"], question, now, request_id=data["id"], session_id=session_id)
        if status == "pending":
            set_task_status(task["id"], task["agent_id"], "blocked", event.occurred_at, now, reason=reason)
    refresh_agents(session_id, event.agent_id, now, reason=reason)


def prompt_settled(event: Event, now: int) -> None:
    """The terminal answered (or dismissed) opencode's prompt: its question is settled, so the
    dashboard takes no answer to it any more, and the task goes on (or waits on its next question)."""
    data = event.data
    request_id = data.get("requestID") or data.get("permissionID")  # older opencode: permissionID
    settled = (settle_request(request_id, now, lambda question: terminal_answer(event, question))
               if isinstance(request_id, str) else None)
    task = None
    if settled is not None and settled["status"] == "pending":
        task = AgentTask.fetch_json("id = ?", (settled["task_id"],))
    elif request_id is None:  # a reply naming no request: the session's blocked task it was
        task = working_task(data["sessionID"], event.agent_id, event.occurred_at, now)
    if task is not None and task["status"] == "blocked":
        resume_or_ask_next(task["id"], task["agent_id"], event.occurred_at, now, action="answered")
    refresh_agents(data["sessionID"], event.agent_id, now)


def prompt_question(event: Event) -> tuple[dict[str, Any], str]:
    """opencode's prompt as a dashboard question, and the task's blocked reason.

    A permission is allow / deny. A question with a single list of options to pick one from is a
    choice; anything else (free text, several questions, several picks) takes a typed answer — one line
    per question when there are several (docs/monitoring.md)."""
    data = event.data
    if event.type.startswith("permission."):
        text = shorten(permission_text(data), MAX_TEXT)
        return {"type": "permission", "text": text, "choices": None, "timeout_s": None}, \
            f"Permission requested: {text}"
    asked = [item for item in data.get("questions") or [] if isinstance(item, dict)]
    texts = [item["question"] for item in asked if isinstance(item.get("question"), str) and item["question"].strip()]
    reason = f"Question: {texts[0]}" if texts else "Question asked"
    if len(asked) == 1 and not asked[0].get("multiple") and (choices := option_labels(asked[0])):
        return {"type": "choice", "text": shorten(texts[0] if texts else "Choose one", MAX_TEXT),
                "choices": choices, "timeout_s": None}, reason
    if len(texts) > 1:
        text = "\n".join(f"{number}. {question}" for number, question in enumerate(texts, 1))
        text += "\n(Answer each on its own line.)"
    else:
        text = texts[0] if texts else "opencode asks a question"
    return {"type": "question", "text": shorten(text, MAX_TEXT), "choices": None, "timeout_s": None}, reason


def permission_text(data: dict[str, Any]) -> str:
    """What is asked: `bash: rm -rf build` (v1: permission and patterns; v2: action and resources;
    older opencode: a title)."""
    if isinstance(data.get("title"), str) and data["title"].strip():
        return data["title"].strip()
    what = next((data[name] for name in ("permission", "action", "type") if isinstance(data.get(name), str)),
                "an action")
    targets = next((data[name] for name in ("patterns", "resources", "pattern") if data.get(name)), [])
    targets = [targets] if isinstance(targets, str) else [t for t in targets if isinstance(t, str)]
    return f"{what}: {', '.join(targets)}" if targets else what


def option_labels(question: dict[str, Any]) -> list[str] | None:
    """The options' labels, when they make a valid choice question; None otherwise."""
    options = question.get("options")
    if not isinstance(options, list):
        return None
    labels = [option.get("label") if isinstance(option, dict) else option for option in options]
    if (not 1 <= len(labels) <= MAX_CHOICES or len(set(labels)) != len(labels)
            or not all(isinstance(label, str) and label.strip() and len(label) <= MAX_CHOICE for label in labels)):
        return None
    return labels


def terminal_answer(event: Event, question: dict[str, Any]) -> dict[str, Any] | None:
    """The terminal's reply as an answer to `question` (the shape its type takes); None when the prompt
    was dismissed."""
    data = event.data
    if event.type.endswith(".rejected"):
        return None
    if question["type"] == "permission":
        return {"permission": (data.get("reply") or data.get("response")) in ("once", "always")}
    answers = data.get("answers") if isinstance(data.get("answers"), list) else []
    picked = [", ".join(str(label) for label in answer) if isinstance(answer, list) else str(answer)
              for answer in answers]
    if question["type"] == "choice" and len(picked) == 1 and picked[0] in (question["choices"] or []):
        return {"choice": picked[0]}
    return {"response": "\n".join(picked) or "(no answer)"}  # typed in the terminal, or several questions


# Agents ----------------------------------------------------------------------------------------------------

def refresh_agents(session_id: str, sender: str | None, now: int, *, reason: str | None = None) -> None:
    """The status of the agents of the session and of its top-level session, from their sessions.

    In a batch, once per agent after the batch's last event (`settle_agents`) rather than at each
    event: the statuses in between were never seen, as the batch commits whole and publishes each agent
    once. `reason` (why the agent waits, if it comes to wait) is the batch's latest one."""
    agents = dict.fromkeys(filter(None, (agent_of(session_id, sender),
                                         agent_of(root_session(session_id), sender))))
    noted = memo_in_batch("agents to follow")
    for agent_id in agents:
        if noted is None:
            follow_sessions(agent_id, now, reason=reason)
        else:
            noted[agent_id] = reason or noted.get(agent_id)


def beat(agent_id: str, at: int, now: int) -> None:
    """The agent's last heartbeat, if there is such an agent. In a batch, only its last is written, after
    the batch's last event (`settle_agents`): each status of each session is one."""
    noted = memo_in_batch("heartbeats")
    if noted is None:
        write_heartbeat(agent_id, at, now)
    else:
        noted[agent_id] = at


def write_heartbeat(agent_id: str, at: int, now: int) -> None:
    if execute("UPDATE agents SET last_heartbeat = ?, updated_at = ? WHERE id = ?", (at, now, agent_id)).rowcount:
        record_row_change("agent", agent_id, "heartbeat", lambda: {"id": agent_id, "last_heartbeat": iso_from_unix(at)},
                          whole=False)


def settle_agents(now: int) -> None:
    """After a batch's last event: the last heartbeat of each agent that sent some (`beat`), and the status
    of each the batch's events refreshed (`refresh_agents`), as the batch left its sessions."""
    heartbeats = memo_in_batch("heartbeats") or {}
    for agent_id, at in heartbeats.items():
        write_heartbeat(agent_id, at, now)
    heartbeats.clear()
    noted = memo_in_batch("agents to follow") or {}
    for agent_id, reason in noted.items():
        follow_sessions(agent_id, now, reason=reason)
    noted.clear()


def status_stated(agent_id: str) -> None:
    """The agent stated its own status and heartbeat (agent.status): the batch's earlier events no longer
    set them, as they would not have, one at a time, before it."""
    for name in ("heartbeats", "agents to follow"):
        noted = memo_in_batch(name)
        if noted is not None:
            noted.pop(agent_id, None)


# The agent's status, whether a person is waited on, whether it works (see follow_sessions).
FOLLOWED = (
    "SELECT a.status,"
    " EXISTS (SELECT 1 FROM agent_tasks WHERE agent_id = a.id AND status = 'blocked')"
    " OR EXISTS (SELECT 1 FROM task_questions AS q JOIN sessions AS s ON s.id = q.session_id"
    " WHERE q.status IN ('pending', 'queued') AND q.request_id IS NOT NULL AND s.agent_id = ?),"
    f" EXISTS (SELECT 1 FROM sessions WHERE agent_id = ? AND status IN ({', '.join('?' * len(BUSY))}))"
    " OR EXISTS (SELECT 1 FROM agent_tasks WHERE id = a.current_task_id AND status = 'in_progress')"
    " FROM agents AS a WHERE a.id = ?")


def follow_sessions(agent_id: str, now: int, *, reason: str | None = None) -> None:
    """blocked while a person is waited on (a task of the agent blocked, or a prompt of one of its
    sessions), working while one of its sessions is busy (or the task it is on is in progress), else idle."""
    row = execute(FOLLOWED, (agent_id, agent_id, *BUSY, agent_id)).fetchone()  # one statement: asked at every turn
    if row is None:
        return
    if row[1]:
        status = "blocked"
    elif row[2]:
        status, reason = "working", None
    else:
        status, reason = "idle", None
    if status != row[0]:
        set_agent_status(agent_id, status, reason, now)
