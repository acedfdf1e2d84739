"""A session's transcript read both ways from any message: GET /api/msgs?session_id=&from_id=&order=."""

from __future__ import annotations

from tests.support import AGENT, DASHBOARD, assert_canonical_error, event


def say(session: str, n: int, second: int) -> dict:
    return event("message.part.updated", {"part": {"id": f"part-{session}-{n}", "messageID": f"msg-{session}-{n}",
                                                   "sessionID": session, "type": "text", "text": f"line {n}"}},
                 timestamp=second * 1000)


def transcript(client, session="s", n=9):
    """n messages in `session`, some sharing a second (the id breaks the tie), and one in another session
    between them; their row ids in the order they were said."""
    events = [say(session, i, 1_700_000_000 + i // 2) for i in range(n)]
    events.insert(4, say("other", 0, 1_700_000_001))
    assert client.simulate_post("/api/events", json={"events": events}, headers=AGENT).status_code == 202
    rows = get(client, session_id=session, order="oldest_first", limit=500).json["messages"]
    assert [row["content"] for row in rows] == [f"line {i}" for i in range(n)]
    return [row["id"] for row in rows]


def get(client, **params):
    return client.simulate_get("/api/msgs", params=params, headers=DASHBOARD)


def walk(client, **params) -> list[int]:
    """Every message id, page after page, following next_cursor."""
    seen, cursor = [], None
    while True:
        body = get(client, **params, **({"cursor": cursor} if cursor else {})).json
        seen += [row["id"] for row in body["messages"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return seen


def test_a_transcript_pages_oldest_first_and_newest_first_without_gaps_or_repeats(events_client):
    ids = transcript(events_client)
    assert walk(events_client, session_id="s", order="oldest_first", limit=2) == ids
    assert walk(events_client, session_id="s", limit=2) == ids[::-1]  # newest first is the default
    assert walk(events_client, session_id="s", order="newest_first", limit=4) == ids[::-1]


def test_from_a_message_each_way_reaches_the_ends_of_the_session(events_client):
    ids = transcript(events_client)
    middle = ids[4]
    older = walk(events_client, session_id="s", from_id=middle, limit=2)
    newer = walk(events_client, session_id="s", from_id=middle, order="oldest_first", limit=2)
    assert older == ids[4::-1]  # the message itself, then back to the first
    assert newer == ids[4:]  # the message itself, then on to the last
    first_page = get(events_client, session_id="s", from_id=middle, limit=1).json
    assert [row["content"] for row in first_page["messages"]] == ["line 4"]


def test_from_id_must_name_a_message_of_the_session(events_client):
    ids = transcript(events_client)
    other = get(events_client, session_id="other").json["messages"][0]["id"]
    for bad in (str(other), "999999", "0", "-1", "abc", "1.5", str(2**70)):
        assert_canonical_error(get(events_client, session_id="s", from_id=bad), 400, "invalid_parameter", "from_id")
    # Without a session, any message is a starting point.
    assert [row["id"] for row in get(events_client, from_id=ids[0], order="oldest_first", limit=1)
            .json["messages"]] == [ids[0]]


def test_order_is_one_of_the_two_ways(events_client):
    assert_canonical_error(get(events_client, order="sideways"), 400, "invalid_parameter", "order")
