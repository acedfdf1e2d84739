"""GET /api/search?q= — full-text search over what agents said and did, newest first.

The index (`search_documents`, see shared/search_schema.py) holds messages (their text and their tool
calls' input and output), todos, task titles and blocked reasons, questions and their answers, and
cached Linear issue titles. Hits come most recently written first, a page at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import falcon

from functions.search.terms import Term, fts5_query, marker, parse_terms, snippet, tsquery
from shared.clock import iso_from_unix
from shared.store.db import execute, is_sqlite
from shared.store.pagination import encode_cursor, page_request
from shared.store.search_schema import KINDS, SOURCES, search_tag, text_select
from shared.web.errors import bad_query
from shared.web.query import list_param, time_range


class SearchResource:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        terms = parse_terms(req.get_param("q"))
        filters = Filters(kinds=list_param(req, "kind", KINDS), agent_id=req.get_param("agent_id"),
                          session_id=req.get_param("session_id"), span=time_range(req))
        page = page_request(req)
        before = None
        if page.after is not None:
            if len(page.after) != 1 or not isinstance(page.after[0], int):
                raise bad_query("cursor", "cursor is not one this server issued; start again without it")
            before = page.after[0]
        rows = find(terms, filters, before, page.limit + 1)
        more = len(rows) > page.limit
        rows = rows[:page.limit]
        resp.media = {"hits": hits(rows, terms), "next_cursor": encode_cursor([rows[-1][0]]) if more else None}


@dataclass(frozen=True)
class Filters:
    kinds: list[str]
    agent_id: str | None
    session_id: str | None
    span: tuple[int | None, int | None]


COLUMNS = "d.id, d.kind, d.ref_id, d.session_id, d.agent_id, d.at"


def find(terms: list[Term], filters: Filters, before: int | None, limit: int) -> list[tuple]:
    """The matching documents, newest first (by document id, below `before`)."""
    since, until = filters.span
    conditions, params = [], []
    for condition, value in (("d.at >= ?", since), ("d.at < ?", until), ("d.id < ?", before)):
        if value is not None:
            conditions.append(condition)
            params.append(value)
    if is_sqlite():
        # One full-text query, filters included as tags: FTS5 walks its matches backwards by rowid and
        # stops at `limit`, however many documents match the words alone.
        where = "".join(f" AND {condition}" for condition in conditions)
        statement = (f"SELECT {COLUMNS} FROM search_text JOIN search_documents AS d ON d.id = search_text.rowid"
                     f" WHERE search_text MATCH ?{where} ORDER BY search_text.rowid DESC LIMIT ?")
        return execute(statement, (fts5_match(terms, filters), *params, limit)).fetchall()
    if filters.kinds:
        conditions.append(f"d.kind IN ({', '.join('?' * len(filters.kinds))})")
        params.extend(filters.kinds)
    for column, value in (("agent_id", filters.agent_id), ("session_id", filters.session_id)):
        if value is not None:
            conditions.append(f"d.{column} = ?")
            params.append(value)
    where = "".join(f" AND {condition}" for condition in conditions)
    statement = (f"SELECT {COLUMNS} FROM search_documents AS d WHERE d.words @@ to_tsquery('simple', ?){where}"
                 f" ORDER BY d.id DESC LIMIT ?")
    return execute(statement, (tsquery(terms), *params, limit)).fetchall()


def fts5_match(terms: list[Term], filters: Filters) -> str:
    """The words in the text column, the filters as tags (shared/store/search_schema.py: search_tag)."""
    match = f"body : ({fts5_query(terms)})"
    if filters.kinds:
        match += " AND tags : (" + " OR ".join(f'"{search_tag("k", kind)}"' for kind in filters.kinds) + ")"
    for prefix, value in (("a", filters.agent_id), ("s", filters.session_id)):
        if value is not None:
            match += f' AND tags : "{search_tag(prefix, value)}"'
    return match


def hits(rows: list[tuple], terms: list[Term]) -> list[dict[str, Any]]:
    texts, pattern = texts_of(rows), marker(terms)
    question_tasks = tasks_of_questions([row[2] for row in rows if row[1] == "question"])
    return [{"kind": kind, "id": ref_id, "session_id": session_id, "agent_id": agent_id, "time": iso_from_unix(at),
             "snippet": snippet(texts.get((kind, ref_id), ""), pattern),
             "link": link(kind, ref_id, session_id, agent_id, question_tasks.get(ref_id))}
            for _, kind, ref_id, session_id, agent_id, at in rows]


def texts_of(rows: list[tuple]) -> dict[tuple[str, str], str]:
    """The indexed text of each hit, made from its own row as the index made it."""
    texts: dict[tuple[str, str], str] = {}
    for source in SOURCES:
        ids = [row[2] for row in rows if row[1] == source.kind]
        if not ids:
            continue
        keys = [int(ref_id) for ref_id in ids] if source.integer_key else ids
        statement = f"{text_select(source, 'sqlite' if is_sqlite() else 'postgresql')} WHERE r.{source.key} IN" \
                    f" ({', '.join('?' * len(keys))})"
        texts.update(((source.kind, ref_id), text) for ref_id, text in execute(statement, keys).fetchall())
    return texts


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
