"""What each kind of event becomes in the tables the dashboard reads, and the change it records."""

from __future__ import annotations

from shared.store.models import Agent, AgentTask, Change, Message, Session, Todo
from tests.support import AGENT, event

T0 = 1764000000000  # epoch ms, as opencode reports times


def send(client, *events):
    response = client.simulate_post("/api/events", json={"events": list(events)}, headers=AGENT)
    assert response.status_code == 202, response.text
    return response.json


def topics():
    return [(c.topic, c.action) for c in Change.select().order_by(Change.id)]


def session_info(session_id, title="Fix the login bug", parent=None):
    info = {"id": session_id, "title": title, "directory": "/repo", "time": {"created": T0, "updated": T0}}
    if parent:
        info["parentID"] = parent
    return {"info": info}


# Sessions and sub-agents ----------------------------------------------------------------------------------

def test_session_created_registers_the_session_and_its_agent(events_client):
    send(events_client, event("session.created", session_info("ses_main")))
    session = Session.get_by_id("ses_main")
    assert (session.name, session.directory, session.agent_id, session.started_at) == (
        "Fix the login bug", "/repo", "openclaw-main", T0 // 1000)
    assert Agent.get_by_id("openclaw-main").type == "primary"
    assert topics() == [("agent", "registered"), ("session", "created")]


def test_a_child_session_is_a_sub_agent_of_the_parent_sessions_agent(events_client):
    send(events_client,
         event("session.created", session_info("ses_main")),
         event("session.created", session_info("ses_child", title="explore: find callers", parent="ses_main")))
    child = Session.get_by_id("ses_child")
    sub_agent = Agent.get_by_id(child.agent_id)
    assert (sub_agent.type, sub_agent.parent_agent_id, sub_agent.name) == (
        "sub-agent", "openclaw-main", "explore: find callers")


def test_a_registered_agent_keeps_what_it_said_about_itself(events_client):
    send(events_client,
         event("session.created", session_info("ses_main")),
         event("agent.registered", {"id": "explore-abc", "name": "Explore", "type": "sub-agent",
                                    "parent_agent_id": "openclaw-main", "skills": ["git-master"]}),
         event("session.created", session_info("ses_child", parent="ses_main"), agent_id="explore-abc"))
    agent = Agent.get_by_id("explore-abc")
    assert (agent.name, agent.skills, agent.parent_agent_id) == ("Explore", ["git-master"], "openclaw-main")
    assert Session.get_by_id("ses_child").agent_id == "explore-abc"


def test_session_status_and_idle_update_the_session_and_beat_the_agent(events_client):
    send(events_client, event("session.created", session_info("ses_1")),
         event("session.status", {"sessionID": "ses_1", "status": {"type": "busy"}},
               timestamp="2026-11-24T10:05:00Z"))
    assert Session.get_by_id("ses_1").status == "busy"
    assert Agent.get_by_id("openclaw-main").to_json()["last_heartbeat"] == "2026-11-24T10:05:00Z"
    send(events_client, event("session.idle", {"sessionID": "ses_1"}))
    assert Session.get_by_id("ses_1").status == "idle"


def test_session_deleted_marks_it_deleted(events_client):
    send(events_client, event("session.created", session_info("ses_1")),
         event("session.deleted", {"info": {"id": "ses_1"}}))
    assert Session.get_by_id("ses_1").status == "deleted"
    assert Session.get_by_id("ses_1").deleted_at is not None


def test_session_error_becomes_an_error_message_and_an_error_change(events_client):
    send(events_client, event("session.error", {"sessionID": "ses_1", "error": {
        "name": "ProviderAuthError", "data": {"message": "API key expired"}}}))
    message = Message.get()
    assert (message.type, message.content, message.session_id) == (
        "error", "ProviderAuthError: API key expired", "ses_1")
    assert ("error", "session") in topics()


# Messages, parts and tools ----------------------------------------------------------------------------------

def test_message_and_its_parts_keep_text_cost_and_tokens(events_client):
    info = {"id": "msg_1", "sessionID": "ses_1", "role": "assistant", "mode": "build", "modelID": "claude",
            "providerID": "anthropic", "cost": 0.0123, "tokens": {"input": 1200, "output": 300},
            "time": {"created": T0, "completed": T0 + 5000}}
    send(events_client,
         event("message.updated", {"info": info}),
         event("message.part.updated", {"part": {"id": "prt_1", "messageID": "msg_1", "sessionID": "ses_1",
                                                 "type": "text", "text": "Hello"}}),
         event("message.part.updated", {"part": {"id": "prt_1", "messageID": "msg_1", "sessionID": "ses_1",
                                                 "type": "text", "text": "Hello, world"}}),
         event("message.part.updated", {"part": {"id": "prt_2", "messageID": "msg_1", "sessionID": "ses_1",
                                                 "type": "tool", "tool": "bash", "state": {"status": "ok"}}}))
    message = Message.get(Message.external_id == "msg_1")
    assert (message.role, message.agent, message.cost, message.tokens) == (
        "assistant", "build", 0.0123, {"input": 1200, "output": 300})
    assert message.content == "Hello, world"
    assert [part["id"] for part in message.parts] == ["prt_1", "prt_2"]
    assert message.completed_at == (T0 + 5000) // 1000


def test_a_part_before_its_message_is_kept(events_client):
    send(events_client,
         event("message.part.updated", {"part": {"id": "p", "messageID": "msg_9", "sessionID": "ses_1",
                                                 "type": "text", "text": "early"}}),
         event("message.updated", {"info": {"id": "msg_9", "sessionID": "ses_1", "role": "user"}}))
    message = Message.get(Message.external_id == "msg_9")
    assert (message.content, message.role) == ("early", "user")


def test_message_removed_removes_it(events_client):
    send(events_client, event("message.updated", {"info": {"id": "msg_1", "sessionID": "s", "role": "user"}}),
         event("message.removed", {"sessionID": "s", "messageID": "msg_1"}))
    assert Message.select().count() == 0
    assert topics()[-1] == ("message", "removed")


def test_tool_execution_is_one_message_from_start_to_finish(events_client):
    send(events_client,
         event("tool.execute.before", {"tool": "bash", "sessionID": "s", "callID": "call_1",
                                       "args": {"command": "pytest"}}),
         event("tool.execute.after", {"tool": "bash", "sessionID": "s", "callID": "call_1",
                                      "title": "Run tests", "output": "3 passed"}))
    message = Message.get()
    assert (message.type, message.content) == ("tool", "Run tests")
    assert message.parts == [{"tool": "bash", "callID": "call_1", "args": {"command": "pytest"},
                              "title": "Run tests", "output": "3 passed", "state": "completed"}]


# Todos ---------------------------------------------------------------------------------------------------

def test_todo_updated_replaces_the_sessions_list(events_client):
    first = [{"id": "1", "content": "a", "status": "pending", "priority": "high"},
             {"id": "2", "content": "b", "status": "pending", "priority": "low"}]
    second = [{"id": "2", "content": "b", "status": "completed", "priority": "low"},
              {"id": "3", "content": "c", "status": "in_progress", "priority": "medium"}]
    send(events_client, event("todo.updated", {"sessionID": "s", "todos": first}),
         event("todo.updated", {"sessionID": "other", "todos": first}))
    send(events_client, event("todo.updated", {"sessionID": "s", "todos": second}))
    rows = Todo.select().where(Todo.session_id == "s").order_by(Todo.position)
    assert [(t.content, t.status) for t in rows] == [("b", "completed"), ("c", "in_progress")]
    assert Todo.select().where(Todo.session_id == "other").count() == 2


# Agents and tasks ------------------------------------------------------------------------------------------

def register(client):
    send(client, event("agent.registered", {"id": "openclaw-main", "name": "OpenClaw", "type": "primary",
                                            "soul_md": "# Soul", "config": {"model": "opus"}}),
         event("task.created", {"id": "task-1", "agent_id": "openclaw-main", "title": "Ship it",
                                "priority": "high"}))


def test_agent_registered_and_task_created(events_client):
    register(events_client)
    agent = Agent.get_by_id("openclaw-main")
    assert (agent.name, agent.soul_md, agent.config) == ("OpenClaw", "# Soul", {"model": "opus"})
    task = AgentTask.get_by_id("task-1")
    assert (task.status, task.priority, task.title) == ("pending", "high", "Ship it")
    assert topics() == [("agent", "registered"), ("task", "created")]


def test_task_lifecycle_keeps_its_times_and_the_agents_current_task(events_client):
    register(events_client)
    send(events_client, event("task.updated", {"id": "task-1", "status": "in_progress"},
                              timestamp="2026-11-24T10:01:00Z"))
    assert Agent.get_by_id("openclaw-main").current_task_id == "task-1"
    send(events_client, event("task.updated", {"id": "task-1", "status": "blocked", "blocked_reason": "CI red"},
                              timestamp="2026-11-24T10:02:00Z"))
    task = AgentTask.get_by_id("task-1").to_json()
    assert (task["started_at"], task["blocked_at"], task["blocked_reason"]) == (
        "2026-11-24T10:01:00Z", "2026-11-24T10:02:00Z", "CI red")
    send(events_client, event("task.updated", {"id": "task-1", "status": "completed"},
                              timestamp="2026-11-24T10:09:00Z"))
    task = AgentTask.get_by_id("task-1").to_json()
    assert (task["status"], task["completed_at"], task["blocked_at"]) == ("completed", "2026-11-24T10:09:00Z", None)
    assert Agent.get_by_id("openclaw-main").current_task_id is None


def test_a_task_for_an_unknown_agent_registers_the_agent(events_client):
    send(events_client, event("task.created", {"id": "t", "agent_id": "newcomer", "title": "x"}))
    assert Agent.get_by_id("newcomer").type == "primary"


def test_agent_status_and_heartbeat(events_client):
    send(events_client, event("agent.status", {"id": "a1", "status": "sleeping", "reason": "night"}),
         event("agent.heartbeat", {"id": "a1"}, timestamp="2026-11-24T11:00:00Z"))
    agent = Agent.get_by_id("a1")
    assert (agent.status, agent.status_reason) == ("sleeping", "night")
    assert agent.to_json()["last_heartbeat"] == "2026-11-24T11:00:00Z"


def test_a_permission_request_blocks_the_agents_current_task_until_replied(events_client):
    register(events_client)
    send(events_client, event("session.created", session_info("ses_1")),
         event("task.updated", {"id": "task-1", "status": "in_progress"}),
         event("permission.asked", {"id": "per_1", "sessionID": "ses_1", "type": "bash",
                                    "title": "rm -rf build/"}))
    task = AgentTask.get_by_id("task-1")
    assert (task.status, task.blocked_reason) == ("blocked", "Permission requested: rm -rf build/")
    assert Agent.get_by_id("openclaw-main").status == "blocked"
    send(events_client, event("permission.replied", {"sessionID": "ses_1", "permissionID": "per_1",
                                                     "response": "once"}))
    assert AgentTask.get_by_id("task-1").status == "in_progress"
    assert Agent.get_by_id("openclaw-main").status == "working"


def test_a_question_names_itself_as_the_blocked_reason(events_client):
    register(events_client)
    send(events_client, event("session.created", session_info("ses_1")),
         event("task.updated", {"id": "task-1", "status": "in_progress"}),
         event("question.asked", {"id": "q1", "sessionID": "ses_1",
                                  "questions": [{"question": "Which database?", "options": ["a", "b"]}]}))
    assert AgentTask.get_by_id("task-1").blocked_reason == "Question: Which database?"


def test_file_edited_is_raw_with_a_change(events_client):
    send(events_client, event("file.edited", {"file": "src/app.py"}))
    assert topics() == [("file", "edited")]
