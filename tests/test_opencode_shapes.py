"""Both of opencode's event shapes land: each event here is written exactly as opencode's published types
describe it (`sdk-1.19.3-types.gen.d.ts` for v1, `sdk-1.19.3-v2-types.gen.d.ts` for v2) or as opencode
1.18.33 was seen to send it, with every field those types give, used by the dashboard or not."""

from __future__ import annotations

import pytest

from functions.events.limits import MAX_STRING_CHARS, cut_marker
from shared.store.models import Agent, AgentTask, Change, InboundEvent, Message, Session, Todo
from tests.support import AGENT, DASHBOARD, event

T0 = 1764000000000  # epoch ms, as opencode reports times


def send(client, *events):
    response = client.simulate_post("/api/events", json={"events": list(events)}, headers=AGENT)
    assert response.status_code == 202, response.text
    assert response.json["unknown"] == 0, response.json
    return response.json


def v2_session(session_id, parent=None):
    """v2 `Session`, every required field and a few optional ones."""
    info = {"id": session_id, "slug": "fix-login", "projectID": "prj_1", "directory": "/repo", "title": "Fix login",
            "version": "1.18.33", "time": {"created": T0, "updated": T0},
            "summary": {"additions": 3, "deletions": 1, "files": 1}, "permission": []}
    if parent:
        info["parentID"] = parent
    return {"sessionID": session_id, "info": info}


def v2_todos(*items):
    """v2 `Todo`: content, status, priority — no id (what opencode 1.18.33 really sends)."""
    return [{"content": content, "status": status, "priority": "high"} for content, status in items]


def session_view(client, session_id):
    response = client.simulate_get(f"/api/sess/{session_id}", headers=DASHBOARD)
    assert response.status_code == 200, response.text
    return response.json


def topics():
    return [(c.topic, c.action) for c in Change.select().order_by(Change.id)]


# Todos without ids ------------------------------------------------------------------------------------

def test_a_v2_todo_list_without_ids_is_stored_in_order(events_client):
    send(events_client, event("session.created", v2_session("ses_1")),
         event("todo.updated", {"sessionID": "ses_1", "todos": v2_todos(("Write the test", "in_progress"),
                                                                         ("Fix the bug", "pending"))}))
    todos = session_view(events_client, "ses_1")["todos"]
    assert [(t["content"], t["status"], t["priority"]) for t in todos] == [
        ("Write the test", "in_progress", "high"), ("Fix the bug", "pending", "high")]
    assert len({t["id"] for t in todos}) == 2 and all(t["id"].startswith("ses_1:") for t in todos)


def test_a_derived_todo_id_survives_status_changes_and_its_neighbours_moving(events_client):
    send(events_client, event("todo.updated", {"sessionID": "ses_1", "todos": v2_todos(
        ("Write the test", "in_progress"), ("Fix the bug", "pending"))}, timestamp="2026-11-24T10:00:00Z"))
    first = {t.content: (t.id, t.created_at) for t in Todo.select()}
    send(events_client, event("todo.updated", {"sessionID": "ses_1", "todos": v2_todos(
        ("Read the logs", "completed"), ("Write the test", "completed"), ("Fix the bug", "in_progress"))}))
    later = {t.content: (t.id, t.created_at, t.position, t.status) for t in Todo.select()}
    assert later["Write the test"][:2] == first["Write the test"]
    assert later["Fix the bug"][:2] == first["Fix the bug"]
    assert (later["Fix the bug"][2:], later["Read the logs"][2:]) == ((2, "in_progress"), (0, "completed"))


def test_the_same_todo_twice_in_a_list_is_two_todos(events_client):
    send(events_client, event("todo.updated", {"sessionID": "ses_1", "todos": v2_todos(
        ("Run the suite", "completed"), ("Fix the bug", "pending"), ("Run the suite", "pending"))}))
    assert [t.status for t in Todo.select().order_by(Todo.position)] == ["completed", "pending", "pending"]
    assert len({t.id for t in Todo.select()}) == 3


def test_the_same_todo_in_two_sessions_is_two_todos(events_client):
    for session_id in ("ses_1", "ses_2"):
        send(events_client, event("todo.updated", {"sessionID": session_id,
                                                   "todos": v2_todos(("Fix the bug", "pending"))}))
    assert Todo.select().count() == 2


