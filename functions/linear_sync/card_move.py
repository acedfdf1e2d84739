"""The card move: a drag-and-drop on the board becomes Linear's `issueUpdate` mutation.

Linear is asked first; the cache changes only once Linear confirms, from the issue Linear returns.
A refusal leaves the cache as it was and is answered 502 with Linear's own message.
"""

from __future__ import annotations

from functions.linear_sync.graphql_client import LinearClient, LinearError
from functions.linear_sync.queries import ISSUE_UPDATE_STATE
from shared.linear import cache as linear_cache
from shared.store.db import write_transaction
from shared.store.models import LinearIssue, LinearWorkflowState
from shared.web.errors import ApiError, invalid


def move_issue(client: LinearClient, issue_id: str, state_id: str) -> LinearIssue | None:
    """Move a cached issue to a workflow state of its team; the issue as cached afterwards (None if
    Linear's answer took it off every board)."""
    issue = LinearIssue.get_or_none(LinearIssue.id == issue_id)
    if issue is None:
        raise ApiError(404, "not_found", f"No issue {issue_id!r} in the cache; a sync may not have brought it yet.",
                       field="issue_id")
    state = LinearWorkflowState.get_or_none(LinearWorkflowState.id == state_id)
    if state is None:
        raise invalid("state_id", f"No workflow state {state_id!r} is known; see GET /api/linear/states.")
    if issue.team_id and state.team_id != issue.team_id:
        raise invalid("state_id", f"State {state.name!r} belongs to team {state.team_id}; "
                                  f"{issue.identifier or issue.id} is in team {issue.team_id}.")
    if issue.state_id == state_id:
        return issue  # already there: nothing to ask Linear
    try:
        data = client.execute(ISSUE_UPDATE_STATE, {"id": issue_id, "stateId": state_id})
    except LinearError as error:
        raise ApiError(502, "linear_error", f"Linear did not move the issue: {error.message}") from None
    result = data.get("issueUpdate")
    moved = result.get("issue") if isinstance(result, dict) else None
    if not isinstance(result, dict) or result.get("success") is not True or not isinstance(moved, dict):
        raise ApiError(502, "linear_error", "Linear did not confirm the move (issueUpdate.success was not true).")
    with write_transaction():
        linear_cache.apply_issues([moved])
    return LinearIssue.get_or_none(LinearIssue.id == issue_id)
