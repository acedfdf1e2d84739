"""Events made from the registry's own rules (`functions.events.kinds.KINDS`), so a test written over
them covers a kind the day it is added: the smallest valid `data` of each kind, and the field paths
its rules name."""

from __future__ import annotations

from typing import Any

from functions.events.kinds import KINDS
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