def test_v1_todos_keep_their_own_ids(events_client):
    send(events_client, event("todo.updated", {"sessionID": "ses_1", "todos": [
        {"id": "1", "content": "Fix the bug", "status": "pending", "priority": "medium"}]}))
    assert Todo.get().id == "ses_1:1"


# Sessions: errors, compaction, commands ---------------------------------------------------------------

def test_a_session_error_without_an_error_is_an_error_all_the_same(events_client):
    send(events_client, event("session.created", v2_session("ses_1")),
         event("session.error", {"sessionID": "ses_1"}))
    assert Session.get_by_id("ses_1").status == "error"
    assert Message.get(Message.type == "error").content == "Error"


def test_a_session_error_shows_live_as_the_session_s_status(events_client):
    """A browser sees the session turn to `error` as it happens, not at the session's next change."""
    send(events_client, event("session.created", v2_session("ses_1")))
    send(events_client, event("session.error", {"sessionID": "ses_1", "error": {"name": "APIError"}}))
    change = Change.select().where(Change.topic == "session").order_by(Change.id.desc()).get()
    assert (change.action, change.payload["id"], change.payload["status"]) == ("status", "ses_1", "error")


def test_a_session_error_with_neither_session_nor_error_is_kept(events_client):
    send(events_client, event("session.error", {}))
    assert Message.get(Message.type == "error").session_id is None


def test_session_error_as_opencode_reports_an_api_error(events_client):
    send(events_client, event("session.error", {"sessionID": "ses_1", "error": {"name": "APIError", "data": {
        "message": "Bad Request", "statusCode": 400, "isRetryable": False,
        "responseHeaders": {"content-type": "application/json"}, "responseBody": "{}"}}}))
    assert Message.get(Message.type == "error").content == "APIError: Bad Request"


def test_session_compacted_and_command_executed_touch_the_session(events_client):
    send(events_client, event("session.created", v2_session("ses_1")),
         event("session.compacted", {"sessionID": "ses_1"}),
         event("command.executed", {"name": "review", "sessionID": "ses_1", "arguments": "src/",
                                    "messageID": "msg_1"}))
    # The session, created and compacted in one batch, gets one change: its row, under its last action.
    assert [change for change in topics() if change[0] == "session"] == [("session", "command"),
                                                                         ("session", "compacted")]
    assert Change.get(Change.action == "compacted").payload["id"] == "ses_1"
    assert Change.get(Change.action == "command").payload == {
        "session_id": "ses_1", "name": "review", "arguments": "src/", "message_id": "msg_1"}


# Files changed ------------------------------------------------------------------------------------------

def test_session_diff_lists_the_files_with_their_line_counts_on_the_session(events_client):
    # v2 `SnapshotFileDiff`: file and patch optional; an entry without a file names nothing.
    send(events_client, event("session.created", v2_session("ses_1")),
         event("session.diff", {"sessionID": "ses_1", "diff": [
             {"file": "src/app.py", "patch": "@@ -1 +1,3 @@", "additions": 3, "deletions": 1, "status": "modified"},
             {"file": "README.md", "additions": 10, "deletions": 0, "status": "added"},
             {"additions": 1, "deletions": 1}]}))
    files = session_view(events_client, "ses_1")["files"]
    assert [(f["file"], f["status"], f["additions"], f["deletions"]) for f in files] == [
        ("README.md", "added", 10, 0), ("src/app.py", "modified", 3, 1)]


def test_a_later_diff_replaces_the_earlier_one(events_client):
    # v1 `FileDiff`: file, before, after, additions, deletions.
    send(events_client, event("session.diff", {"sessionID": "ses_1", "diff": [
        {"file": "a.py", "before": "", "after": "x = 1\n", "additions": 1, "deletions": 0}]}))
    send(events_client, event("session.diff", {"sessionID": "ses_1", "diff": [
        {"file": "b.py", "before": "y = 1\n", "after": "y = 2\n", "additions": 1, "deletions": 1}]}))
    assert [f["file"] for f in session_view(events_client, "ses_1")["files"]] == ["b.py"]
    assert topics()[-1] == ("session", "files")


