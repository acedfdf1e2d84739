/**
 * The client's delivery against a dashboard stand-in in the same process (its `fetch` option): the
 * order coalescing keeps, splitting a batch the dashboard fails on, the dead-letter file, outages that
 * must not dead-letter anything, and the size cut. `node --test hooks/test/*.test.mjs`; the same
 * behaviour against the real dashboard is tested by tests/test_hook_client.py.
 */

import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";

import { cutToSize, DashboardClient, DEAD_LETTER_NAME, sessionOf, verdictOf } from "../dashboard-client.mjs";

const FAST = { batchMs: 5, retryBaseMs: 2, retryMaxMs: 20, deadLetterTries: 3 };

/**
 * A dashboard in a function: every batch it is posted is kept in `posts`, the events it took in
 * `stored` (in the order it took them). `answer(events, n)` may return {status, headers} to answer
 * instead of taking the batch (n counts the posts), or "refuse" to throw as a refused connection does.
 */
function standIn(answer = () => null) {
  const dashboard = { posts: [], stored: [] };
  dashboard.fetch = async (url, init) => {
    const { events } = JSON.parse(init.body);
    dashboard.posts.push(events.map((event) => event.id));
    const planned = answer(events, dashboard.posts.length);
    if (planned === "refuse") throw new TypeError("fetch failed", { cause: { code: "ECONNREFUSED" } });
    if (planned) {
      const body = { error: { code: planned.code ?? "internal_error", message: planned.message ?? "it broke",
        ...(planned.field ? { field: planned.field } : {}) } };
      return new Response(JSON.stringify(body), { status: planned.status, headers: planned.headers ?? {} });
    }
    dashboard.stored.push(...events);
    return new Response(JSON.stringify({ accepted: events.length, duplicates: 0 }), { status: 202 });
  };
  return dashboard;
}

function client(dashboard, options = {}) {
  const spoolDir = join(mkdtempSync(join(tmpdir(), "hook-")), "spool");
  const logged = [];
  const made = new DashboardClient({ url: "http://dashboard.invalid", apiKey: "k", spoolDir, fetch: dashboard.fetch,
    log: (line) => logged.push(line), ...FAST, ...options });
  made.logged = logged;
  return made;
}

const status = (session, type) => ["session.status", { sessionID: session, status: { type } }];
const error = (session) => ["session.error", { sessionID: session, error: { name: "APIError", data: {} } }];
const part = (session, id, text) => ["message.part.updated", { part: { id, messageID: "m", sessionID: session,
  type: "text", text } }];
const key = (type, data) => `${type}:${data.sessionID ?? data.part?.id}`;

/** Send [type, data] pairs, each with the plugin's kind of coalescing key; the ids in order. */
function sendAll(hook, events) {
  return events.map(([type, data]) => hook.send(type, data, { coalesceKey: key(type, data) }));
}

const storedAs = (dashboard) => dashboard.stored.map((event) => [event.type, event.data]);
const deadLetters = (hook) => {
  const path = join(hook.config.spoolDir, DEAD_LETTER_NAME);
  return existsSync(path) ? readFileSync(path, "utf8").trim().split("\n").map((line) => JSON.parse(line)) : [];
};

