"""Cursor pagination for list endpoints: `?limit=&cursor=` in, `next_cursor` out.

The cursor is the sort key of the last row served, so a page never repeats or skips a row when rows
are added meanwhile (keyset pagination; no OFFSET).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import dataclass
from typing import Any

import falcon
import peewee

from shared.store.db import MAX_INTEGER
from shared.web.errors import ApiError, bad_query
from shared.web.query import whole_number

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
    # ensure_ascii=False: UTF-8 is shorter than JSON's \uXXXX escapes, and a cursor travels in a URL.
    text = json.dumps(values, separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


# Far longer than any cursor this server issues (a row's sort key: a number and an id, or a name), so
# decoding never spends more than a moment on a made-up one.
MAX_CURSOR_LENGTH = 16 * 1024


def decode_cursor(cursor: str) -> list[Any]:
    """The sort key a cursor holds: a list of numbers and text, else 400 naming `cursor`. Whatever the
    client made up (not base64, not UTF-8, not JSON, nested a thousand deep, huge) is that 400."""
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise not_our_cursor()
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, RecursionError):  # RecursionError: JSON nested past Python's limit
        raise not_our_cursor() from None
    # Only what a column holds and SQL can bind, whoever reads the keys (paginate, or a route's own SQL).
    if not isinstance(values, list) or not all(map(_bindable, values)):
        raise not_our_cursor()
    return values


def not_our_cursor() -> ApiError:
    return bad_query("cursor", "cursor is not one this server issued; start again without it")


def _bindable(value: Any) -> bool:
    """Whether `value` can be sent to either database at all: an integer of 64 bits (sqlite3 cannot
    bind a larger one), a finite number, or text without a NUL (PostgreSQL's text cannot hold one) and
    without a lone surrogate (it has no UTF-8)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return -MAX_INTEGER - 1 <= value <= MAX_INTEGER
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, str) and "\x00" not in value and _utf8(value)


def _fits(field: peewee.Field, value: Any) -> bool:
    """Whether `value` (bindable) is of the kind `field` holds: text compared with an integer column is
    an error on PostgreSQL."""
    if isinstance(field, peewee.IntegerField):
        return isinstance(value, int)
    if isinstance(field, peewee.FloatField):
        return isinstance(value, int | float)
    return isinstance(value, str)


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def paginate(query: peewee.ModelSelect, keys: tuple[peewee.Field, ...], page: PageRequest,
             newest_first: bool = True) -> tuple[list[peewee.Model], str | None]:
    """Apply the page to `query`, ordered by `keys` (which together must be unique).

    Returns the rows and the cursor of the next page (None on the last page)."""
    if page.after is not None:
        if len(page.after) != len(keys) or not all(map(_fits, keys, page.after)):
            raise not_our_cursor()
        row_key, cursor_key = peewee.Tuple(*keys), peewee.Tuple(*page.after)
        query = query.where(row_key < cursor_key if newest_first else row_key > cursor_key)
    ordering = [key.desc() if newest_first else key.asc() for key in keys]
    rows = list(query.order_by(*ordering).limit(page.limit + 1))
    if len(rows) <= page.limit:
        return rows, None
    rows = rows[: page.limit]
    last = rows[-1]
    return rows, encode_cursor([getattr(last, key.name) for key in keys])
