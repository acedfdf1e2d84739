"""The registry of event kinds: for each kind the dashboard understands, in one entry, the fields its
`data` must carry (checked at ingest, 422 otherwise), what it changes (its projection), and its OpenAPI
schema (made from the same rules). A kind not listed here is stored raw and counted as `unknown`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from functions.events import limits
from functions.events import projections as p
from functions.events.event import Event
from functions.events.rules import MAX_PATH_LENGTH, NUMBER, Rule, data_schema, may, may_id, need, need_id
from shared.agents import task_workflow
from shared.agents.questions import MAX_CHOICE, MAX_CHOICES, MAX_TEXT, MAX_TIMEOUT_S, QUESTION_TYPES, parse_question
from shared.web.errors import invalid
from shared.web.openapi import Schema

TODO_STATUSES = frozenset({"pending", "in_progress", "completed", "cancelled"})
TODO_PRIORITIES = frozenset({"low", "medium", "high"})
AGENT_TYPES = frozenset({"primary", "sub-agent"})
AGENT_STATUSES = frozenset({"idle", "working", "blocked", "sleeping", "offline"})
TASK_STATUSES = frozenset(task_workflow.TASK_STATUSES)
TASK_PRIORITIES = frozenset({"urgent", "high", "medium", "low"})


@dataclass(frozen=True)
class Kind:
    """One kind of event: its fields, its projection, and whatever the rules alone cannot say."""

    rules: tuple[Rule, ...]
    project: Callable[[Event, int], None]  # runs inside the batch's write transaction
    check: Callable[[Event], None] | None = None  # more validation, before anything of the batch is written
    properties: Mapping[str, Schema] = field(default_factory=dict)  # the schema of the fields `check` reads
    stored: bool = True  # False: accepted and checked, but not even the raw event is kept
    # For a kind whose event replaces some state whole (a session's todo list, an agent's last
    # heartbeat): the key of that state. Of a batch's events with the same key, only the last is
    # projected; each earlier one only does `superseded` (makes sure its rows exist, in its turn).
    replaces: Callable[[Event], str] | None = None
    superseded: Callable[[Event, int], None] | None = None
    # Whether its projection may insert or delete rows with ids (a message, a search entry) that one event
    # per request would have given after those of the messages the batch began before it: then those
    # messages are inserted first (message_rows.py). False for a kind that never does, or whose projection
    # inserts them itself when it does (`todo.updated`, when its list adds or removes a todo).
    takes_ids: bool = True

    @property
    def schema(self) -> Schema:
        """The OpenAPI schema of this kind's `data`."""
        schema = data_schema((*SESSION_OF_ANY_EVENT, *self.rules))
        schema["properties"].update(self.properties)
        schema["description"] = limits.DESCRIPTION
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

# A message's row is keyed by opencode's message id; tool calls (`tool:<callID>`) and Linear comments
# (`linear:comment:<id>`) share that key, so an opencode message id may not look like theirs.
MESSAGE_ID_PREFIXES = ("tool:", "linear:")
SESSION = need_id("sessionID")
MESSAGE = need_id("messageID", reserved=MESSAGE_ID_PREFIXES)
SESSION_INFO = (need("info", dict), need_id("info.id"), may("info.title"), may_id("info.parentID"),
                may("info.directory"), may("info.time", dict))
TOOL_CALL = (need("tool"), SESSION, need_id("callID"))
REPLY = (SESSION,)
FILE_DIFF = (may("file", max_length=MAX_PATH_LENGTH), may("status"), may("additions", NUMBER),
             may("deletions", NUMBER))
TODO = (may_id("id"), need("content"), need("status", choices=TODO_STATUSES),
        may("priority", choices=TODO_PRIORITIES))
ASKED = (need_id("id"), SESSION)

