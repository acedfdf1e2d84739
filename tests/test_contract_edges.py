"""No event the contract lets through is ever a 5xx, and nothing accepted becomes unreadable.

The cases are made from the registry's own rules (`functions.events.kinds.KINDS`), so a kind added there is
covered here by itself: for each field its rules name, and for a field they do not (kept as sent), the
contract's edge values — the wrong type, empty text, text past a field's length, text past the cut, a
NUL character, a number past 64 bits or past a double, nesting past the depth limit. Each is answered 202
(stored, long text cut) or 422 naming the field, never with a half-written batch; afterwards every read
route still answers 200 over everything stored.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from falcon import testing

from deploy import health, mount, openapi
from functions.events.kinds import KINDS
from functions.events.limits import MAX_EVENT_CHARS, MAX_STRING_CHARS, cut_marker
from shared.config import Settings
from shared.store.feed import changes_since
from shared.store.models import Agent, AgentTask, Change, InboundEvent, Session
from tests.event_kinds import edge_batch, edge_cases
from tests.support import AGENT, API_KEY, DASHBOARD, DASHBOARD_TOKEN, event


@pytest.fixture
def client(database_url, db) -> testing.TestClient:
    """The whole mounted app, taking bodies as large as the default limit."""
    settings = Settings(database_url=database_url, api_key=API_KEY, dashboard_token=DASHBOARD_TOKEN,
                        temporal_address=None)
    return testing.TestClient(mount.create_app(settings))


JSON = {"Content-Type": "application/json"}


def counts() -> tuple[int, int]:
    return InboundEvent.select().count(), Change.select().count()


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_edge_value_of_every_kind_is_stored_or_refused_naming_its_field(kind, client):
    problems = []
    ids = (f"evt-{number}" for number in itertools.count())
    for case in edge_cases(kind):
        batch, named = edge_batch(kind, case, ids)
        rows = counts()
        response = client.simulate_post("/api/events", body=batch, headers={**AGENT, **JSON})
        at = f"{case.field} = {str(case.value)[:40]!r}"
        if response.status_code == 422:
            field = response.json["error"].get("field", "")
            within = case.expect == "422 within" and field.startswith(named)
            if not (field == named if case.expect == "422" else within):
                problems.append(f"{at}: 422 naming {field!r}, expected {case.expect} naming {named}")
            if counts() != rows:
                problems.append(f"{at}: refused, but {counts()} rows where there were {rows}")
        elif response.status_code == 202:
            if case.expect != "202":
                problems.append(f"{at}: accepted, expected 422 naming {named}")
            if KINDS[kind].stored and not stored_within_limits(json.loads(batch)["events"][-1]["id"]):
                problems.append(f"{at}: stored past the limits")
        else:
            problems.append(f"{at}: {response.status_code} {response.text[:200]}")
    assert not problems, "\n".join(problems)
    assert every_read_answers(client) == {}


def stored_within_limits(event_id: str) -> bool:
    """The raw event as stored: every string cut to the limit (with its marker), all of them together
    near the event's share."""
    data = InboundEvent.get_by_id(event_id).data
    strings = list(strings_in(data))
    marker = 80
    return all(len(s) <= MAX_STRING_CHARS + marker for s in strings) and \
        sum(len(s) for s in strings) <= MAX_EVENT_CHARS + marker * len(strings) + 2 * MAX_STRING_CHARS and \
        "\x00" not in json.dumps(data, ensure_ascii=False)