async function waitFor(condition, what, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

// Order and coalescing ---------------------------------------------------------------------------------

test("a newer status does not jump ahead of an error sent between them: the session ends as it did", async () => {
  const dashboard = standIn();
  const hook = client(dashboard, { batchMs: 60_000 });
  sendAll(hook, [status("s", "busy"), error("s"), status("s", "idle")]);
  assert.equal(await hook.close(5_000), true);
  assert.deepEqual(storedAs(dashboard), [status("s", "busy"), error("s"), status("s", "idle")]);
});

test("consecutive snapshots of the same thing merge into the latest, in the first one's place", async () => {
  const dashboard = standIn();
  const hook = client(dashboard, { batchMs: 60_000 });
  sendAll(hook, [status("s", "busy"), part("s", "p1", "Look"), part("s", "p1", "Looking"),
    part("s", "p1", "Looking at it"), status("s", "idle"), status("s", "busy")]);
  await hook.close(5_000);
  assert.deepEqual(storedAs(dashboard), [status("s", "busy"), part("s", "p1", "Looking at it"), status("s", "busy")]);
});

test("another session's events in between do not stop a merge; the session's order is kept", async () => {
  const dashboard = standIn();
  const hook = client(dashboard, { batchMs: 60_000 });
  sendAll(hook, [part("a", "pa", "1"), status("b", "busy"), part("a", "pa", "12"), error("b"),
    part("a", "pa", "123"), status("b", "idle")]);
  await hook.close(5_000);
  assert.deepEqual(storedAs(dashboard), [part("a", "pa", "123"), status("b", "busy"), error("b"), status("b", "idle")]);
});

test("another thing of the same session in between stops a merge", async () => {
  const dashboard = standIn();
  const hook = client(dashboard, { batchMs: 60_000 });
  sendAll(hook, [part("s", "p1", "a"), part("s", "p2", "b"), part("s", "p1", "ab")]);
  await hook.close(5_000);
  assert.deepEqual(storedAs(dashboard), [part("s", "p1", "a"), part("s", "p2", "b"), part("s", "p1", "ab")]);
});

test("an event of no session keeps its place relative to every session", async () => {
  const dashboard = standIn();
  const hook = client(dashboard, { batchMs: 60_000 });
  const edited = ["file.edited", { file: "/w/a.py" }];
  sendAll(hook, [status("s", "busy")]);
  hook.send(...edited);
  sendAll(hook, [status("s", "idle")]);
  await hook.close(5_000);
  assert.deepEqual(storedAs(dashboard), [status("s", "busy"), edited, status("s", "idle")]);
});

test("a snapshot already on its way is not merged into: the newer one follows it", async () => {
  let release;
  const held = new Promise((resolve) => { release = resolve; });
  const dashboard = standIn();
  const answer = dashboard.fetch;
  dashboard.fetch = async (url, init) => {
    if (dashboard.posts.length === 0) await held;
    return answer(url, init);
  };
  const hook = client(dashboard);
  sendAll(hook, [status("s", "busy")]);
  await waitFor(() => hook.inflight !== null, "the first batch to be under way");
  sendAll(hook, [status("s", "idle")]);
  release();
  await hook.close(5_000);
  assert.deepEqual(storedAs(dashboard), [status("s", "busy"), status("s", "idle")]);
});

// Batches ---------------------------------------------------------------------------------------------

/** A stand-in that also keeps each request body's size in bytes, in `sizes`. */
function measuringStandIn() {
  const dashboard = standIn();
  const take = dashboard.fetch;
  dashboard.sizes = [];
  dashboard.fetch = async (url, init) => {
    dashboard.sizes.push(Buffer.byteLength(init.body));
    return take(url, init);
  };
  return dashboard;
}

test("with its settings, the client sends what is waiting in requests of up to 1 000 events, in order", async () => {
  const dashboard = standIn();
  const hook = client(dashboard, { batchMs: 60_000 });
  const ids = [];
  for (let n = 0; n < 2_500; n++) ids.push(hook.send(...error(`s${n % 7}`)));
  assert.equal(await hook.close(20_000), true);
  assert.deepEqual(dashboard.posts.map((post) => post.length), [1_000, 1_000, 500]);
  assert.deepEqual(dashboard.stored.map((event) => event.id), ids);
});

test("a request holds at most batchMaxBytes, as many events as fit; a larger event goes alone", async () => {
  const dashboard = measuringStandIn();
  const limit = 8 * 1024;
  const hook = client(dashboard, { batchMs: 60_000, batchMaxBytes: limit });
  const ids = [];
  for (let n = 0; n < 40; n++) {
    ids.push(hook.send(...part(n % 2 ? "a" : "b", `p${n}`, "x".repeat(n === 20 ? 12_000 : 900))));
  }
  assert.equal(await hook.close(20_000), true);

  assert.deepEqual(dashboard.stored.map((event) => event.id), ids);
  const eventBytes = (id) => Buffer.byteLength(JSON.stringify(dashboard.stored.find((event) => event.id === id)));
  for (const [n, post] of dashboard.posts.entries()) {
    if (post.includes(ids[20])) {
      assert.deepEqual(post, [ids[20]], "the event larger than the limit goes alone");
      continue;
    }
    assert.ok(dashboard.sizes[n] <= limit, `request ${n}: ${dashboard.sizes[n]} bytes`);
    const next = ids[ids.indexOf(post.at(-1)) + 1];
    if (next && next !== ids[20]) {
      assert.ok(dashboard.sizes[n] + eventBytes(next) + 1 > limit, `request ${n} had room for the next event`);
    }
  }
});

test("a batch from the spool is bounded by bytes the same way", async () => {
  let down = true;
  const dashboard = measuringStandIn();
  const take = dashboard.fetch;
  dashboard.fetch = async (url, init) => {
    if (down) throw new TypeError("fetch failed", { cause: { code: "ECONNREFUSED" } });
    return take(url, init);
  };
  const limit = 4 * 1024;
  const hook = client(dashboard, { batchMaxBytes: limit });
  const ids = [];
  for (let n = 0; n < 30; n++) ids.push(hook.send(...part("s", `p${n}`, "y".repeat(500))));
  await waitFor(() => hook.spool.pending() && !hook.queue.length, "the events to be spooled while the dashboard is down");
  down = false;
  assert.equal(await hook.close(20_000), true);

  assert.deepEqual(dashboard.stored.map((event) => event.id), ids);
  assert.ok(dashboard.posts.length >= Math.ceil((30 * 600) / limit), `${dashboard.posts.length} requests`);
  assert.ok(dashboard.sizes.every((bytes) => bytes <= limit), `${dashboard.sizes}`);
});

test("the session an event belongs to, in opencode's v1 and v2 shapes", () => {
  assert.equal(sessionOf("session.status", { sessionID: "s1" }), "s1");
  assert.equal(sessionOf("message.updated", { info: { id: "m1", sessionID: "s1" } }), "s1");
  assert.equal(sessionOf("message.part.updated", { part: { id: "p", sessionID: "s1" } }), "s1");
  assert.equal(sessionOf("session.updated", { info: { id: "s1" } }), "s1");
  assert.equal(sessionOf("session.updated", { sessionID: "s1", info: { id: "s1" } }), "s1");
  assert.equal(sessionOf("file.edited", { file: "a" }), undefined);
  assert.equal(sessionOf("task.updated", { id: "t1", status: "blocked" }), undefined);
});

// What an answer means --------------------------------------------------------------------------------

test("down or busy is told apart from failing on the events", () => {
  assert.equal(verdictOf({ status: 202 }), "accepted");
  assert.equal(verdictOf({ status: 0, error: "ECONNREFUSED" }), "busy");
  for (const busy of [408, 429, 502, 503, 504]) assert.equal(verdictOf({ status: busy, retryAfterMs: null }), "busy");
  assert.equal(verdictOf({ status: 503, retryAfterMs: 1000 }), "busy"); // a locked database
  assert.equal(verdictOf({ status: 500, retryAfterMs: 0 }), "busy"); // Retry-After, even 0: come back later
  assert.equal(verdictOf({ status: 500, retryAfterMs: null }), "broken");
  assert.equal(verdictOf({ status: 501, retryAfterMs: null }), "broken");
  assert.equal(verdictOf({ status: 422, retryAfterMs: null }), "refused");
});

// Splitting, dead letters, outages -----------------------------------------------------------------------

const failsOn = (badIds) => (events) => (events.some((event) => badIds.has(event.id)) ? { status: 500 } : null);

test("a batch failing on one event is split to find it; it is dead-lettered, the rest flows in order", async () => {
  const bad = new Set();
  const dashboard = standIn(failsOn(bad));
  const hook = client(dashboard, { batchMs: 60_000 });
  const ids = [];
  for (let n = 0; n < 20; n++) {
    const id = hook.send(...status(n % 2 ? "odd" : "even", `step ${n}`));
    ids.push(id);
    if (n === 7) bad.add(id);
  }
  assert.equal(await hook.close(20_000), true);

  const [poison] = bad;
  assert.deepEqual(dashboard.stored.map((event) => event.id), ids.filter((id) => id !== poison));
  const letters = deadLetters(hook);
  assert.equal(letters.length, 1);
  assert.equal(letters[0].event.id, poison);
  assert.equal(letters[0].error.status, 500);
  assert.equal(letters[0].error.tries, FAST.deadLetterTries);
  assert.equal(letters[0].error.message, "it broke");
  assert.ok(!Number.isNaN(Date.parse(letters[0].at)));
  assert.equal(hook.logged.filter((line) => line.includes(poison)).length, 1, hook.logged.join("\n"));
  assert.equal(hook.stats.deadLettered, 1);
  const alone = dashboard.posts.filter((post) => post.length === 1 && post[0] === poison).length;
  assert.equal(alone, FAST.deadLetterTries, "tried alone a bounded number of times");
  assert.ok(dashboard.posts.length < 20, `found by halving, not one by one: ${dashboard.posts.length} posts`);
});

test("an event failing a few times and then taken is delivered in its place; nothing is dead-lettered", async () => {
  let failuresLeft = 4;
  const flaky = new Set();
  const dashboard = standIn((events) => {
    if (!events.some((event) => flaky.has(event.id)) || failuresLeft === 0) return null;
    failuresLeft -= 1;
    return { status: 500 };
  });
  const hook = client(dashboard, { batchMs: 60_000 });
  const ids = [];
  for (let n = 0; n < 16; n++) ids.push(hook.send(...error(`s${n}`)));
  flaky.add(ids[3]);
  assert.equal(await hook.close(20_000), true);

  assert.deepEqual(dashboard.stored.map((event) => event.id), ids);
  assert.deepEqual(deadLetters(hook), []);
  assert.ok(dashboard.posts.length <= 10, `once it passed, the rest went in growing batches: ${dashboard.posts}`);
});

test("two failing events in a row are both dead-lettered, and the events after them still arrive", async () => {
  const bad = new Set();
  const dashboard = standIn(failsOn(bad));
  const hook = client(dashboard, { batchMs: 60_000 });
  const ids = [];
  for (let n = 0; n < 8; n++) ids.push(hook.send(...error(`s${n}`)));
  bad.add(ids[3]).add(ids[4]);
  assert.equal(await hook.close(20_000), true);

  assert.deepEqual(dashboard.stored.map((event) => event.id), ids.filter((id) => !bad.has(id)));
  // The second is set aside first: the events after it are what shows that neither is the dashboard's fault.
  assert.deepEqual(deadLetters(hook).map((line) => line.event.id).sort(), [ids[3], ids[4]].sort());
});

test("if the process exits while an event is being judged, only the events not settled are spooled", async () => {
  const bad = new Set();
  const dashboard = standIn(failsOn(bad));
  const hook = client(dashboard, { batchMs: 60_000, retryBaseMs: 60_000, retryMaxMs: 60_000 });
  const ids = [];
  for (let n = 0; n < 8; n++) ids.push(hook.send(...error(`s${n}`)));
  bad.add(ids[5]);
  hook.kick();
  await waitFor(() => dashboard.posts.some((post) => post.length === 1 && post[0] === ids[5]), "the event tried alone");

  hook.spoolEverythingInMemory(); // what process.on("exit") does
  assert.deepEqual(dashboard.stored.map((event) => event.id), ids.slice(0, 5));
  assert.deepEqual(hook.spool.head(100).events.map((event) => event.id), ids.slice(5));
  hook.spool.release();
});

test("a failing event with nothing after it waits for one: it is set aside only once another is accepted", async () => {
  const bad = new Set();
  const dashboard = standIn(failsOn(bad));
  const hook = client(dashboard);
  bad.add(hook.send(...status("s", "busy")));
  await waitFor(() => dashboard.posts.length >= FAST.deadLetterTries + 2, "the event to be tried past its tries");
  assert.deepEqual(deadLetters(hook), [], "no other event has been accepted: it may be the dashboard's fault");

  const later = hook.send(...status("s", "idle"));
  assert.equal(await hook.close(20_000), true);
  assert.deepEqual(dashboard.stored.map((event) => event.id), [later]);
  assert.deepEqual(deadLetters(hook).map((line) => line.event.id), [...bad]);
});

test("a dashboard failing on every event for a while dead-letters nothing: all arrive in order after", async () => {
  let broken = true;
  const dashboard = standIn(() => (broken ? { status: 500 } : null));
  const hook = client(dashboard, { batchMs: 60_000 });
  const ids = [];
  for (let n = 0; n < 12; n++) ids.push(hook.send(...status(`s${n % 3}`, `step ${n}`)));
  hook.kick();
  await waitFor(() => dashboard.posts.length >= 6 * FAST.deadLetterTries, "many failed posts");
  broken = false;
  assert.equal(await hook.close(20_000), true);

  assert.deepEqual(dashboard.stored.map((event) => event.id), ids);
  assert.deepEqual(deadLetters(hook), []);
  assert.equal(hook.stats.deadLettered, 0);
});

test("503 with Retry-After, refused connections: waited out whole, never split, never dead-lettered", async () => {
  const outage = [{ status: 503, headers: { "Retry-After": "0" }, code: "database_unavailable" }, "refuse",
    { status: 502 }, { status: 500, headers: { "Retry-After": "0" } }, "refuse", { status: 429 }];
  const dashboard = standIn((events, n) => (n <= 3 * outage.length ? outage[(n - 1) % outage.length] : null));
  const hook = client(dashboard, { batchMs: 60_000 });
  const ids = [];
  for (let n = 0; n < 10; n++) ids.push(hook.send(...error(`s${n}`)));
  assert.equal(await hook.close(30_000), true);

  assert.deepEqual(dashboard.posts, Array(3 * outage.length + 1).fill(ids), "the same batch every time");
  assert.deepEqual(dashboard.stored.map((event) => event.id), ids);
  assert.deepEqual(deadLetters(hook), []);
});

test("a failing event in the spool is found there too, and the spool is consumed", async () => {
  const bad = new Set();
  let down = true;
  const dashboard = standIn((events) => (down ? "refuse" : failsOn(bad)(events)));
  const hook = client(dashboard);
  const ids = [];
  for (let n = 0; n < 6; n++) ids.push(hook.send(...error(`s${n}`)));
  bad.add(ids[2]);
  await waitFor(() => hook.spool.pending(), "the events to be spooled while the dashboard is down");
  down = false;
  assert.equal(await hook.close(20_000), true);

  assert.deepEqual(dashboard.stored.map((event) => event.id), ids.filter((id) => id !== ids[2]));
  assert.deepEqual(deadLetters(hook).map((line) => line.event.id), [ids[2]]);
  assert.equal(hook.spool.pending(), false);
});

test("an event refused with a 422 goes to the dead-letter file with the field, the others are delivered", async () => {
  const dashboard = standIn((events) => {
    const at = events.findIndex((event) => event.type === "todo.updated");
    if (at < 0) return null;
    return { status: 422, code: "invalid", message: "content is required", field: `events[${at}].data` };
  });
  const hook = client(dashboard, { batchMs: 60_000 });
  const first = hook.send(...error("s"));
  const refused = hook.send("todo.updated", { sessionID: "s", todos: [{}] });
  const last = hook.send(...error("s"));
  await hook.close(5_000);

  assert.deepEqual(dashboard.stored.map((event) => event.id), [first, last]);
  const [letter] = deadLetters(hook);
  assert.equal(letter.event.id, refused);
  assert.deepEqual([letter.error.status, letter.error.field], [422, "events[1].data"]);
  assert.equal(hook.stats.dropped, 1);
});

// The size cut -----------------------------------------------------------------------------------------

const LIMITS = { maxStringBytes: 32 * 1024, maxEventBytes: 256 * 1024 };

test("a string over the limit is cut to it, its original size kept by path; the input is not changed", () => {
  const output = "x".repeat(2 * 1024 * 1024);
  const data = { part: { id: "p", state: { status: "completed", output }, tags: ["short", output] } };
  const { data: cut, truncated } = cutToSize(data, LIMITS);

  assert.deepEqual(truncated, { "data.part.state.output": 2 * 1024 * 1024, "data.part.tags[1]": 2 * 1024 * 1024 });
  assert.ok(Buffer.byteLength(cut.part.state.output) <= LIMITS.maxStringBytes);
  assert.ok(cut.part.state.output.startsWith("xxxx"));
  assert.ok(cut.part.state.output.endsWith("\n… [cut by the hook: 2097152 bytes in all]"));
  assert.equal(cut.part.tags[0], "short");
  assert.equal(cut.part.id, "p");
  assert.equal(data.part.state.output.length, 2 * 1024 * 1024, "the caller's object is left alone");
});

test("nothing cut: the same data, no truncated", () => {
  const data = { text: "é".repeat(1000) };
  assert.deepEqual(cutToSize(data, LIMITS), { data, truncated: undefined });
  assert.equal(cutToSize(data, LIMITS).data, data);
});

test("at the limits: a string of exactly the limit stays whole, one byte over is cut, whatever its characters", () => {
  for (const [char, bytes] of [["x", 1], ["é", 2], ["€", 3], ["😀", 4]]) {
    const fits = char.repeat(Math.floor(LIMITS.maxStringBytes / bytes));
    assert.equal(cutToSize({ text: fits }, LIMITS).data.text, fits, `${char}: within the limit`);
    const over = { nested: [{ text: `${fits}${"x".repeat(bytes)}` }] };
    assert.deepEqual(cutToSize(over, LIMITS).truncated, { "data.nested[0].text": Buffer.byteLength(over.nested[0].text) },
      `${char}: over the limit`);
  }
});

test("an event just under the event limit goes whole, just over it is cut, however its JSON is escaped", () => {
  const strings = (count, text) => ({ todos: Array.from({ length: count }, () => ({ content: text })) });
  const under = strings(12, "\u0001".repeat(3_600)); // 6 bytes of JSON a character: 259 391 bytes in all
  assert.ok(Buffer.byteLength(JSON.stringify(under)) <= LIMITS.maxEventBytes);
  assert.equal(cutToSize(under, LIMITS).data, under);
  const over = strings(12, "\u0001".repeat(3_700));
  assert.ok(Buffer.byteLength(JSON.stringify(over)) > LIMITS.maxEventBytes);
  const { data, truncated } = cutToSize(over, LIMITS);
  assert.equal(Object.keys(truncated).length, 12);
  assert.ok(Buffer.byteLength(JSON.stringify(data)) <= LIMITS.maxEventBytes);
});

test("a cut never splits a character", () => {
  for (const char of ["é", "€", "😀"]) {
    const { data } = cutToSize({ text: char.repeat(20_000) }, LIMITS);
    assert.ok(!data.text.includes("\uFFFD"), `a broken ${char}`);
    assert.ok(Buffer.byteLength(data.text) <= LIMITS.maxStringBytes);
    assert.ok(Buffer.byteLength(data.text) > LIMITS.maxStringBytes - 100);
  }
});

test("an event with many long strings is cut shorter until it fits", () => {
  const data = { todos: Array.from({ length: 40 }, (_, n) => ({ id: `${n}`, content: "c".repeat(20_000) })) };
  const { data: cut, truncated } = cutToSize(data, LIMITS);
  assert.ok(Buffer.byteLength(JSON.stringify(cut)) <= LIMITS.maxEventBytes);
  assert.equal(Object.keys(truncated).length, 40);
  assert.equal(truncated["data.todos[39].content"], 20_000);
});

test("the client cuts what it is given before queuing it; the event carries truncated", async () => {
  const dashboard = standIn();
  const hook = client(dashboard);
  hook.send("tool.execute.after", { tool: "read", sessionID: "s", callID: "c", output: "y".repeat(2_000_000) });
  await hook.close(5_000);
  const [event] = dashboard.stored;
  assert.deepEqual(event.truncated, { "data.output": 2_000_000 });
  assert.ok(Buffer.byteLength(event.data.output) <= 32 * 1024);
  assert.equal(hook.stats.cut, 1);
});
