"""Cursor pagination for list endpoints: `?limit=&cursor=` in, `next_cursor` out.

The cursor is the sort key of the last row served, so a page never repeats or skips a row when rows
are added meanwhile (keyset pagination; no OFFSET).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

import falcon
import peewee

from shared.db import MAX_INTEGER
from shared.errors import bad_query
from shared.query import whole_number

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


@dataclass(frozen=True)
class PageRequest:
    limit: int
    after: list[Any] | None


def page_request(req: falcon.Request) -> PageRequest:
    raw_limit = req.get_param("limit")
    limit = DEFAULT_LIMIT
    if raw_limit is not None:
        limit = whole_number(raw_limit) or 0
        if not 1 <= limit <= MAX_LIMIT:
            raise bad_query("limit", f"limit must be a whole number from 1 to {MAX_LIMIT}")
    cursor = req.get_param("cursor")
    return PageRequest(limit=limit, after=decode_cursor(cursor) if cursor else None)


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> list[Any]:
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        raise bad_query("cursor", "cursor is not one this server issued; start again without it") from None
    # A cursor holds the last row's sort key: text and numbers a column can hold, nothing else.
    if not isinstance(values, list) or not all(_key_value(value) for value in values):
        raise bad_query("cursor", "cursor is not one this server issued; start again without it")
    return values


def _key_value(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return -MAX_INTEGER - 1 <= value <= MAX_INTEGER
    return isinstance(value, str | float)


def paginate(query: peewee.ModelSelect, keys: tuple[peewee.Field, ...], page: PageRequest,
             newest_first: bool = True) -> tuple[list[peewee.Model], str | None]:
    """Apply the page to `query`, ordered by `keys` (which together must be unique).

    Returns the rows and the cursor of the next page (None on the last page)."""
    if page.after is not None:
        if len(page.after) != len(keys):
            raise bad_query("cursor", "cursor is not one this server issued; start again without it")
        row_key, cursor_key = peewee.Tuple(*keys), peewee.Tuple(*page.after)
        query = query.where(row_key < cursor_key if newest_first else row_key > cursor_key)
    ordering = [key.desc() if newest_first else key.asc() for key in keys]
    rows = list(query.order_by(*ordering).limit(page.limit + 1))
    if len(rows) <= page.limit:
        return rows, None
    rows = rows[: page.limit]
    last = rows[-1]
    return rows, encode_cursor([getattr(last, key.name) for key in keys])
