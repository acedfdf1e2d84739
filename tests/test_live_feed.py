"""The page's stream client (functions/dashboard/page/assets/live.js), run by `node` against stand-in
answers: it honours Retry-After when the server is busy, resumes by id, and reads the wire format."""

from __future__ import annotations

import json
import subprocess

from tests.processes import REPO

LIVE_JS = (REPO / "functions/dashboard/page/assets/live.js").as_uri()

# Drives a LiveFeed through a list of answers; records what it asked, when it meant to come back, and
# what it reported. setTimeout is the feed's own (injected), so nothing here waits for real time.
DRIVER = """
import { LiveFeed, EventStreamParser } from %(live)s;
const answers = %(answers)s;
const record = { requests: [], pauses: [], changes: [], resets: 0, closed: 0, states: [] };
let pending = [];
const feed = new LiveFeed({
  onChange: (change) => record.changes.push(change),
  onReset: () => record.resets++,
  onOpen: () => {},
  onState: (state) => record.states.push(state),
  onClosed: async () => { record.closed++; return true; },
  fetch: async (url, options) => {
    record.requests.push({ url, lastEventId: options.headers["Last-Event-ID"] ?? null });
    const answer = answers.shift();
    if (!answer) { feed.stop(); return new Response("", { status: 599 }); }
    return new Response(answer.body, { status: answer.status, headers: answer.headers });
  },
  setTimeout: (action, ms) => { record.pauses.push(ms); pending.push(action); return 0; },
  random: () => 0.5,
});
feed.start();
for (let step = 0; step < 50 && !feed.stopped; step++) {
  await new Promise((resolve) => globalThis.setTimeout(resolve, 5));
  const due = pending; pending = [];
  for (const action of due) action();
}
const frames = [];
const parser = new EventStreamParser((frame) => frames.push(frame));
const pieces = ["retry: 10\\r", "\\n\\r\\nid: 7\\r\\ndata: a\\r\\ndata: b\\r", "\\n\\r", "\\n"];
for (const piece of pieces) parser.push(piece);
record.parsed = frames;
console.log(JSON.stringify(record));
"""

STREAM = {"Content-Type": "text/event-stream; charset=utf-8"}


def drive(node: str, answers: list[dict]) -> dict:
    script = DRIVER % {"live": json.dumps(LIVE_JS), "answers": json.dumps(answers)}
    done = subprocess.run([node, "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def busy(retry_after: str) -> dict:
    body = json.dumps({"error": {"code": "too_busy", "message": "busy"}})
    return {"status": 503, "headers": {"Content-Type": "application/json", "Retry-After": retry_after}, "body": body}


def test_a_busy_server_is_asked_again_no_sooner_than_its_retry_after(node):
    record = drive(node, [busy("7"), busy("30"), {"status": 200, "headers": STREAM, "body": "retry: 2000\n\n"}])
    assert record["pauses"][:2] == [7000 * 1.125, 30000 * 1.125]  # Retry-After, plus a quarter at most
    assert record["closed"] == 0  # busy is not signed out
    assert record["states"][:3] == ["connecting", "reconnecting", "reconnecting"]
    assert "live" in record["states"]


def test_a_stream_that_ends_reconnects_after_its_retry_hint_resuming_from_the_last_id(node):
    change = {"id": 5, "topic": "todo", "action": "created", "payload": {}}
    body = f"retry: 1500\n\n: ping\n\nid: 5\nevent: todo\ndata: {json.dumps(change)}\n\n"
    record = drive(node, [{"status": 200, "headers": STREAM, "body": body},
                          {"status": 200, "headers": STREAM, "body": "event: reset\ndata: {}\n\n"}])
    assert record["changes"] == [change]
    assert record["pauses"][0] == 1500
    assert [request["lastEventId"] for request in record["requests"][:2]] == [None, "5"]
    assert record["resets"] == 1


def test_a_refused_stream_asks_whether_the_session_ended(node):
    unauthorized = {"status": 401, "headers": {"Content-Type": "application/json"}, "body": "{}"}
    record = drive(node, [unauthorized, unauthorized])
    assert record["closed"] == 2
    assert record["pauses"][:2] == [1000, 2000]  # a growing pause between tries


def test_the_wire_format_is_read_as_the_spec_says_whatever_the_chunks(node):
    record = drive(node, [])
    assert record["parsed"] == [{"retry": 10}, {"id": "7", "data": "a\nb"}]
