/**
 * The opencode plugin (dashboard-hook.js) over its client, loaded as opencode loads it, against a dashboard
 * stand-in in place of the global `fetch`: which of opencode's re-sent snapshots merge while they wait.
 * The behaviour against the real dashboard is tested by tests/test_hook_client.py.
 */

import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";

const stored = [];
globalThis.fetch = async (url, init) => {
  const { events } = JSON.parse(init.body);
  stored.push(...events);
  return new Response(JSON.stringify({ accepted: events.length, duplicates: 0 }), { status: 202 });
};
Object.assign(process.env, { DASHBOARD_URL: "http://dashboard.invalid", DASHBOARD_API_KEY: "k",
  DASHBOARD_SPOOL_DIR: join(mkdtempSync(join(tmpdir(), "plugin-")), "spool"), DASHBOARD_BATCH_MS: "60000" });

const { DashboardHook } = await import("../dashboard-hook.js");
const hooks = await DashboardHook({ client: null, directory: "/w/shop", worktree: "/w/shop" });
const client = globalThis[Symbol.for("opencode-dashboard.hook")];

// opencode's message.updated carries the whole Message (`info`, v1 and v2 alike), as a part update does.
const message = (id, completed) => ({ type: "message.updated", properties: { sessionID: "s", info: {
  id, sessionID: "s", role: "assistant", time: completed ? { created: 1, completed: 2 } : { created: 1 } } } });
const part = (text) => ({ type: "message.part.updated", properties: { part: {
  id: "p1", sessionID: "s", messageID: "m1", type: "text", text } } });

test("a message re-sent whole merges like a part: the latest waits in the first one's place", async () => {
  for (const event of [message("m1", false), message("m1", false), part("Look"), part("Looking"),
    message("m1", true), message("m2", false), message("m2", true)]) {
    await hooks.event({ event });
  }
  assert.equal(await client.close(5_000), true);
  assert.deepEqual(stored.map((event) => [event.type, event.data.info?.id ?? event.data.part.text,
    Boolean(event.data.info?.time.completed)]), [
    ["message.updated", "m1", false], // the second, identical snapshot merged into the first
    ["message.part.updated", "Looking", false],
    ["message.updated", "m1", true], // a part of the session came in between: it follows, in order
    ["message.updated", "m2", true],
  ]);
});
