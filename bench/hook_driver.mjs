/**
 * The shipped opencode plugin (hooks/dashboard-hook.js over hooks/dashboard-client.mjs, as opencode
 * loads it) fed `count` opencode-shaped events as fast as it takes them, for bench/hook.py:
 * `node bench/hook_driver.mjs <count>`, the dashboard's address and key in the environment
 * (DASHBOARD_URL, DASHBOARD_API_KEY, DASHBOARD_AGENT_ID, DASHBOARD_SPOOL_DIR), as for opencode, and
 * DASHBOARD_TOKEN to read the timeline.
 *
 * Sessions take turns as opencode's do: busy, the person's prompt, the assistant's message, its text
 * streamed as growing snapshots of one part, a tool call (the tool hooks and the tool part going pending,
 * running, completed), the todo list, more text, the message completed with its tokens, idle. The plugin
 * gets them through its `event` and tool hooks, with a pause for the event loop every EVENTS_PER_TICK
 * (opencode's bus delivers them across ticks too, and the client sends while they come).
 *
 * It ends once the last event (a marker session's status) is visible through GET /api/timeline, and
 * prints one JSON line: {events, firstSendMs, lastSendMs, flushedMs, lastVisibleMs (times from
 * performance.now()), acceptMs (the time spent inside the plugin's hooks: what taking the events cost the
 * agent), cpuMs (this process's CPU from the first event to the last visible: the hooks, the delivery's
 * serialising and requests, and this driver's own making of the events), driverCpuMs (the CPU of making
 * the same events with nobody taking them, measured first), stats (the client's counters)}.
 */

import { setImmediate as nextTick } from "node:timers/promises";

import { DashboardHook } from "../hooks/dashboard-hook.js";

const EVENTS_PER_TICK = 50;
const SESSIONS = 20;
const TEXT_SNAPSHOTS = 24;

const count = Number(process.argv[2] ?? 100_000);
const hooks = await DashboardHook({ client: null, directory: "/home/me/shop", worktree: "/home/me/shop" });
const client = globalThis[Symbol.for("opencode-dashboard.hook")];

const now = () => Date.now();
const bus = (type, properties) => ({ kind: "event", type, properties });
const tool = (name, input, output) => ({ kind: name, input, output });

/** One turn of session `s` (turn number `t`): the calls opencode makes on the plugin, in order. */
function turn(s, t) {
  const sessionID = `ses_bench_${s}`;
  const user = `msg_u_${s}_${t}`;
  const assistant = `msg_a_${s}_${t}`;
  const callID = `call_${s}_${t}`;
  const started = now();
  const assistantInfo = (completed) => ({ info: {
    id: assistant, sessionID, role: "assistant", time: completed ? { created: started, completed: now() } : { created: started },
    parentID: user, modelID: "claude-sonnet-4", providerID: "anthropic", mode: "build", agent: "build",
    path: { cwd: "/home/me/shop", root: "/home/me/shop" }, cost: completed ? 0.0123 : 0,
    tokens: { input: completed ? 1200 : 0, output: completed ? 340 : 0, reasoning: 0, cache: { read: 0, write: 0 } },
  } });
  const text = (n) => bus("message.part.updated", { part: {
    id: `prt_text_${s}_${t}`, sessionID, messageID: assistant, type: "text",
    text: "Looking at the checkout flow and the failing test. ".repeat(n + 1), time: { start: started } } });
  const toolPart = (state) => bus("message.part.updated", { part: {
    id: `prt_tool_${s}_${t}`, sessionID, messageID: assistant, type: "tool", callID, tool: "bash", state } });
  const input = { command: "npm test -- checkout", description: "Run the checkout tests" };
  const calls = [
    bus("session.status", { sessionID, status: { type: "busy" } }),
    bus("message.updated", { info: { id: user, sessionID, role: "user", time: { created: started }, agent: "build",
      model: { providerID: "anthropic", modelID: "claude-sonnet-4" } } }),
    bus("message.part.updated", { part: { id: `prt_prompt_${s}_${t}`, sessionID, messageID: user, type: "text",
      text: `Fix the checkout test (turn ${t}).` } }),
    bus("message.updated", assistantInfo(false)),
  ];
  for (let n = 0; n < TEXT_SNAPSHOTS / 2; n++) calls.push(text(n));
  calls.push(
    toolPart({ status: "pending", input: {}, raw: "" }),
    tool("tool.execute.before", { tool: "bash", sessionID, callID }, { args: input }),
    toolPart({ status: "running", input, title: "Run the checkout tests", time: { start: now() } }),
    tool("tool.execute.after", { tool: "bash", sessionID, callID },
      { title: "Run the checkout tests", output: "PASS checkout.test.js\n  12 passed\n", metadata: {} }),
    toolPart({ status: "completed", input, output: "PASS checkout.test.js\n  12 passed\n",
      title: "Run the checkout tests", metadata: { exit: 0 }, time: { start: started, end: now() } }),
    bus("todo.updated", { sessionID, todos: [
      { id: "1", content: "Reproduce the failing checkout test", status: "completed", priority: "high" },
      { id: "2", content: "Fix the rounding in the total", status: t % 2 ? "completed" : "in_progress", priority: "high" },
      { id: "3", content: "Add a regression test", status: "pending", priority: "medium" }] }),
  );
  for (let n = TEXT_SNAPSHOTS / 2; n < TEXT_SNAPSHOTS; n++) calls.push(text(n));
  calls.push(
    bus("message.updated", assistantInfo(true)),
    bus("session.status", { sessionID, status: { type: "idle" } }),
    bus("session.idle", { sessionID }),
  );
  return calls;
}

