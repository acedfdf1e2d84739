/**
 * Drives the hook's client (or the opencode plugin) through a scripted sequence, for the Python tests
 * (tests/test_hook_client.py): `node hooks/test/drive.mjs '<plan as JSON>'`.
 *
 * The plan is {"client": {...DashboardClient options}, "steps": [[name, ...args], ...]}; the connection
 * settings come from the environment like in opencode. Steps:
 *   ["send", type, data, options]     one event through client.send (options: id, coalesceKey, session, ...)
 *   ["repeat", count, type, data]     `count` events at once, every "$n" in data's strings replaced by 0..count-1
 *   ["sleep", ms]
 *   ["flush", timeoutMs] / ["close", timeoutMs]   their result is recorded
 *   ["exit"]                          process.exit(0) without closing: the exit handler must spool
 *   ["plugin", {directory, worktree}] load the plugin (dashboard-hook.js); its client is then the one used
 *   ["hook", name, ...args]           call one of the plugin's hooks, e.g. ["hook", "event", {"event": {...}}]
 *   ["get", path, attempts]           client.getJson; records ["get", body] or ["get failed", status, message]
 * In `data`, {"$repeat": [text, count]} stands for text repeated `count` times (a plan too long for a
 * command line otherwise). At the end (and before "exit") one JSON line goes to stdout: {ids, results, stats}.
 */

import { DashboardClient } from "../dashboard-client.mjs";

const plan = JSON.parse(process.argv[2]);
const ids = [];
const results = [];
let client = null;
let hooks = null;

function report() {
  process.stdout.write(`${JSON.stringify({ ids, results, stats: client && { ...client.stats, spoolDropped: client.spool.dropped } })}\n`);
}

function expanded(value) {
  if (Array.isArray(value)) return value.map(expanded);
  if (!value || typeof value !== "object") return value;
  if (Array.isArray(value.$repeat)) return value.$repeat[0].repeat(value.$repeat[1]);
  return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, expanded(item)]));
}

function numbered(value, n) {
  if (typeof value === "string") return value.replaceAll("$n", String(n));
  if (Array.isArray(value)) return value.map((item) => numbered(item, n));
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, numbered(item, n)]));
  }
  return value;
}

const steps = {
  send: (type, data, options) => ids.push(client.send(type, expanded(data), options)),
  repeat: (count, type, data) => {
    const whole = expanded(data);
    for (let n = 0; n < count; n++) ids.push(client.send(type, numbered(whole, n)));
  },
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  flush: async (timeoutMs) => results.push(["flush", await client.flush(timeoutMs)]),
  close: async (timeoutMs) => results.push(["close", await client.close(timeoutMs)]),
  exit: () => {
    report();
    process.exit(0);
  },
  plugin: async (context) => {
    const plugin = await import("../dashboard-hook.js");
    hooks = await plugin.DashboardHook(context);
    client = globalThis[Symbol.for("opencode-dashboard.hook")];
    // A second load (global and project plugin folders) must stand down.
    results.push(["second load hooks", Object.keys(await plugin.DashboardHook(context))]);
  },
  hook: async (name, ...args) => hooks[name](...args),
  get: async (path, attempts) => {
    try {
      results.push(["get", await client.getJson(path, { attempts })]);
    } catch (error) {
      results.push(["get failed", error.status ?? null, error.message]);
    }
  },
};

if (plan.client) client = new DashboardClient(plan.client);
for (const [name, ...args] of plan.steps) await steps[name](...args);
report();