KINDS: dict[str, Kind] = {
    # opencode's kinds, from both of its event unions (v1 and v2): `data` is the `properties` of
    # opencode's own event. Fields not named here are kept as sent.
    "session.created": Kind(SESSION_INFO, p.session_upserted),
    "session.updated": Kind(SESSION_INFO, p.session_upserted),
    "session.deleted": Kind((need("info", dict), need_id("info.id")), p.session_deleted),
    "session.idle": Kind((SESSION,), p.session_idle),
    "session.error": Kind((may_id("sessionID"), may("error", dict), may("error.name"), may("error.data", dict)),
                          p.session_error),
    "session.status": Kind((SESSION, need("status", dict), need("status.type")), p.session_status),
    "session.compacted": Kind((SESSION,), p.session_compacted),
    "session.diff": Kind((SESSION, need("diff", list, items=FILE_DIFF)), p.session_diff),
    "message.updated": Kind((need("info", dict), need_id("info.id", reserved=MESSAGE_ID_PREFIXES),
                             need_id("info.sessionID"), need("info.role"), may("info.time", dict),
                             may("info.modelID"), may("info.providerID"), may("info.mode"),
                             may("info.cost", NUMBER), may("info.tokens", dict)),
                            p.message_updated),
    "message.removed": Kind((SESSION, MESSAGE), p.message_removed),
    "message.part.updated": Kind((need("part", dict), need_id("part.id"),
                                  need_id("part.messageID", reserved=MESSAGE_ID_PREFIXES),
                                  need_id("part.sessionID"), need("part.type"), may("part.text")),
                                 p.message_part_updated),
    "message.part.removed": Kind((SESSION, MESSAGE, need_id("partID")), p.message_part_removed),
    "message.part.delta": Kind((SESSION, MESSAGE, need_id("partID"), may("field"), may("delta")),
                               p.part_streamed, stored=False),
    "command.executed": Kind((need("name"), SESSION, may("arguments"), may_id("messageID")), p.command_executed),
    "todo.updated": Kind((SESSION, need("todos", list, items=TODO)), p.todo_updated,
                         replaces=p.session_of_event, superseded=p.todo_list_superseded, takes_ids=False),
    "tool.execute.before": Kind((*TOOL_CALL, may("args", dict)), p.tool_executed),
    "tool.execute.after": Kind((*TOOL_CALL, may("title"), may("output")), p.tool_executed),
    "file.edited": Kind((need("file", max_length=MAX_PATH_LENGTH), may_id("sessionID")), p.file_edited),
    # A person is asked (v1 and v2 alike: one projection blocks the session's work, one clears it).
    "permission.asked": Kind(ASKED, p.asked),
    "permission.v2.asked": Kind((*ASKED, may("action"), may("resources", list)), p.asked),
    "question.asked": Kind((*ASKED, may("questions", list)), p.asked),
    "question.v2.asked": Kind((*ASKED, may("questions", list)), p.asked),
    "permission.replied": Kind(REPLY, p.replied),
    "permission.v2.replied": Kind(REPLY, p.replied),
    "question.replied": Kind(REPLY, p.replied),
    "question.v2.replied": Kind(REPLY, p.replied),
    "question.rejected": Kind(REPLY, p.replied),
    "question.v2.rejected": Kind(REPLY, p.replied),
    # The dashboard's own kinds.
    "agent.registered": Kind((need_id("id"), need("name"), need("type", choices=AGENT_TYPES), may_id("parent_agent_id"),
                              may("soul_md"), may("skills", list), may("config", dict)), p.agent_registered),
    "agent.status": Kind((need_id("id"), need("status", choices=AGENT_STATUSES), may_id("current_task_id"),
                          may("reason")), p.agent_status),
    "agent.heartbeat": Kind((need_id("id"),), p.agent_heartbeat, replaces=p.agent_of_event,
                            superseded=p.heartbeat_superseded, takes_ids=False),
    "task.created": Kind((need_id("id"), need_id("agent_id"), need("title"),
                          may("priority", choices=TASK_PRIORITIES), may_id("linear_issue_id"), may_id("project_id")),
                         p.task_created),
    "task.updated": Kind((need_id("id"), need("status", choices=TASK_STATUSES), may("blocked_reason")),
                         p.task_updated, check=check_task_question, properties={"question": QUESTION_SCHEMA}),
}

# Where the timeline's index looks for the session an event is about (shared/store/search_schema.py),
# in every event, of a kind above or not: it keys an index there, so it is an id like any other.
SESSION_OF_ANY_EVENT = (may_id("sessionID"), may_id("part.sessionID"), may_id("info.sessionID"))
SESSION_OF_A_SESSION_EVENT = (may_id("info.id"),)  # events whose type begins with `session.`
