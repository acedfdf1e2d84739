"""Field rules: what a kind's `data` must (or may) carry, checked at ingest and described in OpenAPI.

A kind's rules are the one statement of its fields: `check_rules` enforces them (a 422 naming the first
field at fault) and `data_schema` turns the same rules into the kind's JSON schema, so the document
says exactly what ingest accepts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import jsonschema_rs

from shared.web.errors import invalid
from shared.web.openapi import Schema

NUMBER = (int, float)
# Text that keys a row (an id, a session's id) is short: PostgreSQL's indexes refuse an entry of more
# than ~2 700 bytes, and 128 characters is 512 bytes at most. A file path keys a row with its session.
MAX_ID_LENGTH = 128
MAX_PATH_LENGTH = 512
JSON_TYPES = {str: "string", dict: "object", list: "array"}


@dataclass(frozen=True)
class Rule:
    """One field: a dotted path, its JSON type, allowed values, for a list the rules of each item, and for
    text that keys a row (an id, a path) its longest length and the prefixes that belong to the dashboard."""

    path: str
    kind: type | tuple[type, ...] = str
    required: bool = True
    choices: frozenset[str] | None = None
    items: tuple[Rule, ...] | None = None  # a list of objects, each checked against these rules
    max_length: int | None = None
    reserved: tuple[str, ...] = ()

    # The path's keys, split once: every event of a batch is checked against the same rules.
    steps: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(self.path.split(".")))

    def schema(self) -> Schema:
        kinds = self.kind if isinstance(self.kind, tuple) else (self.kind,)
        schema: Schema = {"type": "number"} if kinds == NUMBER else {"type": JSON_TYPES[kinds[0]]}
        if self.kind is dict:
            schema |= {"properties": {}, "required": []}
        if self.items is not None:
            schema["items"] = data_schema(self.items)
        if self.choices is not None:
            schema["enum"] = sorted(self.choices)
        elif self.kind is str and self.required:
            schema["minLength"] = 1
        if self.max_length is not None:
            schema["maxLength"] = self.max_length
        if self.reserved:
            schema["not"] = {"pattern": "^(" + "|".join(self.reserved) + ")"}
        return schema if self.required else {**schema, "type": [schema["type"], "null"]}


def need(path: str, kind: type | tuple[type, ...] = str, choices: frozenset[str] | None = None,
         items: tuple[Rule, ...] | None = None, max_length: int | None = None, reserved: tuple[str, ...] = ()) -> Rule:
    return Rule(path, kind, True, choices, items, max_length, reserved)


def may(path: str, kind: type | tuple[type, ...] = str, choices: frozenset[str] | None = None,
        items: tuple[Rule, ...] | None = None, max_length: int | None = None, reserved: tuple[str, ...] = ()) -> Rule:
    return Rule(path, kind, False, choices, items, max_length, reserved)


def need_id(path: str, reserved: tuple[str, ...] = ()) -> Rule:
    return need(path, max_length=MAX_ID_LENGTH, reserved=reserved)


def may_id(path: str) -> Rule:
    return may(path, max_length=MAX_ID_LENGTH)


def check_rules(data: dict[str, Any], rules: Iterable[Rule], prefix: str) -> None:
    """Raise a 422 naming the first field (`events[3].data.info.id`) that breaks a rule."""
    for rule in rules:
        value: Any = data
        for step in rule.steps:
            value = value.get(step) if isinstance(value, dict) else None
        if value is None:
            if rule.required:
                where = prefix + rule.path
                raise invalid(where, f"{where} is required for this event type.")
            continue
        where = prefix + rule.path
        if not isinstance(value, rule.kind) or (isinstance(value, bool) and rule.kind is not bool):
            raise invalid(where, f"{where} must be {_json_type_name(rule.kind)}.")
        if rule.kind is str and rule.required and not value:
            raise invalid(where, f"{where} must not be empty.")
        if rule.max_length is not None and len(value) > rule.max_length:
            raise invalid(where, f"{where} must be at most {rule.max_length} characters.")
        if rule.reserved and value.startswith(rule.reserved):
            raise invalid(where, f"{where} may not begin with {' or '.join(rule.reserved)}: the dashboard's own.")
        if rule.choices is not None and value not in rule.choices:
            raise invalid(where, f"{where} must be one of {', '.join(sorted(rule.choices))}; got {value!r}.")
        if rule.items is not None:
            for position, item in enumerate(value):
                if not isinstance(item, dict):
                    raise invalid(f"{where}[{position}]", f"Each item of {where} must be a JSON object.")
                check_rules(item, rule.items, f"{where}[{position}].")


class Fields:
    """Rules checked together, with a compiled validator of them (jsonschema-rs) that answers the common
    case, valid, in about a microsecond; `check` explains a refusal with `check_rules`' 422. The
    validator's schema (`strict_schema`) is at least as strict as the rules, never laxer: whatever it
    accepts, they accept, and what it refuses that they accept (a value it cannot even read, like a lone
    surrogate) is only checked the slow way."""

    def __init__(self, rules: Iterable[Rule]):
        self.rules = tuple(rules)
        self._validator = jsonschema_rs.validator_for(strict_schema(self.rules))

    def check(self, data: dict[str, Any], prefix: str) -> None:
        try:
            if self._validator.is_valid(data):
                return
        except (ValueError, TypeError, OverflowError):  # a value JSON Schema has no word for
            pass
        check_rules(data, self.rules, prefix)


def strict_schema(rules: Iterable[Rule]) -> Schema:
    """A JSON schema that accepts only what `check_rules` accepts (and may refuse more): every object on a
    rule's path is an object, every one on a required rule's path is required."""
    root: Schema = {"type": "object", "properties": {}, "required": []}
    for rule in rules:
        node = root
        for step in rule.steps[:-1]:
            if rule.required and step not in node["required"]:
                node["required"].append(step)
            node = node["properties"].setdefault(step, {})
            node.setdefault("type", "object")
            node.setdefault("properties", {})
            node.setdefault("required", [])
        _constrain(node, rule.steps[-1], rule)
    return root


def _constrain(node: Schema, name: str, rule: Rule) -> None:
    """Add `rule`'s constraints on `name` to the object schema `node` (several rules may name it: all hold)."""
    field = node["properties"].setdefault(name, {})
    checks = field.setdefault("allOf", [])
    kinds = rule.kind if isinstance(rule.kind, tuple) else (rule.kind,)
    schema: Schema = {"type": "number"} if kinds == NUMBER else {"type": JSON_TYPES[kinds[0]]}
    if rule.kind is str and rule.required:
        schema["minLength"] = 1
    if rule.max_length is not None:
        schema["maxLength"] = rule.max_length
    if rule.reserved:
        schema["not"] = {"pattern": "^(" + "|".join(re.escape(prefix) for prefix in rule.reserved) + ")"}
    if rule.choices is not None:
        schema["enum"] = sorted(rule.choices)
    if rule.items is not None:
        schema["items"] = strict_schema(rule.items)
    if rule.required:
        if name not in node["required"]:
            node["required"].append(name)
    else:
        schema = {"anyOf": [{"type": "null"}, schema]}
    checks.append(schema)


def data_schema(rules: Iterable[Rule]) -> Schema:
    """The nested object the rules' dotted paths describe; other properties are kept as sent."""
    root: Schema = {"type": "object", "properties": {}, "required": []}
    for rule in rules:
        *parents, name = rule.path.split(".")
        node = root
        for parent in parents:
            node = node["properties"].setdefault(parent, {"type": "object", "properties": {}, "required": []})
        schema = rule.schema()
        if (earlier := node["properties"].get(name)) and "properties" in earlier and "properties" in schema:
            schema["properties"] = {**earlier["properties"], **schema["properties"]}  # rules on its fields
        node["properties"][name] = schema
        if rule.required:
            node["required"].append(name)
    return root


def _json_type_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", dict: "an object", list: "a list", int: "a number", float: "a number"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(dict.fromkeys(names.get(k, k.__name__) for k in kinds))