let acceptMs = 0;

/** One call on the plugin, timed: its work is done before it returns (what it returns is already settled). */
async function call(step) {
  const start = performance.now();
  const settled = step.kind === "event" ? hooks.event({ event: { type: step.type, properties: step.properties } })
    : hooks[step.kind](step.input, step.output);
  acceptMs += performance.now() - start;
  await settled;
}

async function visible(sessionID) {
  const headers = { Authorization: `Bearer ${process.env.DASHBOARD_TOKEN}` }; // reading is the dashboard's
  for (;;) {
    const answer = await fetch(`${process.env.DASHBOARD_URL}/api/timeline?session_id=${sessionID}`, { headers });
    if (!answer.ok) throw new Error(`GET /api/timeline answered ${answer.status}: ${await answer.text()}`);
    if ((await answer.json()).events.length) return;
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** Make the `count` calls, in order, and give each to `take`: the whole run, or the driver alone. */
async function feed(take) {
  let sent = 0;
  for (let s = 0; s < SESSIONS; s++) {
    await take(bus("session.created", { info: { id: `ses_bench_${s}`, projectID: "prj_shop",
      directory: "/home/me/shop", title: `Bench session ${s}`, version: "1.18.33",
      time: { created: now(), updated: now() } } }));
    sent++;
  }
  for (let t = 0; sent < count - 1; t++) {
    for (const step of turn(t % SESSIONS, Math.floor(t / SESSIONS))) {
      if (sent >= count - 1) break;
      await take(step);
      if (++sent % EVENTS_PER_TICK === 0) await nextTick();
    }
  }
  // The last event, on a session of its own: once it is visible, everything before it is (one batch at a
  // time, in order).
  await take(bus("session.status", { sessionID: "ses_bench_last", status: { type: "idle" } }));
  return sent + 1;
}

// What making the events costs this driver by itself, to tell the client's CPU from its own.
const cpuBeforeDry = process.cpuUsage();
await feed(async () => {});
const dry = process.cpuUsage(cpuBeforeDry);

const cpuAtStart = process.cpuUsage();
const firstSendMs = performance.now();
const sent = await feed(call);
const lastSendMs = performance.now();
await client.flush();
const flushedMs = performance.now();
await visible("ses_bench_last");
const lastVisibleMs = performance.now();
const cpu = process.cpuUsage(cpuAtStart);
process.stdout.write(`${JSON.stringify({ events: sent, firstSendMs, lastSendMs, flushedMs, lastVisibleMs, acceptMs,
  cpuMs: (cpu.user + cpu.system) / 1000, driverCpuMs: (dry.user + dry.system) / 1000, stats: client.stats })}\n`);
await client.close();
