"""What the worker and the web functions agree on about a task's workflow: its names and its data.

The workflow sandbox loads this module, so it imports nothing but the standard library. The names
are the v2 dashboard's (task queue, workflow id, signals), kept for compatibility. Inputs are
dataclasses so that fields can be added without breaking running workflows' histories.
"""

from __future__ import annotations

from dataclasses import dataclass, field

WORKFLOW_NAME = "agentTaskWorkflow"
TASK_QUEUE = "opencode-agent-tasks"
SIGNAL_UNBLOCK = "unblock"
SIGNAL_CANCEL = "cancel"
SIGNAL_SLEEP = "sleep"
SIGNAL_WAKE = "wake"
SIGNAL_ERROR = "error"  # the agent reported an error (session.error): the error rules fire
QUERY_VIEW = "view"
# The activities the workflow calls, by the names the worker registers them under.
ACTIVITY_START_TASK = "start_task"
ACTIVITY_OBSERVE_TASK = "observe_task"
ACTIVITY_MARK_BLOCKED = "mark_blocked"
ACTIVITY_RESUME_TASK = "resume_task"
ACTIVITY_FINISH_TASK = "finish_task"
ACTIVITY_TIME_OUT_QUESTION = "time_out_question"
ACTIVITY_APPLY_ALERT_RULES = "apply_alert_rules"
ACTIVITY_PUSH_NOTIFICATION = "push_notification"

MAX_PENDING_ERRORS = 20  # an agent failing in a loop is one alert per tick, not a flood
HIGH_PRIORITIES = ("urgent", "high")  # medium counts as low: see docs/agents.md, "The workflow"
TASK_STATUSES = ("pending", "in_progress", "blocked", "completed", "cancelled")  # the only ones a task takes
FINISHED = ("completed", "cancelled")
# Said as the statuses it is rather than the ones it is not: `status IN` finds a session's or an agent's
# open tasks through their (…, status) index, where `NOT IN` reads every task they ever had.
UNFINISHED = tuple(status for status in TASK_STATUSES if status not in FINISHED)

# A workflow run continues as new after this many monitoring ticks (~1 400 history events at 10 s
# a tick, far below Temporal's 10 240-event warning), or sooner when Temporal suggests it.
TICKS_PER_RUN = 200


def task_workflow_id(agent_id: str, task_id: str) -> str:
    return f"agent-task-{agent_id}-{task_id}"


@dataclass
class CarriedState:
    """What a run hands to the next one when it continues as new (and what the query shows)."""

    started: bool = False
    status: str = "starting"  # starting | working | blocked | sleeping | done | cancelled
    blocked_since: int | None = None  # Unix seconds: when the blocked episode began
    blocked_reason: str | None = None
    unblock_requested: bool = False
    unblock_reason: str | None = None
    cancel_requested: bool = False
    sleeping: bool = False
    runs: int = 1
    ticks: int = 0
    errors: list[str] = field(default_factory=list)  # reported, not yet alerted
    # The last answer a person gave with the unblock signal: {"question_id", "answer", "answered_by"}.
    last_answer: dict | None = None


@dataclass
class TaskWorkflowInput:
    agent_id: str
    task_id: str
    blocked_after_high_s: float = 600.0
    blocked_after_low_s: float = 3600.0
    monitor_interval_s: float = 10.0
    ticks_per_run: int = TICKS_PER_RUN
    state: CarriedState | None = None

    def threshold_s(self, priority: str) -> float:
        return self.blocked_after_high_s if priority in HIGH_PRIORITIES else self.blocked_after_low_s


# Activity inputs and results -------------------------------------------------------------------------

@dataclass
class TaskRef:
    agent_id: str
    task_id: str


@dataclass
class TaskObservation:
    """The task and its agent as the database has them now."""

    status: str  # the task's status, or "missing"
    priority: str = "medium"
    blocked_since: int | None = None  # set while the task (or its agent, on it) is blocked
    blocked_reason: str | None = None
    blocked_for_s: float = 0.0
    # While it is in progress and not blocked: since when nothing happened (no heartbeat, no update),
    # and whether an idle_too_long rule is due for that quiet spell.
    idle_since: int | None = None
    idle_alert_due: bool = False
    # The task's question waiting for an answer with a timeout: its id and when it runs out (Unix s).
    question_id: int | None = None
    question_deadline: int | None = None
    # While the task stays blocked after its latest question timed out: when it did (the episode of
    # the question_timeout rules).
    question_timed_out_at: int | None = None


@dataclass
class BlockedInput:
    task: TaskRef
    since: int
    reason: str | None
    threshold_s: float


@dataclass
class ResumeInput:
    task: TaskRef
    reason: str | None = None


@dataclass
class QuestionRef:
    task: TaskRef
    question_id: int


@dataclass
class FinishInput:
    task: TaskRef
    status: str  # completed | cancelled


@dataclass
class AlertInput:
    task: TaskRef
    trigger: str  # blocked | completed | error | idle_too_long | question_timeout
    episode: int  # when the episode began (Unix seconds): one notification per rule per episode
    reason: str | None = None
    extra: dict = field(default_factory=dict)
