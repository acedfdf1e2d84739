"""Events made from the registry's own rules (`functions.events.kinds.KINDS`), so a test written over
them covers a kind the day it is added: the smallest valid `data` of each kind, and the contract's edge
values for each field its rules name and for one they do not (`edge_cases`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from functions.events.kinds import KINDS
from functions.events.limits import MAX_DEPTH, MAX_STRING_CHARS
from functions.events.rules import NUMBER, Rule

# Kinds whose projection needs another event first (a task is updated only once it exists).
PREREQUISITES = {"task.updated": ("task.created",)}


def value_for(rule: Rule, name: str) -> Any:
    if rule.choices is not None:
        return sorted(rule.choices)[0]
    if rule.items is not None:
        return [minimal_data(rule.items, name)]
    kinds = rule.kind if isinstance(rule.kind, tuple) else (rule.kind,)
    if kinds == NUMBER:
        return 1
    return {str: name, dict: {}, list: []}[kinds[0]]


def minimal_data(rules: tuple[Rule, ...], name: str = "k1") -> dict[str, Any]:
    """Every required field of the rules at its simplest; every string the same `name`, so that the ids
    one kind's event names (a session, an agent, a task) are the ids another kind's event created."""
    data: dict[str, Any] = {}
    for rule in rules:
        if not rule.required:
            continue
        *parents, last = rule.path.split(".")
        node = data
        for parent in parents:
            node = node.setdefault(parent, {})
        node[last] = value_for(rule, name)
    return data


def kind_data(kind: str, name: str = "k1") -> dict[str, Any]:
    return minimal_data(KINDS[kind].rules, name)


def prerequisites(kind: str) -> list[str]:
    return list(PREREQUISITES.get(kind, ()))


# Edge values ---------------------------------------------------------------------------------------------

BIG = 2**64
LONG = MAX_STRING_CHARS * 3  # past the cut of one string, and with a second one past the event's share


@dataclass(frozen=True)
class Raw:
    """A value written as JSON text: what Python would not write itself (1e400, 970 levels of nesting)."""

    text: str

    def __str__(self) -> str:
        return self.text


PLACEHOLDER = "__RAW_JSON__"
INFINITY = Raw("1e400")  # JSON has no infinity, but Python's reader turns 1e400 into one


def nested(levels: int) -> Any:
    """`levels` objects one inside the other (one level: {"a": 1})."""
    value: Any = 1
    for _ in range(levels):
        value = {"a": value}
    return value


def nested_lists(levels: int) -> Any:
    value: Any = []
    for _ in range(levels - 1):
        value = [value]
    return value


@dataclass(frozen=True)
class Case:
    path: tuple[str | int, ...]  # where in `data` the value goes
    value: Any
    expect: str  # "202", "422" (naming the path), or "422 within" (naming a field inside it)

    @property
    def field(self) -> str:
        text = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in self.path)
        return f"data{text}"


def rule_paths(rules: tuple[Rule, ...], prefix: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple, Rule]]:
    """Each rule's place in the smallest data (a list's item rules: in its first item)."""
    for rule in rules:
        path = (*prefix, *rule.path.split("."))
        yield path, rule
        if rule.items is not None:
            yield from rule_paths(rule.items, (*path, 0))


def cases_for(rule: Rule, path: tuple) -> Iterator[Case]:
    kinds = rule.kind if isinstance(rule.kind, tuple) else (rule.kind,)
    yield Case(path, True, "422")  # a JSON boolean is never a string, a number, an object or a list
    if kinds == (str,):
        text_is_free = rule.choices is None
        yield Case(path, 12345, "422")
        yield Case(path, "", "422" if rule.required or not text_is_free else "202")
        yield Case(path, "a\x00b", "202" if text_is_free else "422")
        yield Case(path, "x" * LONG, "202" if text_is_free and rule.max_length is None else "422")
        if rule.max_length is not None:
            yield Case(path, "x" * rule.max_length, "202" if text_is_free else "422")
            yield Case(path, "x" * (rule.max_length + 1), "422")
        for prefix in rule.reserved:
            yield Case(path, f"{prefix}k1", "422")
    elif kinds == NUMBER:
        yield from (Case(path, value, "422") for value in (BIG, -BIG - 1, INFINITY, "1"))
        yield from (Case(path, value, "202") for value in (2**63 - 1, -(2**63), 1e308, 0.0))
    elif kinds == (dict,):
        yield Case(path, [], "422")
        yield Case(path, nested(MAX_DEPTH), "422 within")
    elif kinds == (list,):
        yield Case(path, {}, "422")
        yield Case(path, nested_lists(MAX_DEPTH), "422 within")


def kept_field_cases() -> Iterator[Case]:
    """A field no rule names: kept as sent, whatever it holds, if it can be read back."""
    path = ("extra",)  # data is level 1, so `extra` may hold MAX_DEPTH - 1 levels
    yield Case(path, nested(MAX_DEPTH - 1), "202")
    yield Case(path, nested(MAX_DEPTH), "422 within")
    yield Case(path, nested_lists(MAX_DEPTH), "422 within")
    # Past every read (issue 17: ~970 levels answered 202, then every read 500); 500 levels is as deep as
    # this process's own JSON reader goes under pytest.
    yield Case(path, Raw('{"deep": ' + '{"a": ' * 500 + "1" + "}" * 501), "422 within")
    yield Case(path, BIG, "422")
    yield Case(path, [1, 2, -BIG], "422 within")
    yield Case(path, INFINITY, "422")
    yield Case(path, 1e308, "202")
    yield Case(path, "x" * LONG, "202")
    yield Case(path, ["y" * MAX_STRING_CHARS] * 12, "202")  # together past the event's share
    yield Case(path, {"\x00": "\x00"}, "202")
    yield Case(path, {"k" * 2000: 1}, "422")


def edge_cases(kind: str) -> list[Case]:
    cases = [case for path, rule in rule_paths(KINDS[kind].rules) for case in cases_for(rule, path)]
    return cases + list(kept_field_cases())


def with_value(data: dict[str, Any], path: tuple, value: Any) -> dict[str, Any]:
    data = json.loads(json.dumps(data))
    node = data
    for part in path[:-1]:
        node = node.setdefault(part, {}) if isinstance(node, dict) else node[part]
    node[path[-1]] = value
    return data


def body(events: list[dict[str, Any]], value: Any) -> str:
    text = json.dumps({"events": events})
    return text.replace(f'"{PLACEHOLDER}"', value.text) if isinstance(value, Raw) else text


def edge_batch(kind: str, case: Case, ids: Iterator[str]) -> tuple[str, str]:
    """A batch carrying `case` in an event of `kind`, as JSON text, and the field a 422 would name: the
    kind's prerequisites, then a witness (written only with the batch), then the event."""
    value = PLACEHOLDER if isinstance(case.value, Raw) else case.value
    # An accepted value that must name an existing row (a task's id) names the one created before it.
    before = [edge_event(name, with_value(kind_data(name), case.path, value)
                         if case.expect == "202" and case.path[0] in kind_data(name) else kind_data(name), ids)
              for name in prerequisites(kind)]
    witness = edge_event("agent.heartbeat", {"id": f"witness-{next(ids)}"}, ids)
    sent = edge_event(kind, with_value(kind_data(kind), case.path, value), ids)
    return body([*before, witness, sent], case.value), f"events[{len(before) + 1}].{case.field}"


def edge_event(kind: str, data: dict[str, Any], ids: Iterator[str]) -> dict[str, Any]:
    return {"id": next(ids), "type": kind, "timestamp": "2026-11-24T10:00:00Z", "agent_id": "openclaw-main",
            "data": data}