def strings_in(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


def read_paths() -> list[tuple[str, dict[str, str]]]:
    """Every read route of the mounted app over what is stored, with the credential it asks for: list
    routes, and item routes for every session, agent and task there is. Streams, sign-in and Linear (not
    set up here) are left out."""
    document = openapi.compose(openapi.part_of(module) for module in (health, openapi, *mount.FUNCTIONS))
    ids = {"session_id": [s.id for s in Session.select()], "agent_id": [a.id for a in Agent.select()],
           "task_id": [t.id for t in AgentTask.select()]}
    paths = []
    for template, item in document["paths"].items():
        if "get" not in item or not template.startswith("/api/") or re.search(
                r"/api/(stream|auth|linear|projects|openapi)", template):
            continue
        schemes = {name for requirement in item["get"].get("security", []) for name in requirement}
        headers = DASHBOARD if "dashboardToken" in schemes or not schemes else AGENT
        names = re.findall(r"\{(\w+)\}", template)
        if not names:
            paths.append((template, headers))
        elif len(names) == 1 and names[0] in ids:
            paths += [(template.replace(f"{{{names[0]}}}", quote(value)), headers) for value in ids[names[0]]]
    return paths


def quote(value: str) -> str:
    from urllib.parse import quote as url_quote
    return url_quote(value, safe="")


QUERIES = {"/api/search": "q=k1"}


def every_read_answers(client) -> dict[str, int]:
    """{path: status} of each read that does not answer 200, the change feed (what a stream sends) included."""
    failing = {}
    for path, headers in read_paths():
        response = client.simulate_get(path, query_string=QUERIES.get(path, "limit=500"), headers=headers)
        if response.status_code != 200:
            failing[path] = response.status_code
    json.dumps(changes_since(0, limit=100_000))
    return failing


def test_a_two_megabyte_tool_output_is_stored_and_sent_on_cut_with_its_length_said(client):
    output = "line of output\n" * 140_000  # 2.1 MB
    response = client.simulate_post("/api/events", headers=AGENT, json={"events": [
        event("tool.execute.after", {"tool": "bash", "sessionID": "ses_1", "callID": "call_1", "title": "cat big.log",
                                     "output": output}, id="evt-big")]})
    assert response.status_code == 202, response.text
    cut = output[:MAX_STRING_CHARS] + cut_marker(len(output))
    assert InboundEvent.get_by_id("evt-big").data["output"] == cut
    message = client.simulate_get("/api/msgs", query_string="session_id=ses_1", headers=DASHBOARD).json["messages"][0]
    assert message["parts"][0]["output"] == cut
    [change] = [c for c in changes_since(0) if c["topic"] == "message"]
    assert change["payload"]["parts"][0]["output"] == cut
    assert f"[cut by the dashboard: {len(output)} characters in all]" in cut


@pytest.mark.parametrize("name", ["id", "type", "agent_id"])
@pytest.mark.parametrize("value", ["a\x00b", "x" * 129, "", 7, ["x"]])
def test_an_envelope_field_that_could_not_be_kept_exactly_is_refused_naming_it(client, name, value):
    sent = event("agent.heartbeat", {"id": "a1"}) | {name: value}
    response = client.simulate_post("/api/events", headers=AGENT, json={"events": [event("agent.heartbeat", {
        "id": "a0"}), sent]})
    assert (response.status_code, response.json["error"]["field"]) == (422, f"events[1].{name}")
    assert counts() == (0, 0)


def test_ids_of_one_kind_that_collide_with_anothers_are_stored_or_refused_and_stay_readable(client):
    def send(*events):
        return client.simulate_post("/api/events", headers=AGENT, json={"events": list(events)})

    tool = event("tool.execute.before", {"tool": "bash", "sessionID": "ses_1", "callID": "c1", "args": {}})
    assert send(tool).status_code == 202
    # A message whose id is the tool call's row: refused, naming it; the call is untouched.
    response = send(event("message.updated", {"info": {"id": "tool:c1", "sessionID": "ses_1", "role": "user"}}))
    assert (response.status_code, response.json["error"]["field"]) == (422, "events[0].data.info.id")
    response = send(event("message.part.updated", {"part": {"id": "p", "messageID": "linear:comment:1",
                                                            "sessionID": "ses_1", "type": "text", "text": "x"}}))
    assert (response.status_code, response.json["error"]["field"]) == (422, "events[0].data.part.messageID")
    # Sessions that are each other's parent, or their own; an agent already named like a sub-agent; a todo
    # whose own id is another's derived one; a message and a part named like the session.
    assert send(event("session.created", {"info": {"id": "ses_2", "parentID": "ses_3"}}),
                event("session.created", {"info": {"id": "ses_3", "parentID": "ses_2"}}),
                event("session.created", {"info": {"id": "ses_4", "parentID": "ses_4"}}),
                event("agent.registered", {"id": "sub-ses_5", "name": "x", "type": "primary"}),
                event("session.created", {"info": {"id": "ses_5", "parentID": "ses_2"}}),
                event("todo.updated", {"sessionID": "ses_1", "todos": [
                    {"content": "Fix it", "status": "pending"},
                    {"id": "#" + hashlib.sha256(b"Fix it").hexdigest()[:16], "content": "Fix", "status": "pending"},
                    {"id": "1", "content": "a", "status": "pending"},
                    {"id": "1", "content": "b", "status": "pending"}]}),
                event("message.part.updated", {"part": {"id": "ses_1", "messageID": "ses_1", "sessionID": "ses_1",
                                                        "type": "text", "text": "x"}}),
                event("session.status", {"sessionID": "ses_3", "status": {"type": "busy"}}),
                ).status_code == 202
    assert every_read_answers(client) == {}
