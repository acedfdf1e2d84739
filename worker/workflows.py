"""agentTaskWorkflow: one per agent task, watching it until it is done or cancelled.

Deterministic workflow code only: every read and write happens in an activity (worker/activities.py),
called by the name shared/agents/task_workflow.py gives it (as the signals are), so this module imports
neither peewee nor shared.store.db. The loop: mark the task started, then every `monitor_interval_s`
observe it; blocked past its priority's threshold ⇒ BLOCKED and the alert rules; then wait for
`unblock` (or `cancel`, or the block being cleared in the database) and resume monitoring. A question
whose `timeout_s` runs out unanswered is timed out on a durable timer.
It continues as new every `ticks_per_run` ticks (or when Temporal suggests it), carrying its state
over, so its history never nears Temporal's limits.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from shared.agents.task_workflow import (
        ACTIVITY_APPLY_ALERT_RULES,
        ACTIVITY_FINISH_TASK,
        ACTIVITY_MARK_BLOCKED,
        ACTIVITY_OBSERVE_TASK,
        ACTIVITY_PUSH_NOTIFICATION,
        ACTIVITY_RESUME_TASK,
        ACTIVITY_START_TASK,
        ACTIVITY_TIME_OUT_QUESTION,
        FINISHED,
        MAX_PENDING_ERRORS,
        QUERY_VIEW,
        SIGNAL_CANCEL,
        SIGNAL_ERROR,
        SIGNAL_SLEEP,
        SIGNAL_UNBLOCK,
        SIGNAL_WAKE,
        WORKFLOW_NAME,
        AlertInput,
        BlockedInput,
        CarriedState,
        FinishInput,
        QuestionRef,
        ResumeInput,
        TaskObservation,
        TaskRef,
        TaskWorkflowInput,
    )

# Database activities take milliseconds (a write waits at most the 5 s busy timeout): 10 s means the
# worker running it died, and another worker retries it. They retry until the database answers.
DB_ACTIVITY = {"start_to_close_timeout": timedelta(seconds=10),
               "retry_policy": RetryPolicy(maximum_interval=timedelta(seconds=30))}
# A push server that keeps failing must not hold the workflow: a few tries, then give up (logged).
PUSH_ACTIVITY = {"start_to_close_timeout": timedelta(seconds=20),
                 "retry_policy": RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                                             maximum_attempts=5)}
MIN_PAUSE_S = 0.05  # a timer, however short: a deadline that has just passed is handled at the next look


@workflow.defn(name=WORKFLOW_NAME)
class AgentTaskWorkflow:
    @workflow.init
    def __init__(self, params: TaskWorkflowInput) -> None:
        # The state is taken from the input here, before any handler runs: a run's first workflow task may
        # hold signals (sent while no worker was up, or between two runs of a continue-as-new), and they
        # must change the state carried over, not one that run() would then replace.
        self.params = params
        self.state = params.state or CarriedState()

    @workflow.run
    async def run(self, params: TaskWorkflowInput) -> str:
        ref = TaskRef(params.agent_id, params.task_id)
        if not self.state.started:
            await self._activity(ACTIVITY_START_TASK, ref, TaskObservation)
            self.state.started = True
            self.state.status = "sleeping" if self.state.sleeping else "working"
        ticks_this_run = 0
        while True:
            if self.state.cancel_requested:
                return await self._finish(ref, "cancelled")
            if self.state.errors:
                reason = self.state.errors.pop(0)
                await self._alert(ref, "error", int(workflow.now().timestamp()), reason)
            if self.state.unblock_requested:
                await self._activity(ACTIVITY_RESUME_TASK, ResumeInput(ref, self.state.unblock_reason))
                self._clear_block()
            observed = await self._activity(ACTIVITY_OBSERVE_TASK, ref, TaskObservation)
            if observed.status == "missing":
                workflow.logger.warning("task %s no longer exists; the workflow ends", ref.task_id)
                return "missing"
            if observed.status in FINISHED:
                return await self._finish(ref, observed.status)
            await self._apply_rules(ref, observed)
            await self._watch_question(ref, observed)
            ticks_this_run += 1
            self.state.ticks += 1
            if ticks_this_run >= params.ticks_per_run or workflow.info().is_continue_as_new_suggested():
                self.state.runs += 1
                workflow.continue_as_new(replace(params, state=self.state))
            await self._pause(self._until_next_look(observed))

    async def _apply_rules(self, ref: TaskRef, observed: TaskObservation) -> None:
        if self.state.status == "blocked":
            if observed.blocked_since == self.state.blocked_since:
                await self._alert(ref, "blocked", observed.blocked_since, self.state.blocked_reason)
                return  # (rules whose delay has come due since)
            # Cleared in the database (the agent got its answer, or a person), or a new episode began.
            self._clear_block()
        if self.state.sleeping:
            return
        if observed.blocked_since is None:
            if observed.idle_alert_due:  # quiet too long: one alert per quiet spell, per rule
                await self._alert(ref, "idle_too_long", observed.idle_since, None)
            return
        threshold = self.params.threshold_s(observed.priority)
        if observed.blocked_for_s < threshold:
            return
        await self._activity(ACTIVITY_MARK_BLOCKED, BlockedInput(ref, observed.blocked_since, observed.blocked_reason,
                                                          threshold))
        self.state.status = "blocked"
        self.state.blocked_since = observed.blocked_since
        self.state.blocked_reason = observed.blocked_reason
        await self._alert(ref, "blocked", observed.blocked_since, observed.blocked_reason)

    async def _watch_question(self, ref: TaskRef, observed: TaskObservation) -> None:
        """A question past its timeout is timed out (the agent's inbox says so); while the task stays
        blocked after that, the question_timeout rules apply (those with a delay come due later)."""
        if observed.question_deadline is not None and workflow.now().timestamp() >= observed.question_deadline:
            timed_out_at = await self._activity(ACTIVITY_TIME_OUT_QUESTION, QuestionRef(ref, observed.question_id),
                                                int | None)
            observed.question_timed_out_at = timed_out_at or observed.question_timed_out_at
        if observed.question_timed_out_at is not None:
            await self._alert(ref, "question_timeout", observed.question_timed_out_at, None)

    def _until_next_look(self, observed: TaskObservation) -> float:
        """The next tick, or sooner when a question runs out before it: the timeout is a durable timer."""
        interval = self.params.monitor_interval_s
        if observed.question_deadline is None:
            return interval
        return max(MIN_PAUSE_S, min(interval, observed.question_deadline - workflow.now().timestamp()))

    async def _alert(self, ref: TaskRef, trigger: str, episode: int, reason: str | None) -> None:
        to_push = await self._activity(ACTIVITY_APPLY_ALERT_RULES, AlertInput(ref, trigger, episode, reason), list[int])
        for notification_id in to_push:
            try:
                await workflow.execute_activity(ACTIVITY_PUSH_NOTIFICATION, notification_id, **PUSH_ACTIVITY)
            except ActivityError as error:
                workflow.logger.warning("push of notification %s failed for good: %s", notification_id, error.cause)

    async def _finish(self, ref: TaskRef, status: str) -> str:
        await self._activity(ACTIVITY_FINISH_TASK, FinishInput(ref, status))
        self.state.status = "done" if status == "completed" else "cancelled"
        if status == "completed":
            await self._alert(ref, "completed", int(workflow.now().timestamp()), None)
        return self.state.status

    async def _pause(self, seconds: float) -> None:
        """Sleep on a durable timer until the next tick, woken early by an unblock, a cancel or an error."""
        with contextlib.suppress(asyncio.TimeoutError):
            await workflow.wait_condition(
                lambda: self.state.cancel_requested or self.state.unblock_requested or bool(self.state.errors),
                timeout=timedelta(seconds=seconds))

    def _clear_block(self) -> None:
        self.state.unblock_requested = False
        self.state.unblock_reason = None
        self.state.blocked_since = None
        self.state.blocked_reason = None
        self.state.status = "sleeping" if self.state.sleeping else "working"

    async def _activity(self, name: str, argument, result_type=None):
        return await workflow.execute_activity(name, argument, result_type=result_type, **DB_ACTIVITY)

    @workflow.signal(name=SIGNAL_UNBLOCK)
    def unblock(self, reason: str | None = None, answer: dict | None = None) -> None:
        """A person unblocked the task; `answer` ({"question_id", "answer", "answered_by"}) when they
        answered its question (already recorded in the database and the agent's inbox)."""
        self.state.unblock_requested = True
        self.state.unblock_reason = reason
        if answer is not None:
            self.state.last_answer = answer

    @workflow.signal(name=SIGNAL_CANCEL)
    def cancel(self) -> None:
        self.state.cancel_requested = True

    @workflow.signal(name=SIGNAL_ERROR)
    def error(self, message: str) -> None:
        if len(self.state.errors) < MAX_PENDING_ERRORS:
            self.state.errors.append(message)

    @workflow.signal(name=SIGNAL_SLEEP)
    def sleep(self) -> None:
        """The agent sleeps on purpose: no BLOCKED escalation until it wakes."""
        self.state.sleeping = True
        if self.state.status == "working":
            self.state.status = "sleeping"

    @workflow.signal(name=SIGNAL_WAKE)
    def wake(self) -> None:
        self.state.sleeping = False
        if self.state.status == "sleeping":
            self.state.status = "working"

    @workflow.query(name=QUERY_VIEW)
    def view(self) -> dict:
        """The workflow's current view: status, when the blocked episode began, why; and its run count."""
        return {"status": self.state.status, "blocked_since": self.state.blocked_since,
                "blocked_reason": self.state.blocked_reason, "runs": self.state.runs, "ticks": self.state.ticks,
                "sleeping": self.state.sleeping, "last_answer": self.state.last_answer}
