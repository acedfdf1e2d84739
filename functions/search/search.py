"""GET /api/search?q= — full-text search over what agents said and did, newest first.

The index (`search_documents`, see shared/search_schema.py) holds messages (their text and their tool
calls' input and output), todos, task titles and blocked reasons, questions and their answers, and
cached Linear issue titles. Hits come most recently written first, a page at a time.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

import falcon

from functions.search.terms import Term, fts5_query, parse_terms, snippet, tsquery
from shared.clock import iso_from_unix
from shared.store.db import execute, is_sqlite
from shared.store.pagination import encode_cursor, page_request
from shared.store.search_schema import KINDS
from shared.web.errors import bad_query
from shared.web.query import list_param, time_range


class SearchResource:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        terms = parse_terms(req.get_param("q"))
        kinds = list_param(req, "kind", KINDS)
        since, until = time_range(req)
        page = page_request(req)
        filters, params = [], []
        if kinds:
            filters.append(f"d.kind IN ({', '.join('?' * len(kinds))})")
            params.extend(kinds)
        for name in ("agent_id", "session_id"):
            if (value := req.get_param(name)) is not None:
                filters.append(f"d.{name} = ?")
                params.append(value)
        if since is not None:
            filters.append("d.at >= ?")
            params.append(since)
        if until is not None:
            filters.append("d.at < ?")
            params.append(until)
        if page.after is not None:
            if len(page.after) != 1 or not isinstance(page.after[0], int):
                raise bad_query("cursor", "cursor is not one this server issued; start again without it")
            filters.append("d.id < ?")
            params.append(page.after[0])
        rows = find(terms, filters, params, page.limit + 1)
        more = len(rows) > page.limit
        rows = rows[:page.limit]
        resp.media = {"hits": hits(rows, terms),
                      "next_cursor": encode_cursor([rows[-1][0]]) if more else None}


COLUMNS = "d.id, d.kind, d.ref_id, d.session_id, d.agent_id, d.at, d.body"


def find(terms: list[Term], filters: list[str], params: list[Any], limit: int) -> list[tuple]:
    """The matching documents, newest first. SQLite walks the full-text index backwards by rowid and
    stops at `limit`; PostgreSQL reads the GIN index's matches and keeps the newest."""
    where = "".join(f" AND {condition}" for condition in filters)
    if is_sqlite():
        statement = (f"SELECT {COLUMNS} FROM search_text JOIN search_documents AS d ON d.id = search_text.rowid"
                     f" WHERE search_text MATCH ?{where} ORDER BY search_text.rowid DESC LIMIT ?")
        return execute(statement, (fts5_query(terms), *params, limit)).fetchall()
    statement = (f"SELECT {COLUMNS} FROM search_documents AS d WHERE d.words @@ to_tsquery('simple', ?){where}"
                 f" ORDER BY d.id DESC LIMIT ?")
    return execute(statement, (tsquery(terms), *params, limit)).fetchall()


def hits(rows: list[tuple], terms: list[Term]) -> list[dict[str, Any]]:
    question_tasks = tasks_of_questions([row[2] for row in rows if row[1] == "question"])
    return [{"kind": kind, "id": ref_id, "session_id": session_id, "agent_id": agent_id, "time": iso_from_unix(at),
             "snippet": snippet(body, terms),
             "link": link(kind, ref_id, session_id, agent_id, question_tasks.get(ref_id))}
            for _, kind, ref_id, session_id, agent_id, at, body in rows]


def tasks_of_questions(question_ids: list[str]) -> dict[str, str]:
    if not question_ids:
        return {}
    ids = [int(question_id) for question_id in question_ids]
    rows = execute(f"SELECT id, task_id FROM task_questions WHERE id IN ({', '.join('?' * len(ids))})", ids)
    return {str(question_id): task_id for question_id, task_id in rows.fetchall()}


def link(kind: str, ref_id: str, session_id: str | None, agent_id: str | None, task_id: str | None) -> str:
    """Where the page shows the thing: the session at the message, the agent's task, the board."""
    if kind in ("message", "todo") and session_id:
        query = {"session": session_id} | ({"message": ref_id} if kind == "message" else {})
        return f"/?{urlencode(query)}"
    if kind in ("task", "question") and agent_id:
        return f"/agents/{quote(agent_id, safe='')}?{urlencode({'task': task_id or ref_id})}"
    if kind == "linear_issue":
        return f"/?{urlencode({'issue': ref_id})}"
    return "/"