def test_an_empty_diff_keeps_the_files_the_session_edited(events_client):
    # What opencode 1.18.33 really sends, after its write tool created a file.
    send(events_client, event("session.created", v2_session("ses_1")),
         event("file.edited", {"file": "script.sh", "sessionID": "ses_1"}),
         event("session.diff", {"sessionID": "ses_1", "diff": []}))
    assert [f["file"] for f in session_view(events_client, "ses_1")["files"]] == ["script.sh"]


def test_file_edited_goes_to_the_session_its_agent_worked_in_last(events_client):
    send(events_client, event("session.created", v2_session("ses_old")),
         event("session.created", v2_session("ses_new")),
         event("session.status", {"sessionID": "ses_new", "status": {"type": "busy"}}),
         event("file.edited", {"file": "src/app.py"}))
    assert [f["file"] for f in session_view(events_client, "ses_new")["files"]] == ["src/app.py"]
    assert session_view(events_client, "ses_old")["files"] == []
    edited = Change.select().where(Change.topic == "file").get().payload
    assert (edited["file"], edited["session_id"]) == ("src/app.py", "ses_new")


def test_file_edited_with_no_session_to_go_to_is_still_accepted(events_client):
    send(events_client, event("file.edited", {"file": "src/app.py"}, agent_id=None))
    assert topics() == [("file", "edited")]


# Messages: parts removed, streamed -----------------------------------------------------------------------

def v2_text_part(part_id, text):
    return {"sessionID": "ses_1", "time": T0, "part": {"id": part_id, "sessionID": "ses_1", "messageID": "msg_1",
                                                       "type": "text", "text": text, "time": {"start": T0}}}


def test_a_removed_part_leaves_the_message(events_client):
    send(events_client, event("message.part.updated", v2_text_part("prt_1", "Hello ")),
         event("message.part.updated", v2_text_part("prt_2", "world")),
         event("message.part.removed", {"sessionID": "ses_1", "messageID": "msg_1", "partID": "prt_1"}))
    message = Message.get(Message.external_id == "msg_1")
    assert (message.content, [p["id"] for p in message.parts]) == ("world", ["prt_2"])


def test_removing_a_part_never_seen_changes_nothing(events_client):
    send(events_client, event("message.part.removed", {"sessionID": "ses_1", "messageID": "msg_9", "partID": "p"}))
    assert Message.select().count() == 0


def test_streamed_deltas_are_accepted_and_not_stored(events_client):
    body = send(events_client, event("message.part.delta", {"sessionID": "ses_1", "messageID": "msg_1",
                                                            "partID": "prt_1", "field": "text", "delta": "Hel"}),
                event("message.part.delta", {"sessionID": "ses_1", "messageID": "msg_1", "partID": "prt_1",
                                             "field": "text", "delta": ""}))
    assert body == {"accepted": 2, "duplicates": 0, "unknown": 0}
    assert (InboundEvent.select().count(), Change.select().count(), Message.select().count()) == (0, 0, 0)


def test_a_v2_assistant_message_keeps_model_tokens_and_cost(events_client):
    info = {"id": "msg_2", "sessionID": "ses_1", "role": "assistant", "time": {"created": T0, "completed": T0 + 900},
            "parentID": "msg_1", "modelID": "scripted", "providerID": "fake", "mode": "build", "agent": "build",
            "path": {"cwd": "/repo", "root": "/repo"}, "cost": 0.0123, "finish": "tool-calls",
            "tokens": {"total": 160, "input": 100, "output": 50, "reasoning": 10, "cache": {"read": 0, "write": 0}}}
    send(events_client, event("message.updated", {"sessionID": "ses_1", "info": info}))
    message = Message.get(Message.external_id == "msg_2")
    assert (message.model_id, message.cost, message.tokens["total"], message.agent) == (
        "scripted", 0.0123, 160, "build")


# Permissions and questions: v1 and v2 land in the same projection ------------------------------------------

