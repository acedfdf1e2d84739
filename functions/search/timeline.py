"""GET /api/timeline — the accepted events themselves, newest first — and GET /api/activity, how many
arrived per agent per minute (or 5 minutes, or hour), for a chart.

Both read `inbound_events`, so they reach back as far as retention keeps it (RECORD_RETENTION_DAYS).
The agent is the one that sent the event (`agent_id`); the session is the one its data names
(`sessionID`, `part.sessionID`, `info.sessionID`, a session event's `info.id`), indexed as that
expression (shared/search_schema.py).
"""

from __future__ import annotations

import json
from typing import Any

import falcon

from shared.clock import iso_from_unix, now
from shared.store.db import execute, is_sqlite
from shared.store.pagination import encode_cursor, page_request
from shared.store.search_schema import POSTGRESQL_EVENT_SESSION, SQLITE_EVENT_SESSION
from shared.web.errors import bad_query
from shared.web.query import list_param, time_range

BUCKETS = {"1m": 60, "5m": 300, "1h": 3600}
DEFAULT_BUCKETS = 60  # without `since`: the last hour of minutes
MAX_BUCKETS = 1440


def event_session() -> str:
    return SQLITE_EVENT_SESSION if is_sqlite() else POSTGRESQL_EVENT_SESSION


class TimelineResource:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        since, until = time_range(req)
        page = page_request(req)
        session = event_session()
        filters, params = [], []
        if (agent_id := req.get_param("agent_id")) is not None:
            filters.append("agent_id = ?")
            params.append(agent_id)
        if (session_id := req.get_param("session_id")) is not None:
            filters.append(f"{session} = ?")
            params.append(session_id)
        if types := list_param(req, "type"):
            filters.append(f"type IN ({', '.join('?' * len(types))})")
            params.extend(types)
        if since is not None:
            filters.append("received_at >= ?")
            params.append(since)
        if until is not None:
            filters.append("received_at < ?")
            params.append(until)
        if page.after is not None:
            received_at, event_id = timeline_cursor(page.after)
            filters.append("(received_at < ? OR (received_at = ? AND id < ?))")
            params.extend((received_at, received_at, event_id))
        where = f" WHERE {' AND '.join(filters)}" if filters else ""
        rows = execute(f"SELECT id, type, agent_id, {session}, known, occurred_at, received_at, data"
                       f" FROM inbound_events{where} ORDER BY received_at DESC, id DESC LIMIT ?",
                       (*params, page.limit + 1)).fetchall()
        more = len(rows) > page.limit
        rows = rows[:page.limit]
        resp.media = {"events": [event_json(row) for row in rows],
                      "next_cursor": encode_cursor([rows[-1][6], rows[-1][0]]) if more else None}


def timeline_cursor(after: list[Any]) -> tuple[int, str]:
    if len(after) != 2 or not isinstance(after[0], int) or not isinstance(after[1], str):
        raise bad_query("cursor", "cursor is not one this server issued; start again without it")
    return after[0], after[1]


def event_json(row: tuple) -> dict[str, Any]:
    event_id, event_type, agent_id, session_id, known, occurred_at, received_at, data = row
    return {"id": event_id, "type": event_type, "agent_id": agent_id, "session_id": session_id,
            "known": bool(known), "occurred_at": iso_from_unix(occurred_at),
            "received_at": iso_from_unix(received_at), "data": json.loads(data)}


class ActivityResource:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        bucket = req.get_param("bucket") or "1m"
        if bucket not in BUCKETS:
            raise bad_query("bucket", f"bucket must be one of {', '.join(BUCKETS)}; {bucket!r} is not")
        width = BUCKETS[bucket]
        since, until = time_range(req)
        end = until if until is not None else now() + 1
        if since is None:
            since = max(0, (end - 1) // width * width - (DEFAULT_BUCKETS - 1) * width)
        since = since // width * width
        if (end - since) / width > MAX_BUCKETS:
            raise bad_query("since", f"since reaches back more than {MAX_BUCKETS} buckets of {bucket}; "
                                     "choose a later since or a wider bucket")
        filters, params = ["received_at >= ?"], [since]
        if until is not None:
            filters.append("received_at < ?")
            params.append(until)
        rows = execute(f"SELECT agent_id, received_at / ? * ? AS bucket, COUNT(*) FROM inbound_events"
                       f" WHERE {' AND '.join(filters)} GROUP BY 1, 2 ORDER BY 2",
                       (width, width, *params)).fetchall()
        agents: dict[str | None, list[dict[str, Any]]] = {}
        for agent_id, at, count in rows:
            agents.setdefault(agent_id, []).append({"at": iso_from_unix(at), "events": count})
        resp.media = {"bucket": bucket, "bucket_s": width, "since": iso_from_unix(since),
                      "until": iso_from_unix(until),
                      "agents": [{"agent_id": agent_id, "buckets": buckets} for agent_id, buckets
                                 in sorted(agents.items(), key=lambda item: item[0] or "")],
                      "total": sum(count for _, _, count in rows)}
