"""GET /api/usage?group_by= — tokens and cost of assistant messages, summed per agent, model, session,
day or hour, with the totals.

It reads the rollup the database keeps as messages are written (`usage_rollup`, per session, model and
hour: see shared/search_schema.py), never the messages themselves, so it costs the same at a thousand
messages or ten million. Times are taken to the hour: a message counts in the hour it was created in,
and `since`/`until` select whole hours.
"""

from __future__ import annotations

from typing import Any

import falcon

from shared.clock import iso_from_unix
from shared.store.db import execute
from shared.store.search_schema import FIGURES
from shared.web.errors import bad_query
from shared.web.query import time_range

HOUR = 3600
DAY = 86_400

# What each grouping groups by, in SQL over the rollup `u` (agent: see `rollup`).
GROUPS = {
    "agent": "s.agent_id",
    "model": "u.model_id",
    "session": "u.session_id",
    "day": f"u.hour / {DAY} * {DAY}",
    "hour": "u.hour",
}
TIMES = ("day", "hour")
TOKENS = tuple(figure for figure in FIGURES if figure != "cost")


class UsageResource:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        group_by = req.get_param("group_by") or "agent"
        if group_by not in GROUPS:
            raise bad_query("group_by", f"group_by must be one of {', '.join(GROUPS)}; {group_by!r} is not")
        since, until = time_range(req)
        filters, params = [], []
        if since is not None:
            filters.append("u.hour >= ?")
            params.append(since // HOUR * HOUR)
        if until is not None:
            filters.append("u.hour < ?")
            params.append(until)
        if (session_id := req.get_param("session_id")) is not None:
            filters.append("u.session_id = ?")
            params.append(session_id)
        if (agent_id := req.get_param("agent_id")) is not None:
            filters.append("u.session_id IN (SELECT id FROM sessions WHERE agent_id = ?)")
            params.append(agent_id)
        groups = [group_json(group_by, row) for row in rollup(group_by, filters, params)]
        if group_by in TIMES:
            groups.sort(key=lambda group: group["key"] or "")
        else:
            groups.sort(key=lambda group: (-group["cost"], -group["messages"], group["key"] or ""))
        resp.media = {"group_by": group_by, "since": iso_from_unix(since), "until": iso_from_unix(until),
                      "groups": groups, "totals": totals(groups)}


def rollup(group_by: str, filters: list[str], params: list[Any]) -> list[tuple]:
    """The rollup's rows summed per group. Per agent, they are summed per session first (in the rollup's
    own key order, no sorting), so only one row per session is joined to its agent."""
    where = f" WHERE {' AND '.join(filters)}" if filters else ""
    figures = (*FIGURES, "messages")
    if group_by == "agent":
        per_session = (f"SELECT u.session_id, {', '.join(f'SUM(u.{f}) AS {f}' for f in figures)}"
                       f" FROM usage_rollup AS u{where} GROUP BY u.session_id")
        return execute(f"SELECT s.agent_id, {', '.join(f'SUM(x.{f})' for f in figures)} FROM ({per_session}) AS x"
                       f" LEFT JOIN sessions AS s ON s.id = x.session_id GROUP BY s.agent_id", params).fetchall()
    return execute(f"SELECT {GROUPS[group_by]}, {', '.join(f'SUM(u.{f})' for f in figures)} FROM usage_rollup AS u"
                   f"{where} GROUP BY {GROUPS[group_by]}", params).fetchall()


def group_json(group_by: str, row: tuple) -> dict[str, Any]:
    key, *figures, messages = row
    if group_by in TIMES:
        key = iso_from_unix(key)
    elif key == "":  # a message with no session or no model
        key = None
    return {"key": key, **figures_json(figures), "messages": int(messages)}


def figures_json(figures: list[float]) -> dict[str, Any]:
    """Token counts are whole numbers (summed as floats, see usage_rollup); cost stays a float."""
    values = dict(zip(FIGURES, figures, strict=True))
    return {**{name: round(values[name]) for name in TOKENS}, "cost": round(values["cost"], 10)}


def totals(groups: list[dict[str, Any]]) -> dict[str, Any]:
    return {name: sum(group[name] for group in groups) if name != "cost"
            else round(sum(group["cost"] for group in groups), 10) for name in (*FIGURES, "messages")}