def block_and_answer(client, agent_id, session_id, asked, replied):
    send(client, event("agent.registered", {"id": agent_id, "name": agent_id, "type": "primary"}, agent_id=agent_id),
         event("task.created", {"id": f"task-{agent_id}", "agent_id": agent_id, "title": "Ship it"},
               agent_id=agent_id),
         event("session.created", v2_session(session_id), agent_id=agent_id),
         event("task.updated", {"id": f"task-{agent_id}", "status": "in_progress"}, agent_id=agent_id))
    send(client, event(asked[0], asked[1], agent_id=agent_id))
    task = AgentTask.get_by_id(f"task-{agent_id}")
    blocked = (task.status, task.blocked_reason, Agent.get_by_id(agent_id).status)
    send(client, event(replied[0], replied[1], agent_id=agent_id))
    task = AgentTask.get_by_id(f"task-{agent_id}")
    answered = (task.status, task.blocked_reason, Agent.get_by_id(agent_id).status)
    return blocked, answered


V1_PERMISSION = (  # as opencode 1.18.33 sends it (observed), then its reply
    ("permission.asked", {"id": "per_1", "sessionID": "ses_v1", "permission": "bash", "patterns": ["rm -rf build"],
                          "metadata": {}, "always": ["rm *"], "tool": {"messageID": "msg_1", "callID": "call_1"}}),
    ("permission.replied", {"sessionID": "ses_v1", "requestID": "per_1", "reply": "once"}))
V2_PERMISSION = (
    ("permission.v2.asked", {"id": "per_2", "sessionID": "ses_v2", "action": "bash", "resources": ["rm -rf build"],
                             "save": ["rm *"], "metadata": {"command": "rm -rf build"},
                             "source": {"type": "tool", "messageID": "msg_1", "callID": "call_1"}}),
    ("permission.v2.replied", {"sessionID": "ses_v2", "requestID": "per_2", "reply": "once"}))
QUESTION = {"question": "Which database?", "header": "Database", "multiple": False, "custom": True,
            "options": [{"label": "SQLite", "description": "one file"},
                        {"label": "PostgreSQL", "description": "a server"}]}
V1_QUESTION = (
    ("question.asked", {"id": "que_1", "sessionID": "ses_v1", "questions": [QUESTION],
                        "tool": {"messageID": "msg_1", "callID": "call_1"}}),
    ("question.replied", {"sessionID": "ses_v1", "requestID": "que_1", "answers": [["SQLite"]]}))
V2_QUESTION = (
    ("question.v2.asked", {"id": "que_2", "sessionID": "ses_v2", "questions": [QUESTION],
                           "tool": {"messageID": "msg_1", "callID": "call_1"}}),
    ("question.v2.replied", {"sessionID": "ses_v2", "requestID": "que_2", "answers": [["SQLite"]]}))
V1_REJECTED = (V1_QUESTION[0], ("question.rejected", {"sessionID": "ses_v1", "requestID": "que_1"}))
V2_REJECTED = (V2_QUESTION[0], ("question.v2.rejected", {"sessionID": "ses_v2", "requestID": "que_2"}))


@pytest.mark.parametrize("v1, v2", [(V1_PERMISSION, V2_PERMISSION), (V1_QUESTION, V2_QUESTION),
                                    (V1_REJECTED, V2_REJECTED)], ids=["permission", "question", "rejected"])
def test_a_v2_request_blocks_and_unblocks_exactly_as_its_v1_twin(events_client, v1, v2):
    by_v1 = block_and_answer(events_client, "agent-v1", "ses_v1", *v1)
    by_v2 = block_and_answer(events_client, "agent-v2", "ses_v2", *v2)
    assert by_v2 == by_v1
    assert by_v1[0] != by_v1[1]  # the request changed something, and the answer changed it back



def test_a_v2_tool_part_keeps_its_state_and_a_long_output_is_cut(events_client):
    output = "x" * 100_000
    part = {"id": "prt_9", "sessionID": "ses_1", "messageID": "msg_1", "type": "tool", "callID": "call_1",
            "tool": "bash", "metadata": {}, "state": {
                "status": "completed", "input": {"command": "cat big.log", "timeout": 10}, "output": output,
                "title": "cat big.log", "metadata": {"exit": 0}, "time": {"start": T0, "end": T0 + 50}}}
    send(events_client, event("message.part.updated", {"sessionID": "ses_1", "part": part, "time": T0}))
    [stored] = Message.get(Message.external_id == "msg_1").parts
    assert stored["state"]["input"] == {"command": "cat big.log", "timeout": 10}
    assert stored["state"]["output"] == output[:MAX_STRING_CHARS] + cut_marker(len(output))
