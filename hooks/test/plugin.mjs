/**
 * Runs the opencode plugin (dashboard-hook.js) the way opencode does, with a stand-in for the client
 * opencode gives plugins, for the Python tests (tests/test_hook_questions.py):
 * `node hooks/test/plugin.mjs '<options as JSON>'`, the connection settings from the environment.
 *
 * The stand-in has what the plugin may call on opencode's client (`@opencode-ai/sdk` 1.x's
 * OpencodeClient): `postSessionIdPermissionsPermissionId(options)` and `_client.post(options)`, the
 * generated client's request function. It records each call and answers as that client does:
 * `{data, error, response}`. Like opencode, once it takes an answer it publishes the reply
 * (`permission.replied`, `question.replied`) to the plugin's event hook. Options: {"refuse": true}
 * answers 404 instead, as opencode does for a request already answered in its terminal.
 *
 * Commands, one JSON array a line on stdin; one JSON line on stdout for each:
 *   ["event", {type, properties}]   the plugin's event hook             -> {"ok": true}
 *   ["calls", count, timeoutMs]      wait until the client has had `count` calls -> {"calls": [...]}
 *   ["settled", timeoutMs]           wait until the plugin waits on no prompt    -> {"settled": true|false}
 *   ["flush", timeoutMs]             send what the plugin has queued             -> {"flushed": true|false}
 *   ["close", timeoutMs]             close the plugin's dashboard client, then exit
 * The first line out is {"ready": true}.
 */

import { createInterface } from "node:readline";

const options = JSON.parse(process.argv[2] ?? "{}");
const calls = [];
const sessions = new Map(); // request id -> its session, for the replies opencode publishes
let hooks = null;

function answered(status) {
  return status === 200
    ? { data: true, error: undefined, response: { ok: true, status } }
    : { data: undefined, error: { name: "NotFoundError", data: { message: "not found" } }, response: { ok: false, status } };
}

/** After opencode takes an answer it says so on its bus, which the plugin hears too. */
function publish(type, properties) {
  setImmediate(() => hooks.event({ event: { type, properties } }));
}

const opencode = {
  async postSessionIdPermissionsPermissionId(request) {
    calls.push(["postSessionIdPermissionsPermissionId", request]);
    if (options.refuse) return answered(404);
    publish("permission.replied", { sessionID: request.path.id, requestID: request.path.permissionID,
      reply: request.body.response });
    return answered(200);
  },
  _client: {
    async post(request) {
      calls.push(["_client.post", request]);
      if (options.refuse) return answered(404);
      const requestID = request.path?.requestID;
      if (request.url === "/question/{requestID}/reply") {
        publish("question.replied", { sessionID: sessions.get(requestID), requestID, answers: request.body.answers });
      }
      return answered(200);
    },
  },
};

async function until(condition, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return true;
}

const plugin = await import("../dashboard-hook.js");
hooks = await plugin.DashboardHook({ client: opencode, directory: "/home/me/shop", worktree: "/home/me/shop" });
const client = globalThis[Symbol.for("opencode-dashboard.hook")];
const relay = globalThis[Symbol.for("opencode-dashboard.prompts")];

const commands = {
  event: async (event) => {
    if (event.properties?.id && event.properties?.sessionID) sessions.set(event.properties.id, event.properties.sessionID);
    await hooks.event({ event });
    return { ok: true };
  },
  calls: async (count, timeoutMs) => {
    await until(() => calls.length >= count, timeoutMs);
    return { calls };
  },
  settled: async (timeoutMs) => ({ settled: await until(() => relay.pending.size === 0, timeoutMs) }),
  flush: async (timeoutMs) => ({ flushed: await client.flush(timeoutMs) }),
  close: async (timeoutMs) => {
    relay.stop();
    await client.close(timeoutMs);
    return { closed: true };
  },
};

process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  const [name, ...args] = JSON.parse(line);
  process.stdout.write(`${JSON.stringify(await commands[name](...args))}\n`);
  if (name === "close") break;
}
process.exit(0);
