"""The registry of event kinds: for each kind the dashboard understands, in one entry, the fields its
`data` must carry (checked at ingest, 422 otherwise), what it changes (its projection), and its OpenAPI
schema (made from the same rules). A kind not listed here is stored raw and counted as `unknown`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from functions.events import projections as p
from functions.events.event import Event
from functions.events.rules import NUMBER, Rule, data_schema, may, need
from shared.agents.questions import MAX_CHOICE, MAX_CHOICES, MAX_TEXT, MAX_TIMEOUT_S, QUESTION_TYPES, parse_question
from shared.web.errors import invalid
from shared.web.openapi import Schema

TODO_STATUSES = frozenset({"pending", "in_progress", "completed", "cancelled"})
TODO_PRIORITIES = frozenset({"low", "medium", "high"})
AGENT_TYPES = frozenset({"primary", "sub-agent"})
AGENT_STATUSES = frozenset({"idle", "working", "blocked", "sleeping", "offline"})
TASK_STATUSES = frozenset({"pending", "in_progress", "blocked", "completed", "cancelled"})
TASK_PRIORITIES = frozenset({"urgent", "high", "medium", "low"})


@dataclass(frozen=True)
class Kind:
    """One kind of event: its fields, its projection, and whatever the rules alone cannot say."""

    rules: tuple[Rule, ...]
    project: Callable[[Event, int], None]  # runs inside the batch's write transaction
    check: Callable[[Event], None] | None = None  # more validation, before anything of the batch is written
    properties: Mapping[str, Schema] = field(default_factory=dict)  # the schema of the fields `check` reads
    stored: bool = True  # False: accepted and checked, but not even the raw event is kept

    @property
    def schema(self) -> Schema:
        """The OpenAPI schema of this kind's `data`."""
        schema = data_schema(self.rules)
        schema["properties"].update(self.properties)
        return schema


def check_task_question(event: Event) -> None:
    """`task.updated`'s question is checked with the batch, so a bad one writes nothing."""
    if event.data.get("question") is None:
        return
    where = event.field("data.question")
    parse_question(event.data["question"], where)
    if event.data["status"] != "blocked":
        raise invalid(where, f"{where} goes with status blocked: a task waits on its question.")


QUESTION_SCHEMA: Schema = {
    "type": ["object", "null"], "additionalProperties": False, "required": ["type", "text"],
    "description": "only with status blocked: a question for a person, answered on the task's unblock "
                   "and delivered to the agent's inbox",
    "properties": {
        "type": {"enum": list(QUESTION_TYPES)},
        "text": {"type": "string", "minLength": 1, "maxLength": MAX_TEXT, "pattern": r"\S"},
        "choices": {"type": ["array", "null"], "minItems": 1, "maxItems": MAX_CHOICES, "uniqueItems": True,
                    "items": {"type": "string", "minLength": 1, "maxLength": MAX_CHOICE, "pattern": r"\S"},
                    "description": "type choice only, and required there"},
        "timeout_s": {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_TIMEOUT_S}}}

SESSION_INFO = (need("info", dict), need("info.id"), may("info.title"), may("info.parentID"),
                may("info.directory"), may("info.time", dict))
TOOL_CALL = (need("tool"), need("sessionID"), need("callID"))
REPLY = (need("sessionID"),)
FILE_DIFF = (may("file"), may("status"), may("additions", NUMBER), may("deletions", NUMBER))
TODO = (may("id"), need("content"), need("status", choices=TODO_STATUSES), may("priority", choices=TODO_PRIORITIES))

KINDS: dict[str, Kind] = {
    # opencode's kinds, from both of its event unions (v1 and v2): `data` is the `properties` of
    # opencode's own event. Fields not named here are kept as sent.
    "session.created": Kind(SESSION_INFO, p.session_upserted),
    "session.updated": Kind(SESSION_INFO, p.session_upserted),
    "session.deleted": Kind((need("info", dict), need("info.id")), p.session_deleted),
    "session.idle": Kind((need("sessionID"),), p.session_idle),
    "session.error": Kind((may("sessionID"), may("error", dict), may("error.name"), may("error.data", dict)),
                          p.session_error),
    "session.status": Kind((need("sessionID"), need("status", dict), need("status.type")), p.session_status),
    "session.compacted": Kind((need("sessionID"),), p.session_compacted),
    "session.diff": Kind((need("sessionID"), need("diff", list, items=FILE_DIFF)), p.session_diff),
    "message.updated": Kind((need("info", dict), need("info.id"), need("info.sessionID"), need("info.role"),
                             may("info.time", dict), may("info.modelID"), may("info.providerID"),
                             may("info.mode"), may("info.cost", NUMBER), may("info.tokens", dict)),
                            p.message_updated),
    "message.removed": Kind((need("sessionID"), need("messageID")), p.message_removed),
    "message.part.updated": Kind((need("part", dict), need("part.id"), need("part.messageID"),
                                  need("part.sessionID"), need("part.type"), may("part.text")),
                                 p.message_part_updated),
    "message.part.removed": Kind((need("sessionID"), need("messageID"), need("partID")), p.message_part_removed),
    "message.part.delta": Kind((need("sessionID"), need("messageID"), need("partID"), may("field"), may("delta")),
                               p.part_streamed, stored=False),
    "command.executed": Kind((need("name"), need("sessionID"), may("arguments"), may("messageID")),
                             p.command_executed),
    "todo.updated": Kind((need("sessionID"), need("todos", list, items=TODO)), p.todo_updated),
    "tool.execute.before": Kind((*TOOL_CALL, may("args", dict)), p.tool_executed),
    "tool.execute.after": Kind((*TOOL_CALL, may("title"), may("output")), p.tool_executed),
    "file.edited": Kind((need("file"), may("sessionID")), p.file_edited),
    # A person is asked (v1 and v2 alike: one projection blocks the session's work, one clears it).
    "permission.asked": Kind((need("id"), need("sessionID")), p.asked),
    "permission.v2.asked": Kind((need("id"), need("sessionID"), may("action"), may("resources", list)), p.asked),
    "question.asked": Kind((need("id"), need("sessionID"), may("questions", list)), p.asked),
    "question.v2.asked": Kind((need("id"), need("sessionID"), may("questions", list)), p.asked),
    "permission.replied": Kind(REPLY, p.replied),
    "permission.v2.replied": Kind(REPLY, p.replied),
    "question.replied": Kind(REPLY, p.replied),
    "question.v2.replied": Kind(REPLY, p.replied),
    "question.rejected": Kind(REPLY, p.replied),
    "question.v2.rejected": Kind(REPLY, p.replied),
    # The dashboard's own kinds.
    "agent.registered": Kind((need("id"), need("name"), need("type", choices=AGENT_TYPES), may("parent_agent_id"),
                              may("soul_md"), may("skills", list), may("config", dict)), p.agent_registered),
    "agent.status": Kind((need("id"), need("status", choices=AGENT_STATUSES), may("current_task_id"),
                          may("reason")), p.agent_status),
    "agent.heartbeat": Kind((need("id"),), p.agent_heartbeat),
    "task.created": Kind((need("id"), need("agent_id"), need("title"), may("priority", choices=TASK_PRIORITIES),
                          may("linear_issue_id"), may("project_id")), p.task_created),
    "task.updated": Kind((need("id"), need("status", choices=TASK_STATUSES), may("blocked_reason")),
                         p.task_updated, check=check_task_question, properties={"question": QUESTION_SCHEMA}),
}
