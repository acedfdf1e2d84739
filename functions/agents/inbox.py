"""The agents' inbox: answers (and timed-out questions) waiting for an agent to pick them up.

`GET /api/agent/{id}/inbox?wait=N` answers at once when the inbox holds anything, else waits up to N
seconds (at most 30) for something to arrive and answers as soon as it does (`&task_id=` narrows it to
one task's entries, for an agent waiting on one question while others' answers sit unread; `&request_id=`
to the answer to one opencode prompt, which the plugin waits on): the agent opens no port
and needs no stream, only one request at a time. `POST .../inbox/{entry_id}/ack` removes an entry;
until then every read returns it again (at least once, across restarts). The agents' API key only:
this is the agent's side of the conversation.

A waiting request holds one gunicorn thread for up to `wait` seconds, so it counts toward the worker's
budget for long requests, shared with the live streams (shared/web/long_requests.py; docs/capacity.md):
past it, a read that would wait is a 503 with Retry-After (one that answers at once is an ordinary call).
"""

from __future__ import annotations

import time

import falcon

from functions.agents.resources import agent_or_404
from shared.agents.questions import acknowledge, inbox
from shared.clock import now
from shared.store.commit_watch import commit_watch
from shared.store.db import write_transaction
from shared.web.auth import AGENT
from shared.web.errors import ApiError, bad_query
from shared.web.long_requests import long_request_budget

MAX_WAIT_S = 30


def wait_param(req: falcon.Request) -> float:
    raw = req.get_param("wait")
    if raw is None:
        return 0.0
    try:
        wait = float(raw)
    except ValueError:
        wait = -1.0
    if not 0 <= wait <= MAX_WAIT_S:
        raise bad_query("wait", f"wait must be a number of seconds from 0 to {MAX_WAIT_S}.")
    return wait


class InboxResource:
    """GET /api/agent/{id}/inbox?wait=N; POST /api/agent/{id}/inbox/{entry_id}/ack."""

    auth = AGENT

    def __init__(self, long_request_slots: int):
        self.long_request_slots = long_request_slots

    def on_get(self, req: falcon.Request, resp: falcon.Response, agent_id: str) -> None:
        wait = wait_param(req)
        agent_or_404(agent_id)
        task_id, request_id = req.get_param("task_id"), req.get_param("request_id")
        entries = inbox(agent_id, task_id, request_id=request_id)
        if entries or not wait:
            resp.media = {"answers": entries}
            return
        with long_request_budget().hold(self.long_request_slots):  # it will wait: a long request
            resp.media = {"answers": wait_for_entries(agent_id, wait, task_id, request_id)}

    def on_post_ack(self, req: falcon.Request, resp: falcon.Response, agent_id: str, entry_id: int) -> None:
        with write_transaction():
            if not acknowledge(agent_id, entry_id, now()):
                raise ApiError(404, "not_found", f"No inbox entry {entry_id} for agent {agent_id!r}.")
        resp.status = falcon.HTTP_204


def wait_for_entries(agent_id: str, wait_s: float, task_id: str | None = None,
                     request_id: str | None = None) -> list[dict]:
    """The agent's unacknowledged entries (only `task_id`'s, or `request_id`'s, if given), as soon as
    there are any or `wait_s` has passed."""
    deadline = time.monotonic() + wait_s
    watch = commit_watch()
    while True:
        seen = watch.generation()  # before reading: a commit after this read wakes the wait below
        entries = inbox(agent_id, task_id, request_id=request_id)
        remaining = deadline - time.monotonic()
        if entries or remaining <= 0:
            return entries
        watch.wait_past(seen, remaining)
